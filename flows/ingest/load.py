"""Load configured sources into the raw layer, row by row accounted for.

For each source: read what is new (files by content hash, database tables by cursor) with DuckDB
(no pandas), map source columns onto the kind's contract, type and check each row, hash PII, and
split rows into ``raw.<kind>`` (loaded) and ``raw._quarantine`` (with a reason code and the file and
line, or key). Every load is recorded in ``raw._loads``; ``rows_read = rows_loaded +
rows_quarantined`` is checked for each.

Loading semantics (the raw layer persists between runs in the warehouse state):
- a file is loaded once: a file whose content hash was loaded before is skipped; a file whose path
  was loaded with other content is a new version and replaces that version's rows;
- rows upsert by primary key within a source: a new row with an existing key replaces the old one
  (``rows_replaced``), so database rows updated since the last pull arrive without double counting;
- PostgreSQL sources pull ``cursor >= last cursor - overlap`` (the overlap catches late commits).

Reason codes: ``malformed_row`` (wrong number of columns, unclosed quote), ``invalid_encoding``,
``invalid_json``, ``invalid_<type>:<column>`` (not parseable as the contract's type),
``missing_required:<column>``, ``negative_value:<column>``, ``future_timestamp:<column>``,
``no_customer_identifier``, ``duplicate_row`` (identical to a row loaded in the same load),
``duplicate_key`` (same primary key as a later row of the same load, which wins).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from flows.config import ProjectConfig, SourceConfig
from flows.ingest.contracts import CONTRACTS
from flows.ingest.pii import mask_text_sql
from flows.ingest.readers import READERS, SourceError, lit, pg_alias, q, read_postgres
from flows.ingest.typing_checks import stage_typed
from flows.runtime import stopping
from flows.settings import default_ingest_memory_mb

META_COLUMNS = "_source varchar, _load_id varchar, _file varchar, _line bigint, _extra json"


@dataclass
class LoadResult:
    source: str
    kind: str
    load_id: str
    location: str
    files: list[str]
    started_at: datetime
    finished_at: datetime
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)
    schema_drift: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files_skipped: int = 0
    rows_replaced: int = 0


def create_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every contract's raw table (empty) plus the quarantine, load, file and cursor ledgers.

    A warehouse made by an earlier version gains the columns its contracts have added since
    (empty for the rows loaded before them)."""
    con.execute("create schema if not exists raw")
    present: dict[str, set[str]] = {}
    for table, column in con.execute("select table_name, column_name from duckdb_columns() "
                                     "where database_name = current_database() and schema_name = 'raw'").fetchall():
        present.setdefault(table, set()).add(column)
    for contract in CONTRACTS.values():
        cols = ", ".join(f"{q(c.stored_name)} {c.sql_type}" for c in contract.columns)
        con.execute(f"create table if not exists raw.{contract.kind} ({cols}, {META_COLUMNS})")
        for c in contract.columns:
            if contract.kind in present and c.stored_name not in present[contract.kind]:
                con.execute(f"alter table raw.{contract.kind} add column {q(c.stored_name)} {c.sql_type}")
    con.execute(
        """create table if not exists raw._quarantine (
            source varchar, kind varchar, load_id varchar, file varchar, line bigint,
            record_key varchar, reason varchar, detail varchar, record varchar)"""
    )
    con.execute(
        """create table if not exists raw._loads (
            source varchar, kind varchar, load_id varchar, location varchar, files varchar,
            file_sha256 varchar, started_at timestamp, finished_at timestamp, rows_read bigint,
            rows_loaded bigint, rows_quarantined bigint, reasons json, schema_drift json,
            warnings json, files_skipped bigint, rows_replaced bigint)"""
    )
    con.execute(
        """create table if not exists raw._files (
            source varchar, file varchar, sha256 varchar, bytes bigint, load_id varchar,
            loaded_at timestamp)"""
    )
    con.execute(
        """create table if not exists raw._cursors (
            source varchar, cursor_column varchar, cursor_type varchar, cursor_value varchar,
            load_id varchar, updated_at timestamp)"""
    )


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class SourceState:
    """What the warehouse already holds of a source: loaded file hashes and paths, last cursor."""

    hashes: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)
    cursor: tuple[str, str] | None = None


