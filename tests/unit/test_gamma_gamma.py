"""Gamma–Gamma spend model (flows/models/gamma_gamma.py) against the published CDNOW fit and
independent integrals."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from flows.models.gamma_gamma import (
    GammaGammaParams,
    expected_purchase_value,
    fit,
    log_likelihood,
    spend_frequency_correlation,
)

CDNOW = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "cdnow_sample.txt.gz"
CALIBRATION_END = pd.Timestamp("1997-09-30")


@pytest.fixture(scope="module")
def cdnow_repeat_spend() -> pd.DataFrame:
    """Per CDNOW sample customer with a repeat purchase in the calibration period (to 1997-09-30):
    x = repeat purchase days, m_x = their mean dollars (a day's purchases summed; the first purchase
    day left out), as lifetimes' summary_data_from_transaction_data and Fader & Hardie's note do."""
    if not CDNOW.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CDNOW} is missing (required in CI)")
        pytest.skip(f"{CDNOW} is not available locally")
    with gzip.open(CDNOW, "rt") as f:
        rows = [line.split() for line in f if line.strip()]
    df = pd.DataFrame(rows, columns=["master_id", "customer", "date", "cds", "dollars"])
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    df["dollars"] = df["dollars"].astype(float)
    days = (df[df["date"] <= CALIBRATION_END].groupby(["customer", "date"], as_index=False)["dollars"].sum()
            .sort_values(["customer", "date"]))
    days["nth"] = days.groupby("customer").cumcount()
    return days[days["nth"] > 0].groupby("customer")["dollars"].agg(x="count", m_x="mean")


def test_cdnow_fit_reproduces_the_published_parameters(cdnow_repeat_spend: pd.DataFrame):
    # Fader & Hardie (2013) "The Gamma-Gamma model of monetary value" and the lifetimes docs: 946
    # customers with repeat purchases; p = 6.25, q = 3.74, gamma (lifetimes' v) = 15.44
    assert len(cdnow_repeat_spend) == 946
    result = fit(cdnow_repeat_spend["x"], cdnow_repeat_spend["m_x"])
    assert result.converged and result.n_customers == 946
    assert round(result.params.p, 2) == 6.25
    assert round(result.params.q, 2) == 3.74
    assert round(result.params.gamma, 2) == 15.44
    # the model assumes spend independent of frequency; both sources report a correlation of 0.11
    assert round(spend_frequency_correlation(cdnow_repeat_spend["x"], cdnow_repeat_spend["m_x"]), 2) == 0.11


def test_the_fit_is_the_maximum_and_weights_give_the_same_fit(cdnow_repeat_spend: pd.DataFrame):
    x, m = cdnow_repeat_spend["x"].to_numpy(), cdnow_repeat_spend["m_x"].to_numpy()
    best = fit(x, m)
    ll = log_likelihood(best.params, x, m)
    assert ll == pytest.approx(best.log_likelihood, rel=1e-12)
    for dp, dq, dg in ((1.01, 1, 1), (1, 0.99, 1), (1, 1, 1.01), (0.99, 1.01, 1)):
        moved = GammaGammaParams(best.params.p * dp, best.params.q * dq, best.params.gamma * dg)
        assert log_likelihood(moved, x, m) < ll
    # every row twice = each row once with weight 2: the same estimates
    doubled = fit(x, m, weights=np.full(len(x), 2.0))
    assert doubled.n_customers == 2 * len(x)
    assert doubled.params.p == pytest.approx(best.params.p, rel=1e-5)
    assert doubled.params.gamma == pytest.approx(best.params.gamma, rel=1e-5)


@pytest.mark.parametrize("x, m", [(1, 12.0), (3, 40.0), (10, 5.5)])
def test_the_density_of_a_mean_integrates_to_one(x: int, m: float):
    """The likelihood is the density of m_x: over m_x it integrates to 1 (a wrong constant or
    Jacobian term would not)."""
    prm = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
    total, _ = integrate.quad(lambda v: np.exp(log_likelihood(prm, [x], [v])), 0, np.inf, limit=200)
    assert total == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("x, m", [(1, 12.0), (3, 40.0), (10, 5.5)])
def test_expected_value_is_the_posterior_mean_of_p_over_nu(x: int, m: float):
    """E[Z | x, m_x] = E[p / nu | x, m_x] with nu's posterior from Bayes' rule, integrated
    numerically: prior nu ~ Gamma(q, rate gamma); given nu, the mean of x Gamma(p, rate nu) values
    is Gamma(p x, rate x nu)."""
    prm = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
    prior = stats.gamma(a=prm.q, scale=1 / prm.gamma)

    def weight(nu: float) -> float:
        return prior.pdf(nu) * stats.gamma(a=prm.p * x, scale=1 / (x * nu)).pdf(m)

    evidence, _ = integrate.quad(weight, 0, np.inf, limit=200)
    numerator, _ = integrate.quad(lambda nu: prm.p / nu * weight(nu), 0, np.inf, limit=200)
    assert expected_purchase_value(prm, [x], [m])[0] == pytest.approx(numerator / evidence, rel=1e-7)


def test_expected_value_shrinks_the_own_mean_toward_the_population_mean():
    prm = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
    population = prm.p * prm.gamma / (prm.q - 1)
    assert prm.population_mean == pytest.approx(population)
    # nobody's purchases known: the population mean, whatever m_x says
    assert expected_purchase_value(prm, [0], [999.0])[0] == pytest.approx(population)
    # a high spender is pulled down, less so the more purchases back the mean
    one, many = expected_purchase_value(prm, [1, 20], [100.0, 100.0])
    assert population < one < many < 100.0
    with pytest.raises(ValueError, match="infinite"):
        expected_purchase_value(GammaGammaParams(p=1.0, q=0.9, gamma=10.0), [1], [10.0])


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="x >= 1"):
        fit([0, 2], [10.0, 12.0])
    with pytest.raises(ValueError, match="positive mean"):
        fit([1, 2], [0.0, 12.0])
    with pytest.raises(ValueError, match="different mean"):
        fit([1, 2], [10.0, 10.0])
