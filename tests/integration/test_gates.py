"""GX gates on a real candidate: clean data passes, a known-bad row is caught, an empty gate fails."""

from __future__ import annotations

import gc
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import yaml

from expectations.gate import run_gate
from expectations.suites import GateParams
from tests.support.pipeline import DEMO_CONFIG

AS_OF = date(2025, 12, 31)
DEMO_KINDS = frozenset(s["kind"] for s in yaml.safe_load(DEMO_CONFIG.read_text())["sources"].values())


def params() -> GateParams:
    return GateParams(AS_OF, configured_kinds=DEMO_KINDS)


def test_clean_sample_passes_every_gate(built, tmp_path: Path):
    db, _ = built
    for layer in ("raw", "staging", "marts"):
        result = run_gate(layer, db, params(), tmp_path)
        assert result.passed, result.failure_message()
        assert result.evaluated >= 5
        report = (tmp_path / f"validation_{layer}.md").read_text()
        assert "PASSED" in report


def test_known_bad_row_is_caught(built, tmp_path: Path):
    """Keeps the DuckDB shim of expectations/context.py honest: a bad row must fail the gate."""
    db, _ = built
    bad = tmp_path / "bad.duckdb"
    shutil.copy(db, bad)
    with duckdb.connect(str(bad)) as con:
        con.execute(
            "insert into raw.orders (order_id, ordered_at, channel, gross_amount, net_amount) "
            "values ('BAD-1', timestamp '2025-06-01 10:00:00', 'store', 10.00, 99.00)")
    result = run_gate("raw", bad, params(), tmp_path)
    assert not result.passed
    (failure,) = result.blocking_failures
    assert failure.table == "raw.orders"
    assert failure.column == "gross_amount,net_amount"
    assert failure.unexpected_count == 1
    assert "raw.orders.gross_amount,net_amount" in result.failure_message()
    assert "1 of" in result.failure_message()


def test_a_gate_leaves_the_file_free_for_a_writer_without_garbage_collection(built, tmp_path: Path):
    """The pipeline opens the candidate read-write (dbt, publishing) right after each gate, in the
    same process. GX's connections must be closed by the gate itself, not by a collector pass that
    may or may not have run: with the collector off, a writer can open the file after a passing gate
    and after a failing one (which also fetches sample rows on GX's connection)."""
    db, _ = built
    bad = tmp_path / "bad.duckdb"
    shutil.copy(db, bad)
    with duckdb.connect(str(bad)) as con:
        con.execute("update raw.orders set net_amount = gross_amount + 1 where order_id = "
                    "(select min(order_id) from raw.orders)")
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for path, passes in ((db, True), (bad, False)):
            assert run_gate("raw", path, params(), tmp_path).passed is passes
            with duckdb.connect(str(path)) as con:  # read-write, as dbt and publishing open it
                con.execute("create or replace table main.writer_was_here as select 1 as x")
    finally:
        if was_enabled:
            gc.enable()


def test_gate_that_evaluates_nothing_fails(tmp_path: Path):
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    result = run_gate("marts", empty, params(), tmp_path)
    assert result.evaluated == 0
    assert not result.passed
    assert "evaluated no expectations" in result.failure_message()


def _demo_freshness(monkeypatch) -> tuple[tuple[str, str, float | None, float | None], ...]:
    """The demo config's freshness thresholds, as the pipeline passes them (orders and events block
    after 3 days)."""
    from flows.config import load_config

    monkeypatch.setenv("LIUCUN_DATA_DIR", "/nonexistent")  # only the thresholds are read
    return GateParams.from_config(load_config(DEMO_CONFIG), AS_OF).freshness


def _outcome(result, table: str, severity: str):
    (o,) = [o for o in result.outcomes if o.table == table and o.severity == severity
            and o.expectation == "unexpected_rows_expectation"]
    return o


def test_source_freshness_is_measured_per_source_and_blocks_when_stale(built, tmp_path: Path, monkeypatch):
    """The sample ends on AS_OF: fresh then. Thirty days later the same data is stale: orders and
    events (error_after_days 3) block, every measured source is at least warned about."""
    from dataclasses import replace

    db, _ = built
    freshness = _demo_freshness(monkeypatch)
    fresh = run_gate("raw", db, replace(params(), freshness=freshness), tmp_path)
    assert fresh.passed, fresh.failure_message()
    assert not _outcome(fresh, "raw.source_freshness", "blocking").observed
    late = replace(params(), as_of=date(2026, 1, 30), freshness=freshness)
    stale = run_gate("raw", db, late, tmp_path / "late")
    assert not stale.passed
    (block,) = [o for o in stale.blocking_failures if o.table == "raw.source_freshness"]
    assert {r["source"] for r in block.sample} == {"orders", "app_events"}
    assert all(r["age_days"] > 3 for r in block.sample)
    warned = _outcome(stale, "raw.source_freshness", "warning")
    assert not warned.success and warned.observed >= 6  # orders, events, customers, tickets, surveys, ...
    report = (tmp_path / "late" / "validation_raw.md").read_text()
    assert "source_freshness" in report and "app_events" in report


