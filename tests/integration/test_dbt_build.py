"""dbt on a generated sample: every node passes, and retention agrees with an independent calculation."""

from __future__ import annotations

import shutil
from datetime import timedelta

import duckdb
import pandas as pd
import pytest

from tests.integration.conftest import END


def test_every_dbt_node_passes(built):
    _, summary = built
    statuses = {r["unique_id"]: r["status"] for r in summary.results}
    # exposures are declarations (who reads the marts): dbt lists them as no-op
    bad = {k: v for k, v in statuses.items() if v not in ("success", "pass")
           and not (k.startswith("exposure.") and v == "no-op")}
    assert not bad, bad
    assert summary.count("model") >= 15
    assert summary.count("unit_test") >= 30
    # the textbook example among them: S=1000, E=1100, N=200 -> CRR 90 %
    assert statuses["unit_test.liucun.rpt_retention_rate.crr_textbook_example"] == "pass"
    assert summary.count("test") >= 30


def test_marts_are_not_empty(built):
    db, _ = built
    with duckdb.connect(str(db), read_only=True) as con:
        for t in ("fct_orders", "dim_customers", "rpt_retention_rate"):
            assert con.execute(f"select count(*) from marts.{t}").fetchone()[0] > 0, t


# pandas period frequencies of the published grains (weeks start on Monday: periods ending Sunday)
FREQ = {"day": "D", "week": "W-SUN", "month": "M"}


def _independent_retention(orders: pd.DataFrame, grain: str) -> pd.DataFrame:
    """Period by period with Python sets: S, E, N, retained (not the SQL of the models)."""
    orders = orders[(orders.net_amount > 0) & orders.customer_id.notna()].copy()
    orders["period"] = orders.order_date.dt.to_period(FREQ[grain])
    active = orders.groupby("period").customer_id.apply(set).to_dict()
    first = orders.groupby("customer_id").period.min()
    rows = []
    for m in pd.period_range(min(active), max(active), freq=FREQ[grain]):
        s, e = active.get(m - 1, set()), active.get(m, set())
        n = int((first == m).sum())
        rows.append({"period_start": m.start_time.date(), "S": len(s), "E": len(e), "N": n,
                     "retained": len(s & e),
                     "crr": (len(e) - n) / len(s) if s else None})
    return pd.DataFrame(rows).set_index("period_start")


@pytest.mark.parametrize("grain", ["day", "week", "month"])
def test_retention_rate_matches_independent_calculation(built, grain):
    """Every grain is published by the one build, each equal to its own recount."""
    db, _ = built
    with duckdb.connect(str(db), read_only=True) as con:
        orders = con.execute("select customer_id, order_date, net_amount from marts.fct_orders").df()
        mart = con.execute("select * from marts.rpt_retention_rate where segment_type = 'all' "
                           "and period_grain = ? order by period_start", [grain]).df()
    orders["order_date"] = pd.to_datetime(orders.order_date)
    expected = _independent_retention(orders, grain)
    # every complete period (as of 2025-12-31, a Wednesday: its week is not complete)
    complete = [p for p in expected.index
                if (pd.Period(p, FREQ[grain]) + 1).start_time.date() <= END + timedelta(days=1)]
    assert list(mart.period_start.map(lambda d: pd.Timestamp(d).date())) == complete
    for row in mart.itertuples():
        exp = expected.loc[pd.Timestamp(row.period_start).date()]
        assert (row.customers_start, row.customers_end, row.customers_new, row.customers_retained) == (
            exp.S, exp.E, exp.N, exp.retained), row.period_start
        if pd.isna(exp.crr):
            assert pd.isna(row.crr)
        else:
            assert abs(row.crr - exp.crr) < 1e-12
    # the sample must make the metric non-trivial: customers are both kept and lost
    has_base = mart.customers_start > 0
    assert (mart.customers_churned[has_base] > 0).all()
    retained = mart.customers_retained[has_base] > 0
    assert retained.all() if grain == "month" else retained.any()  # a day's buyers rarely buy the next day


def test_dbt_source_freshness_evaluates_every_raw_table(built, tmp_path):
    """`dbt source freshness` works on a candidate: every raw table with a record time declares it as
    loaded_at_field (flows/config.py FRESHNESS_COLUMN) with freshness, and each is measured against
    its newest record (the sample ends at END, months before today, so every source with rows is
    stale — the check really compares times; naive UTC timestamps are read as UTC, not shifted)."""
    import json

    from flows.config import FRESHNESS_COLUMN
    from flows.models.dbt_runner import DbtFailed, run_dbt
    from flows.settings import Settings

    db, _ = built
    try:
        run_dbt(["source", "freshness"], Settings().dbt_project_dir, tmp_path,
                {"LIUCUN_DBT_TARGET": "duckdb", "LIUCUN_DUCKDB_PATH": str(db)}, {})
    except DbtFailed:
        pass  # stale sources make the command exit non-zero; the results file says why
    target = tmp_path / "dbt_target"
    results = json.loads((target / "sources.json").read_text())["results"]
    by_table = {r["unique_id"].split(".")[-1]: r for r in results}
    declared = {n["name"]: n for n in json.loads((target / "manifest.json").read_text())["sources"].values()
                if n["source_name"] == "raw"}
    with_freshness = {t for t, n in declared.items()
                      if n["loaded_at_field"] and ((n.get("freshness") or {}).get("error_after") or {}).get("count")}
    # every declared source with a record time, exactly the kinds the raw gate measures, was evaluated
    assert with_freshness == set(FRESHNESS_COLUMN) == set(by_table), (with_freshness, set(by_table))
    assert {t: declared[t]["loaded_at_field"] for t in with_freshness} == FRESHNESS_COLUMN
    assert {r["status"] for r in results} <= {"pass", "warn", "error"}, [r.get("message") for r in results]
    with duckdb.connect(str(db), read_only=True) as con:
        for table, column in FRESHNESS_COLUMN.items():
            newest = con.execute(f"select max({column}) from raw.{table}").fetchone()[0]
            if newest is None:
                continue  # an empty raw table: dbt reports no max_loaded_at
            assert by_table[table]["max_loaded_at"].startswith(newest.strftime("%Y-%m-%dT%H:%M:%S")), table
    orders = by_table["orders"]
    assert orders["status"] == "error" and orders["criteria"]["error_after"]["count"] == 3


