"""Readers: each source format into a temp table ``_src`` (all varchar) plus ``_rejects``.

``_src`` has the source's columns, ``_file``, ``_line`` (exact for JSON lines and Parquet; NULL for
CSV, where rejected lines carry their line number) and ``_rownum`` (reading order). ``_rejects``
holds rows that could not be parsed at all, with reason, detail and the masked raw text.
A file that lacks a required column fails the whole source with :class:`SourceError`.
"""

from __future__ import annotations

import csv
import json
import os
import re
import threading
import time

import duckdb

from flows.config import SourceConfig
from flows.contracts import CONTRACTS
from flows.pii import mask_text_sql


class SourceError(RuntimeError):
    """A source cannot be loaded at all (missing file or column); the message says what to do."""


def q(identifier: str) -> str:
    """Quote an SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def lit(value: str) -> str:
    """Quote an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _csv_header(path: str, encoding: str) -> list[str]:
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding=encoding, errors="replace", newline="") as fh:
        return next(csv.reader(fh), [])


def _read_csv(con: duckdb.DuckDBPyConnection, files: list[str], src: SourceConfig) -> set[str]:
    """Read CSV files into ``_src``; malformed lines go to ``_rejects``. Returns header columns."""
    headers: dict[str, list[str]] = {f: _csv_header(f, src.encoding) for f in files}
    _require_columns(src, {f: set(h) for f, h in headers.items()})
    parts, rejects = [], []
    for i, f in enumerate(files):
        # One scan per file: DuckDB keeps rejects only without union_by_name.
        con.execute(
            f"""create or replace temp table _part{i} as
            select *, {lit(f)} as _file, row_number() over () as _rn
            from read_csv({lit(f)}, all_varchar = true, header = true,
                          store_rejects = true, rejects_table = '_rej_err{i}',
                          rejects_scan = '_rej_scan{i}', encoding = {lit(src.encoding)})"""
        )
        parts.append(_with_csv_lines(con, i, f))
        rejects.append(
            # DuckDB reports one error per bad field: one quarantine row per source line.
            f"""select {lit(f)} as _file, e.line as _line,
                   case when bool_or(e.error_type = 'INVALID ENCODING') then 'invalid_encoding'
                        else 'malformed_row' end as reason,
                   min(e.error_message) as detail, {mask_text_sql('min(e.csv_line)')} as record
            from _rej_err{i} e group by e.line"""
        )
    con.execute(
        "create or replace temp table _src as select * exclude (_rn), "
        "row_number() over (order by _file, _rn) as _rownum from ("
        + " union all by name ".join(parts) + ")"
    )
    con.execute("create or replace temp table _rejects as " + " union all ".join(rejects))
    for i in range(len(files)):
        con.execute(f"drop table if exists _part{i}; drop table if exists _rej_err{i}; "
                    f"drop table if exists _rej_scan{i}")
    return set().union(*headers.values())


def _physical_lines(path: str) -> int:
    import gzip

    n, last = 0, b"\n"
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (0 if last == b"\n" else 1)


def _with_csv_lines(con: duckdb.DuckDBPyConnection, i: int, path: str) -> str:
    """SQL selecting _part{i} with each row's physical line number.

    DuckDB keeps the order of accepted rows and reports rejected lines, so the k-th accepted row is
    on the k-th line that was not rejected — exactly when every record is one physical line. That
    is checked (lines = accepted + rejected + header); otherwise ``_line`` stays NULL and the
    quarantine falls back to the record key.
    """
    accepted = con.execute(f"select count(*) from _part{i}").fetchone()[0]  # type: ignore[index]
    rejected = con.execute(f"select count(distinct line) from _rej_err{i}").fetchone()[0]  # type: ignore[index]
    lines = _physical_lines(path)
    if lines != accepted + rejected + 1:
        return f"select *, null::bigint as _line from _part{i}"
    return f"""select p.*, l._line from _part{i} p join (
            select line as _line, row_number() over (order by line) as _rn
            from range(2, {lines + 1}) as r(line)
            where line not in (select line from _rej_err{i})) l using (_rn)"""


