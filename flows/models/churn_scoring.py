"""Fit the BG/NBD model on the warehouse's own purchases and write the scores for the marts.

Runs between ``dbt build`` of ``intermediate.int_customer_rfm`` and of the marts: reads the RFM
summary (days) from a DuckDB warehouse, fits by maximum likelihood (flows/models/bgnbd.py) and replaces
``ml.customer_bgnbd_scores`` (one row per customer) and ``ml.bgnbd_fit`` (one row). The dbt
project reads both as source ``ml``; :func:`create_ml_tables` makes them exist (empty) before dbt
runs, so the marts build with null scores when no model was fitted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from flows.models.bgnbd import (
    BgNbdFit,
    expected_purchases,
    expected_purchases_interval,
    fit,
    log_param_covariance,
    p_alive,
    p_alive_interval,
    standard_errors,
)

HORIZON_DAYS = 90
RFM_TABLE = "intermediate.int_customer_rfm"
# dbt selector of the intermediate models the fit reads: built before it, the rest after
DBT_MODEL_INPUTS = "intermediate,+int_customer_rfm"

ML_DDL = """
create schema if not exists ml;
create or replace table ml.customer_bgnbd_scores (
    customer_id varchar, as_of_date date, frequency bigint, recency_days bigint, age_days bigint,
    p_alive double, p_alive_ci_low double, p_alive_ci_high double, expected_purchases_90d double,
    expected_purchases_90d_ci_low double, expected_purchases_90d_ci_high double,
    r double, alpha double, a double, b double,
    fitted_at timestamp, n_customers bigint, log_likelihood double
);
create or replace table ml.bgnbd_fit (
    as_of_date date, fitted_at timestamp, time_unit varchar, horizon_days bigint, r double,
    alpha double, a double, b double, r_se double, alpha_se double, a_se double, b_se double,
    log_likelihood double, n_customers bigint, converged boolean, iterations bigint, fit_seconds double
);
"""


@dataclass(frozen=True)
class ScoringResult:
    """What :func:`score_warehouse` did: the fit (None when there was nothing to fit) and why."""

    fit: BgNbdFit | None
    customers_scored: int
    note: str


def create_ml_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create schema ml and its two tables, empty (replacing older layouts: the scores are recomputed every run)."""
    con.execute(ML_DDL)


def create_ml_schema(db: Path) -> None:
    """:func:`create_ml_tables` in the DuckDB warehouse at ``db``."""
    with duckdb.connect(str(db)) as con:
        create_ml_tables(con)


