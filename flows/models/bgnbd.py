"""BG/NBD ("beta-geometric / negative binomial distribution") model of repeat purchasing.

Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to the
Pareto/NBD model", Marketing Science 24(2). While alive, a customer buys as a Poisson process
with rate lambda ~ Gamma(r, alpha); after each purchase they drop out with probability
p ~ Beta(a, b). A customer is summarised by x (repeat purchases), t_x (time of the last purchase
since the first) and T (time since the first purchase), all in one unit of time (weeks for the
CDNOW sample, days in the warehouse); alpha and every horizon t are in that unit.

Everything is vectorised over customers; the parameters are fitted by maximum likelihood on
their logarithms (so they stay positive). Identical (x, t_x, T) rows may be collapsed with
weights, which gives the same fit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaln, gammaln, hyp2f1

from flows.models.mle import inverse_observed_information, maximise, standard_errors_from_logs

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class BgNbdParams:
    """Fitted population parameters: lambda ~ Gamma(r, alpha), p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class BgNbdFit:
    """The outcome of :func:`fit`: parameters, maximised log-likelihood and diagnostics."""

    params: BgNbdParams
    log_likelihood: float
    n_customers: int
    converged: bool
    iterations: int
    seconds: float
    message: str


def _theta(params: BgNbdParams) -> FloatArray:
    return np.log([params.r, params.alpha, params.a, params.b])


def _params(theta: FloatArray) -> BgNbdParams:
    r, alpha, a, b = (float(v) for v in np.exp(theta))
    return BgNbdParams(r=r, alpha=alpha, a=a, b=b)