def test_in_process_dbt_parses_the_project_once_and_reparses_only_what_changed(tmp_path, monkeypatch):
    """The pipeline's dbt (flows/models/dbt_runner.py) starts each run from the last run's parse: a run on
    another day (LIUCUN_AS_OF_DATE) into another run folder re-reads nothing; a changed --vars value
    (a config change) makes dbt parse everything again, as it must. A new warehouse (no state of its
    own) starts from the state the user's cache folder keeps, and dbt still checks it."""
    from pathlib import Path

    from flows.models.dbt_runner import forget_parse, run_dbt_in_process, user_parse_cache
    from flows.settings import Settings

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))  # this test's own user cache
    project, cache = Settings().dbt_project_dir, tmp_path / "cache" / "partial_parse.msgpack"
    db = tmp_path / "run" / "candidate.duckdb"  # the path dbt sees is the same every run

    def ls(day: str, amount: float, warehouse_cache: Path = cache) -> str:
        work = tmp_path / f"work-{day}-{amount}-{warehouse_cache.parent.name}"
        env = {"LIUCUN_DBT_TARGET": "duckdb", "LIUCUN_DUCKDB_PATH": str(db), "LIUCUN_AS_OF_DATE": day}
        summary = run_dbt_in_process(["ls", "--select", "rpt_retention_rate"], project, work, env,
                                     {"min_qualifying_amount": amount}, parse_cache=warehouse_cache)
        assert summary.command == ["dbt", "ls", "--select", "rpt_retention_rate"]
        forget_parse(work)
        return (work / "dbt_logs" / "dbt.log").read_text()

    shared = user_parse_cache(project)
    assert shared.is_relative_to(tmp_path / "user-cache") and not shared.exists()
    first = ls("2025-12-30", 0)
    assert "Unable to do partial parsing because saved manifest not found" in first and cache.exists()
    assert shared.read_bytes() == cache.read_bytes()
    next_day = ls("2025-12-31", 0)
    assert "Unable to do partial parsing" not in next_day
    # another warehouse's first run: its own state is missing, the user's is used, nothing re-read
    new_warehouse = tmp_path / "other-warehouse" / "partial_parse.msgpack"
    assert "Unable to do partial parsing" not in ls("2025-12-31", 0, new_warehouse) and new_warehouse.exists()
    other_vars = ls("2025-12-31", 5)
    assert "Unable to do partial parsing because config vars" in other_vars
    # and the user's state, from a run with other vars, is checked by dbt, not trusted
    third_warehouse = tmp_path / "third-warehouse" / "partial_parse.msgpack"
    assert "Unable to do partial parsing because config vars" in ls("2025-12-31", 0, third_warehouse)
    assert Path(db).exists() is False  # listing never opened the database


def test_a_parse_ahead_is_the_parse_the_builds_use_and_its_failure_is_theirs(tmp_path):
    """The pipeline parses the project in a background thread while the raw gate runs
    (flows/models/dbt_runner.py parse_ahead): the next dbt call in that run folder uses that manifest (no
    second parse), and when that parse fails, the next call raises its error."""
    from flows.models import dbt_runner
    from flows.settings import Settings

    project, db = Settings().dbt_project_dir, tmp_path / "run" / "candidate.duckdb"
    env = {"LIUCUN_DBT_TARGET": "duckdb", "LIUCUN_DUCKDB_PATH": str(db), "LIUCUN_AS_OF_DATE": "2025-12-31"}
    work = tmp_path / "work"
    dbt_runner.parse_ahead(project, work, env, {"min_qualifying_amount": 0}).join()
    parsed = dbt_runner._manifest[work]
    summary = dbt_runner.run_dbt_in_process(["ls", "--select", "rpt_retention_rate"], project, work, env,
                                            {"min_qualifying_amount": 0})
    assert summary.command == ["dbt", "ls", "--select", "rpt_retention_rate"]
    assert dbt_runner._manifest[work] is parsed  # the builds' manifest is the one parsed ahead
    dbt_runner.forget_parse(work)

    broken = tmp_path / "project"
    shutil.copytree(project, broken, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    (broken / "models" / "broken.sql").write_text("select {{ ref('no_such_model') }}\n")
    work = tmp_path / "work-broken"
    dbt_runner.parse_ahead(broken, work, env, {"min_qualifying_amount": 0}).join()
    failed = dbt_runner._parse_failed[work]
    with pytest.raises(dbt_runner.DbtFailed, match="no_such_model") as err:
        dbt_runner.run_dbt_in_process(["ls"], broken, work, env, {"min_qualifying_amount": 0})
    assert err.value is failed  # the parse ahead's own error, not a second parse's
    dbt_runner.forget_parse(work)