def _read_jsonl(con: duckdb.DuckDBPyConnection, files: list[str], src: SourceConfig) -> set[str]:
    """Read JSON-lines files line by line (exact line numbers); invalid JSON is rejected."""
    file_list = "[" + ", ".join(lit(f) for f in files) + "]"
    con.execute(
        f"""create or replace temp table _lines as
        select *, case when json_valid(line) then json_type(line) = 'OBJECT' else false end as _ok
        from (select _file, unnest(lines) as line, generate_subscripts(lines, 1) as _line
              from (select filename as _file, string_split(content, chr(10)) as lines
                    from read_text({file_list})))
        where trim(line) <> ''"""
    )
    con.execute(
        f"""create or replace temp table _rejects as
        select _file, _line, 'invalid_json' as reason, 'line is not a JSON object' as detail,
               {mask_text_sql('line')} as record
        from _lines where not _ok"""
    )
    keys_by_file: dict[str, set[str]] = {}
    for f, key in con.execute(
        "select distinct _file, unnest(json_keys(line)) from _lines where _ok"
    ).fetchall():
        keys_by_file.setdefault(f, set()).add(key)
    for f in files:
        keys_by_file.setdefault(f, set())
    _require_columns(src, keys_by_file)
    all_keys = sorted(set().union(*keys_by_file.values()))
    extracts = ", ".join(
        f"case when json_type(line, {lit('$.' + json.dumps(k))}) = 'NULL' then null "
        f"else line ->> {lit('$.' + json.dumps(k))} end as {q(k)}"
        for k in all_keys
    )
    con.execute(
        f"""create or replace temp table _src as
        select {extracts + ',' if extracts else ''} _file, _line,
               row_number() over (order by _file, _line) as _rownum
        from _lines where _ok"""
    )
    return set(all_keys)


def _read_parquet(con: duckdb.DuckDBPyConnection, files: list[str], src: SourceConfig) -> set[str]:
    file_list = "[" + ", ".join(lit(f) for f in files) + "]"
    cols_by_file: dict[str, set[str]] = {}
    for f, name in con.execute(
        f"select file_name, name from parquet_schema({file_list}) where num_children is null"
    ).fetchall():
        cols_by_file.setdefault(f, set()).add(name)
    _require_columns(src, cols_by_file)
    all_cols = sorted(set().union(*cols_by_file.values()))
    casts = ", ".join(f"{q(c)}::varchar as {q(c)}" for c in all_cols)
    con.execute(
        f"""create or replace temp table _src as
        select {casts}, filename as _file, file_row_number + 1 as _line,
               row_number() over () as _rownum
        from read_parquet({file_list}, filename = true, file_row_number = true,
                          union_by_name = true)"""
    )
    con.execute(
        "create or replace temp table _rejects as select null::varchar as _file, "
        "null::bigint as _line, null::varchar as reason, null::varchar as detail, "
        "null::varchar as record where false"
    )
    return set(all_cols)


def _require_columns(src: SourceConfig, cols_by_file: dict[str, set[str]]) -> None:
    contract = CONTRACTS[src.kind]
    needed = [c for c in contract.columns
              if (c.required or c.name in src.columns) and c.name not in src.expressions]
    for f, cols in sorted(cols_by_file.items()):
        for c in needed:
            if src.source_column(c.name) not in cols:
                raise SourceError(
                    f"source {src.name!r}: file {f} has no column {src.source_column(c.name)!r} "
                    f"(required by the {src.kind} contract as {c.name!r}). Fix the export, or map "
                    f"the column under sources.{src.name}.columns in the config."
                )




def _read_xlsx(con: duckdb.DuckDBPyConnection, files: list[str], src: SourceConfig) -> set[str]:
    """Excel workbooks (first sheet, or ``files.sheet``) via DuckDB's excel extension."""
    load_extension(con, "excel")
    cols_by_file: dict[str, set[str]] = {}
    parts = []
    for f in files:
        sheet = f", sheet = {lit(src.sheet)}" if src.sheet else ""
        scan = f"read_xlsx({lit(f)}, all_varchar = true, header = true{sheet})"
        cols_by_file[f] = {r[0] for r in con.execute(f"describe select * from {scan}").fetchall()}
        parts.append(f"select *, {lit(f)} as _file, row_number() over () as _rn from {scan}")
    _require_columns(src, cols_by_file)
    con.execute(
        "create or replace temp table _src as select * exclude (_rn), null::bigint as _line, "
        "row_number() over (order by _file, _rn) as _rownum from ("
        + " union all by name ".join(parts) + ")"
    )
    _no_rejects(con)
    return set().union(*cols_by_file.values())


def _no_rejects(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "create or replace temp table _rejects as select null::varchar as _file, "
        "null::bigint as _line, null::varchar as reason, null::varchar as detail, "
        "null::varchar as record where false"
    )


