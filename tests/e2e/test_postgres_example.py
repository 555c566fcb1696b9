"""`examples/postgres/liucun.yml` as a user runs it: CRM and orders served by a real (throwaway)
PostgreSQL cluster, pulled concurrently with the file sources by `liucun run`, then pulled again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import psycopg2
import pytest

from tests.support.postgres import throwaway_cluster

pytestmark = pytest.mark.postgres
REPO = Path(__file__).resolve().parents[2]


def test_postgres_example_runs_twice_incrementally(tmp_path: Path):
    liucun = str(Path(sys.executable).with_name("liucun"))
    with throwaway_cluster() as pg:
        env = {**os.environ, "LIUCUN_SHOP_DSN": pg["dsn"], "LIUCUN_DATA_DIR": str(tmp_path / "src"),
               "PREFECT_HOME": str(tmp_path / "prefect")}
        subprocess.run([liucun, "generate", "--out", str(tmp_path / "src"), "--customers", "1500",
                        "--months", "12", "--end-date", "2025-12-31", "--to-postgres", "LIUCUN_SHOP_DSN"],
                       env=env, check=True, capture_output=True, timeout=300)
        run = [liucun, "run", "--config", str(REPO / "examples/postgres/liucun.yml"),
               "--warehouse", str(tmp_path / "wh"), "--as-of", "2025-12-31"]
        first = subprocess.run(run, env=env, capture_output=True, text=True, timeout=600)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        with psycopg2.connect(pg["dsn"]) as con:
            cur = con.cursor()
            cur.execute("update commerce.orders set refund_amount = net_amount, is_returned = true, "
                        "updated_at = now() where order_id = (select min(order_id) from commerce.orders)")
            cur.execute("select count(*), sum(net_amount) from commerce.orders")
            pg_orders = cur.fetchone()
            con.commit()
        second = subprocess.run(run, env=env, capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert pg["dsn"] not in first.stdout + first.stderr + second.stdout + second.stderr
    with duckdb.connect(str(tmp_path / "wh" / "liucun.duckdb"), read_only=True) as con:
        assert con.execute("select count(*), sum(net_amount) from marts.fct_orders").fetchone() == (
            pg_orders[0], pg_orders[1])
        assert con.execute("select count(*) from marts.fct_orders where is_returned").fetchone()[0] >= 1
        loads = con.execute(
            "select source, rows_read from audit.source_loads where source = 'orders' order by started_at").fetchall()
    assert len(loads) == 2 and loads[1][1] < loads[0][1] / 4  # the second pull is incremental
