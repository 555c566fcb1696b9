"""sBG renewal model (flows/models/sbg.py) against Fader & Hardie (2007) and first principles."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from flows.models.sbg import (
    SbgParams,
    fit,
    log_likelihood,
    log_param_covariance,
    log_probability_churn_at,
    retention_rate,
    survival,
    survival_interval,
)

COHORTS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "sbg_cohorts.csv"
# Fader & Hardie (2007), "How to project customer retention": % of each 1,000-member cohort still
# a member at the start of years 1..8, and the sBG fit to those seven renewals
PUBLISHED_SURVIVAL = {"regular": [100, 63.1, 46.8, 38.2, 32.6, 28.9, 26.2, 24.1],
                      "highend": [100, 86.9, 74.3, 65.3, 59.3, 55.1, 51.7, 49.1]}
PUBLISHED_FIT = {"regular": (0.704, 1.182), "highend": (0.668, 3.806)}


@pytest.fixture(scope="module")
def cohorts() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """cohort -> (periods observed, churned), one row per member. In the file (pymc-marketing's
    layout) `recency` is the year a member cancelled at the end of, or T = 8 for the members still
    there after seven renewals."""
    if not COHORTS.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{COHORTS} is missing (required in CI)")
        pytest.skip(f"{COHORTS} is not available locally")
    out = {}
    with open(COHORTS, newline="") as f:
        rows = list(csv.DictReader(f))
    for name in PUBLISHED_SURVIVAL:
        recency = np.array([int(r["recency"]) for r in rows if r["cohort"] == name])
        T = np.array([int(r["T"]) for r in rows if r["cohort"] == name])
        churned = recency < T
        out[name] = (np.where(churned, recency, T - 1), churned)
    return out


@pytest.mark.parametrize("cohort", ["regular", "highend"])
def test_the_published_cohorts_and_fits(cohorts, cohort: str):
    periods, churned = cohorts[cohort]
    assert len(periods) == 1000
    # still a member after t renewals: observed beyond period t, or through it without cancelling
    observed = [100 * float(np.mean((periods > t) | ((periods == t) & ~churned))) for t in range(8)]
    assert [round(v, 1) for v in observed] == PUBLISHED_SURVIVAL[cohort]
    result = fit(periods, churned)
    assert result.converged and result.n_members == 1000
    assert (round(result.params.gamma, 3), round(result.params.delta, 3)) == PUBLISHED_FIT[cohort]
    # the fitted curve follows the observed one within 2 points over the fitted years (the paper's figure)
    fitted = 100 * survival(result.params, np.arange(8))
    assert np.max(np.abs(fitted - observed)) < 2.0


@pytest.mark.parametrize("cohort", ["regular", "highend"])
def test_counts_fit_as_members_and_the_fit_is_the_maximum(cohorts, cohort: str):
    periods, churned = cohorts[cohort]
    best = fit(periods, churned)
    keys, counts = np.unique(np.column_stack([periods, churned]), axis=0, return_counts=True)
    grouped = fit(keys[:, 0], keys[:, 1].astype(bool), weights=counts)
    assert grouped.params.gamma == pytest.approx(best.params.gamma, rel=1e-6)
    assert grouped.log_likelihood == pytest.approx(best.log_likelihood, rel=1e-10)
    ll = log_likelihood(best.params, periods, churned)
    for dg, dd in ((1.01, 1), (0.99, 1), (1, 1.01), (1, 0.99)):
        assert log_likelihood(SbgParams(best.params.gamma * dg, best.params.delta * dd), periods, churned) < ll


def test_uniform_churn_probabilities_give_one_over_t_plus_one():
    """theta ~ Beta(1, 1) = Uniform(0, 1): S(t) = E[(1 - theta)^t] = 1 / (t + 1),
    P(T = t) = E[theta (1 - theta)^(t-1)] = 1 / (t (t + 1)), r(t) = t / (t + 1)."""
    prm = SbgParams(1.0, 1.0)
    t = np.arange(1, 30)
    np.testing.assert_allclose(survival(prm, t), 1 / (t + 1), rtol=1e-12)
    np.testing.assert_allclose(np.exp(log_probability_churn_at(prm, t)), 1 / (t * (t + 1)), rtol=1e-12)
    np.testing.assert_allclose(retention_rate(prm, t), t / (t + 1), rtol=1e-12)
    assert survival(prm, 0) == pytest.approx(1.0)


def test_the_beta_function_forms_agree_with_the_papers_recursion():
    """Fader & Hardie's spreadsheet recursion: P(1) = g/(g+d), P(t) = P(t-1) (d+t-2)/(g+d+t-1),
    S(t) = S(t-1) - P(t)."""
    g, d = 0.704, 1.182
    p = [g / (g + d)]
    for t in range(2, 13):
        p.append(p[-1] * (d + t - 2) / (g + d + t - 1))
    s = 1 - np.cumsum(p)
    t = np.arange(1, 13)
    np.testing.assert_allclose(np.exp(log_probability_churn_at(SbgParams(g, d), t)), p, rtol=1e-12)
    np.testing.assert_allclose(survival(SbgParams(g, d), t), s, rtol=1e-10)
    np.testing.assert_allclose(retention_rate(SbgParams(g, d), t[1:]), s[1:] / s[:-1], rtol=1e-10)


def test_the_survival_interval_holds_the_curve_and_narrows_with_more_members(cohorts):
    periods, churned = cohorts["regular"]
    best = fit(periods, churned)
    t = np.arange(0, 13)
    curve = survival(best.params, t)
    low, high = survival_interval(best.params, log_param_covariance(best.params, periods, churned), t)
    assert low[0] == high[0] == 1.0
    assert np.all(low[1:] < curve[1:]) and np.all(curve[1:] < high[1:])
    tenfold = np.tile(periods, 10), np.tile(churned, 10)
    low10, high10 = survival_interval(best.params, log_param_covariance(best.params, *tenfold), t)
    # ten times the members: about 1/sqrt(10) of the width
    ratio = (high10[1:] - low10[1:]) / (high[1:] - low[1:])
    np.testing.assert_allclose(ratio, 1 / np.sqrt(10), rtol=0.02)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="one cancellation and one renewal"):
        fit([1, 1], [False, False])  # nobody cancelled
    with pytest.raises(ValueError, match="one cancellation and one renewal"):
        fit([1, 1], [True, True])  # everyone cancelled after their first period: no renewal
    with pytest.raises(ValueError, match="periods >= 1"):
        fit([0, 2], [True, False])


def test_members_who_churn_alike_fit_the_geometric_model_without_losing_digits():
    """1,000 members each churning with probability 0.2 per period, observed for three renewals at the
    expected counts (200, 160, 128 cancel; 512 still members): no spread between members, so the
    fit runs towards gamma, delta -> infinity at gamma / (gamma + delta) = 0.2. The curve must still
    be 0.8^t — smooth and decreasing — where the beta-function form loses every digit there."""
    from flows.models.sbg import churn_probability_sd

    periods = np.array([1, 2, 3, 3])
    churned = np.array([True, True, True, False])
    counts = np.array([200, 160, 128, 512])
    result = fit(periods, churned, weights=counts)
    assert result.params.gamma + result.params.delta > 1e4
    assert result.params.mean_churn_probability == pytest.approx(0.2, abs=1e-4)
    assert churn_probability_sd(result.params) < 0.01
    t = np.arange(0, 25)
    np.testing.assert_allclose(survival(result.params, t), 0.8 ** t, rtol=1e-3)
    assert np.all(np.diff(survival(result.params, t)) < 0)
    # and the same for parameters far out on that ridge
    far = SbgParams(0.2e12, 0.8e12)
    np.testing.assert_allclose(survival(far, t), 0.8 ** t, rtol=1e-9)
    assert churn_probability_sd(SbgParams(1.0, 1.0)) == pytest.approx(np.sqrt(1 / 12))  # uniform theta
