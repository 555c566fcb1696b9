"""The Spark engine's raw layer: a run's new rows merged into the state's tables, by Spark.

The run's new rows arrive in a DuckDB file of their own (``landing``), written by the same code as
on DuckDB (flows/ingest/load.py: typed against the contract, PII hashed, rejects quarantined with
file and line, rows_read = rows_loaded + rows_quarantined checked, one row per load in ``_loads``).
Here they go out as Parquet and every raw table they touch is written anew by one Spark job: the
state's rows, minus those a new version of their file replaces and those whose key this load
brings again (upsert by the source's primary key), plus the new rows. The rows replaced are counted
by Spark (per source: state rows before, minus the rows kept) and recorded in the load's result
and ledger row. Nothing is collected into the driver but counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from flows.ingest.contracts import CONTRACTS
from flows.ingest.readers import q

if TYPE_CHECKING:
    from flows.ingest.load import Extract, LoadResult

LEDGERS = ("_loads", "_files", "_cursors", "_quarantine")


def export_parquet(con: duckdb.DuckDBPyConnection, table: str, file: Path, schema: str = "raw") -> None:
    """``<schema>.<table>`` of a DuckDB file as one Parquet file (JSON as text, as Spark keeps it)."""
    cols = con.execute("select column_name, data_type from duckdb_columns() where schema_name = ? "
                       "and table_name = ? order by column_index", [schema, table]).fetchall()
    select = ", ".join(f"cast({q(c)} as varchar) as {q(c)}" if ty == "JSON" else q(c) for c, ty in cols)
    con.execute(f"copy (select {select} from {q(schema)}.{q(table)}) to '{file}' (format parquet)")


def read_parquet(spark: Any, file: Path) -> Any:
    """A Parquet file DuckDB wrote, with its own schema (Spark cannot infer one from an empty file)."""
    import pyarrow.parquet as pq
    from pyspark.sql.pandas.types import from_arrow_schema

    return spark.read.schema(from_arrow_schema(pq.read_schema(file))).parquet(str(file))


def _name(table: str) -> str:
    """A table's file or folder name: a ledger ``_x`` is ``ledger-x`` (Spark skips files whose
    name starts with ``_``)."""
    return f"ledger-{table[1:]}" if table.startswith("_") else table


def files_of(location: Path, table: str, run_id: str) -> str:
    """Where a run writes a raw table: ``raw/<table>/<run_id>``."""
    return str(location / "raw" / _name(table) / run_id)


def _by_source(frame: Any) -> dict[str, int]:
    return {row[0]: int(row[1]) for row in frame.groupBy("_source").count().collect()}


def land(spark: Any, landing: Path, extracts: list[Extract], results: list[LoadResult],
         tables: dict[str, str], location: Path, run_id: str) -> dict[str, str]:
    """Write every raw table this run changes (and every one the state lacks) to
    ``location/raw/<table>/<run_id>``; return table -> files of each. ``tables`` is the state's
    (table -> files); ``results`` get their ``rows_replaced``."""
    from pyspark.sql import functions as F

    incoming = location / "incoming" / run_id
    incoming.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    by_load = {r.load_id: r for r in results}
    replaced_total: dict[str, int] = {}
    with duckdb.connect(str(landing)) as con:
        new_rows = {kind: con.execute(f"select count(*) from raw.{q(kind)}").fetchone()[0]  # type: ignore[index]
                    for kind in CONTRACTS}
        for kind, contract in CONTRACTS.items():
            touching = [ex for ex in extracts if ex.source.kind == kind and (ex.files or ex.replaced_files)]
            if kind in tables and not new_rows[kind] and not any(ex.replaced_files for ex in touching):
                continue  # unchanged: the candidate reads the state's files
            file = incoming / f"{kind}.parquet"
            export_parquet(con, kind, file)
            new = read_parquet(spark, file)
            out = new
            if kind in tables:
                old = spark.read.parquet(tables[kind])
                sources = sorted({ex.source.name for ex in touching})
                kept = old.filter(~F.col("_source").isin(sources)) if sources else old
                for ex in touching:
                    src = ex.source
                    rows = old.filter(F.col("_source") == src.name)
                    if ex.replaced_files:  # a new version of a file replaces its earlier rows
                        rows = rows.filter(~F.col("_file").isin(list(ex.replaced_files)))
                    keys = [contract.column(k).stored_name for k in src.primary_key]
                    fresh = new.filter(F.col("_source") == src.name).select(*keys).distinct()
                    kept = kept.unionByName(rows.join(fresh, on=keys, how="left_anti"))
                out = kept.unionByName(new)
                before = _by_source(old.filter(F.col("_source").isin(sources))) if sources else {}
            files = files_of(location, kind, run_id)
            out.write.mode("overwrite").parquet(files)
            written[kind] = files
            if kind in tables and touching:
                after = _by_source(spark.read.parquet(files).filter(F.col("_source").isin(sources)))
                added = _by_source(new)
                for src in sources:
                    replaced_total[src] = before.get(src, 0) - (after.get(src, 0) - added.get(src, 0))
        for ex in extracts:
            load_id = f"{run_id}:{ex.source.name}"
            n = replaced_total.get(ex.source.name, 0)
            if n and load_id in by_load:
                by_load[load_id].rows_replaced = n
                con.execute("update raw._loads set rows_replaced = ? where load_id = ?", [n, load_id])
        for ledger in LEDGERS:
            if ledger in tables and not con.execute(f"select count(*) from raw.{ledger}").fetchone()[0]:  # type: ignore[index]
                continue
            file = incoming / f"{_name(ledger)}.parquet"
            export_parquet(con, ledger, file)
            out = read_parquet(spark, file)
            if ledger in tables:
                out = spark.read.parquet(tables[ledger]).unionByName(out)
            files = files_of(location, ledger, run_id)
            out.write.mode("overwrite").parquet(files)
            written[ledger] = files
    return written
