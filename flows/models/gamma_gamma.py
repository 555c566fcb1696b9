"""Gamma–Gamma model of the value of a customer's purchases.

Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis",
Journal of Marketing Research 42(4), and Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary
Value" (note). A customer's purchases have values z_i ~ Gamma(p, nu), i.i.d. around the customer's
own mean p/nu; across customers nu ~ Gamma(q, gamma) (gamma is the rate of nu's distribution, in
currency units). A customer is summarised by x (the number of purchases the mean is taken over:
the repeat purchases, as in BG/NBD) and m_x (their mean value). The model assumes spend is
independent of purchase frequency; :func:`spend_frequency_correlation` says how far that holds.

Given the fit, a customer's expected purchase value is a weighted mean of the population mean
p gamma / (q - 1) and their own mean m_x, weighted more to their own the more purchases they made:

    E[Z | x, m_x] = (q - 1) / (p x + q - 1) * p gamma / (q - 1) + p x / (p x + q - 1) * m_x

which needs q > 1 (a finite population mean). Parameters are fitted by maximum likelihood on their
logarithms; identical (x, m_x) rows may be given once with weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import gammaln

from flows.models.mle import inverse_observed_information, maximise, standard_errors_from_logs

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted parameters: purchase values ~ Gamma(p, nu), nu ~ Gamma(q, gamma)."""

    p: float
    q: float
    gamma: float

    @property
    def population_mean(self) -> float:
        """E[Z] of a customer about whom nothing is known: p gamma / (q - 1) (infinite for q <= 1)."""
        return self.p * self.gamma / (self.q - 1.0) if self.q > 1.0 else float("inf")


@dataclass(frozen=True)
class GammaGammaFit:
    """The outcome of :func:`fit`."""

    params: GammaGammaParams
    log_likelihood: float
    n_customers: int
    converged: bool
    iterations: int
    seconds: float
    message: str


def _arrays(x: ArrayLike, m_x: ArrayLike) -> tuple[FloatArray, FloatArray]:
    xs, ms = (np.asarray(v, dtype=np.float64) for v in (x, m_x))
    if xs.shape != ms.shape:
        raise ValueError("x and m_x must have the same shape")
    if np.any(xs <= 0) or np.any(~np.isfinite(xs)):
        raise ValueError("the Gamma-Gamma model needs x >= 1 purchases per customer (x = 0 has no mean value)")
    if np.any(ms <= 0) or np.any(~np.isfinite(ms)):
        raise ValueError("the Gamma-Gamma model needs a positive mean purchase value m_x per customer")
    return xs, ms


def _ll_terms(p: float, q: float, gamma: float, x: FloatArray, m: FloatArray) -> FloatArray:
    # Fader & Hardie (2013), eq. 3: the density of the mean m_x of x purchase values,
    # ln f(m_x | p, q, gamma; x) = lnG(px + q) - lnG(px) - lnG(q) + q ln gamma + (px - 1) ln m_x
    #                              + px ln x - (px + q) ln(gamma + x m_x)
    px = p * x
    return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma)
            + (px - 1.0) * np.log(m) + px * np.log(x) - (px + q) * np.log(gamma + m * x))


def log_likelihood(params: GammaGammaParams, x: ArrayLike, m_x: ArrayLike,
                   weights: ArrayLike | None = None) -> float:
    """Total (weighted) log-likelihood of the customers' mean purchase values."""
    xs, ms = _arrays(x, m_x)
    terms = _ll_terms(params.p, params.q, params.gamma, xs, ms)
    w = np.ones_like(terms) if weights is None else np.asarray(weights, dtype=np.float64)
    return float(np.dot(w, terms))


def _weights(weights: ArrayLike | None, shape: tuple[int, ...]) -> FloatArray:
    if weights is None:
        return np.ones(shape)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != shape or np.any(w <= 0):
        raise ValueError("weights must be one positive count per row")
    return w


