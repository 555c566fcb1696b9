"""Fit the BG/NBD and Gamma–Gamma models on the warehouse's own purchases and write the scores.

Runs between ``dbt build`` of ``intermediate.int_customer_rfm`` and of the marts: reads the RFM
summary (days) from a DuckDB warehouse, fits BG/NBD (flows/models/bgnbd.py) on every customer and
the Gamma–Gamma spend model (flows/models/gamma_gamma.py) on those with a repeat purchase day, by
maximum likelihood, and replaces ``ml.customer_bgnbd_scores`` (one row per customer: P(alive),
expected purchases, expected purchase value and revenue), ``ml.bgnbd_fit`` and
``ml.gamma_gamma_fit`` (one row each). The dbt project reads them as source ``ml``;
:func:`create_ml_tables` makes them exist (empty) before dbt runs, so the marts build with null
scores when no model was fitted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from flows.models import gamma_gamma, sbg
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
from flows.models.mle import standard_errors_from_logs

HORIZON_DAYS = 90
RFM_TABLE = "intermediate.int_customer_rfm"
RENEWALS_TABLE = "intermediate.int_membership_renewals"
# dbt selector of the intermediate models the fits read: built before them, the rest after
DBT_MODEL_INPUTS = "intermediate,+int_customer_rfm intermediate,+int_membership_renewals"
# the sBG survival curve is written for this many renewals, or twice the longest observed if more
SBG_MIN_HORIZON = 12
# the renewal decisions of every plan, counted (the sBG fit's whole input: a few rows per plan)
RENEWAL_COUNTS_SQL = ("select plan, renewal_decisions, is_cancellation_observed, count(*) as memberships from {table} "
                      "group by plan, renewal_decisions, is_cancellation_observed order by 1, 2, 3")

ML_DDL = """
create schema if not exists ml;
create or replace table ml.customer_bgnbd_scores (
    customer_id varchar, as_of_date date, frequency bigint, recency_days bigint, age_days bigint,
    p_alive double, p_alive_ci_low double, p_alive_ci_high double, expected_purchases_90d double,
    expected_purchases_90d_ci_low double, expected_purchases_90d_ci_high double,
    r double, alpha double, a double, b double,
    fitted_at timestamp, n_customers bigint, log_likelihood double,
    mean_repeat_purchase_value double, expected_purchase_value double, expected_revenue_90d double
);
create or replace table ml.bgnbd_fit (
    as_of_date date, fitted_at timestamp, time_unit varchar, horizon_days bigint, r double,
    alpha double, a double, b double, r_se double, alpha_se double, a_se double, b_se double,
    log_likelihood double, n_customers bigint, converged boolean, iterations bigint, fit_seconds double
);
create or replace table ml.sbg_fit (
    as_of_date date, fitted_at timestamp, plan varchar, gamma double, delta double, gamma_se double,
    delta_se double, churn_probability_sd double, log_likelihood double, n_memberships bigint, cancellations bigint,
    converged boolean, iterations bigint, fit_seconds double
);
create or replace table ml.sbg_survival (
    as_of_date date, plan varchar, renewals bigint, survival double, survival_ci_low double,
    survival_ci_high double, retention_rate double
);
create or replace table ml.gamma_gamma_fit (
    as_of_date date, fitted_at timestamp, p double, q double, gamma double, p_se double, q_se double,
    gamma_se double, population_mean_purchase_value double, spend_frequency_correlation double,
    log_likelihood double, n_customers bigint, converged boolean, iterations bigint, fit_seconds double
);
"""
ML_TABLES = ("customer_bgnbd_scores", "bgnbd_fit", "gamma_gamma_fit", "sbg_fit", "sbg_survival")


@dataclass(frozen=True)
class ScoringResult:
    """What :func:`score_warehouse` did: the BG/NBD fit (None when there was nothing to fit), the
    Gamma–Gamma fit (``spend``) and why."""

    fit: BgNbdFit | None
    customers_scored: int
    note: str
    spend: Spend | None = None
    renewals: Renewals | None = None


def create_ml_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create schema ml and its two tables, empty (replacing older layouts: the scores are recomputed every run)."""
    con.execute(ML_DDL)


