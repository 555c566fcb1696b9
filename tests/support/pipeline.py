"""Helpers to build a candidate warehouse step by step (ingest, dbt, gates) outside Prefect."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import duckdb

from flows.config import load_config
from flows.ingest.load import ingest
from flows.models.churn_scoring import create_ml_schema, score_warehouse
from flows.models.dbt_runner import DbtRunSummary, run_dbt
from flows.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "flows" / "demo" / "liucun.yml"


def build_candidate(sources: Path, work: Path, as_of: date, salt: str) -> tuple[Path, DbtRunSummary]:
    """Ingest the demo-format sources at ``sources`` and dbt-build everything into work/candidate.duckdb,
    fitting the models (BG/NBD, Gamma-Gamma, sBG) between the intermediate models they read and the rest,
    as the pipeline does."""
    import os

    os.environ["LIUCUN_DATA_DIR"] = str(sources)
    work.mkdir(parents=True, exist_ok=True)
    db = work / "candidate.duckdb"
    ingest(db, load_config(DEMO_CONFIG), "test", as_of, salt)
    create_ml_schema(db)
    env = {"LIUCUN_DBT_TARGET": "duckdb", "LIUCUN_DUCKDB_PATH": str(db)}
    dbt_vars = {"as_of_date": as_of.isoformat()}
    # as the pipeline: what the fits read, the fits, then everything else
    first = run_dbt(["build", "--select", *FIT_INPUTS, "--indirect-selection", "buildable"],
                    Settings().dbt_project_dir, work, env, dbt_vars)
    score_warehouse(db, as_of)
    rest = run_dbt(["build", "--exclude", *FIT_INPUTS, "--indirect-selection", "buildable"],
                   Settings().dbt_project_dir, work, env, dbt_vars)
    summary = DbtRunSummary(rest.command, first.results + rest.results, first.elapsed + rest.elapsed)
    return db, summary


FIT_INPUTS = ("+int_customer_rfm", "+int_membership_renewals")  # what the model fits read

PG_TYPES = {"VARCHAR": "text", "BIGINT": "bigint", "DOUBLE": "double precision", "BOOLEAN": "boolean",
            "DATE": "date", "TIMESTAMP": "timestamp", "JSON": "text"}


def copy_raw_to_postgres(duck_db: Path, pg: dict[str, str]) -> dict[str, int]:
    """Copy every raw.* and ml.* table of a DuckDB warehouse into the same schemas of a PostgreSQL
    database (ml: the BG/NBD scores the marts read). Counts are keyed by table (ml ones as ml.<table>)."""
    import psycopg2

    counts = {}
    with duckdb.connect(str(duck_db), read_only=True) as src, psycopg2.connect(pg["dsn"]) as dst:
        cur = dst.cursor()
        for schema in ("raw", "ml"):
            cur.execute(f"create schema if not exists {schema}")
            tables = [r[0] for r in src.execute(
                "select table_name from information_schema.tables where table_schema = ? "
                "and table_name not like '\\_%' escape '\\'", [schema]).fetchall()]
            for t in tables:
                cols = src.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_schema = ? and table_name = ? order by ordinal_position", [schema, t]).fetchall()
                ddl = ", ".join(
                    f'"{c}" ' + (PG_TYPES.get(ty) or ("numeric" + ty[7:] if ty.startswith("DECIMAL") else "text"))
                    for c, ty in cols)
                cur.execute(f'drop table if exists {schema}."{t}"; create table {schema}."{t}" ({ddl})')
                df = src.execute(f'select * from {schema}."{t}"').df()
                buf = io.StringIO()
                df.to_csv(buf, index=False, header=False, na_rep="\\N")
                buf.seek(0)
                cur.copy_expert(f'copy {schema}."{t}" from stdin with (format csv, null \'\\N\')', buf)
                counts[t if schema == "raw" else f"{schema}.{t}"] = len(df)
        dst.commit()
    return counts


def add_one_day(sources: Path, out: Path, day: date, days: int = 1) -> Path:
    """``sources`` (demo format) plus the orders and app events of ``day`` again, ``days`` later
    under new ids, as new files (what a daily run finds). The rest are hard links to ``sources``:
    nothing large is copied (and nothing linked is written to)."""
    import json
    import os
    import shutil
    from datetime import UTC, datetime, timedelta, timezone

    shutil.copytree(sources, out, copy_function=os.link)
    target = day + timedelta(days=days)
    last = sorted(p for p in (sources / "orders").glob("orders_2*.parquet") if "_added" not in p.name)[-1]
    with duckdb.connect() as con:
        con.execute(f"""copy (select * replace (order_id || '-{target}' as order_id,
                                                ordered_at + interval {days} day as ordered_at,
                                                delivered_at + interval {days} day as delivered_at)
                              from read_parquet('{last}')
                              where cast(timezone('Asia/Shanghai', ordered_at) as date) = date '{day.isoformat()}')
                        to '{out / "orders" / f"orders_{target}_added.parquet"}' (format parquet)""")
    events = sorted(p for p in (sources / "events").glob("events_2*.jsonl") if "_added" not in p.name)[-1]
    with open(events, encoding="utf-8") as src, \
            open(out / "events" / f"events_{target}_added.jsonl", "x", encoding="utf-8") as dst:
        for line in src:
            e = json.loads(line)
            ts = datetime.fromisoformat(e["event_ts"].replace("Z", "+00:00"))
            if ts.astimezone(timezone(timedelta(hours=8))).date() == day:
                e["event_id"] += f"-{target}"
                e["event_ts"] = (ts + timedelta(days=days)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                dst.write(json.dumps(e) + "\n")
    return out