_LOADED_EXTENSIONS: set[str] = set()
_EXTENSION_LOCK = threading.Lock()


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load a DuckDB extension from its PyPI wheel (offline; DuckDB's own download is unreachable).

    Installing is not thread-safe (it uses DuckDB's default connection): sources extracting
    concurrently take turns.
    """
    with _EXTENSION_LOCK:
        if name not in _LOADED_EXTENSIONS:
            import duckdb_extensions

            duckdb_extensions.import_extension(name)
            _LOADED_EXTENSIONS.add(name)
    con.execute(f"load {name}")


class SourceUnreachable(SourceError):
    """The source system could not be reached (after retries)."""


def _mask_dsn(message: str, dsn: str) -> str:
    masked = message.replace(dsn, "<dsn>")
    masked = re.sub(r"(password\s*=\s*)\S+", r"\1***", masked, flags=re.I)
    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", masked)


def resolve_dsn(src: SourceConfig) -> str:
    pg = src.postgres
    assert pg is not None
    if pg.dsn_env:
        dsn = os.environ.get(pg.dsn_env)
        if not dsn:
            raise SourceError(f"source {src.name!r}: environment variable {pg.dsn_env} (its PostgreSQL "
                              f"connection) is not set")
        return dsn
    try:
        from prefect.blocks.system import Secret

        return str(Secret.load(str(pg.dsn_secret)).get())
    except Exception as exc:  # noqa: BLE001
        raise SourceError(f"source {src.name!r}: Prefect Secret block {pg.dsn_secret!r} could not be "
                          f"loaded ({type(exc).__name__})") from None


def read_postgres(con: duckdb.DuckDBPyConnection, src: SourceConfig, last: tuple[str, str] | None = None,
                  attempts: int = 4, backoff_seconds: float = 1.0) -> tuple[set[str], tuple[str, str] | None]:
    """Pull new and changed rows of a PostgreSQL table or query into ``_src``.

    Incremental by ``cursor``: rows with ``cursor >= last cursor - overlap`` (timestamps) or
    ``>= last cursor`` (numbers); the first pull, or one without a cursor, reads everything.
    Connection failures are retried with exponential backoff; the DSN never appears in messages.
    ``last`` is the (type, value) of the cursor after the previous pull.
    Returns the source columns and (cursor type, new cursor value) when rows arrived.
    """
    pg = src.postgres
    assert pg is not None
    dsn = resolve_dsn(src)
    load_extension(con, "postgres_scanner")
    for attempt in range(1, attempts + 1):
        try:
            con.execute(f"attach {lit(dsn)} as _pgsrc (type postgres, read_only)")
            break
        except duckdb.Error as exc:
            if attempt == attempts:
                raise SourceUnreachable(
                    f"source {src.name!r}: PostgreSQL unreachable after {attempts} attempts: "
                    f"{_mask_dsn(str(exc), dsn)[:300]}. Check the server and ${pg.dsn_env or pg.dsn_secret}."
                ) from None
            time.sleep(backoff_seconds * 2 ** (attempt - 1))
    try:  # noqa: SIM105 - the except below masks the DSN
        if pg.table:
            relation = "_pgsrc." + ".".join(q(p) for p in pg.table.split("."))
        else:
            relation = f"postgres_query('_pgsrc', {lit(str(pg.query))})"
        where = ""
        if pg.cursor and last:
            ctype, cvalue = last
            bound = f"cast({lit(cvalue)} as {ctype})"
            if ctype.upper().startswith(("TIMESTAMP", "DATE")):
                bound = f"({bound} - interval {int(pg.overlap_minutes)} minute)"
            where = f" where {q(pg.cursor)} >= {bound}"
        con.execute(f"create or replace temp table _pg as select * from {relation}{where}")
        cols = [r[0] for r in con.execute("describe _pg").fetchall()]
        _require_columns(src, {src.location: set(cols)})
        new_cursor = None
        if pg.cursor:
            if pg.cursor not in cols:
                raise SourceError(f"source {src.name!r}: cursor column {pg.cursor!r} is not in {src.location}")
            row = con.execute(f"select typeof(max({q(pg.cursor)})), max({q(pg.cursor)})::varchar from _pg").fetchone()
            if row and row[1] is not None:
                new_cursor = (str(row[0]), str(row[1]))
        casts = ", ".join(f"{q(c)}::varchar as {q(c)}" for c in cols)
        con.execute(
            f"create or replace temp table _src as select {casts}, {lit(src.location)} as _file, "
            f"null::bigint as _line, row_number() over () as _rownum from _pg"
        )
        _no_rejects(con)
        return set(cols), new_cursor
    except duckdb.Error as exc:
        raise SourceError(f"source {src.name!r}: reading {src.location} failed: "
                          f"{_mask_dsn(str(exc), dsn)[:400]}") from None
    # the caller detaches `_pgsrc` after its transaction ends (DuckDB cannot detach inside it)


READERS = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet, "xlsx": _read_xlsx}
