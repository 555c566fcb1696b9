"""A real PostgreSQL source: pull, change rows at the source, pull again — the raw layer holds
exactly the source's current state, incrementally and without double counting."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import duckdb
import psycopg2
import pytest

from flows.cli import main as liucun
from flows.config import load_config
from flows.ingest.load import ingest
from flows.ingest.readers import SourceUnreachable
from tests.support.postgres import throwaway_cluster

pytestmark = pytest.mark.postgres
REPO = Path(__file__).resolve().parents[2]
AS_OF = date(2025, 12, 31)


def _pg_only_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "liucun.yml"
    cfg.write_text(
        "data_dir: .\nsources:\n"
        "  crm_customers:\n    kind: customers\n"
        "    postgres: {dsn_env: LIUCUN_TEST_PG_DSN, table: crm.customers, cursor: updated_at}\n"
        "  orders:\n    kind: orders\n"
        "    postgres: {dsn_env: LIUCUN_TEST_PG_DSN, table: commerce.orders, cursor: updated_at}\n")
    return cfg


def _state(con, table: str, cols: str) -> set[tuple]:
    return set(con.execute(f"select {cols} from {table}").fetchall())


def test_incremental_pull_tracks_inserts_and_updates(tmp_path: Path, capsys):
    with throwaway_cluster() as pg:
        os.environ["LIUCUN_TEST_PG_DSN"] = pg["dsn"]
        assert liucun(["generate", "--out", str(tmp_path / "src"), "--customers", "800", "--months", "6",
                       "--end-date", AS_OF.isoformat(), "--to-postgres", "LIUCUN_TEST_PG_DSN"]) == 0
        assert "postgres crm.customers" in capsys.readouterr().out
        cfg = load_config(_pg_only_config(tmp_path))
        db = tmp_path / "w.duckdb"
        first = {r.source: r for r in ingest(db, cfg, "run1", AS_OF, "salt")}
        with psycopg2.connect(pg["dsn"]) as src:
            cur = src.cursor()
            cur.execute("select count(*) from crm.customers")
            n_customers = cur.fetchone()[0]
            assert first["crm_customers"].rows_loaded == n_customers
            # at the source: 5 customers move, 3 new customers, 2 orders refunded — all stamped now
            cur.execute("update crm.customers set region = 'Hainan', updated_at = now() "
                        "where crm_id in (select crm_id from crm.customers order by crm_id limit 5)")
            cur.execute("insert into crm.customers (crm_id, registration_channel, registered_at, region, "
                        "updated_at) select 'CNEW' || g, 'app', timestamp '2025-12-30 10:00', 'Xizang', now() "
                        "from generate_series(1, 3) g")
            cur.execute("update commerce.orders set refund_amount = net_amount, is_returned = true, "
                        "updated_at = now() where order_id in (select order_id from commerce.orders "
                        "order by order_id limit 2)")
            src.commit()
        second = {r.source: r for r in ingest(db, cfg, "run2", AS_OF, "salt")}
        # incremental: the changed rows plus the overlap window, not the whole table
        assert 8 <= second["crm_customers"].rows_read < n_customers / 4
        assert second["crm_customers"].rows_replaced >= 5
        assert second["orders"].rows_read < first["orders"].rows_read / 4
        with psycopg2.connect(pg["dsn"]) as src:
            cur = src.cursor()
            cur.execute("select crm_id, region from crm.customers")
            pg_customers = set(cur.fetchall())
            cur.execute("select order_id, cast(net_amount as numeric(18,2)), "
                        "cast(refund_amount as numeric(18,2)), is_returned from commerce.orders")
            pg_orders = {(o, float(n), float(r), b) for o, n, r, b in cur.fetchall()}
        with duckdb.connect(str(db), read_only=True) as con:
            assert _state(con, "raw.customers", "crm_id, region") == pg_customers
            assert con.execute("select count(*) from raw.customers").fetchone()[0] == len(pg_customers)
            wh_orders = {(o, float(n), float(r), b) for o, n, r, b in con.execute(
                "select order_id, net_amount, refund_amount, is_returned from raw.orders").fetchall()}
            assert wh_orders == pg_orders
            assert con.execute("select count(*) from raw.orders").fetchone()[0] == len(pg_orders)
            # raw phone numbers never reach the warehouse, hashes do
            assert con.execute("select count(*) from raw.customers where phone_hash is not null").fetchone()[0] > 0
            cols = {r[0] for r in con.execute("describe raw.customers").fetchall()}
            assert "phone" not in cols and "email" not in cols


def test_unreachable_database_is_retried_then_reported_without_the_dsn(tmp_path: Path):
    os.environ["LIUCUN_TEST_PG_DSN"] = "postgresql://liucun:s3cret-pw@127.0.0.1:1/nowhere"
    cfg = load_config(_pg_only_config(tmp_path))
    from flows.ingest.load import create_raw_schema
    from flows.ingest.readers import read_postgres

    with duckdb.connect() as con:
        create_raw_schema(con)
        with pytest.raises(SourceUnreachable) as err:
            read_postgres(con, cfg.sources[0], attempts=3, backoff_seconds=0.05)
    msg = str(err.value)
    assert "after 3 attempts" in msg and "crm_customers" in msg
    assert "s3cret-pw" not in msg
