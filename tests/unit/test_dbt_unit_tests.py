"""The dbt project's macros compiled by dbt and checked against independent answers. (The dbt unit
tests themselves, hand-worked given/expect rows such as the textbook CRR example, run in every
integration build: tests/integration/test_dbt_build.py, and on PostgreSQL and Spark.)"""

from __future__ import annotations

from pathlib import Path

import duckdb

from flows.models.dbt_runner import run_dbt
from flows.settings import Settings


def test_normal_quantile_macro_matches_the_inverse_normal(tmp_path: Path):
    """The portable SQL quantile (Acklam's approximation) behind the simultaneous recall intervals,
    compiled by dbt and run on DuckDB, against Python's exact inverse normal in all three regions."""
    from statistics import NormalDist

    probs = [1e-6, 0.001, 0.005, 0.02, 0.02425, 0.1, 0.5, 0.8, 0.975, 0.97575, 0.99, 0.995, 0.999, 1 - 0.05 / 10]
    select = ", ".join(f"{{{{ liucun.normal_quantile({p!r}) }}}} as q{i}" for i, p in enumerate(probs))
    env = {"LIUCUN_DBT_TARGET": "duckdb", "LIUCUN_DUCKDB_PATH": str(tmp_path / "q.duckdb")}
    summary = run_dbt(["compile", "--inline", f"select {select}, {{{{ liucun.normal_quantile(1) }}}} as edge"],
                      Settings().dbt_project_dir, tmp_path, env, {"as_of_date": "2024-03-31"})
    sql = summary.results[0]["compiled_code"]
    with duckdb.connect() as con:
        *got, edge = con.execute(sql).fetchone()
    for p, z in zip(probs, got, strict=True):
        assert abs(z - NormalDist().inv_cdf(p)) < 1e-8 * max(1.0, abs(z)), (p, z)
    assert edge is None  # outside (0, 1): no quantile, not an error


def test_retention_vars_are_checked_when_the_project_compiles(tmp_path: Path):
    """A segment type int_customer_segments does not have, bases without active_in_period (which
    the growth accounting, the headline and the marts gate read), survival curves by value tier,
    published grains without the customer-level marts' grain or an unknown one, or a cohort horizon
    below 1 stop dbt with a message naming the var, not with an empty or wrong mart."""
    import pytest

    from flows.models.dbt_runner import DbtFailed

    env = {"LIUCUN_DBT_TARGET": "duckdb", "LIUCUN_DUCKDB_PATH": str(tmp_path / "v.duckdb")}
    cases = (("int_retention_period_counts", {"retention_segment_types": ["region", "colour"]},
              "var('retention_segment_types'): unknown segment type colour"),
             ("int_retention_period_counts", {"retention_base_definitions": ["active_window"]},
              "var('retention_base_definitions') must include active_in_period"),
             # survival curves by lifetime revenue would read the outcome into the groups
             ("rpt_survival_curves", {"survival_group_types": ["region", "value_tier"]},
              "var('survival_group_types'): value_tier cannot group survival curves"),
             # the customer-level marts are built at period_grain: it must be published
             ("int_periods", {"period_grains": ["day", "week"]},
              "var('period_grains') ['day', 'week'] must include var('period_grain') (month)"),
             ("int_periods", {"period_grains": ["month", "quarter"]},
              "var('period_grains') may list day, week and month, not quarter"),
             ("rpt_cohort_retention", {"cohort_horizons": {"day": 0}},
              "var('cohort_horizons') maps day, week and month to a period number of 1 or more"))
    for model, dbt_vars, message in cases:
        with pytest.raises(DbtFailed) as failed:
            run_dbt(["compile", "--select", model], Settings().dbt_project_dir, tmp_path,
                    env, {"as_of_date": "2024-03-31", **dbt_vars})
        assert message in " ".join(str(failed.value).split()), str(failed.value)


def test_business_date_range_filter_keeps_exactly_the_rows_of_its_dates(tmp_path: Path):
    """business_date_between and business_date_at_least (the stored UTC timestamp compared where it
    decides, the exact business-date test near the bounds) select the same rows as the
    business-date test alone, in zones whose midnight falls in a daylight-saving change (Santiago,
    São Paulo) and where a whole day was skipped (Apia, 2011)."""
    env = {"LIUCUN_DBT_TARGET": "duckdb", "LIUCUN_DUCKDB_PATH": str(tmp_path / "t.duckdb")}
    days = ["2011-12-29", "2011-12-30", "2011-12-31", "2018-05-12", "2018-05-13", "2018-11-03", "2018-11-04"]
    pairs = [(a, b) for a in days for b in days if a <= b and a[:4] == b[:4]]
    filters = ", ".join(
        f"count(*) filter (where {{{{ liucun.business_date_between('t', \"date '{a}'\", \"date '{b}'\") }}}})"
        f", count(*) filter (where {{{{ liucun.to_business_date('t') }}}} between date '{a}' and date '{b}')"
        for a, b in pairs) + "".join(
        f", count(*) filter (where {{{{ liucun.business_date_at_least('t', \"date '{d}'\") }}}})"
        f", count(*) filter (where {{{{ liucun.to_business_date('t') }}}} >= date '{d}')"
        for d in days)
    # compiled once (each compile with another var parses the whole project again): the zone is in
    # the SQL only as the literal var('business_timezone') gives, so each zone runs that SQL with
    # its own name there
    compiled = run_dbt(["compile", "--inline", f"select {filters} from ts"], Settings().dbt_project_dir, tmp_path,
                       env, {"as_of_date": "2024-03-31", "business_timezone": "Europe/Lisbon"}).results[0]["compiled_code"]
    assert compiled.count("'Europe/Lisbon'") >= 2 * len(pairs) + len(days)
    for zone in ("America/Santiago", "America/Sao_Paulo", "Pacific/Apia", "Asia/Shanghai"):
        with duckdb.connect() as con:
            con.execute("create table ts as select range as t from range(timestamp '2011-12-26', "
                        "timestamp '2012-01-03', interval 7 minute) union all select range from "
                        "range(timestamp '2018-05-09', timestamp '2018-11-08', interval 7 minute)")
            counts = con.execute(compiled.replace("'Europe/Lisbon'", f"'{zone}'")).fetchone()
        fast, exact = counts[0::2], counts[1::2]
        assert fast == exact and sum(exact) > 0, (zone, fast, exact)