def create_ml_schema(db: Path) -> None:
    """:func:`create_ml_tables` in the DuckDB warehouse at ``db``."""
    with duckdb.connect(str(db)) as con:
        create_ml_tables(con)


def _clear(con: duckdb.DuckDBPyConnection) -> None:
    for table in ML_TABLES:
        con.execute(f"delete from ml.{table}")


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


@dataclass(frozen=True)
class Spend:
    """The Gamma–Gamma fit (None when there was too little to fit: ``note`` says why) and
    ``ml.gamma_gamma_fit``'s row."""

    params: gamma_gamma.GammaGammaParams | None
    fit_row: dict[str, object] | None
    note: str

    def expected_purchase_value(self, x: np.ndarray, m_x: np.ndarray) -> np.ndarray:
        """E[value of a purchase | x, m_x] per customer (the population mean when x = 0); NaN
        everywhere when the model was not fitted."""
        if self.params is None:
            return np.full(len(x), np.nan)
        return gamma_gamma.expected_purchase_value(self.params, x, np.nan_to_num(m_x, nan=0.0))


def fit_spend(x: np.ndarray, m_x: np.ndarray, as_of: date, log: logging.Logger | logging.LoggerAdapter,
              weights: np.ndarray | None = None) -> Spend:
    """Fit the Gamma–Gamma model on the customers (or weighted distinct rows) with a repeat purchase
    day: x repeat purchase days of mean net value m_x. Too little data, or a fit whose population
    mean is infinite (q <= 1), is not an error: the note says why and the values stay null."""
    repeat = (x > 0) & np.isfinite(m_x)
    # the distinct (x, m_x) rows with their counts, sorted: customers and the same customers given as
    # weighted distinct rows (the Spark engine's input) reach the optimizer as the same arrays, so
    # both engines publish the same fit to the last digit
    rows, inverse = np.unique(np.column_stack([x[repeat], m_x[repeat]]), axis=0, return_inverse=True)
    w = np.bincount(inverse.reshape(-1), weights=None if weights is None else weights[repeat],
                    minlength=len(rows)).astype(np.float64)
    xs, ms = rows[:, 0], rows[:, 1]
    customers = int(w.sum())
    try:
        result = gamma_gamma.fit(xs, ms, weights=w)
        prm = result.params
        if prm.q <= 1.0:
            raise ValueError(f"q = {prm.q:.3g} <= 1, so the population's mean purchase value is infinite "
                             "(a few very large spenders): no expected values")
    except ValueError as exc:
        note = f"Gamma-Gamma not fitted on {customers} customers with a repeat purchase day: {exc}"
        log.warning(note)
        return Spend(None, None, note)
    try:
        se = gamma_gamma.standard_errors(prm, gamma_gamma.log_param_covariance(prm, xs, ms, weights=w))
    except (ValueError, np.linalg.LinAlgError) as exc:
        log.warning("Gamma-Gamma fitted but its standard errors could not be computed (%s)", exc)
        se = None
    # the customers' Pearson correlation of x and m_x, from the counted rows
    cov = np.cov(np.vstack([xs, ms]), aweights=w) if len(xs) > 1 else np.zeros((2, 2))
    corr = float(cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])) if cov[0, 0] > 0 and cov[1, 1] > 0 else float("nan")
    fit_row = {
        "as_of_date": as_of, "fitted_at": datetime.now(UTC).replace(tzinfo=None),
        "p": prm.p, "q": prm.q, "gamma": prm.gamma,
        **{f"{k}_se": (getattr(se, k) if se else None) for k in ("p", "q", "gamma")},
        "population_mean_purchase_value": prm.population_mean,
        "spend_frequency_correlation": None if np.isnan(corr) else corr,
        "log_likelihood": result.log_likelihood, "n_customers": result.n_customers,
        "converged": result.converged, "iterations": result.iterations, "fit_seconds": result.seconds,
    }
    note = (f"Gamma-Gamma on {result.n_customers} customers with a repeat purchase day in {result.seconds:.2f}s: "
            f"p={prm.p:.4g} q={prm.q:.4g} gamma={prm.gamma:.4g} (mean purchase value {prm.population_mean:.2f}; "
            f"spend-frequency correlation {corr:.2f})"
            + ("" if result.converged else " (optimizer did not report convergence)"))
    return Spend(prm, fit_row, note)


