"""The Kaplan-Meier survival marts (rpt_survival_curves, rpt_survival_summary), built by dbt on
DuckDB from customers whose answers are known:

- Freireich et al. (1963), the 6-MP leukaemia trial (Blood 21:699), as every survival textbook
  prints it (e.g. Kleinbaum & Klein, *Survival Analysis*, ch. 2): the 6-MP arm's estimate at its
  event times 0.857, 0.807, 0.753, 0.690, 0.627, 0.538, 0.448 and median 23 weeks; the placebo
  arm, where everyone relapses, median 8 weeks. Weeks stand in for days here.
- lifelines' KaplanMeierFitter on the same customers (tests/fixtures/survival: the reference and
  the script that wrote it): every group's risk sets, estimates, 95 % intervals and medians.

The customers go straight into intermediate.int_customer_survival_times (the marts' one input);
the per-customer rules that fill it are hand-worked dbt unit tests."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import duckdb
import pytest

from flows.models.dbt_runner import run_dbt
from flows.settings import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "survival"


def _reference(name: str) -> list[dict[str, str]]:
    with (FIXTURES / name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


@pytest.fixture(scope="module")
def marts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    work = tmp_path_factory.mktemp("survival")
    db = work / "candidate.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create schema intermediate")
        con.execute(f"""create table intermediate.int_customer_survival_times as
            select customer_id, cast(null as date) as first_purchase_date,
                   cast(acquisition_cohort as date) as acquisition_cohort,
                   cast(null as date) as first_churn_date, cast(churned as boolean) as churned,
                   cast(duration_days as bigint) as duration_days, acquisition_channel,
                   first_order_channel, region
            from read_csv('{FIXTURES / "customers.csv"}', all_varchar = true)""")
    env = {"LIUCUN_DBT_TARGET": "duckdb", "LIUCUN_DUCKDB_PATH": str(db)}
    summary = run_dbt(["build", "--select", "rpt_survival_curves", "rpt_survival_summary", "--exclude",
                       "test_type:unit"], Settings().dbt_project_dir, work, env, {"as_of_date": "2024-12-31"})
    assert summary.count("model") == 2 and summary.count("test") >= 6  # the marts' data tests ran, and passed
    with duckdb.connect(str(db), read_only=True) as con:
        curves = {(r[0], r[1], r[2]): r[3:] for r in con.execute(
            "select group_type, group_value, duration_days, customers_at_risk, churned, censored, survival, "
            "survival_ci_low, survival_ci_high, survival_standard_error from marts.rpt_survival_curves").fetchall()}
        cols = [c for (c,) in con.execute("select column_name from duckdb_columns() where schema_name = 'marts' "
                                          "and table_name = 'rpt_survival_summary' order by column_index").fetchall()]
        summaries = {(r[0], r[1]): dict(zip(cols, r, strict=True)) for r in con.execute(
            "select * from marts.rpt_survival_summary").fetchall()}
    return {"curves": curves, "summaries": summaries}


def test_the_6mp_arm_gives_the_published_kaplan_meier_estimates(marts):
    curve = sorted((t, row) for (gt, gv, t), row in marts["curves"].items()
                   if (gt, gv) == ("acquisition_channel", "6mp"))
    at_events = [(t, round(row[3], 3)) for t, row in curve if row[1] > 0]
    assert at_events == [(6, 0.857), (7, 0.807), (10, 0.753), (13, 0.690), (16, 0.627), (22, 0.538), (23, 0.448)]
    assert curve[0] == (0, (21, 0, 0, 1.0, 1.0, 1.0, 0.0))  # day 0: all 21 at risk
    # 6 weeks: 21 at risk, 3 relapse and 1 is censored at the same time (still at risk then)
    assert dict(curve)[6][:3] == (21, 3, 1) and dict(curve)[7][0] == 17
    six_mp, placebo = (marts["summaries"][("acquisition_channel", arm)] for arm in ("6mp", "placebo"))
    assert (six_mp["median_survival_days"], placebo["median_survival_days"]) == (23, 8)
    assert (six_mp["customers"], six_mp["churned"], six_mp["censored"]) == (21, 9, 12)


def test_every_curve_equals_lifelines(marts):
    reference = _reference("lifelines_curves.csv")
    got = marts["curves"]
    assert len(reference) == len(got) and len(got) > 100
    for ref in reference:
        key = (ref["group_type"], ref["group_value"], int(float(ref["duration_days"])))
        at_risk, churned, censored, survival, low, high, _ = got[key]
        assert (at_risk, churned, censored) == (int(ref["customers_at_risk"]), int(ref["churned"]),
                                                int(ref["censored"])), key
        for mine, theirs in ((survival, ref["survival"]), (low, ref["survival_ci_low"]), (high, ref["survival_ci_high"])):
            assert math.isclose(mine, float(theirs), rel_tol=1e-12, abs_tol=1e-14), (key, mine, theirs)


def test_medians_and_their_intervals_equal_lifelines(marts):
    reference = _reference("lifelines_medians.csv")
    summaries = marts["summaries"]
    assert len(reference) == len(summaries) == 11

    def days(value: str) -> int | None:  # lifelines: inf when the curve never reaches one half
        return None if value == "inf" else int(float(value))

    for ref in reference:
        s = summaries[(ref["group_type"], ref["group_value"])]
        assert (s["median_survival_days"], s["median_ci_low_days"], s["median_ci_high_days"]) == (
            days(ref["median"]), days(ref["median_ci_low"]), days(ref["median_ci_high"])), ref
    # S(2) = 1/2 exactly (1 - 1/4)(1 - 1/3): the median is 2, though the mart sums logarithms
    assert summaries[("acquisition_channel", "half")]["median_survival_days"] == 2


def test_the_summary_counts_and_horizons(marts):
    summaries = marts["summaries"]
    with (FIXTURES / "customers.csv").open(encoding="utf-8") as fh:
        customers = list(csv.DictReader(fh))
    for column in ("acquisition_channel", "region"):
        for value in {c[column] for c in customers}:
            rows = [c for c in customers if c[column] == value]
            s = summaries[(column, value)]
            assert s["customers"] == len(rows) and s["churned"] == sum(c["churned"] == "true" for c in rows)
            assert s["longest_follow_up_days"] == max(int(c["duration_days"]) for c in rows)
    assert summaries[("all", "all")]["customers"] == len(customers) == 50
    # everyone on placebo relapsed by week 23: S is known to be 0 at 90 days and beyond
    placebo = summaries[("acquisition_channel", "placebo")]
    assert (placebo["survival_90d"], placebo["survival_365d"]) == (0.0, 0.0)
    # the 6-MP arm is followed for 35 weeks with survivors: S(90) is not observed, so not made up
    assert summaries[("acquisition_channel", "6mp")]["survival_90d"] is None
    # the placebo curve ends at 0 with an interval of (0, 0) and no standard error
    end = marts["curves"][("acquisition_channel", "placebo", 23)]
    assert end[:6] == (1, 1, 0, 0.0, 0.0, 0.0) and end[6] is None
