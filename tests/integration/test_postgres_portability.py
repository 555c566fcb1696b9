"""The same dbt project builds on PostgreSQL (a throwaway cluster) and gives the same retention."""

from __future__ import annotations

from pathlib import Path

import duckdb
import psycopg2
import pytest

from flows.dbt_runner import run_dbt
from flows.settings import Settings
from tests.support.pipeline import copy_raw_to_postgres
from tests.support.postgres import throwaway_cluster

pytestmark = pytest.mark.postgres


def test_dbt_project_builds_on_postgres_with_identical_marts(built, tmp_path: Path):
    db, _ = built
    with throwaway_cluster() as pg:
        counts = copy_raw_to_postgres(db, pg)
        assert counts["orders"] > 0
        env = {"LIUCUN_DBT_TARGET": "postgres", "LIUCUN_PG_HOST": pg["host"], "LIUCUN_PG_PORT": pg["port"],
               "LIUCUN_PG_USER": pg["user"], "LIUCUN_PG_DBNAME": pg["dbname"]}
        summary = run_dbt(["build"], Settings().dbt_project_dir, tmp_path, env, {"as_of_date": "2025-12-31"})
        assert all(r["status"] in ("success", "pass") for r in summary.results)
        assert summary.count("unit_test") >= 5
        query = ("select period_start, customers_start, customers_end, customers_new, customers_retained, "
                 "round(cast(crr as numeric(20, 10)), 8) from marts.rpt_retention_rate order by period_start")
        with psycopg2.connect(pg["dsn"]) as con:
            cur = con.cursor()
            cur.execute(query)
            on_pg = [tuple(float(v) if i == 5 and v is not None else v for i, v in enumerate(r))
                     for r in cur.fetchall()]
            cur.execute("select count(*), sum(net_amount) from marts.fct_orders")
            pg_orders = cur.fetchone()
    with duckdb.connect(str(db), read_only=True) as con:
        on_duck = [tuple(float(v) if i == 5 and v is not None else v for i, v in enumerate(r))
                   for r in con.execute(query).fetchall()]
        duck_orders = con.execute("select count(*), sum(net_amount) from marts.fct_orders").fetchone()
    assert len(on_pg) >= 10
    assert on_pg == on_duck
    assert pg_orders == duck_orders
