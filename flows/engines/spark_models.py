"""The BG/NBD fit on Spark: the same model and numbers as flows/models/churn_scoring.py.

The likelihood depends on a customer only through (frequency, recency, age), so Spark aggregates
``int_customer_rfm`` to its distinct rows with their customer counts; the driver fits on those
(weights: flows/models/bgnbd.py gives the same fit as on the customers themselves) and scores each
distinct row, which reach Spark as a Parquet file in the engine's location; Spark joins them back
to the customers and writes ``ml.customer_bgnbd_scores``. This process holds one row per distinct
(frequency, recency, age), never one per customer.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from flows.engines.spark_raw import spark_schema, view
from flows.models.churn_scoring import ML_DDL, ScoringResult, fit_and_score

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
    """Source ``ml`` of the candidate: both tables, empty (the fit fills them)."""
    for table in ("customer_bgnbd_scores", "bgnbd_fit"):
        sql.execute(f"drop table if exists `{db}`.{table}")
    for stmt in _spark_ddl(db):
        sql.execute(stmt)


def score(sql: SparkSql, prefix: str, as_of: date, location: Location, run_id: str, log: Log) -> ScoringResult:
    """Fit on ``<prefix>intermediate.int_customer_rfm`` and fill ``<prefix>ml``'s two tables (the
    scores of the distinct rows reach Spark as Parquet in the location's ``incoming/<run_id>/``)."""
    import pyarrow as pa

    ml = prefix + "ml"
    create_ml_tables(sql, ml)
    rows = sql.rows(
        f"""select frequency, recency_days, age_days, count(*) as customers
            from `{prefix}intermediate`.int_customer_rfm group by 1, 2, 3
            order by 1, 2, 3""")
    x = np.array([r[0] for r in rows], dtype=np.float64)
    t_x = np.array([r[1] for r in rows], dtype=np.float64)
    T = np.array([r[2] for r in rows], dtype=np.float64)
    w = np.array([r[3] for r in rows], dtype=np.float64)
    try:
        scored = fit_and_score(x, t_x, T, as_of, log, weights=w)
    except ValueError as exc:
        note = f"BG/NBD not fitted on {int(w.sum())} customers: {exc}"
        log.warning(note)
        return ScoringResult(None, 0, note)
    prm, fit_row = scored.result, scored.fit_row
    per_row = pa.table({"frequency": x.astype(np.int64), "recency_days": t_x.astype(np.int64),
                        "age_days": T.astype(np.int64),
                        **{k: pa.array(v, type=pa.float64(), from_pandas=True) for k, v in scored.columns.items()}})
    for name, table in (("liucun_bgnbd_rows", per_row), ("liucun_bgnbd_fit", pa.Table.from_pylist([fit_row]))):
        location.write_table(table, "incoming", run_id, f"{name}.parquet")
        view(sql, name, spark_schema(table.schema), location.spark("incoming", run_id, f"{name}.parquet"))
    score_columns = ", ".join(f"s.{k}" for k in scored.columns)
    sql.execute(
        f"""insert into `{ml}`.customer_bgnbd_scores
            select c.customer_id, f.as_of_date, c.frequency, c.recency_days, c.age_days, {score_columns},
                   f.r, f.alpha, f.a, f.b, f.fitted_at, f.n_customers, f.log_likelihood
            from `{prefix}intermediate`.int_customer_rfm as c
            join liucun_bgnbd_rows as s
              on s.frequency = c.frequency and s.recency_days = c.recency_days and s.age_days = c.age_days
            cross join liucun_bgnbd_fit as f""")
    sql.execute(f"""insert into `{ml}`.bgnbd_fit
                  select as_of_date, fitted_at, time_unit, horizon_days, r, alpha, a, b, r_se, alpha_se,
                         a_se, b_se, log_likelihood, n_customers, converged, iterations, fit_seconds
                  from liucun_bgnbd_fit""")
    for name in ("liucun_bgnbd_rows", "liucun_bgnbd_fit"):
        sql.execute(f"drop view if exists {name}")
    log.info(scored.note)
    return ScoringResult(prm, prm.n_customers, scored.note)