def fit(x: ArrayLike, m_x: ArrayLike, *, weights: ArrayLike | None = None,
        initial: GammaGammaParams | None = None, tol: float = 1e-10, max_iter: int = 2000) -> GammaGammaFit:
    """Maximum-likelihood estimates of (p, q, gamma) for customers with x >= 1 purchases of mean
    value m_x (L-BFGS-B on log-parameters, then a Nelder-Mead polish, as the BG/NBD fit).

    Raises ``ValueError`` with fewer than two customers or when every customer has the same mean
    (no spread between customers to fit)."""
    started = time.perf_counter()
    xs, ms = _arrays(x, m_x)
    w = _weights(weights, xs.shape)
    n = float(w.sum())
    if xs.size < 2 or np.ptp(ms) == 0:
        raise ValueError("the Gamma-Gamma model needs at least two customers with different mean values")
    scale = float(np.dot(w, ms) / n)

    def nll(theta: FloatArray) -> float:
        p, q, gamma = np.exp(np.clip(theta, -30.0, 30.0))
        val = -float(np.dot(w, _ll_terms(p, q, gamma, xs, ms))) / n
        return val if np.isfinite(val) else 1e300

    start = initial or GammaGammaParams(p=1.0, q=2.0, gamma=scale)  # population mean = the sample's
    theta0 = np.log([start.p, start.q, start.gamma])
    best = maximise(nll, theta0, max_iter=max_iter, ftol=tol * 1e-3)
    p, q, gamma = (float(v) for v in np.exp(best.theta))
    return GammaGammaFit(
        params=GammaGammaParams(p=p, q=q, gamma=gamma),
        log_likelihood=-best.nll * n,
        n_customers=int(n),
        converged=best.converged,
        iterations=best.iterations,
        seconds=time.perf_counter() - started,
        message=best.message,
    )


def expected_purchase_value(params: GammaGammaParams, x: ArrayLike, m_x: ArrayLike) -> FloatArray:
    """E[Z | x, m_x]: the customer's expected value per purchase (Fader & Hardie 2013, eq. 5).

    ``x`` may be 0 (no repeat purchase: the population mean), ``m_x`` is then ignored. Needs
    q > 1."""
    if params.q <= 1.0:
        raise ValueError(f"q = {params.q:.4g} <= 1: the population's mean purchase value is infinite")
    xs, ms = (np.asarray(v, dtype=np.float64) for v in (x, m_x))
    ms = np.where(xs > 0, ms, 0.0)
    p, q, gamma = params.p, params.q, params.gamma
    return (p * (gamma + xs * ms)) / (p * xs + q - 1.0)


def spend_frequency_correlation(x: ArrayLike, m_x: ArrayLike) -> float:
    """Pearson correlation between purchases and mean value: the model assumes it is about 0."""
    xs, ms = _arrays(x, m_x)
    if xs.size < 2 or np.ptp(xs) == 0 or np.ptp(ms) == 0:
        return float("nan")
    return float(np.corrcoef(xs, ms)[0, 1])


def log_param_covariance(params: GammaGammaParams, x: ArrayLike, m_x: ArrayLike,
                         weights: ArrayLike | None = None, step: float = 1e-4) -> FloatArray:
    """Covariance of the MLE of (ln p, ln q, ln gamma): inverse observed information (central
    differences of the total negative log-likelihood). Raises ``ValueError`` off a maximum."""
    xs, ms = _arrays(x, m_x)
    w = _weights(weights, xs.shape)
    theta0 = np.log([params.p, params.q, params.gamma])

    def nll(theta: FloatArray) -> float:
        p, q, gamma = np.exp(theta)
        return -float(np.dot(w, _ll_terms(p, q, gamma, xs, ms)))

    return inverse_observed_information(nll, theta0, step)


def standard_errors(params: GammaGammaParams, cov_log: FloatArray) -> GammaGammaParams:
    """Standard errors of p, q, gamma by the delta method: se(v) = v x se(ln v)."""
    return GammaGammaParams(*standard_errors_from_logs(np.array([params.p, params.q, params.gamma]), cov_log))