def _arrays(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    xs, txs, Ts = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    if xs.shape != txs.shape or xs.shape != Ts.shape:
        raise ValueError("x, t_x and T must have the same shape")
    if np.any(xs < 0) or np.any(txs < 0) or np.any(Ts < txs):
        raise ValueError("need x >= 0 and 0 <= t_x <= T")
    if np.any((xs == 0) & (txs != 0)):
        raise ValueError("t_x must be 0 when x is 0")
    return xs, txs, Ts


def log_likelihood_terms(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
    """Per-customer log-likelihood ln L(r, alpha, a, b | x, t_x, T) (FHL 2005, eq. 6)."""
    xs, txs, Ts = _arrays(x, t_x, T)
    return _ll_terms(params.r, params.alpha, params.a, params.b, xs, txs, Ts)


def _ll_terms(r: float, alpha: float, a: float, b: float,
              x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    # L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
    #   + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x))
    # and B(a+1, b+x-1) = B(a, b+x) * a / (b+x-1), so both terms share B(a, b+x)/B(a, b).
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    stay = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    drop = np.full_like(x, -np.inf)
    drop[repeat] = (np.log(a) - np.log(b + x[repeat] - 1.0)
                    - (r + x[repeat]) * np.log(alpha + t_x[repeat]))
    return common + np.logaddexp(stay, drop)


def log_likelihood(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike,
                   weights: ArrayLike | None = None) -> float:
    """Total (weighted) log-likelihood of the customers."""
    terms = log_likelihood_terms(params, x, t_x, T)
    w = np.ones_like(terms) if weights is None else np.asarray(weights, dtype=np.float64)
    return float(np.dot(w, terms))


def _collapse(x: FloatArray, t_x: FloatArray, T: FloatArray,
              weights: ArrayLike | None = None) -> tuple[FloatArray, ...]:
    """Unique (x, t_x, T) rows and their counts (the sum of their ``weights``: how many customers
    each row stands for, 1 when not given): the likelihood only depends on these, so customers and
    the same customers given as weighted distinct rows (the Spark engine's input) fit alike."""
    rows, inverse = np.unique(np.column_stack([x, t_x, T]), axis=0, return_inverse=True)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    if w is not None and (w.shape != x.shape or np.any(w <= 0)):
        raise ValueError("weights must be one positive count per row")
    counts = np.bincount(inverse.reshape(-1), weights=w, minlength=len(rows)).astype(np.float64)
    return rows[:, 0], rows[:, 1], rows[:, 2], counts


def fit(x: ArrayLike, t_x: ArrayLike, T: ArrayLike, *, weights: ArrayLike | None = None,
        initial: BgNbdParams | None = None, tol: float = 1e-10, max_iter: int = 2000) -> BgNbdFit:
    """Maximum-likelihood estimates of (r, alpha, a, b) for customers (x, t_x, T).

    Minimises the negative log-likelihood over log-parameters with L-BFGS-B (analytic
    likelihood, numeric gradient), then polishes with Nelder-Mead. Needs at least one customer
    with a repeat purchase and one without; raises ``ValueError`` otherwise.
    """
    started = time.perf_counter()
    xs, txs, Ts = _arrays(x, t_x, T)
    if xs.size == 0 or not np.any(xs > 0) or np.all(xs > 0):
        raise ValueError("BG/NBD needs customers with and without repeat purchases")
    ux, utx, uT, w = _collapse(xs, txs, Ts, weights)
    n = float(w.sum())
    scale = float(np.dot(w, uT) / n) or 1.0  # the mean age, from the distinct rows: the same however given

    def nll(theta: FloatArray) -> float:
        r, alpha, a, b = np.exp(np.clip(theta, -30.0, 30.0))
        val = -float(np.dot(w, _ll_terms(r, alpha, a, b, ux, utx, uT))) / n
        return val if np.isfinite(val) else 1e300

    start = initial or BgNbdParams(r=1.0, alpha=scale, a=1.0, b=1.0)
    theta0 = _theta(start)
    best = maximise(nll, theta0, max_iter=max_iter, ftol=tol * 1e-3)
    return BgNbdFit(
        params=_params(best.theta),
        log_likelihood=-best.nll * n,
        n_customers=int(n),
        converged=best.converged,
        iterations=best.iterations,
        seconds=time.perf_counter() - started,
        message=best.message,
    )


def p_alive(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
    """P(alive at T | x, t_x, T) (FHL 2005, eq. 13); exactly 1 when x = 0."""
    xs, txs, Ts = _arrays(x, t_x, T)
    return 1.0 / (1.0 + _odds_dead(params, xs, txs, Ts))


def _odds_dead(params: BgNbdParams, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """[x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x), computed in logs."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    out = np.zeros_like(x)
    m = x > 0
    log_odds = (np.log(a) - np.log(b + x[m] - 1.0)
                + (r + x[m]) * (np.log(alpha + T[m]) - np.log(alpha + t_x[m])))
    out[m] = np.exp(np.minimum(log_odds, 700.0))
    return out


def expected_purchases(params: BgNbdParams, t: float, x: ArrayLike, t_x: ArrayLike,
                       T: ArrayLike) -> FloatArray:
    """E[X(T, T+t] | x, t_x, T]: expected purchases in the next ``t`` time units (FHL eq. 10).

    The term ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z), z = t/(alpha+T+t), is
    rewritten with Euler's transformation as (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose
    series has small numerator parameters and converges fast for any x (no overflow).
    """
    if t < 0:
        raise ValueError("t must be >= 0")
    xs, txs, Ts = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < 1e-8:  # removable singularity at a = 1: step just off it
        a = 1.0 + 1e-8
    z = t / (alpha + Ts + t)
    c = a + b + xs - 1.0
    tail = np.power(1.0 - z, a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
    unconditional = c / (a - 1.0) * (1.0 - tail)
    return unconditional / (1.0 + _odds_dead(params, xs, txs, Ts))


def expected_purchases_new_customer(params: BgNbdParams, t: ArrayLike) -> FloatArray:
    """E[X(t)] for a customer just acquired (FHL eq. 9), for checks and forecasts."""
    ts = np.asarray(t, dtype=np.float64)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = ts / (alpha + ts)
    return (a + b - 1.0) / (a - 1.0) * (1.0 - np.power(alpha / (alpha + ts), r)
                                        * hyp2f1(r, b, a + b - 1.0, z))


# --- uncertainty -------------------------------------------------------------------------------
# The MLE's sampling uncertainty comes from the observed information: the inverse Hessian of the
# negative log-likelihood at the optimum, taken over log-parameters (where the fit happens and the
# likelihood is closer to quadratic). Per-customer quantities get delta-method intervals on a scale
# where they are unbounded (log-odds for P(alive), log for expected purchases), mapped back, so the
# bounds stay in range.

PARAM_NAMES = ("r", "alpha", "a", "b")



def log_param_covariance(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike,
                         step: float = 1e-4, weights: ArrayLike | None = None) -> FloatArray:
    """Covariance of the MLE of (ln r, ln alpha, ln a, ln b): the inverse of the observed
    information, i.e. of the Hessian of the total negative log-likelihood (central differences).

    Raises ``ValueError`` when the Hessian is not positive definite (not at a maximum)."""
    xs, txs, Ts = _arrays(x, t_x, T)
    ux, utx, uT, w = _collapse(xs, txs, Ts, weights)
    theta0 = _theta(params)

    def nll(theta: FloatArray) -> float:
        r, alpha, a, b = np.exp(theta)
        return -float(np.dot(w, _ll_terms(r, alpha, a, b, ux, utx, uT)))

    return inverse_observed_information(nll, theta0, step)


def standard_errors(params: BgNbdParams, cov_log: FloatArray) -> BgNbdParams:
    """Standard errors of r, alpha, a, b by the delta method: se(p) = p x se(ln p)."""
    return BgNbdParams(*standard_errors_from_logs(np.exp(_theta(params)), cov_log))


def _delta_interval(fun, params: BgNbdParams, cov_log: FloatArray, z: float,
                    step: float = 1e-5) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(value, low, high) of a per-customer transformed quantity g(theta): g +- z sqrt(grad' C grad)."""
    theta0 = _theta(params)
    g0 = fun(params)
    grads = []
    for i in range(len(theta0)):
        e = np.eye(len(theta0))[i] * step
        grads.append((fun(_params(theta0 + e)) - fun(_params(theta0 - e))) / (2 * step))
    grad = np.vstack(grads)  # (4, n)
    se = np.sqrt(np.maximum(np.einsum("in,ij,jn->n", grad, cov_log, grad), 0.0))
    return g0, g0 - z * se, g0 + z * se


def p_alive_interval(params: BgNbdParams, cov_log: FloatArray, x: ArrayLike, t_x: ArrayLike,
                     T: ArrayLike, z: float = 1.959963984540054) -> tuple[FloatArray, FloatArray]:
    """Delta-method interval of P(alive) from the parameters' uncertainty, on the log-odds scale
    (so it stays within (0, 1)). Customers without repeat purchases are alive with certainty
    under the model: their interval is [1, 1]."""
    xs, txs, Ts = _arrays(x, t_x, T)
    repeat = xs > 0
    low, high = np.ones_like(xs), np.ones_like(xs)
    if repeat.any():
        xr, txr, Tr = xs[repeat], txs[repeat], Ts[repeat]
        _, lo, hi = _delta_interval(lambda p: -np.log(_odds_dead(p, xr, txr, Tr)), params, cov_log, z)
        low[repeat] = 1.0 / (1.0 + np.exp(-lo))
        high[repeat] = 1.0 / (1.0 + np.exp(-hi))
    return low, high


def expected_purchases_interval(params: BgNbdParams, cov_log: FloatArray, t: float, x: ArrayLike,
                                t_x: ArrayLike, T: ArrayLike, z: float = 1.959963984540054
                                ) -> tuple[FloatArray, FloatArray]:
    """Delta-method interval of the expected purchases in the next ``t``, on the log scale."""
    xs, txs, Ts = _arrays(x, t_x, T)
    _, lo, hi = _delta_interval(lambda p: np.log(expected_purchases(p, t, xs, txs, Ts)), params, cov_log, z)
    return np.exp(lo), np.exp(hi)
