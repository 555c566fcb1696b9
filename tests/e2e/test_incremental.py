"""Daily runs absorb new loads (identity graph, orders, customer marts) and publish what a full
refresh publishes.

Three days through the real Prefect flow on one warehouse: day 1 builds everything; day 2 brings
the next day's orders and app events plus one order whose identifiers belong to two existing
customers (the two must merge into one); day 3 brings orders that make an existing member card
noisy (it must leave the graph, which may split its customer), as of the end of January (a period
completes: the models of complete periods are computed in full). After days 2 and 3 every
published mart, and every identity and order table of the state, equals row for row a full
refresh of the same files into a new warehouse. Floating-point columns may differ by 1e-9 relative (sums added in another
order); nothing else may differ.
"""

from __future__ import annotations

import math
import os
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from tests.support.pipeline import DEMO_CONFIG, add_one_day

DAY1 = date(2025, 12, 31)  # the end of the e2e session's clean sample
DAY3 = date(2026, 1, 31)
STATE_TABLES = ("int_identifiers_observed", "int_identifier_pairs_observed", "int_identifiers_excluded",
                   "int_identifiers_clustered", "int_identifiers_mapped_to_customers", "int_orders_unioned",
                   "int_orders_attributed")
NOISY_CRM_IDS = [f"C0000010{i}" for i in range(6)]  # generated CRM ids are C + 8 digits >= 10,000,000


def run_flow(sources: Path, warehouse: Path, as_of: date, full_refresh: bool = False) -> dict:
    from flows.retention_pipeline import retention_pipeline

    os.environ["LIUCUN_DATA_DIR"] = str(sources)
    return retention_pipeline(config_path=str(DEMO_CONFIG), warehouse_dir=str(warehouse), as_of=as_of,
                              full_refresh=full_refresh)


def _rows(con: duckdb.DuckDBPyConnection, table: str) -> tuple[list[str], list[tuple]]:
    """Every row, sorted; without load_id, which names the run that loaded a row (two warehouses
    load the same files in different runs)."""
    cols = [c for c in con.execute(f"select * from {table} limit 0").description if c[0] != "load_id"]
    names, floats = [c[0] for c in cols], [str(c[1]) in ("DOUBLE", "FLOAT") for c in cols]

    def key(row: tuple) -> tuple:
        return (tuple("" if v is None else str(v) for v, f in zip(row, floats, strict=True) if not f),
                tuple(-1e300 if v is None else float(f"{v:.6g}") for v, f in zip(row, floats, strict=True) if f))
    return names, sorted(con.execute(f"select {', '.join(chr(34) + n + chr(34) for n in names)} from {table}")
                         .fetchall(), key=key)


def assert_same_rows(a: Path, b: Path, tables: list[str]) -> None:
    with duckdb.connect(str(a), read_only=True) as ca, duckdb.connect(str(b), read_only=True) as cb:
        for table in tables:
            names_a, rows_a = _rows(ca, table)
            names_b, rows_b = _rows(cb, table)
            assert names_a == names_b, table
            assert len(rows_a) == len(rows_b), f"{table}: {len(rows_a)} rows absorbing, {len(rows_b)} rebuilt"
            for ra, rb in zip(rows_a, rows_b, strict=True):
                for name, va, vb in zip(names_a, ra, rb, strict=True):
                    same = (math.isclose(va, vb, rel_tol=1e-9, abs_tol=1e-12) if isinstance(va, float)
                            and isinstance(vb, float) else va == vb)
                    assert same, f"{table}.{name}: {va!r} (absorbing) != {vb!r} (rebuilt) in {ra}"


