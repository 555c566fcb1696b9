"""The same dbt project builds on Apache Spark (the test run's local SparkSession, dbt-spark's
session method) with every unit test passing, and publishes the same marts as DuckDB, row for row.
It builds into databases of its own ($LIUCUN_SCHEMA_PREFIX, as a Spark candidate does), reading
its sources from them too. The data tests are left out here: they run on Spark in every pipeline
run of tests/e2e/test_spark_engine.py (a failing one fails that run), and each costs Spark a
query's fixed seconds.

Floating-point columns are compared with a relative tolerance of 1e-9 (sums of doubles are added
in a different order by the two engines); every other value (counts, keys, dates, timestamps,
decimals, text) must be equal."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.models.dbt_runner import run_dbt_in_process
from flows.settings import Settings
from tests.support.spark import copy_raw_to_spark

pytestmark = pytest.mark.spark

REL_TOL = 1e-9


def _key(row: tuple) -> tuple:
    """Sort key: floats rounded, so rows whose doubles differ in the last bits sort alike."""
    return tuple((0, "") if v is None else (1, repr(round(v, 6) if isinstance(v, float) else v)) for v in row)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12)
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a == b
    return a == b


def _differences(duck_rows: list[tuple], spark_rows: list[tuple]) -> list[str]:
    if len(duck_rows) != len(spark_rows):
        return [f"{len(duck_rows)} rows on DuckDB, {len(spark_rows)} on Spark"]
    out = []
    for d, s in zip(sorted(duck_rows, key=_key), sorted(spark_rows, key=_key), strict=True):
        if len(d) != len(s) or not all(_same(x, y) for x, y in zip(d, s, strict=True)):
            out.append(f"DuckDB {d} != Spark {s}")
    return out


def test_the_row_comparison_tells_a_different_value_from_float_noise():
    base = [("a", 1, 0.1 + 0.2, Decimal("1.10")), ("b", 2, None, Decimal("0.00"))]
    assert _differences(base, [("b", 2, None, Decimal("0.00")), ("a", 1, 0.3, Decimal("1.10"))]) == []
    assert _differences(base, [("a", 1, 0.3001, Decimal("1.10")), ("b", 2, None, Decimal("0.00"))])
    assert _differences(base, [("a", 1, 0.3, Decimal("1.11")), ("b", 2, None, Decimal("0.00"))])
    assert _differences(base, [("a", 1, 0.3, Decimal("1.10"))])


def test_dbt_project_builds_on_spark_with_identical_marts(built, spark, tmp_path: Path):
    db, _ = built
    prefix = "portability_"
    counts = copy_raw_to_spark(db, spark, tmp_path / "raw", prefix)
    assert counts["orders"] > 0 and counts["ml.customer_bgnbd_scores"] > 0
    env = {"LIUCUN_DBT_TARGET": "spark", "LIUCUN_SCHEMA_PREFIX": prefix}
    summary = run_dbt_in_process(["build", "--exclude", "test_type:data"], Settings().dbt_project_dir,
                                 tmp_path / "dbt", env, {"as_of_date": "2025-12-31"})
    failed = [(r["unique_id"], r["status"], r.get("message")) for r in summary.results
              if r["status"] not in ("success", "pass")
              and not (r["unique_id"].startswith("exposure.") and r["status"] == "no-op")]
    assert not failed, failed
    # models, seeds and the hand-worked unit tests ran there
    assert summary.count("model") >= 40 and summary.count("test") == 0, summary.results[:3]
    assert summary.count("unit_test") >= 30
    assert summary.count("seed") == 1

    with duckdb.connect(str(db), read_only=True) as con:
        marts = [t for (t,) in con.execute("select table_name from duckdb_tables() where schema_name = 'marts' "
                                          "order by table_name").fetchall()]
        assert len(marts) >= 15
        spark_marts = {r.tableName for r in spark.sql(f"show tables in {prefix}marts").collect()}
        assert set(marts) <= spark_marts, set(marts) - spark_marts
        # nothing was built outside the prefix (the unprefixed names are what readers would see)
        assert not {"raw", "staging", "intermediate", "marts", "incremental", "ml"} & {
            r.namespace for r in spark.sql("show databases").collect()}
        differing = {}
        for t in marts:
            cols = [c for (c,) in con.execute("select column_name from duckdb_columns() where schema_name = 'marts' "
                                              "and table_name = ? order by column_index", [t]).fetchall()]
            duck_rows = con.execute(f'select {", ".join(chr(34) + c + chr(34) for c in cols)} from marts."{t}"').fetchall()
            spark_rows = [tuple(r) for r in spark.sql(
                f"select {', '.join('`' + c + '`' for c in cols)} from {prefix}marts.`{t}`").collect()]
            if t in ("dim_customers", "fct_orders", "rpt_retention_rate", "rpt_cohort_retention"):
                assert len(duck_rows) > 10, t
            diff = _differences(duck_rows, spark_rows)
            if diff:
                differing[t] = diff[:3]
    assert not differing, differing
