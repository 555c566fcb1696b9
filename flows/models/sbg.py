"""Shifted-beta-geometric (sBG) model of contract renewals.

Fader & Hardie (2007), "How to project customer retention", Journal of Interactive Marketing 21(1).
At the end of each contract period a member cancels with probability theta, their own and fixed;
across members theta ~ Beta(gamma, delta). Period 1 is the first contract period, so

    P(T = t) = B(gamma + 1, delta + t - 1) / B(gamma, delta)        (cancels at the end of period t)
    S(t)     = B(gamma, delta + t) / B(gamma, delta)                (still a member after period t)
    r(t)     = S(t) / S(t - 1) = (delta + t - 1) / (gamma + delta + t - 1)   (retention rate)

The retention rate rises with t although nobody's theta changes: the members likeliest to cancel
leave first. A member is observed as (t, churned): cancelled at the end of period t, or still a
member after t periods (censored: cohorts of different ages fit together). The likelihood depends
on the members only through the counts per (t, churned), which is all the fit is given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from flows.models.mle import inverse_observed_information, maximise

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class SbgParams:
    """theta ~ Beta(gamma, delta): the mean churn probability per period is gamma / (gamma + delta)."""

    gamma: float
    delta: float

    @property
    def mean_churn_probability(self) -> float:
        return self.gamma / (self.gamma + self.delta)


@dataclass(frozen=True)
class SbgFit:
    """The outcome of :func:`fit`."""

    params: SbgParams
    log_likelihood: float
    n_members: int
    converged: bool
    iterations: int
    seconds: float
    message: str


def _arrays(periods: ArrayLike, churned: ArrayLike, weights: ArrayLike | None
            ) -> tuple[FloatArray, NDArray[np.bool_], FloatArray]:
    t = np.asarray(periods, dtype=np.float64)
    c = np.asarray(churned, dtype=bool)
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=np.float64)
    if t.shape != c.shape or t.shape != w.shape:
        raise ValueError("periods, churned and weights must have the same shape")
    if np.any(w < 0) or np.any(t != np.round(t)):
        raise ValueError("periods must be whole numbers and weights not negative")
    if np.any(c & (t < 1)) or np.any(t < 0):
        raise ValueError("a member cancels at the end of period 1 or later (periods >= 1), and is "
                         "observed for 0 or more periods")
    return t, c, w


def _log_survival_table(g: float, d: float, t_max: int) -> FloatArray:
    """ln S(0 .. t_max) as the running sum of ln r(k) = ln(1 - g / (g + d + k - 1)): the product form,
    exact to rounding for any (g, d). (The beta-function form B(g, d + t) / B(g, d) loses every
    digit to cancellation when g and d are large — a population of nearly equal members, whose
    fit runs off towards g, d -> infinity at a fixed g / (g + d).)"""
    k = np.arange(1, t_max + 1, dtype=np.float64)
    return np.concatenate([[0.0], np.cumsum(np.log1p(-g / (g + d + k - 1.0)))])


def _whole(t: ArrayLike) -> NDArray[np.int64]:
    ts = np.asarray(t, dtype=np.float64)
    if np.any(ts < 0) or np.any(ts != np.round(ts)):
        raise ValueError("t must be whole numbers of periods, 0 or more")
    return ts.astype(np.int64)


def log_probability_churn_at(params: SbgParams, t: ArrayLike) -> FloatArray:
    """ln P(T = t), t >= 1: ln S(t - 1) + ln(gamma / (gamma + delta + t - 1))."""
    ts = _whole(t)
    if np.any(ts < 1):
        raise ValueError("a member cancels at the end of period 1 or later")
    g, d = params.gamma, params.delta
    log_s = _log_survival_table(g, d, int(ts.max(initial=1)))
    return log_s[ts - 1] + np.log(g) - np.log(g + d + ts - 1.0)


def survival(params: SbgParams, t: ArrayLike) -> FloatArray:
    """S(t) = P(T > t) = B(gamma, delta + t) / B(gamma, delta): the share of a cohort still a member
    after t periods (S(0) = 1)."""
    ts = _whole(t)
    return np.exp(_log_survival_table(params.gamma, params.delta, int(ts.max(initial=0)))[ts])


def retention_rate(params: SbgParams, t: ArrayLike) -> FloatArray:
    """r(t) = S(t) / S(t - 1): the share of members at the start of period t who renew at its end."""
    ts = np.asarray(t, dtype=np.float64)
    g, d = params.gamma, params.delta
    return (d + ts - 1.0) / (g + d + ts - 1.0)


def churn_probability_sd(params: SbgParams) -> float:
    """Standard deviation of the members' churn probabilities theta ~ Beta(gamma, delta): 0 when every
    member churns with the same probability (the geometric model, gamma + delta -> infinity)."""
    g, d = params.gamma, params.delta
    return float(np.sqrt(g * d / ((g + d) ** 2 * (g + d + 1.0))))


def _ll(g: float, d: float, t: FloatArray, churned: NDArray[np.bool_], w: FloatArray) -> float:
    ts = t.astype(np.int64)
    log_s = _log_survival_table(g, d, int(ts.max(initial=1)))
    churn = log_s[np.maximum(ts, 1) - 1] + np.log(g) - np.log(g + d + np.maximum(ts, 1) - 1.0)
    return float(np.dot(w, np.where(churned, churn, log_s[ts])))


def log_likelihood(params: SbgParams, periods: ArrayLike, churned: ArrayLike,
                   weights: ArrayLike | None = None) -> float:
    """Total log-likelihood: churned rows contribute ln P(T = t), the others ln S(t)."""
    t, c, w = _arrays(periods, churned, weights)
    return _ll(params.gamma, params.delta, t, c, w)


def fit(periods: ArrayLike, churned: ArrayLike, *, weights: ArrayLike | None = None,
        max_iter: int = 2000) -> SbgFit:
    """Maximum-likelihood (gamma, delta) from members (or counts of members, ``weights``) observed
    for ``periods`` periods, ``churned`` when they cancelled at the end of the last one.

    Raises ``ValueError`` when nobody cancelled or nobody renewed (no information on theta)."""
    started = time.perf_counter()
    t, c, w = _arrays(periods, churned, weights)
    n = float(w.sum())
    renewed = float(np.dot(w, np.where(c, t - 1.0, t)))  # renewals observed
    cancelled = float(w[c].sum())
    if n == 0 or cancelled == 0 or renewed == 0:
        raise ValueError("the sBG model needs at least one cancellation and one renewal")

    def nll(theta: FloatArray) -> float:
        g, d = np.exp(np.clip(theta, -30.0, 30.0))
        val = -_ll(g, d, t, c, w) / n
        return val if np.isfinite(val) else 1e300

    p0 = cancelled / (cancelled + renewed)  # the pooled churn probability: a start of mean p0
    theta0 = np.log([p0, 1.0 - p0])
    best = maximise(nll, theta0, max_iter=max_iter, ftol=1e-13, xtol=1e-10, gtol=1e-10)
    g, d = (float(v) for v in np.exp(best.theta))
    return SbgFit(params=SbgParams(gamma=g, delta=d), log_likelihood=-best.nll * n,
                  n_members=int(round(n)), converged=best.converged, iterations=best.iterations,
                  seconds=time.perf_counter() - started, message=best.message)


def log_param_covariance(params: SbgParams, periods: ArrayLike, churned: ArrayLike,
                         weights: ArrayLike | None = None, step: float = 1e-4) -> FloatArray:
    """Covariance of the MLE of (ln gamma, ln delta): inverse observed information."""
    t, c, w = _arrays(periods, churned, weights)
    theta0 = np.log([params.gamma, params.delta])

    def nll(theta: FloatArray) -> float:
        g, d = np.exp(theta)
        return -_ll(g, d, t, c, w)

    return inverse_observed_information(nll, theta0, step)


def survival_interval(params: SbgParams, cov_log: FloatArray, t: ArrayLike,
                      z: float = 1.959963984540054, step: float = 1e-5) -> tuple[FloatArray, FloatArray]:
    """Delta-method 95 % interval of S(t) from the parameters' uncertainty, on the log-odds scale
    (so it stays within (0, 1)); S(0) = 1 exactly."""
    ts = np.asarray(t, dtype=np.float64)
    low, high = np.ones_like(ts), np.ones_like(ts)
    later = ts > 0
    if not later.any():
        return low, high
    tl = ts[later]
    theta0 = np.log([params.gamma, params.delta])

    def logit(theta: FloatArray) -> FloatArray:
        s = survival(SbgParams(*np.exp(theta)), tl)
        return np.log(s) - np.log1p(-s)

    g0 = logit(theta0)
    grad = np.vstack([(logit(theta0 + np.eye(2)[i] * step) - logit(theta0 - np.eye(2)[i] * step)) / (2 * step)
                      for i in range(2)])
    se = np.sqrt(np.maximum(np.einsum("in,ij,jn->n", grad, cov_log, grad), 0.0))
    low[later] = expit(g0 - z * se)  # the logistic function, without overflow far out
    high[later] = expit(g0 + z * se)
    return low, high
