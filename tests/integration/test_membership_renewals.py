"""Membership renewals on a generated sample: the paid periods and renewal decisions recounted from
the staging rows with pandas, the observed Kaplan-Meier curve recomputed, and the sBG fit refitted
on the same counts (flows/models/sbg.py is checked against Fader & Hardie in tests/unit/test_sbg.py)."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from flows.models import sbg
from tests.integration.conftest import END

ZONE = "Asia/Shanghai"  # flows/demo/liucun.yml business_timezone


def test_renewal_counts_curves_and_fits_agree_with_an_independent_count(built):
    db, _ = built
    with duckdb.connect(str(db), read_only=True) as con:
        members = con.execute("select membership_id, plan, started_at, ended_at "
                              "from staging.stg_billing__memberships").df()
        invoices = con.execute("select membership_id, billing_period_start, attempted_at, status "
                               "from staging.stg_billing__invoices").df()
        renewals = con.execute("select * from intermediate.int_membership_renewals").df().set_index("membership_id")
        curve = con.execute("select * from marts.rpt_membership_renewals order by plan, renewals").df()
        fits = con.execute("select * from marts.rpt_sbg_fit").df().set_index("plan")

    def local_date(utc: pd.Series) -> pd.Series:  # the demo's business dates (Asia/Shanghai)
        return pd.to_datetime(utc).dt.tz_localize("UTC").dt.tz_convert(ZONE).dt.date

    paid = invoices[(invoices.status == "paid") & (local_date(invoices.attempted_at) <= END)]
    paid_periods = paid.groupby("membership_id").billing_period_start.nunique().rename("paid")
    members = members[local_date(members.started_at) <= END].set_index("membership_id").join(paid_periods, how="inner")
    ended = local_date(members.ended_at.where(members.ended_at.notna(), pd.Timestamp("2200-01-01")))
    members["cancelled"] = ended <= END
    months = members.plan.map({"monthly": 1, "annual": 12})
    period_end = [(pd.Timestamp(d) + pd.DateOffset(months=int(n))).date()
                  for d, n in zip(local_date(members.started_at), members.paid * months, strict=True)]
    members["observed"] = members.cancelled & (pd.Series(period_end, index=members.index) <= END)
    members["decisions"] = np.where(members.observed, members.paid, members.paid - 1)
    assert sorted(members.index) == sorted(renewals.index) and len(members) > 200
    assert (renewals.renewal_decisions == members.decisions.reindex(renewals.index)).all()
    assert (renewals.is_cancelled == members.cancelled.reindex(renewals.index)).all()
    assert (renewals.is_cancellation_observed == members.observed.reindex(renewals.index)).all()
    # early cancellations of periods still running are held back (the annual plan has many)
    assert (renewals.is_cancelled & ~renewals.is_cancellation_observed).sum() > 10

    for plan, rows in renewals.groupby("plan"):
        mine = curve[(curve.plan == plan) & ~curve.is_projection].set_index("renewals")
        assert mine.members_at_risk[0] == len(rows)
        survival = 1.0
        for t in range(1, int(rows.renewal_decisions.max()) + 1):
            at_risk = int((rows.renewal_decisions >= t).sum())
            cancelled = int(((rows.renewal_decisions == t) & rows.is_cancellation_observed).sum())
            survival *= 1 - cancelled / at_risk
            assert (mine.members_at_risk[t], mine.cancelled[t]) == (at_risk, cancelled), (plan, t)
            assert mine.observed_survival[t] == pytest.approx(survival, rel=1e-12), (plan, t)
        counts = rows.groupby(["renewal_decisions", "is_cancellation_observed"]).size().reset_index(name="n")
        if plan not in fits.index:  # not fitted only without both a cancellation and a renewal
            renewed = (rows.renewal_decisions - rows.is_cancellation_observed.astype(int)).sum()
            assert rows.is_cancellation_observed.sum() == 0 or renewed == 0, plan
            continue
        refit = sbg.fit(counts.renewal_decisions, counts.is_cancellation_observed, weights=counts.n)
        # what the data determine (gamma and delta themselves may run far out along a flat ridge
        # when members churn alike; their ratio, spread and likelihood do not)
        assert fits.mean_churn_probability[plan] == pytest.approx(refit.params.mean_churn_probability, rel=1e-6)
        assert fits.churn_probability_sd[plan] == pytest.approx(sbg.churn_probability_sd(refit.params), abs=1e-4)
        assert fits.log_likelihood[plan] == pytest.approx(refit.log_likelihood, rel=1e-9)
        assert fits.n_memberships[plan] == len(rows)
        fitted = curve[curve.plan == plan].set_index("renewals")
        t = fitted.index.to_numpy()
        assert t.min() == 0 and t.max() >= max(12, 2 * int(rows.renewal_decisions.max()))
        np.testing.assert_allclose(fitted.fitted_survival, sbg.survival(refit.params, t), rtol=1e-5)
        # the projection continues the observed curve, and the fit follows it where observed
        observed = fitted[~fitted.is_projection]
        assert (observed.observed_survival - observed.fitted_survival).abs().max() < 0.1
    assert "monthly" in fits.index  # the demo's monthly plan renews often enough to fit
