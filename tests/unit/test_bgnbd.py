"""BG/NBD (flows/models/bgnbd.py) against the published CDNOW fit and an independent integral."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from flows.models.bgnbd import (
    BgNbdParams,
    expected_purchases,
    expected_purchases_new_customer,
    fit,
    log_likelihood,
    p_alive,
)

CDNOW = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "cdnow_customers_summary.csv"
# Fader, Hardie & Lee (2005), CDNOW sample of 2,357 customers, weeks
PUBLISHED = BgNbdParams(r=0.2426, alpha=4.4135, a=0.7929, b=2.4258)
PUBLISHED_LL = -9582.4


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    if not CDNOW.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CDNOW} is missing (required in CI)")
        pytest.skip(f"{CDNOW} is not available locally")
    return pd.read_csv(CDNOW)


def _sig3(v: float) -> float:
    return float(f"{v:.3g}")


def test_cdnow_fit_reproduces_the_published_parameters(cdnow: pd.DataFrame):
    assert len(cdnow) == 2357
    result = fit(cdnow.frequency, cdnow.recency, cdnow["T"])
    assert result.converged and result.n_customers == 2357
    got = result.params
    for name in ("r", "alpha", "a", "b"):
        mine, published = getattr(got, name), getattr(PUBLISHED, name)
        assert _sig3(mine) == _sig3(published), (name, mine, published)
        assert abs(mine / published - 1) < 5e-4, (name, mine, published)
    assert abs(result.log_likelihood - PUBLISHED_LL) < 0.05
    # the maximum: the published parameters (rounded) are not better
    assert result.log_likelihood >= log_likelihood(PUBLISHED, cdnow.frequency, cdnow.recency, cdnow["T"])


def test_p_alive_is_one_without_repeat_purchases_and_in_range():
    assert p_alive(PUBLISHED, [0, 0], [0, 0], [1.0, 50.0]).tolist() == [1.0, 1.0]
    pa = p_alive(PUBLISHED, [1, 2, 5, 20], [1.0, 30.43, 10.0, 38.0], [38.86] * 4)
    assert ((pa > 0) & (pa < 1)).all()
    # the hand-checked customer: 1 / (1 + a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))
    assert p_alive(PUBLISHED, [2], [30.43], [38.86])[0] == pytest.approx(0.72661, abs=1e-5)


def _by_integration(p: BgNbdParams, t: float, x: int, t_x: float, T: float) -> float:
    """E[X(t)] = P(alive) E[(1 - exp(-lambda p t)) / p] over the posterior lambda ~ Gamma(r+x,
    alpha+T), p ~ Beta(a, b+x) of a customer alive at T: no hypergeometric function."""
    alive = p_alive(p, [x], [t_x], [T])[0]

    def integrand(q: float) -> float:
        gone = ((p.alpha + T) / (p.alpha + T + q * t)) ** (p.r + x)
        return (1 - gone) / q * stats.beta.pdf(q, p.a, p.b + x)

    return alive * integrate.quad(integrand, 0, 1, limit=200)[0]


@pytest.mark.parametrize(("t", "x", "t_x", "T"), [
    (39, 2, 30.43, 38.86), (39, 0, 0.0, 38.86), (90, 10, 30.0, 38.0), (90, 50, 700.0, 720.0),
    (90, 200, 700.0, 730.0), (90, 1, 5.0, 700.0),
])
def test_expected_purchases_match_an_independent_integral(t: float, x: int, t_x: float, T: float):
    got = expected_purchases(PUBLISHED, t, [x], [t_x], [T])[0]
    assert got == pytest.approx(_by_integration(PUBLISHED, t, x, t_x, T), rel=1e-7)


def test_the_lifetimes_example_customer():
    # x=2, t_x=30.43, T=38.86 weeks, next 39 weeks: about 1.226 purchases (lifetimes' example)
    assert expected_purchases(PUBLISHED, 39, [2], [30.43], [38.86])[0] == pytest.approx(1.226, abs=5e-4)


def test_new_customer_expectation_is_the_limit_of_the_conditional_one():
    # a customer with x = 0 and T -> 0 is a new customer
    new = expected_purchases_new_customer(PUBLISHED, np.array([10.0, 52.0]))
    cond = expected_purchases(PUBLISHED, 10.0, [0], [0.0], [1e-9])[0]
    assert cond == pytest.approx(new[0], rel=1e-6)
    assert new[1] > new[0] > 0


def test_fit_recovers_simulated_parameters():
    rng = np.random.default_rng(5)
    true = BgNbdParams(r=0.8, alpha=20.0, a=0.9, b=3.0)
    n, T = 8000, rng.uniform(100, 700, 8000)
    lam = rng.gamma(true.r, 1 / true.alpha, n)
    p = rng.beta(true.a, true.b, n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t, k = 0.0, 0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T[i]:
                break
            k, t_x[i] = k + 1, t
            if rng.random() < p[i]:
                break
        x[i] = k
    got = fit(x, t_x, T).params
    assert got.r == pytest.approx(true.r, rel=0.15) and got.alpha == pytest.approx(true.alpha, rel=0.2)
    assert got.a == pytest.approx(true.a, rel=0.3) and got.b == pytest.approx(true.b, rel=0.35)


def test_degenerate_data_is_refused():
    with pytest.raises(ValueError):
        fit([0, 0], [0, 0], [10, 20])
    with pytest.raises(ValueError):
        p_alive(PUBLISHED, [1], [5.0], [4.0])


# Standard errors of the CDNOW fit as published in the lifetimes documentation (Quickstart,
# BetaGeoFitter(...).fit(frequency, recency, T).summary on the same 2,357-customer summary).
PUBLISHED_SE = BgNbdParams(r=0.0126, alpha=0.378, a=0.186, b=0.705)


def test_cdnow_standard_errors_match_the_published_ones(cdnow: pd.DataFrame):
    from flows.models.bgnbd import log_param_covariance, standard_errors

    result = fit(cdnow.frequency, cdnow.recency, cdnow["T"])
    se = standard_errors(result.params, log_param_covariance(result.params, cdnow.frequency, cdnow.recency,
                                                             cdnow["T"]))
    for name in ("r", "alpha", "a", "b"):
        mine, published = getattr(se, name), getattr(PUBLISHED_SE, name)
        assert _sig3(mine) == _sig3(published), (name, mine, published)


def test_delta_intervals_agree_with_monte_carlo_over_the_parameters(cdnow: pd.DataFrame):
    """The delta-method intervals of P(alive) and expected purchases against an independent
    computation: 4,000 parameter vectors drawn from the MLE's normal approximation, the quantity
    evaluated for each, and its 2.5 / 97.5 % quantiles (on CDNOW customers with repeat purchases)."""
    from flows.models.bgnbd import (
        expected_purchases_interval,
        log_param_covariance,
        p_alive_interval,
    )

    result = fit(cdnow.frequency, cdnow.recency, cdnow["T"])
    prm = result.params
    some = cdnow[cdnow.frequency > 0].sample(25, random_state=3)
    x, t_x, T = some.frequency.to_numpy(float), some.recency.to_numpy(float), some["T"].to_numpy(float)
    cov = log_param_covariance(prm, cdnow.frequency, cdnow.recency, cdnow["T"])
    lo, hi = p_alive_interval(prm, cov, x, t_x, T)
    elo, ehi = expected_purchases_interval(prm, cov, 39.0, x, t_x, T)
    pa, ep = p_alive(prm, x, t_x, T), expected_purchases(prm, 39.0, x, t_x, T)
    assert ((lo < pa) & (pa < hi)).all() and ((elo < ep) & (ep < ehi)).all()

    rng = np.random.default_rng(7)
    theta = np.log([prm.r, prm.alpha, prm.a, prm.b])
    draws = rng.multivariate_normal(theta, cov, size=4000)
    sims_pa = np.array([p_alive(BgNbdParams(*np.exp(d)), x, t_x, T) for d in draws])
    sims_ep = np.array([expected_purchases(BgNbdParams(*np.exp(d)), 39.0, x, t_x, T) for d in draws])
    mc_lo, mc_hi = np.quantile(sims_pa, [0.025, 0.975], axis=0)
    assert np.max(np.abs(mc_lo - lo)) < 0.02 and np.max(np.abs(mc_hi - hi)) < 0.02
    emc_lo, emc_hi = np.quantile(sims_ep, [0.025, 0.975], axis=0)
    assert np.max(np.abs(emc_lo / elo - 1)) < 0.05 and np.max(np.abs(emc_hi / ehi - 1)) < 0.05
    # the intervals are not degenerate: they have real width
    assert np.median(hi - lo) > 0.01 and np.median(ehi / elo) > 1.05


def test_customers_without_repeat_purchases_are_certainly_alive():
    from flows.models.bgnbd import p_alive_interval

    cov = np.diag([0.01, 0.01, 0.05, 0.1])
    lo, hi = p_alive_interval(PUBLISHED, cov, [0, 3], [0.0, 20.0], [30.0, 30.0])
    assert lo[0] == hi[0] == 1.0 and 0 < lo[1] < hi[1] < 1
