"""What the maximum-likelihood fits of flows/models/ share: the optimizer and the sampling covariance
of the estimates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

FloatArray = NDArray[np.float64]


def inverse_observed_information(nll: Callable[[FloatArray], float], theta: FloatArray,
                                 step: float = 1e-4) -> FloatArray:
    """Covariance of the MLE ``theta`` (the parameters the fit optimised, e.g. their logarithms):
    the inverse of the Hessian of the total negative log-likelihood ``nll`` at ``theta``, by central
    differences. Raises ``ValueError`` when the Hessian is not positive definite (not at a maximum)."""
    k = len(theta)
    eye = np.eye(k) * step
    hess = np.empty((k, k))
    f0 = nll(theta)
    for i in range(k):
        hess[i, i] = (nll(theta + eye[i]) - 2 * f0 + nll(theta - eye[i])) / step**2
        for j in range(i + 1, k):
            hess[i, j] = hess[j, i] = (nll(theta + eye[i] + eye[j]) - nll(theta + eye[i] - eye[j])
                                       - nll(theta - eye[i] + eye[j]) + nll(theta - eye[i] - eye[j])) / (4 * step**2)
    eigen = np.linalg.eigvalsh(hess)
    if not np.all(eigen > 0):
        raise ValueError(f"the log-likelihood Hessian is not negative definite at the fit (eigenvalues {eigen})")
    return np.linalg.inv(hess)


@dataclass(frozen=True)
class Optimum:
    """Where :func:`maximise` ended: the parameters, the minimised (mean) negative log-likelihood,
    whether either optimizer reported convergence, their iterations and the better one's message."""

    theta: FloatArray
    nll: float
    converged: bool
    iterations: int
    message: str


def maximise(nll: Callable[[FloatArray], float], theta0: FloatArray, *, max_iter: int = 2000,
             ftol: float = 1e-13, xtol: float = 1e-9, gtol: float = 1e-9, bound: float = 20.0) -> Optimum:
    """Minimise ``nll`` over unbounded (log-)parameters from ``theta0``: L-BFGS-B (box ±``bound``),
    then a Nelder-Mead polish from where it stopped; the better of the two."""
    res = minimize(nll, theta0, method="L-BFGS-B", bounds=[(-bound, bound)] * len(theta0),
                   options={"maxiter": max_iter, "ftol": ftol, "gtol": gtol})
    polish = minimize(nll, res.x, method="Nelder-Mead", options={"maxiter": max_iter, "xatol": xtol, "fatol": ftol})
    best = polish if polish.fun <= res.fun else res
    return Optimum(theta=np.asarray(best.x, dtype=np.float64), nll=float(best.fun),
                   converged=bool(res.success or polish.success), iterations=int(res.nit) + int(polish.nit),
                   message=str(best.message))


def standard_errors_from_logs(values: FloatArray, cov_log: FloatArray) -> list[float]:
    """Standard errors of positive parameters fitted on their logarithms (covariance ``cov_log``),
    by the delta method: se(v) = v x se(ln v)."""
    return [float(v) for v in np.sqrt(np.diag(cov_log)) * np.asarray(values, dtype=np.float64)]