@dataclass(frozen=True)
class Renewals:
    """The sBG fits, one per plan with enough data (``notes`` says why a plan has none), as the rows
    of ``ml.sbg_fit`` and ``ml.sbg_survival``."""

    fit_rows: list[dict[str, object]]
    survival_rows: list[dict[str, object]]
    notes: list[str]


def fit_renewals(counts: list[tuple], as_of: date, log: logging.Logger | logging.LoggerAdapter) -> Renewals:
    """Fit the sBG model per plan on ``counts``: (plan, renewal decisions observed, cancelled, how many
    memberships), the rows of :data:`RENEWAL_COUNTS_SQL`. Each fit's survival curve S(t) with its 95 %
    interval and retention rate r(t) = S(t) / S(t - 1) runs from t = 0 to the horizon: twice the
    longest observed run of renewals, at least :data:`SBG_MIN_HORIZON`. A plan without both a
    cancellation and a renewal is not fitted (a note says so), as is one whose fit fails."""
    fit_rows: list[dict[str, object]] = []
    survival_rows: list[dict[str, object]] = []
    notes: list[str] = []
    fitted_at = datetime.now(UTC).replace(tzinfo=None)
    for plan in sorted({str(r[0]) for r in counts}):
        rows = [r for r in counts if str(r[0]) == plan]
        t = np.array([r[1] for r in rows], dtype=np.float64)
        cancelled = np.array([bool(r[2]) for r in rows])
        w = np.array([r[3] for r in rows], dtype=np.float64)
        try:
            result = sbg.fit(t, cancelled, weights=w)
        except ValueError as exc:
            note = f"sBG not fitted for plan {plan} ({int(w.sum())} memberships): {exc}"
            log.warning(note)
            notes.append(note)
            continue
        prm = result.params
        try:
            cov = sbg.log_param_covariance(prm, t, cancelled, weights=w)
            se = standard_errors_from_logs(np.array([prm.gamma, prm.delta]), cov)
        except (ValueError, np.linalg.LinAlgError) as exc:
            # e.g. members who all churn alike: the likelihood is flat along gamma / (gamma + delta)
            log.warning("sBG for plan %s fitted but its uncertainty could not be computed (%s): "
                        "intervals left null", plan, exc)
            cov, se = None, [None, None]
        fit_rows.append({
            "as_of_date": as_of, "fitted_at": fitted_at, "plan": plan, "gamma": prm.gamma, "delta": prm.delta,
            "gamma_se": se[0], "delta_se": se[1], "churn_probability_sd": sbg.churn_probability_sd(prm),
            "log_likelihood": result.log_likelihood,
            "n_memberships": result.n_members, "cancellations": int(w[cancelled].sum()),
            "converged": result.converged, "iterations": result.iterations, "fit_seconds": result.seconds,
        })
        horizon = max(SBG_MIN_HORIZON, 2 * int(t.max()))
        ts = np.arange(horizon + 1, dtype=np.float64)
        curve = sbg.survival(prm, ts)
        low, high = sbg.survival_interval(prm, cov, ts) if cov is not None else (np.full(len(ts), np.nan),) * 2
        rate = sbg.retention_rate(prm, ts)
        for i, k in enumerate(ts):
            survival_rows.append({
                "as_of_date": as_of, "plan": plan, "renewals": int(k), "survival": float(curve[i]),
                "survival_ci_low": None if np.isnan(low[i]) else float(low[i]),
                "survival_ci_high": None if np.isnan(high[i]) else float(high[i]),
                "retention_rate": float(rate[i]) if k >= 1 else None,
            })
        note = (f"sBG for plan {plan} on {result.n_members} memberships ({int(w[cancelled].sum())} cancelled): "
                f"gamma={prm.gamma:.4g} delta={prm.delta:.4g}, mean churn {prm.mean_churn_probability:.1%} per period")
        log.info(note)
        notes.append(note)
    return Renewals(fit_rows, survival_rows, notes)