def test_row_count_bands_against_the_last_publication(built, tmp_path: Path):
    from dataclasses import replace

    db, _ = built
    with duckdb.connect(str(db), read_only=True) as con:
        counts = {t: con.execute(f"select count(*) from marts.{t}").fetchone()[0] for (t,) in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'marts'").fetchall()}
    same = run_gate("marts", db, replace(params(), previous_row_counts=counts), tmp_path)
    assert same.passed, same.failure_message()
    assert _outcome(same, "marts.row_count_bands", "warning").success

    grown = dict(counts, fct_orders=round(counts["fct_orders"] / 1.1))  # 10 % more rows now: in both bands
    assert run_gate("marts", db, replace(params(), previous_row_counts=grown), tmp_path).passed
    shrunk = dict(counts, dim_customers=counts["dim_customers"] * 3)  # now a third of last time
    result = run_gate("marts", db, replace(params(), previous_row_counts=shrunk), tmp_path)
    assert not result.passed
    (block,) = [o for o in result.blocking_failures if o.table == "marts.row_count_bands"]
    assert block.sample == [{"mart": "dim_customers", "row_count": counts["dim_customers"],
                             "previous_row_count": counts["dim_customers"] * 3}]
    # a tiny mart (too noisy to band) of at least 2 rows: a third of 3 x 1 row is floor(1.5) = 1, in band
    small = min((t for t in counts if counts[t] >= 2), key=counts.get)
    assert counts[small] < 50
    tiny = dict(counts, **{small: counts[small] * 3})
    assert run_gate("marts", db, replace(params(), previous_row_counts=tiny), tmp_path).passed
    assert not run_gate("marts", db, replace(params(), previous_row_counts=tiny, row_count_band_min_rows=0),
                        tmp_path).passed
    warn = dict(counts, fct_orders=round(counts["fct_orders"] / 1.4))  # 40 % more: warned, published
    warned = run_gate("marts", db, replace(params(), previous_row_counts=warn), tmp_path)
    assert warned.passed and [w.table for w in warned.warnings].count("marts.row_count_bands") == 1


def test_revenue_reconciliation_across_layers_catches_a_changed_mart_amount(built, tmp_path: Path):
    db, _ = built
    bad = tmp_path / "bad.duckdb"
    shutil.copy(db, bad)
    with duckdb.connect(str(bad)) as con:
        order_id, order_date = con.execute(
            "select order_id, order_date from marts.fct_orders where is_qualifying and customer_id is not null "
            "and ordered_at >= timestamp '2025-12-10' order by order_id limit 1").fetchone()
        con.execute("update marts.fct_orders set net_amount = net_amount + 1 where order_id = ?", [order_id])
    result = run_gate("marts", bad, params(), tmp_path)
    assert not result.passed
    failed = {(o.table, o.description) for o in result.blocking_failures}
    assert ("marts.rpt_retention_rate_reconciliation",
            "each period's revenue in the retention mart (every grain) equals the attributed qualifying "
            "order revenue of that period (fct_orders)") in failed
    assert any("last 28 days" in d for _, d in failed)
    (per_period,) = [o for o in result.blocking_failures if "each period" in (o.description or "")]
    # the order's day, its (Monday) week and its month
    week = order_date - timedelta(days=order_date.weekday())
    assert {(r["period_grain"], str(r["period_start"])) for r in per_period.sample} == {
        ("day", order_date.isoformat()), ("week", week.isoformat()), ("month", order_date.replace(day=1).isoformat())}


def test_a_gap_in_daily_orders_is_reported(built, tmp_path: Path):
    """Orders of the last three days vanish from the raw layer (a missed export): the staging gate
    warns about those days, naming them, and still passes (a warning, not a block)."""
    db, _ = built
    gap = tmp_path / db.name  # the same file name: dbt's staging views name their database
    shutil.copy(db, gap)
    with duckdb.connect(str(gap)) as con:
        con.execute("delete from raw.orders where cast(ordered_at as date) >= date '2025-12-29'")
    result = run_gate("staging", gap, params(), tmp_path)
    assert result.passed, result.failure_message()
    (daily,) = [w for w in result.warnings if w.table == "staging.stg_commerce__orders_daily"]
    assert {str(r["day"]) for r in daily.sample} >= {"2025-12-29", "2025-12-30", "2025-12-31"}
    clean = run_gate("staging", db, params(), tmp_path)
    assert not [w for w in clean.warnings if w.table == "staging.stg_commerce__orders_daily"]


def _means_of_complete_cells(con: duckdb.DuckDBPyConnection) -> None:
    """rpt_cohort_retention_means again from the (edited) cohort mart, as a run would publish it."""
    con.execute("delete from marts.rpt_cohort_retention_means")
    con.execute(
        "insert into marts.rpt_cohort_retention_means select period_grain, cohort_type, segment_type, "
        "segment_value, period_number, count(*), sum(cohort_size), sum(active_customers), avg(retention_rate), "
        "sum(active_customers) / sum(cohort_size), sum(active_customers_cumulative), "
        "avg(retention_rate_cumulative), sum(active_customers_cumulative) / sum(cohort_size) "
        "from marts.rpt_cohort_retention where is_complete and cohort_size > 0 "
        "group by period_grain, cohort_type, segment_type, segment_value, period_number")


def test_only_the_current_period_may_be_flagged_incomplete(built, tmp_path: Path):
    """A run whose as-of date is inside a period flags that period incomplete for every cohort and
    segment: the marts gate accepts it (it once blocked every mid-month run with segments), and
    blocks an earlier period flagged incomplete."""
    db, _ = built
    mid = tmp_path / "mid" / db.name  # the same file name: dbt's staging views name their database
    mid.parent.mkdir()
    shutil.copy(db, mid)
    with duckdb.connect(str(mid)) as con:
        con.execute("update marts.rpt_cohort_retention set is_complete = false where period_grain = 'month' "
                    "and period_start = (select max(period_start) from marts.rpt_cohort_retention "
                    "where period_grain = 'month')")
        _means_of_complete_cells(con)
        flagged, cohorts = con.execute(
            "select count(*) filter (where not is_complete), count(distinct cohort_period_start) "
            "from marts.rpt_cohort_retention where period_grain = 'month'").fetchone()
    assert flagged > 2 * cohorts  # one row per cohort and segment, as a mid-month run has
    result = run_gate("marts", mid, params(), tmp_path)
    assert result.passed, result.failure_message()

    earlier = tmp_path / "earlier" / db.name
    earlier.parent.mkdir()
    shutil.copy(db, earlier)
    with duckdb.connect(str(earlier)) as con:
        con.execute("update marts.rpt_cohort_retention set is_complete = false where period_grain = 'week' "
                    "and period_start = (select min(period_start) from marts.rpt_cohort_retention "
                    "where period_grain = 'week')")
        _means_of_complete_cells(con)
    result = run_gate("marts", earlier, params(), tmp_path)
    assert [(o.table, o.description) for o in result.blocking_failures] == [
        ("marts.rpt_cohort_retention", "only the current period is flagged incomplete (the as-of date is inside it)")]


def test_a_day_may_have_a_crr_above_ten_a_month_may_not(built, tmp_path: Path):
    """(E - N) / S of a day with few customers at its start can be large (a quiet Sunday, a busy
    Monday: once 13 in a test's sample); the marts gate bounds only the month's (a CRR of 13 there
    is a broken mart)."""
    db, _ = built
    for grain, passes in (("day", True), ("month", False)):
        copy = tmp_path / grain / db.name
        copy.parent.mkdir()
        shutil.copy(db, copy)
        with duckdb.connect(str(copy)) as con:
            changed = con.execute(
                "update marts.rpt_retention_rate set crr = 13 where period_grain = ? and segment_type = 'all' "
                "and period_start = (select max(period_start) from marts.rpt_retention_rate where period_grain = ?)",
                [grain, grain]).fetchone()[0]
        assert changed >= 1
        result = run_gate("marts", copy, params(), tmp_path / grain)
        assert result.passed is passes, result.failure_message()
        if not passes:
            assert [(o.table, o.description) for o in result.blocking_failures] == [
                ("marts.rpt_retention_rate", "CRR is never negative, and a month's CRR is at most 10")]
