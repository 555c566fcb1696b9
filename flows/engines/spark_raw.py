"""The Spark engine's raw layer: a run's new rows merged into the state's tables, by Spark.

The run's new rows arrive in a DuckDB file of their own (``landing``), written by the same code as
on DuckDB (flows/ingest/load.py: typed against the contract, PII hashed, rejects quarantined with
file and line, rows_read = rows_loaded + rows_quarantined checked, one row per load in ``_loads``).
Here they go out as Parquet and every raw table they touch is written anew by one Spark SQL
statement: the state's rows, minus those a new version of their file replaces and those whose key
this load brings again (upsert by the source's primary key, a left anti join), plus the new rows.
The rows replaced are counted by Spark (per source: state rows before, minus the rows kept) and
recorded in the load's result and ledger row. Nothing comes back from Spark but counts. The same
statements run on a local session and on a Thrift Server (flows/engines/spark_sql.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from flows.engines.spark_sql import lit
from flows.ingest.contracts import CONTRACTS
from flows.ingest.readers import q

if TYPE_CHECKING:
    from flows.engines.spark_location import Location
    from flows.engines.spark_sql import SparkSql
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


def spark_schema(source: Path | Any) -> list[tuple[str, str]]:
    """(column, Spark type) of a Parquet file DuckDB wrote, or of an Arrow schema: the types
    :func:`read_parquet` gives."""
    import pyarrow.parquet as pq
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = pq.read_schema(source) if isinstance(source, Path) else source
    return [(f.name, f.dataType.simpleString()) for f in from_arrow_schema(schema).fields]


def view(sql: SparkSql, name: str, schema: list[tuple[str, str]], files: str | Path) -> None:
    """A temporary view ``name`` over Parquet ``files`` with the given schema (columns a file lacks
    read as null)."""
    columns = ", ".join(f"`{c}` {t}" for c, t in schema)
    sql.execute(f"create or replace temporary view {name} ({columns}) using parquet "
                f"options (path {lit(str(files))})")


def _name(table: str) -> str:
    """A table's file or folder name: a ledger ``_x`` is ``ledger-x`` (Spark skips files whose
    name starts with ``_``)."""
    return f"ledger-{table[1:]}" if table.startswith("_") else table


def files_of(location: Location, table: str, run_id: str) -> str:
    """Where a run writes a raw table: ``raw/<table>/<run_id>``."""
    return location.spark("raw", _name(table), run_id)


def _incoming(con: duckdb.DuckDBPyConnection, table: str, local_dir: Path, location: Location,
              run_id: str) -> tuple[list[tuple[str, str]], str]:
    """A table of the landing file as Parquet in the location's ``incoming/<run_id>/`` (written by
    DuckDB locally, copied up when the location is remote): its Spark schema and its name for Spark."""
    name = f"{_name(table)}.parquet"
    file = local_dir / name
    export_parquet(con, table, file)
    location.put_file(file, "incoming", run_id, name)
    return spark_schema(file), location.spark("incoming", run_id, name)


def _by_source(sql: SparkSql, relation: str, sources: list[str]) -> dict[str, int]:
    if not sources:
        return {}
    return {str(src): int(n) for src, n in sql.rows(
        f"select _source, count(*) from {relation} where _source in ({_in(sources)}) group by _source")}


def _in(values: list[str] | tuple[str, ...]) -> str:
    return ", ".join(lit(v) for v in values)


def land(sql: SparkSql, landing: Path, extracts: list[Extract], results: list[LoadResult],
         tables: dict[str, str], location: Location, run_id: str) -> dict[str, str]:
    """Write every raw table this run changes (and every one the state lacks) to
    ``location/raw/<table>/<run_id>``; return table -> files of each. ``tables`` is the state's
    (table -> files); ``results`` get their ``rows_replaced``."""
    # DuckDB writes the Parquet here: straight into the location when it is a local folder
    local_dir = location.local_path("incoming", run_id) or landing.parent / "incoming"
    local_dir.mkdir(parents=True, exist_ok=True)
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
            schema, file = _incoming(con, kind, local_dir, location, run_id)
            cols = ", ".join(f"`{c}`" for c, _ in schema)
            view(sql, "liucun_new", schema, file)
            query = f"select {cols} from liucun_new"
            sources: list[str] = []
            if kind in tables:
                view(sql, "liucun_old", schema, tables[kind])
                sources = sorted({ex.source.name for ex in touching})
                parts = [f"select {cols} from liucun_old"
                         + (f" where _source not in ({_in(sources)})" if sources else "")]
                for ex in touching:
                    src = ex.source
                    where = f"o._source = {lit(src.name)}"
                    if ex.replaced_files:  # a new version of a file replaces its earlier rows
                        where += f" and o._file not in ({_in(sorted(ex.replaced_files))})"
                    keys = [contract.column(k).stored_name for k in src.primary_key]
                    on = " and ".join(f"o.`{k}` = f.`{k}`" for k in keys)
                    fresh = (f"(select distinct {', '.join(f'`{k}`' for k in keys)} from liucun_new "
                             f"where _source = {lit(src.name)})")
                    parts.append(f"select {', '.join(f'o.`{c}`' for c, _ in schema)} from liucun_old as o "
                                 f"left anti join {fresh} as f on {on} where {where}")
                query = " union all ".join([*parts, query])
                before = _by_source(sql, "liucun_old", sources)
            files = files_of(location, kind, run_id)
            sql.execute(f"insert overwrite directory {lit(files)} using parquet {query}")
            written[kind] = files
            if kind in tables and touching:
                view(sql, "liucun_out", schema, files)
                after = _by_source(sql, "liucun_out", sources)
                added = _by_source(sql, "liucun_new", sources)
                for src_name in sources:
                    replaced_total[src_name] = before.get(src_name, 0) - (after.get(src_name, 0)
                                                                           - added.get(src_name, 0))
        for ex in extracts:
            load_id = f"{run_id}:{ex.source.name}"
            n = replaced_total.get(ex.source.name, 0)
            if n and load_id in by_load:
                by_load[load_id].rows_replaced = n
                con.execute("update raw._loads set rows_replaced = ? where load_id = ?", [n, load_id])
        for ledger in LEDGERS:
            if ledger in tables and not con.execute(f"select count(*) from raw.{ledger}").fetchone()[0]:  # type: ignore[index]
                continue
            schema, file = _incoming(con, ledger, local_dir, location, run_id)
            cols = ", ".join(f"`{c}`" for c, _ in schema)
            view(sql, "liucun_new", schema, file)
            query = f"select {cols} from liucun_new"
            if ledger in tables:
                view(sql, "liucun_old", schema, tables[ledger])
                query = f"select {cols} from liucun_old union all {query}"
            files = files_of(location, ledger, run_id)
            sql.execute(f"insert overwrite directory {lit(files)} using parquet {query}")
            written[ledger] = files
    for name in ("liucun_new", "liucun_old", "liucun_out"):
        sql.execute(f"drop view if exists {name}")
    return written