def assert_equals_full_refresh(warehouse: Path, rebuilt: Path) -> None:
    with duckdb.connect(str(warehouse / "liucun.duckdb"), read_only=True) as con:
        marts = [f"marts.{t}" for (t,) in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'marts' order by 1").fetchall()]
    assert len(marts) >= 19
    assert_same_rows(warehouse / "liucun.duckdb", rebuilt / "liucun.duckdb", marts)
    assert_same_rows(warehouse / "state.duckdb", rebuilt / "state.duckdb",
                     [f"intermediate.{t}" for t in STATE_TABLES])


def _customer_of(state: Path, crm_id: str) -> str:
    with duckdb.connect(str(state), read_only=True) as con:
        return con.execute("select customer_id from intermediate.int_identifiers_mapped_to_customers "
                           "where identifier_type = 'crm_id' and identifier_value = ?", [crm_id]).fetchone()[0]


def _write_orders(sources: Path, name: str, rows: list[dict]) -> None:
    """New orders in a new file, shaped as the sample's order files (all other fields of a real order)."""
    template = sorted((sources / "orders").glob("orders_2*.parquet"))[0]
    with duckdb.connect() as con:
        con.execute("create table o as select * from read_parquet(?) limit 0", [str(template)])
        for r in rows:
            con.execute(f"""insert into o select * replace (? as order_id, ? as crm_id, ? as phone,
                                ? as member_card, null as wechat_unionid, ?::timestamptz as ordered_at)
                            from read_parquet('{template}') limit 1""",
                        [r["order_id"], r["crm_id"], r.get("phone"), r.get("member_card"), r["ordered_at"]])
        con.execute(f"copy o to '{sources / 'orders' / name}' (format parquet)")


@pytest.fixture(scope="module")
def day1(prefect_backend, clean_sources: Path, tmp_path_factory: pytest.TempPathFactory):
    warehouse = tmp_path_factory.mktemp("daily") / "warehouse"
    summary = run_flow(clean_sources, warehouse, DAY1)
    assert summary["models_built"] == "in full (first build of this warehouse)"
    return warehouse


def test_daily_runs_merge_and_split_customers_exactly_as_a_full_refresh(day1: Path, clean_sources: Path,
                                                                        tmp_path: Path):
    warehouse = day1
    with duckdb.connect(str(warehouse / "state.duckdb"), read_only=True) as con:
        # two different customers, each with one CRM record that has a phone; and a member card
        (a_crm,), (b_crm,) = con.execute(
            "select c.crm_id from raw.customers as c inner join intermediate.int_identifiers_mapped_to_customers "
            "as m on m.identifier_type = 'crm_id' and m.identifier_value = c.crm_id "
            "where c.phone_hash is not null and c.member_card is null "
            "qualify row_number() over (partition by m.customer_id order by c.crm_id) = 1 "
            "order by c.crm_id limit 2").fetchall()
        card_crm, card = con.execute("select crm_id, member_card from raw.customers "
                                     "where member_card is not null order by crm_id limit 1").fetchone()
    with open(clean_sources / "crm" / "customers.csv", encoding="utf-8") as fh:  # the raw phone
        b_phone_raw = next(line.split(",")[1] for line in fh if line.startswith(b_crm + ","))
    before_a, before_b = _customer_of(warehouse / "state.duckdb", a_crm), _customer_of(warehouse / "state.duckdb", b_crm)
    assert before_a != before_b

    # day 2: the next day's orders and events, and an order with A's CRM id and B's phone
    day2 = add_one_day(clean_sources, tmp_path / "day2", DAY1)
    _write_orders(day2, "orders_merge.parquet", [{"order_id": "MERGE-1", "crm_id": a_crm, "phone": b_phone_raw,
                                                  "ordered_at": "2026-01-01 10:00:00+00"}])
    summary = run_flow(day2, warehouse, DAY1 + timedelta(days=1))
    assert summary["models_built"] == (
        "10 absorbed 2 new load(s) (dim_customers, fct_customer_lifecycle, fct_customer_periods, fct_orders, "
        "int_identifier_pairs_observed, int_identifiers_clustered, int_identifiers_mapped_to_customers, "
        "int_identifiers_observed, int_orders_attributed, int_orders_unioned); "
        "every other model in full"), summary["models_built"]
    merged = _customer_of(warehouse / "state.duckdb", a_crm)
    assert merged == _customer_of(warehouse / "state.duckdb", b_crm)
    assert merged in (before_a, before_b)  # the merged customer keeps the older anchor's id
    with duckdb.connect(str(warehouse / "state.duckdb"), read_only=True) as con:
        redo, clustered = con.execute(
            "select (select count(*) from incremental.int_identifiers_clustered__redo), "
            "(select count(*) from intermediate.int_identifiers_clustered)").fetchone()
        absorbed = con.execute("select count(*) from incremental.int_identifiers_observed__loads").fetchone()[0]
        loads = con.execute("select count(*) from raw._loads").fetchone()[0]
    assert 0 < redo < clustered / 5  # only the components the new records touch were clustered again
    assert absorbed == loads
    full2 = tmp_path / "full2"
    assert run_flow(day2, full2, DAY1 + timedelta(days=1), full_refresh=True)["models_built"] == \
        "in full (--full-refresh)"
    assert_equals_full_refresh(warehouse, full2)

    # day 3 (January 31): six new CRM ids show the same member card: it is now noisy and leaves the graph
    day3 = add_one_day(day2, tmp_path / "day3", DAY1, days=(DAY3 - DAY1).days)  # fresh orders and events
    _write_orders(day3, "orders_shared_card.parquet", [
        {"order_id": f"CARD-{i}", "crm_id": crm, "member_card": card, "ordered_at": "2026-01-31 03:00:00+00"}
        for i, crm in enumerate(NOISY_CRM_IDS)])
    # run as of January 31: January is complete, every customer gains a January row
    summary = run_flow(day3, warehouse, DAY3)
    assert summary["models_built"] == (
        "8 absorbed 2 new load(s) (dim_customers, fct_orders, int_identifier_pairs_observed, "
        "int_identifiers_clustered, int_identifiers_mapped_to_customers, int_identifiers_observed, "
        "int_orders_attributed, int_orders_unioned); in full because a period completed: fct_customer_lifecycle, "
        "fct_customer_periods; every other model in full"), summary["models_built"]
    with duckdb.connect(str(warehouse / "state.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from intermediate.int_identifiers_excluded where node_key = ?",
                           [f"member_card:{card}"]).fetchone()[0] == 1
        assert con.execute("select count(*) from intermediate.int_identifiers_clustered where node_key = ?",
                           [f"member_card:{card}"]).fetchone()[0] == 0
    assert len({_customer_of(warehouse / "state.duckdb", c) for c in [card_crm, *NOISY_CRM_IDS]}) == 7
    full3 = tmp_path / "full3"
    run_flow(day3, full3, DAY3, full_refresh=True)
    assert_equals_full_refresh(warehouse, full3)