def score_warehouse(db: Path, as_of: date, log: logging.Logger | logging.LoggerAdapter | None = None
                    ) -> ScoringResult:
    """Fit BG/NBD and Gamma–Gamma on ``intermediate.int_customer_rfm`` and sBG per plan on
    ``intermediate.int_membership_renewals`` of ``db``, and replace the ml tables.

    Too little data for a model (no customers, or nobody / everybody with a repeat purchase; no
    plan with both a cancellation and a renewal) is not an error: its tables are left empty, the
    marts say "no BG/NBD score" or leave the values null, and the notes say why.
    """
    log = log or logging.getLogger(__name__)
    with duckdb.connect(str(db)) as con:
        create_ml_tables(con)
        rfm = con.execute(
            f"select customer_id, frequency, recency_days, age_days, mean_repeat_purchase_value "
            f"from {RFM_TABLE} order by customer_id"
        ).df()
        x = rfm.frequency.to_numpy(np.float64)
        t_x = rfm.recency_days.to_numpy(np.float64)
        T = rfm.age_days.to_numpy(np.float64)
        m_x = rfm.mean_repeat_purchase_value.to_numpy(np.float64, na_value=np.nan)
        spend = fit_spend(x, m_x, as_of, log)
        renewals = fit_renewals(con.execute(RENEWAL_COUNTS_SQL.format(table=RENEWALS_TABLE)).fetchall(), as_of, log)
        try:
            scored = fit_and_score(x, t_x, T, as_of, log)
        except ValueError as exc:
            con.begin()
            _clear(con)
            _insert_spend_fit(con, spend)
            _insert_renewals(con, renewals)
            con.commit()
            note = f"BG/NBD not fitted on {len(rfm)} customers: {exc}"
            log.warning(note)
            return ScoringResult(None, 0, note, spend, renewals)
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
            "mean_repeat_purchase_value": m_x,
        })
        value = spend.expected_purchase_value(x, m_x)
        scores["expected_purchase_value"] = value
        scores["expected_revenue_90d"] = scored.columns["expected_purchases_90d"] * value
        con.begin()
        _clear(con)
        con.register("scores_df", scores)
        con.register("fit_df", pd.DataFrame([fit_row]))
        con.execute("insert into ml.customer_bgnbd_scores by name select * from scores_df")
        con.execute("insert into ml.bgnbd_fit by name select * from fit_df")
        con.unregister("scores_df")
        con.unregister("fit_df")
        _insert_spend_fit(con, spend)
        _insert_renewals(con, renewals)
        con.commit()
    log.info(scored.note)
    if spend.params is not None:
        log.info(spend.note)
    return ScoringResult(scored.result, len(scores), scored.note, spend, renewals)


def _insert_spend_fit(con: duckdb.DuckDBPyConnection, spend: Spend) -> None:
    if spend.fit_row is None:
        return
    con.register("spend_fit_df", pd.DataFrame([spend.fit_row]))
    con.execute("insert into ml.gamma_gamma_fit by name select * from spend_fit_df")
    con.unregister("spend_fit_df")


def _insert_renewals(con: duckdb.DuckDBPyConnection, renewals: Renewals) -> None:
    for table, rows in (("sbg_fit", renewals.fit_rows), ("sbg_survival", renewals.survival_rows)):
        if rows:
            con.register("renewals_df", pd.DataFrame(rows))
            con.execute(f"insert into ml.{table} by name select * from renewals_df")
            con.unregister("renewals_df")
