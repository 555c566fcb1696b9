"""Cohort variants (PostHog's retention insight) on a generated sample, recomputed with pandas from
the activity rows the mart reads: first-time and recurring cohorts, retention in period k, "on or
after" (cumulative) retention, retention relative to the previous period, and the simple and
cohort-size-weighted means. PostHog's own test cases are hand-worked dbt unit tests
(models/marts/retention/_retention__models.yml)."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.integration.conftest import END

# pandas period frequencies of the published grains (weeks start on Monday: periods ending Sunday),
# and each grain's horizon (var cohort_horizons' defaults: the last period number shown)
FREQ = {"day": "D", "week": "W-SUN", "month": "M"}
HORIZON = {"day": 30, "week": 52, "month": None}


@pytest.mark.parametrize("grain", ["day", "week", "month"])
def test_cohort_variants_match_an_independent_calculation(built, grain):
    """Each grain's cohorts, from the qualifying orders bucketed by pandas (not the models' periods)."""
    db, _ = built
    with duckdb.connect(str(db), read_only=True) as con:
        orders = con.execute("select customer_id, order_date from marts.fct_orders "
                             "where customer_id is not null and net_amount > 0").df()
        mart = con.execute("select * from marts.rpt_cohort_retention where segment_type = 'all' "
                           "and period_grain = ?", [grain]).df()
        means = con.execute("select * from marts.rpt_cohort_retention_means where segment_type = 'all' "
                            "and period_grain = ?", [grain]).df()
    freq, horizon = FREQ[grain], HORIZON[grain]
    periods = pd.to_datetime(orders.order_date).dt.to_period(freq)
    first = periods.min()
    last_period = pd.Period(END, freq)
    last = last_period.ordinal - first.ordinal
    activity = orders.assign(i=[p.ordinal - first.ordinal for p in periods])
    index = {(first + i).start_time: i for i in range(last + 1)}

    def complete(i: int) -> bool:
        return (first + i + 1).start_time.date() <= END + timedelta(days=1)

    returns = activity.groupby("customer_id").i.apply(set).to_dict()  # return activity: any activity
    starts = activity.groupby("customer_id").i.apply(lambda x: sorted(set(x))).to_dict()  # purchases
    cohorts = {"first_time": [(c, s[0]) for c, s in starts.items()],
               "recurring": [(c, p) for c, s in starts.items() for p in s]}
    assert set(mart.cohort_type) == {"first_time", "recurring"}
    assert set(mart.start_activity) == {"purchase"} and set(mart.return_activity) == {"activity"}
    by_cohort: dict[str, dict[int, list[str]]] = {}
    for kind, members in cohorts.items():
        by_cohort[kind] = {}
        for c, p in members:
            by_cohort[kind].setdefault(p, []).append(c)
    for kind in cohorts:
        rows = []
        for p, group in sorted(by_cohort[kind].items()):
            furthest = {c: max(k - p for k in returns[c] if k >= p) for c in group}
            previous = None
            for k in range(0, min(last - p, horizon if horizon is not None else last) + 1):
                active = len(group) if k == 0 else sum(1 for c in group if p + k in returns[c])
                cumulative = len(group) if k == 0 else sum(1 for c in group if furthest[c] >= k)
                rows.append({"cohort": p, "k": k, "size": len(group), "active": active, "cumulative": cumulative,
                             "vs_previous": np.nan if not previous else active / previous,
                             "complete": complete(p + k)})
                previous = active
        mine = pd.DataFrame(rows).sort_values(["cohort", "k"]).reset_index(drop=True)
        got = mart[mart.cohort_type == kind].assign(cohort=lambda d: d.cohort_period_start.map(index))
        got = got.sort_values(["cohort", "period_number"]).reset_index(drop=True)
        assert len(mine) == len(got) > 20, kind
        assert (got.period_number <= (horizon if horizon is not None else last)).all()
        assert (got.period_number.to_numpy() == mine.k.to_numpy()).all()
        assert (got.cohort_size.to_numpy() == mine["size"].to_numpy()).all(), kind
        assert (got.active_customers.to_numpy() == mine.active.to_numpy()).all(), kind
        assert (got.active_customers_cumulative.to_numpy() == mine.cumulative.to_numpy()).all(), kind
        np.testing.assert_allclose(got.retention_rate_vs_previous.to_numpy(dtype=float),
                                   mine.vs_previous.to_numpy(dtype=float), rtol=1e-12)
        # the means over complete cells
        cells = mine[mine.complete]
        cells = cells.assign(rate=cells.active / cells["size"])
        expected = cells.groupby("k").agg(cohorts=("rate", "size"), simple=("rate", "mean"),
                                          active=("active", "sum"), customers=("size", "sum"))
        m = means[means.cohort_type == kind].set_index("period_number").sort_index()
        assert list(m.index) == list(expected.index)
        assert (m.cohorts == expected.cohorts).all() and (m.customers == expected.customers).all()
        np.testing.assert_allclose(m.retention_rate_simple_mean, expected.simple, rtol=1e-12)
        np.testing.assert_allclose(m.retention_rate_weighted_mean, expected.active / expected.customers, rtol=1e-12)
    # a recurring customer is in several cohorts; the first-time cohorts hold each customer once
    ft = mart[(mart.cohort_type == "first_time") & (mart.period_number == 0)].cohort_size.sum()
    rec = mart[(mart.cohort_type == "recurring") & (mart.period_number == 0)].cohort_size.sum()
    assert ft == len(starts) < rec
    # cumulative retention is never below retention in the same period, and falls with k
    assert (mart.active_customers_cumulative >= mart.active_customers).all()
    assert pytest.approx(1.0) == mart[mart.period_number == 0].retention_rate_cumulative.min()
