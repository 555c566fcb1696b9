"""The BG/NBD and Gamma–Gamma fits on Spark: the same models and numbers as
flows/models/churn_scoring.py.

The BG/NBD likelihood depends on a customer only through (frequency, recency, age), so Spark
aggregates ``int_customer_rfm`` to its distinct rows with their customer counts; the driver fits on
those (weights: flows/models/bgnbd.py gives the same fit as on the customers themselves) and scores
each distinct row, which reach Spark as a Parquet file in the engine's location; Spark joins them
back to the customers and writes ``ml.customer_bgnbd_scores``. The Gamma–Gamma likelihood depends on
(frequency, mean repeat purchase value) of the customers with a repeat purchase day: the driver fits
on their distinct pairs with counts (two numbers per pair: the mean value is continuous, so about
one pair per repeat customer — 16 bytes each), and Spark computes each customer's expected purchase
value from the three fitted parameters in SQL. The sBG renewal fits read the memberships counted per
plan, renewal decisions and outcome (a few rows per plan). This process never holds a customer's id.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

from flows.engines.spark_raw import spark_schema, view
from flows.models.churn_scoring import (
    ML_DDL,
    ML_TABLES,
    RENEWAL_COUNTS_SQL,
    ScoringResult,
    fit_and_score,
    fit_renewals,
    fit_spend,
)

if TYPE_CHECKING:
    from flows.engines.base import Log
    from flows.engines.spark_location import Location
    from flows.engines.spark_sql import SparkSql


def _spark_ddl(db: str) -> list[str]:
    """ML_DDL (DuckDB's) in Spark's words, for the database ``db``."""
    out = []
    for stmt in ML_DDL.split(";"):
        stmt = stmt.strip()
        if not stmt.startswith("create or replace table"):
            continue
        stmt = stmt.replace("create or replace table ml.", f"create table `{db}`.")
        stmt = stmt.replace(" varchar", " string").replace(" timestamp", " timestamp_ntz")
        out.append(stmt + " using parquet")
    return out


def create_ml_tables(sql: SparkSql, db: str) -> None:
    """Source ``ml`` of the candidate: its tables, empty (the fits fill them)."""
    for table in ML_TABLES:
        sql.execute(f"drop table if exists `{db}`.{table}")
    for stmt in _spark_ddl(db):
        sql.execute(stmt)


def score(sql: SparkSql, prefix: str, as_of: date, location: Location, run_id: str, log: Log) -> ScoringResult:
    """Fit on ``<prefix>intermediate.int_customer_rfm`` and fill ``<prefix>ml``'s tables (the scores
    of the distinct rows and the fits reach Spark as Parquet in the location's ``incoming/<run_id>/``)."""
    import pyarrow as pa

    ml = prefix + "ml"
    rfm = f"`{prefix}intermediate`.int_customer_rfm"
    create_ml_tables(sql, ml)
    pairs = sql.rows(f"""select frequency, mean_repeat_purchase_value, count(*) as customers from {rfm}
                         where frequency > 0 group by 1, 2 order by 1, 2""")
    spend = fit_spend(np.array([r[0] for r in pairs], dtype=np.float64),
                      np.array([r[1] for r in pairs], dtype=np.float64), as_of, log,
                      weights=np.array([r[2] for r in pairs], dtype=np.float64))
    del pairs
    if spend.fit_row is not None:
        _incoming(sql, location, run_id, "liucun_gamma_gamma_fit", pa.Table.from_pylist([spend.fit_row]))
        sql.execute(f"""insert into `{ml}`.gamma_gamma_fit
                      select as_of_date, fitted_at, p, q, gamma, p_se, q_se, gamma_se,
                             population_mean_purchase_value, spend_frequency_correlation, log_likelihood,
                             n_customers, converged, iterations, fit_seconds
                      from liucun_gamma_gamma_fit""")
    renewals = fit_renewals(
        sql.rows(RENEWAL_COUNTS_SQL.format(table=f"`{prefix}intermediate`.int_membership_renewals")), as_of, log)
    for table, rows_ in (("sbg_fit", renewals.fit_rows), ("sbg_survival", renewals.survival_rows)):
        if rows_:
            _incoming(sql, location, run_id, f"liucun_{table}", pa.Table.from_pylist(rows_))
            columns = ", ".join(rows_[0])
            sql.execute(f"insert into `{ml}`.{table} ({columns}) select {columns} from liucun_{table}")
    rows = sql.rows(f"select frequency, recency_days, age_days, count(*) as customers from {rfm} "
                    "group by 1, 2, 3 order by 1, 2, 3")
    x = np.array([r[0] for r in rows], dtype=np.float64)
    t_x = np.array([r[1] for r in rows], dtype=np.float64)
    T = np.array([r[2] for r in rows], dtype=np.float64)
    w = np.array([r[3] for r in rows], dtype=np.float64)
    try:
        scored = fit_and_score(x, t_x, T, as_of, log, weights=w)
    except ValueError as exc:
        note = f"BG/NBD not fitted on {int(w.sum())} customers: {exc}"
        log.warning(note)
        _drop_views(sql)
        return ScoringResult(None, 0, note, spend, renewals)
    prm, fit_row = scored.result, scored.fit_row
    per_row = pa.table({"frequency": x.astype(np.int64), "recency_days": t_x.astype(np.int64),
                        "age_days": T.astype(np.int64),
                        **{k: pa.array(v, type=pa.float64(), from_pandas=True) for k, v in scored.columns.items()}})
    _incoming(sql, location, run_id, "liucun_bgnbd_rows", per_row)
    _incoming(sql, location, run_id, "liucun_bgnbd_fit", pa.Table.from_pylist([fit_row]))
    score_columns = ", ".join(f"s.{k}" for k in scored.columns)
    if spend.params is not None:  # E[Z | x, m_x] (flows/models/gamma_gamma.py expected_purchase_value)
        p, q, g = (repr(float(v)) for v in (spend.params.p, spend.params.q, spend.params.gamma))
        value = (f"cast({p} as double) * (cast({g} as double) + c.frequency * coalesce(c.mean_repeat_purchase_value, 0d))"
                 f" / (cast({p} as double) * c.frequency + cast({q} as double) - 1d)")
    else:
        value = "cast(null as double)"
    sql.execute(
        f"""insert into `{ml}`.customer_bgnbd_scores
            select c.customer_id, f.as_of_date, c.frequency, c.recency_days, c.age_days, {score_columns},
                   f.r, f.alpha, f.a, f.b, f.fitted_at, f.n_customers, f.log_likelihood,
                   cast(c.mean_repeat_purchase_value as double), {value}, s.expected_purchases_90d * {value}
            from {rfm} as c
            join liucun_bgnbd_rows as s
              on s.frequency = c.frequency and s.recency_days = c.recency_days and s.age_days = c.age_days
            cross join liucun_bgnbd_fit as f""")
    sql.execute(f"""insert into `{ml}`.bgnbd_fit
                  select as_of_date, fitted_at, time_unit, horizon_days, r, alpha, a, b, r_se, alpha_se,
                         a_se, b_se, log_likelihood, n_customers, converged, iterations, fit_seconds
                  from liucun_bgnbd_fit""")
    _drop_views(sql)
    log.info(scored.note)
    if spend.params is not None:
        log.info(spend.note)
    return ScoringResult(prm, prm.n_customers, scored.note, spend, renewals)


_VIEWS = ("liucun_bgnbd_rows", "liucun_bgnbd_fit", "liucun_gamma_gamma_fit", "liucun_sbg_fit", "liucun_sbg_survival")


def _incoming(sql: SparkSql, location: Location, run_id: str, name: str, table: Any) -> None:
    """``table`` (Arrow) as Parquet in the run's incoming folder, and a temporary view ``name`` on it.
    A column whose every value is None (a standard error that could not be computed) has no type in
    Arrow: it is written as double, as the ml table declares it."""
    import pyarrow as pa

    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.float64()))
    location.write_table(table, "incoming", run_id, f"{name}.parquet")
    view(sql, name, spark_schema(table.schema), location.spark("incoming", run_id, f"{name}.parquet"))


def _drop_views(sql: SparkSql) -> None:
    for name in _VIEWS:
        sql.execute(f"drop view if exists {name}")