def _clear(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("delete from ml.customer_bgnbd_scores")
    con.execute("delete from ml.bgnbd_fit")


@dataclass(frozen=True)
class Scores:
    """A fit and the per-row scores of the rows it was given (customers, or distinct (x, t_x, T)
    rows with weights); ``fit_row`` is ``ml.bgnbd_fit``'s row."""

    result: BgNbdFit
    columns: dict[str, np.ndarray]
    fit_row: dict[str, object]
    note: str


def fit_and_score(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, as_of: date,
                  log: logging.Logger | logging.LoggerAdapter, weights: np.ndarray | None = None) -> Scores:
    """Fit BG/NBD on (x, t_x, T) in days (``weights``: customers per row) and score every row.

    Raises ``ValueError`` when there is too little data to fit (nobody, or nobody / everybody with
    a repeat purchase)."""
    result = fit(x, t_x, T, weights=weights)
    prm = result.params
    try:  # 95 % intervals from the parameters' sampling uncertainty (observed information)
        cov = log_param_covariance(prm, x, t_x, T, weights=weights)
        se = standard_errors(prm, cov)
        pa_lo, pa_hi = p_alive_interval(prm, cov, x, t_x, T)
        ep_lo, ep_hi = expected_purchases_interval(prm, cov, HORIZON_DAYS, x, t_x, T)
    except (ValueError, np.linalg.LinAlgError) as exc:
        log.warning("BG/NBD fitted but its uncertainty could not be computed (%s): intervals left null", exc)
        se = None
        pa_lo = pa_hi = ep_lo = ep_hi = np.full(len(x), np.nan)
    fitted_at = datetime.now(UTC).replace(tzinfo=None)
    columns = {
        "p_alive": p_alive(prm, x, t_x, T),
        "p_alive_ci_low": pa_lo,
        "p_alive_ci_high": pa_hi,
        "expected_purchases_90d": expected_purchases(prm, HORIZON_DAYS, x, t_x, T),
        "expected_purchases_90d_ci_low": ep_lo,
        "expected_purchases_90d_ci_high": ep_hi,
    }
    fit_row = {
        "as_of_date": as_of, "fitted_at": fitted_at, "time_unit": "day", "horizon_days": HORIZON_DAYS,
        "r": prm.r, "alpha": prm.alpha, "a": prm.a, "b": prm.b,
        **{f"{k}_se": (getattr(se, k) if se else None) for k in ("r", "alpha", "a", "b")},
        "log_likelihood": result.log_likelihood, "n_customers": result.n_customers,
        "converged": result.converged, "iterations": result.iterations, "fit_seconds": result.seconds,
    }
    note = (f"BG/NBD on {result.n_customers} customers in {result.seconds:.2f}s: r={prm.r:.4g} "
            f"alpha={prm.alpha:.4g} days a={prm.a:.4g} b={prm.b:.4g} LL={result.log_likelihood:.1f}"
            + ("" if result.converged else " (optimizer did not report convergence)"))
    return Scores(result, columns, fit_row, note)


def score_warehouse(db: Path, as_of: date, log: logging.Logger | logging.LoggerAdapter | None = None
                    ) -> ScoringResult:
    """Fit BG/NBD on ``intermediate.int_customer_rfm`` of ``db`` and replace the ml tables.

    Too little data (no customers, or nobody / everybody with a repeat purchase) is not an
    error: the tables are left empty and the marts say "no BG/NBD score".
    """
    log = log or logging.getLogger(__name__)
    with duckdb.connect(str(db)) as con:
        create_ml_tables(con)
        rfm = con.execute(
            f"select customer_id, frequency, recency_days, age_days from {RFM_TABLE} order by customer_id"
        ).df()
        x = rfm.frequency.to_numpy(np.float64)
        t_x = rfm.recency_days.to_numpy(np.float64)
        T = rfm.age_days.to_numpy(np.float64)
        try:
            scored = fit_and_score(x, t_x, T, as_of, log)
        except ValueError as exc:
            con.begin()
            _clear(con)
            con.commit()
            note = f"BG/NBD not fitted on {len(rfm)} customers: {exc}"
            log.warning(note)
            return ScoringResult(None, 0, note)
        prm, fit_row = scored.result.params, scored.fit_row
        scores = pd.DataFrame({
            "customer_id": rfm.customer_id,
            "as_of_date": as_of,
            "frequency": rfm.frequency.astype("int64"),
            "recency_days": rfm.recency_days.astype("int64"),
            "age_days": rfm.age_days.astype("int64"),
            **scored.columns,
            "r": prm.r, "alpha": prm.alpha, "a": prm.a, "b": prm.b,
            "fitted_at": fit_row["fitted_at"],
            "n_customers": scored.result.n_customers,
            "log_likelihood": scored.result.log_likelihood,
        })
        con.begin()
        _clear(con)
        con.register("scores_df", scores)
        con.register("fit_df", pd.DataFrame([fit_row]))
        con.execute("insert into ml.customer_bgnbd_scores by name select * from scores_df")
        con.execute("insert into ml.bgnbd_fit by name select * from fit_df")
        con.unregister("scores_df")
        con.unregister("fit_df")
        con.commit()
    log.info(scored.note)
    return ScoringResult(scored.result, len(scores), scored.note)