def read_state(db_path: Path) -> dict[str, SourceState]:
    """Load-once and cursor state per source, read before the parallel extraction starts."""
    state: dict[str, SourceState] = {}
    if not db_path.exists():
        return state
    with duckdb.connect(str(db_path), read_only=True) as con:  # the state is never changed in place
        ledgers = {r[0] for r in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'raw'").fetchall()}
        if not {"_files", "_cursors"} <= ledgers:
            return state
        for source, sha, path in con.execute("select source, sha256, file from raw._files").fetchall():
            st = state.setdefault(source, SourceState())
            st.hashes.add(sha)
            st.paths.add(path)
        for source, ctype, value in con.execute(
            "select source, cursor_type, cursor_value from raw._cursors "
            "qualify row_number() over (partition by source order by updated_at desc) = 1").fetchall():
            state.setdefault(source, SourceState()).cursor = (ctype, value)
    return state


def _new_files(src: SourceConfig, data_dir: Path, state: SourceState
               ) -> tuple[list[str], dict[str, str], int, str]:
    """Files of a source not loaded before (by content hash); returns (new, sha by file, skipped, glob)."""
    pattern = str(data_dir / src.path)
    files = sorted(glob.glob(pattern, recursive=True))
    if not files:
        raise SourceError(
            f"source {src.name!r}: no file matches {pattern}. Check `files.path` in the config "
            f"and that the export has landed."
        )
    sha = {f: _sha256(f) for f in files}
    new = [f for f in files if sha[f] not in state.hashes]
    return new, sha, len(files) - len(new), pattern


def _write(con: duckdb.DuckDBPyConnection, src: SourceConfig, load_id: str, replaced_files: list[str]) -> int:
    """Replace old file versions, upsert by key, insert loaded rows, quarantine the rest."""
    contract = CONTRACTS[src.kind]
    replaced = 0
    for f in replaced_files:  # a new version of a file replaces the rows of its earlier versions
        replaced += con.execute(
            f"delete from raw.{contract.kind} where _source = ? and _file = ?", [src.name, f]
        ).fetchone()[0]  # type: ignore[index]
    pk_stored = ", ".join(q(contract.column(k).stored_name) for k in src.primary_key)
    pk_typed = ", ".join(f"t_{k}" for k in src.primary_key)
    # upsert by key; a source with no rows yet (a first load, a full refresh) has nothing to replace
    # and the lookup of every new key would be wasted
    if con.execute(f"select 1 from raw.{contract.kind} where _source = ? limit 1", [src.name]).fetchone():
        replaced += con.execute(
            f"""delete from raw.{contract.kind} where _source = ? and ({pk_stored}) in (
                select ({pk_typed}) from _typed where _reason is null and _dup is null)""",
            [src.name],
        ).fetchone()[0]  # type: ignore[index]
    stored = ", ".join(q(c.stored_name) for c in contract.columns)
    values = ", ".join(f"t_{c.name}" for c in contract.columns)
    con.execute(
        f"""insert into raw.{contract.kind} ({stored}, _source, _load_id, _file, _line, _extra)
        select {values}, {lit(src.name)}, {lit(load_id)}, _file, _line, _extra
        from _typed where _reason is null and _dup is null order by _rownum"""
    )
    record_cols = ", ".join(
        f"{q(c.stored_name)} := {('t_' if c.pii else 'r_') + c.name}" for c in contract.columns
    )
    key_expr = " || '|' || ".join(f"coalesce(t_{k}::varchar, '')" for k in src.primary_key)
    con.execute(
        f"""insert into raw._quarantine
        select {lit(src.name)}, {lit(src.kind)}, {lit(load_id)}, _file, _line,
               {key_expr}, coalesce(_reason, _dup),
               case when _dup is not null then 'kept the last row with this key' else _detail end,
               {mask_text_sql(f"to_json(struct_pack({record_cols}))::varchar")}
        from _typed where _reason is not null or _dup is not null
        union all
        select {lit(src.name)}, {lit(src.kind)}, {lit(load_id)}, _file, _line, null, reason,
               detail, record
        from _rejects"""
    )
    return replaced


@dataclass
class Extract:
    """Phase 1 of a load, done in parallel: one source read, typed and checked into its own schema
    of the run's :class:`ExtractStore`."""

    source: SourceConfig
    schema: str  # in the store: tables `typed` and `rejects`
    started_at: datetime
    location: str
    files: list[str]
    sha: dict[str, str]
    files_skipped: int
    replaced_files: list[str]
    drift: list[str]
    new_cursor: tuple[str, str] | None
    rows_read: int
    warnings: list[str] = field(default_factory=list)


def configure_connection(con: duckdb.DuckDBPyConnection, memory_mb: int | None, spill_dir: Path) -> None:
    """An ingest database: UTC, no progress bars (DuckDB would draw them in the user's terminal),
    and a memory cap past which DuckDB spills to ``spill_dir`` (removed with the run)."""
    session(con)
    con.execute(f"set memory_limit = '{int(memory_mb or default_ingest_memory_mb())}MB'")
    con.execute(f"set temp_directory = {lit(str(spill_dir))}")


def session(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    return con


class ExtractStore:
    """Where a run's extracts wait for the merge: one in-memory DuckDB database, shared by the
    extracts running at once (each in its own connection and schema) and by the merge, which
    reads them from memory into the candidate instead of through files written and read again.

    One memory cap (``memory_mb``) holds for all of them together, and one pool of threads serves
    them; past the cap DuckDB spills to ``spill_dir``, removed with the store. The database lives
    while the store is open (:meth:`close`); connections find it by :attr:`name`.
    """

    def __init__(self, run_id: str, spill_dir: Path, memory_mb: int | None = None) -> None:
        self.name = ":memory:liucun-extract-" + hashlib.sha1(f"{run_id}:{id(self)}".encode()).hexdigest()[:16]
        self.spill_dir = spill_dir
        spill_dir.mkdir(parents=True, exist_ok=True)
        self._keeper: duckdb.DuckDBPyConnection | None = duckdb.connect(self.name)
        configure_connection(self._keeper, memory_mb, spill_dir)

    def close(self) -> None:
        if self._keeper is not None:
            self._keeper.close()  # the last connection: the database and its memory are freed
            self._keeper = None
        shutil.rmtree(self.spill_dir, ignore_errors=True)

    def __enter__(self) -> ExtractStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def _removed_after(folder: Path) -> Iterator[None]:
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _schema(src: SourceConfig) -> str:
    return q(f"extract_{src.name}")


def extract_source(src: SourceConfig, data_dir: Path, scratch_dir: Path, state: SourceState,
                   as_of: date, salt: str, store: str) -> Extract:
    """Read what is new in a source and type/check it into its own schema of the store ``store``
    (an :attr:`ExtractStore.name`). Touches nothing else, so sources extract concurrently;
    ``scratch_dir`` only holds clean copies of messy files while they are read."""
    started = datetime.now(UTC).replace(tzinfo=None)
    schema = _schema(src)
    sha: dict[str, str] = {}
    skipped, new_cursor, drift, read_warnings = 0, None, [], []
    # clean copies of messy files hold raw values: read while the rows are typed, then removed,
    # even on failure
    with stopping.interruptible(session(duckdb.connect(store))) as con, _removed_after(scratch_dir / src.name):
        con.execute(f"drop schema if exists memory.{schema} cascade")  # a retried task starts afresh
        con.execute(f"create schema memory.{schema}")
        con.execute(f"use memory.{schema}")
        known = {r[0] for r in con.execute("select name from pg_timezone_names()").fetchall()}
        if src.timezone not in known:
            raise SourceError(f"source {src.name!r}: unknown timezone {src.timezone!r}")
        if src.postgres:
            location, files = src.location, [src.location]
            try:
                source_cols, new_cursor = read_postgres(con, src, state.cursor)
            finally:
                con.execute(f"detach database if exists {q(pg_alias(src))}")
        else:
            files, sha, skipped, location = _new_files(src, data_dir, state)
            source_cols, read_warnings = (READERS[src.format](con, files, src, scratch_dir / src.name)
                                          if files else (set(), []))
        if files:
            # the table `typed`; raw PII (r_phone, r_email) never reaches it: only its hash does
            drift = stage_typed(con, src, source_cols, as_of, salt)
            n_src = con.execute("select count(*) from typed").fetchone()[0]  # type: ignore[index]
            _check_second_reading(con, src)
            con.execute("create table rejects as select * from _rejects")  # temp objects go with `con`
            rejects = con.execute("select count(*) from rejects").fetchone()[0]  # type: ignore[index]
        else:
            n_src = rejects = 0
    replaced_files = [f for f in files if f in state.paths] if not src.postgres else []
    return Extract(src, schema, started, location, files, sha, skipped, replaced_files, drift,
                   new_cursor, n_src + rejects, read_warnings)


def _check_second_reading(con: duckdb.DuckDBPyConnection, src: SourceConfig) -> None:
    """A reader that counted each file's rows in a first pass (``_expected_rows``) and let typing
    read them again: the second reading gave the same number of rows from every file, or the line
    numbers taken from the first would be wrong."""
    if not con.execute("select 1 from duckdb_tables() where temporary and table_name = '_expected_rows'").fetchone():
        return
    differ = con.execute(
        """select e._file, e.rows, count(t._file) from _expected_rows e left join typed t using (_file)
        group by all having e.rows <> count(t._file)""").fetchall()
    if differ:
        f, expected, got = differ[0]
        raise SourceError(f"source {src.name!r}: file {f} gave {got} rows when typed but {expected} when first "
                          "read. This is a bug in liucun; please report it.")


def merge_extract(con: duckdb.DuckDBPyConnection, ex: Extract, load_id: str) -> LoadResult:
    """Phase 2, one source at a time: write an extract into the raw layer and its ledgers."""
    src, contract = ex.source, CONTRACTS[ex.source.kind]
    replaced = 0
    if ex.files:  # read in place, from the store's memory
        con.execute(f"create or replace temp view _typed as select * from memory.{ex.schema}.typed")
        con.execute(f"create or replace temp view _rejects as select * from memory.{ex.schema}.rejects")
        replaced = _write(con, src, load_id, ex.replaced_files)
    (loaded,) = con.execute(
        f"select count(*) from raw.{contract.kind} where _load_id = ?", [load_id]
    ).fetchone()  # type: ignore[misc]
    reasons = dict(con.execute(
        "select reason, count(*) from raw._quarantine where load_id = ? group by 1 order by 1",
        [load_id]).fetchall())
    quarantined = sum(reasons.values())
    if ex.rows_read != loaded + quarantined:
        raise SourceError(
            f"source {src.name!r}: accounting broke: read {ex.rows_read}, loaded {loaded}, "
            f"quarantined {quarantined}. This is a bug in liucun; please report it."
        )
    warnings = list(ex.warnings)
    if reasons.get("invalid_encoding") and not any("decode as" in w for w in warnings):
        warnings.append(
            f"{reasons['invalid_encoding']} rows are not valid {src.encoding}: re-export as UTF-8 "
            f"or set files.encoding for source {src.name!r}"
        )
    if ex.files_skipped and not ex.files:
        warnings.append(f"nothing new: {ex.files_skipped} file(s) already loaded")
    now = datetime.now(UTC).replace(tzinfo=None)
    result = LoadResult(src.name, src.kind, load_id, ex.location, ex.files, ex.started_at, now,
                        ex.rows_read, loaded, quarantined, reasons, ex.drift, warnings,
                        ex.files_skipped, replaced)
    for f in ex.files if not src.postgres else []:
        con.execute("insert into raw._files values (?, ?, ?, ?, ?, ?)",
                    [src.name, f, ex.sha[f], os.path.getsize(f), load_id, now])
    if ex.new_cursor is not None:
        con.execute("insert into raw._cursors values (?, ?, ?, ?, ?, ?)",
                    [src.name, src.postgres.cursor, ex.new_cursor[0], ex.new_cursor[1], load_id, now])  # type: ignore[union-attr]
    con.execute(
        "insert into raw._loads values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [src.name, src.kind, load_id, ex.location, json.dumps(ex.files),
         json.dumps({f: ex.sha[f] for f in ex.files}) if ex.sha else None, ex.started_at, now,
         ex.rows_read, loaded, quarantined, json.dumps(reasons), json.dumps(ex.drift),
         json.dumps(warnings), ex.files_skipped, replaced],
    )
    for t in ("_typed", "_rejects"):
        con.execute(f"drop view if exists {t}")
    return result


def merge_extracts(db_path: Path, extracts: list[Extract], run_id: str, store: str) -> list[LoadResult]:
    """Write every extract of the store ``store`` into the warehouse ``db_path``, one transaction
    per source; each extract's memory is freed once it is written."""
    results = []
    with stopping.interruptible(session(duckdb.connect(store))) as con:
        con.execute(f"attach {lit(str(db_path))} as _warehouse")
        try:
            con.execute("use _warehouse")
            create_raw_schema(con)
            for ex in extracts:
                con.execute("begin")
                try:
                    results.append(merge_extract(con, ex, f"{run_id}:{ex.source.name}"))
                    con.execute("commit")
                except Exception:
                    con.execute("rollback")
                    raise
                con.execute(f"drop schema if exists memory.{ex.schema} cascade")
        finally:
            con.execute("use memory")
            con.execute("detach database if exists _warehouse")  # written and closed for the next step
    return results


def collect_extracts(futures: Iterable[Any]) -> list[Extract]:
    """Wait for every extraction (thread or Prefect future); if any source failed, raise one
    :class:`SourceError` listing every broken source, so nothing is merged."""
    extracts, errors = [], []
    for fut in futures:
        try:
            extracts.append(fut.result())
        except SourceError as exc:
            errors.append(str(exc))
    if errors:
        raise SourceError(f"{len(errors)} source(s) could not be loaded:\n- " + "\n- ".join(errors))
    return extracts


def ingest(db_path: Path, config: ProjectConfig, run_id: str, as_of: date, salt: str,
           workers: int = 2, scratch_dir: Path | None = None, memory_mb: int | None = None) -> list[LoadResult]:
    """Extract every source concurrently, then merge them into ``db_path`` one by one.

    A source that cannot be loaded (missing file or column, unreachable database) is skipped; the
    others are still extracted, and then one :class:`SourceError` lists every broken source and
    nothing is merged (the run publishes nothing).
    """
    from concurrent.futures import ThreadPoolExecutor

    state = read_state(db_path)
    scratch_dir = scratch_dir or db_path.parent / f".extract-{run_id}"
    try:
        with ExtractStore(run_id, scratch_dir / "spill", memory_mb) as store:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(extract_source, src, config.data_dir, scratch_dir,
                                       state.get(src.name, SourceState()), as_of, salt, store.name)
                           for src in config.sources]
            return merge_extracts(db_path, collect_extracts(futures), run_id, store.name)
    finally:
        shutil.rmtree(scratch_dir, ignore_errors=True)
