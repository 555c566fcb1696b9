"""Readers: each source format into a temp table (or view) ``_src`` (all varchar) plus ``_rejects``.

``_src`` has the source's columns, ``_file``, ``_line`` (exact for JSON lines and Parquet; NULL for
CSV, where rejected lines carry their line number) and ``_rownum`` (reading order). ``_rejects``
holds rows that could not be parsed at all, with reason, detail and the masked raw text.
A file that lacks a required column fails the whole source with :class:`SourceError`.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from flows.config import SourceConfig
from flows.ingest.contracts import CONTRACTS
from flows.ingest.pii import mask_text_sql
from flows.ingest.textfiles import DELIMITER_CANDIDATES, Prescan, open_binary, prescan, split_fields
from flows.runtime.redact import LiucunError, redact


class SourceError(LiucunError):
    """A source cannot be loaded at all (missing file or column); the message says what to do."""


def q(identifier: str) -> str:
    """Quote an SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def lit(value: str) -> str:
    """Quote an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _needed_columns(src: SourceConfig) -> tuple[str, ...]:
    """Source columns the contract needs from every file (required or explicitly mapped)."""
    return tuple(src.source_column(c.name) for c in CONTRACTS[src.kind].columns
                 if (c.required or c.name in src.columns) and c.name not in src.expressions)


def _scan_files(files: list[str], src: SourceConfig, scratch: Path, fmt: str) -> dict[str, Prescan]:
    return {f: prescan(f, fmt=fmt, encoding=src.encoding, scratch=scratch / "clean", delimiter=src.delimiter,
                       quote=src.quote, header=src.header, max_line_bytes=src.max_line_bytes,
                       expect_columns=_needed_columns(src))
            for f in files}


def _file_warnings(scans: dict[str, Prescan], src: SourceConfig) -> list[str]:
    out = []
    for f, s in scans.items():
        if s.size == 0:
            out.append(f"{f} is empty (0 bytes): nothing was loaded from it. If the export failed, "
                       "re-export it; if there was nothing to export, remove the empty file")
        elif src.format == "csv" and src.header and s.lines <= 1 and not s.removed:
            out.append(f"{f} has a header and no rows: nothing was loaded from it")
        if s.encoding_hint:
            out.append(f"{f}: some lines are not valid {src.encoding} but decode as {s.encoding_hint}; "
                       f"set `encoding: {s.encoding_hint}` under sources.{src.name}.files")
        if s.multiline_records:
            out.append(f"{f}: {s.multiline_records} record(s) span several lines (quoted line breaks); "
                       "line numbers of this file are not exact")
    return out


def _removed_sql(scan: Prescan) -> str:
    """The prescan's set-aside lines as reject rows."""
    if not scan.removed:
        return ""
    rows = ", ".join(f"({r.line}, {lit(r.reason)}, {lit(r.detail)}, {lit(r.record)})" for r in scan.removed)
    return (f"select {lit(scan.path)} as _file, line::bigint as _line, reason, detail, record "
            f"from (values {rows}) v(line, reason, detail, record)")


def _line_map_sql(scan: Prescan) -> str:
    """(read line -> original line): the copy holds the original lines minus the removed ones."""
    removed = ", ".join(str(r.line) for r in scan.removed) or "-1"
    return (f"(select line as orig, row_number() over (order by line) as rl from range(1, {scan.lines + 1}) "
            f"r(line) where line not in ({removed}))")


def _check_csv_header(f: str, scan: Prescan, src: SourceConfig) -> None:
    """A header that lacks the contract's columns under the delimiter in use, but has them under
    another one: say which delimiter the file looks like."""
    if not src.header or scan.header is None:
        return
    needed = _needed_columns(src)
    if all(n in scan.header for n in needed):
        return
    with open_binary(f) as fh:
        first = fh.readline().decode(src.encoding, errors="replace").lstrip("\ufeff").rstrip("\r\n")
    for d in (*DELIMITER_CANDIDATES, "whitespace"):
        if d == scan.delimiter:
            continue
        fields = [x.strip() for x in split_fields(first, d, src.quote)]
        if all(n in fields for n in needed):
            shown = {"\t": "'\\t'", "whitespace": "whitespace"}.get(d, repr(d))
            raise SourceError(
                f"source {src.name!r}: file {f}: this file looks {shown}-delimited (its header splits "
                f"into {len(fields)} columns with it, {len(scan.header)} with {scan.delimiter!r}); set "
                f"`delimiter: {shown}` under sources.{src.name}.files")


def _read_csv(con: duckdb.DuckDBPyConnection, files: list[str], src: SourceConfig, scratch: Path
              ) -> tuple[set[str], list[str]]:
    """Read CSV files into ``_src``; malformed lines go to ``_rejects``. Returns (header columns,
    warnings). Each file is prescanned (flows/ingest/textfiles.py): lines DuckDB would choke on are set
    aside as rejects, and the dialect is fixed (never left to DuckDB's sniffer, which gives up on a
    whole file for one stray quote)."""
    scans = _scan_files(files, src, scratch, "csv")
    for f, s in scans.items():
        _check_csv_header(f, s, src)
    readable = {f: s for f, s in scans.items() if not s.empty}
    headers: dict[str, list[str]] = {}
    for f, s in readable.items():
        headers[f] = (s.header or []) if src.header else [f"column{k}" for k in range(1, (s.first_fields or 0) + 1)]
    _require_columns(src, {f: set(h) for f, h in headers.items()})
    parts, rejects, accepted_rows = [], [], {}
    file_order = {f: i for i, f in enumerate(sorted(readable))}  # the order `order by _file` gives
    for i, (f, s) in enumerate(readable.items()):
        delim = "\t" if src.delimiter == "whitespace" else (s.delimiter or ",")
        quote = lit(src.quote) if src.quote else "''"
        scan = (f"""read_csv({lit(s.read_path)}, all_varchar = true, header = {str(src.header).lower()},
                              delim = {lit(delim)}, quote = {quote}, escape = {quote}, auto_detect = false,
                              new_line = {lit(_NEWLINE_ESCAPES[s.newline])},
                              columns = {{{", ".join(f"{lit(h)}: 'VARCHAR'" for h in _dedupe(headers[f]))}}},
                              max_line_size = 2000000, strict_mode = true""")
        try:
            # A first pass keeps the lines DuckDB rejects and counts the rows it accepts (DuckDB keeps
            # rejects only without union_by_name); the rows themselves are read again, as they are
            # typed, by the view `_part{i}`: raw values (phones, emails) are never stored in a table.
            # (fetchall: the rejects are stored when the query completes, which fetchone leaves open)
            ((accepted,),) = con.execute(
                f"select count(*) from {scan}, store_rejects = true, "
                f"rejects_table = '_rej_err{i}', rejects_scan = '_rej_scan{i}')").fetchall()
            con.execute(f"drop table if exists _rej_scan{i}")
            accepted_rows[f] = accepted
            con.execute(f"create or replace temp view _part{i} as select *, {lit(f)} as _file, "
                        f"row_number() over () as _rn from {scan}, ignore_errors = true)")
        except duckdb.Error as exc:
            raise SourceError(f"source {src.name!r}: file {f} cannot be read as CSV: "
                              f"{redact(str(exc).splitlines()[0])[:300]}. Check files.delimiter, quote and "
                              "encoding for this source") from None
        parts.append(f"select * exclude (_rn), {file_order[f]} * 4294967296 + _rn as _rownum "
                     f"from ({_with_csv_lines(con, i, s, bool(src.header), accepted)})")
        line = "m.orig" if s.clean_path else "e.line"
        join = f"join {_line_map_sql(s)} m on m.rl = e.line" if s.clean_path else ""
        rejects.append(
            # DuckDB reports one error per bad field: one quarantine row per source line.
            f"""select {lit(f)} as _file, {line} as _line,
                   case when bool_or(e.error_type = 'INVALID ENCODING') then 'invalid_encoding'
                        else 'malformed_row' end as reason,
                   {mask_text_sql('min(e.error_message)')} as detail, {mask_text_sql('min(e.csv_line)')} as record
            from _rej_err{i} e {join} group by {line}"""
        )
    rejects += [sql for s in scans.values() if (sql := _removed_sql(s))]
    if parts:  # a view: the files are read as the rows are typed (rows in file order, then line)
        con.execute("create or replace temp view _src as " + " union all by name ".join(parts))
        # what each file's second reading must give (checked once the rows are typed)
        con.execute("create or replace temp table _expected_rows as select * from (values "
                    + ", ".join(f"({lit(f)}, {n})" for f, n in accepted_rows.items()) + ") v(_file, rows)")
    else:
        _empty_src(con, set().union(*headers.values()) if headers else set())
    if rejects:
        con.execute("create or replace temp table _rejects as " + " union all ".join(rejects))
    else:
        _no_rejects(con)
    return set().union(*headers.values()) if headers else set(), _file_warnings(scans, src)


_NEWLINE_ESCAPES = {"\n": "\\n", "\r\n": "\\r\\n"}  # read_csv's new_line takes escapes


def _dedupe(names: list[str]) -> list[str]:
    """Header names as DuckDB columns: blanks and repeats get a suffix instead of failing the file."""
    out, seen = [], set()
    for k, n in enumerate(names, start=1):
        name = n or f"column{k}"
        while name in seen:
            name += "_dup"
        seen.add(name)
        out.append(name)
    return out


def _empty_src(con: duckdb.DuckDBPyConnection, cols: set[str]) -> None:
    sel = ", ".join(f"null::varchar as {q(c)}" for c in sorted(cols))
    con.execute(f"create or replace temp table _src as select {sel + ',' if sel else ''} null::varchar as _file, "
                "null::bigint as _line, null::bigint as _rownum where false")


def _with_csv_lines(con: duckdb.DuckDBPyConnection, i: int, scan: Prescan, header: bool, accepted: int) -> str:
    """SQL selecting _part{i} with each row's physical line number in the original file.

    DuckDB keeps the order of accepted rows and reports rejected lines, so the k-th accepted row is
    on the k-th line of the file it read that was not rejected — exactly when every record is one
    physical line. That is checked (lines read = accepted + rejected + header); otherwise ``_line``
    stays NULL and the quarantine falls back to the record key. Lines of a clean copy map back to
    the original through the prescan's removed lines.
    """
    rejected = con.execute(f"select count(distinct line) from _rej_err{i}").fetchone()[0]  # type: ignore[index]
    lines_read = scan.lines - len(scan.removed)
    first = 2 if header else 1
    if scan.multiline_records or lines_read != accepted + rejected + first - 1:
        return f"select *, null::bigint as _line from _part{i}"
    if not rejected and not scan.clean_path:  # every line after the header is a row, in order
        return f"select *, _rn + {first - 1} as _line from _part{i}"
    orig = "m.orig" if scan.clean_path else "l.line"
    join = f"join {_line_map_sql(scan)} m on m.rl = l.line" if scan.clean_path else ""
    return f"""select p.*, {orig} as _line from _part{i} p join (
            select line, row_number() over (order by line) as _rn
            from range({first}, {lines_read + 1}) as r(line)
            where line not in (select line from _rej_err{i})) l using (_rn) {join}"""


JSONL_CHUNK_LINES = 50_000  # lines read one by one handed to DuckDB at once (plain blocks: ~8 MB)


@dataclass
class DirectJsonl:
    """A JSON-lines file DuckDB read itself, every line a JSON document (see :func:`_jsonl_direct`)."""

    scan: Prescan
    keys: set[str]
    non_objects: int  # lines that are valid JSON but not an object (quarantined as invalid_json)
    first_rowid: int  # its lines are rows first_rowid .. first_rowid + lines - 1 of `_direct`


def _jsonl_direct(con: duckdb.DuckDBPyConnection, files: list[str], src: SourceConfig) -> dict[str, DirectJsonl]:
    """Read the UTF-8 JSON-lines files that DuckDB's own parallel reader reads exactly as the
    line-by-line reader would into the temp table ``_direct`` (``line``; ``_file``, the file's
    position among them, which costs less memory than its name on every row), in one pass
    and with no check in Python; the files left out go to the line-by-line reader.

    A file qualifies when DuckDB parses every line as one JSON document (a malformed line, bytes
    that are not UTF-8, a byte-order mark or a line over 16 MB make it fail), no line holds DEL
    (the one control character JSON allows unescaped), none is over ``max_line_bytes``, and the
    documents' bytes plus one line break after each are the file's size: then nothing was skipped
    (blank lines) or trimmed (surrounding blanks, carriage returns), and the k-th document read is
    the file's k-th line. The table keeps the reading order, so line k of a file is row
    ``first_rowid + k - 1``. A line that parsed is an object exactly when it starts with ``{``.
    """
    utf8 = codecs.lookup(src.encoding).name == "utf-8"
    sizes = {f: n for f in files if utf8 and not f.endswith(".gz") and (n := os.path.getsize(f))}
    con.execute("create or replace temp table _direct (_file integer, line varchar)")  # _file: index in `names`
    if not sizes:
        return {}
    names = list(sizes)

    def load(batch: list[str]) -> None:
        listed = f"[{', '.join(lit(f) for f in batch)}]"
        con.execute(f"insert into _direct select list_position({listed}, filename) - 1 + {names.index(batch[0])}, "
                    f"json::varchar from read_json_objects({listed}, format = 'newline_delimited', filename = true)")

    try:
        load(names)
    except duckdb.Error:  # a line DuckDB cannot parse: find the files it can read on their own
        for f in sizes:
            try:
                load([f])
            except duckdb.Error:
                pass  # the line-by-line reader sets the line aside
    direct = {}
    for i, keys, n, content, longest, dels, non_objects, first, last in con.execute(
        """select _file, list_distinct(flatten(list(keys))), sum(n), sum(content), max(longest),
               sum(dels), sum(non_objects), min(first), max(last)
        from (select _file, json_keys(line) as keys, count(*) as n, sum(strlen(line)) as content,
                     max(strlen(line)) as longest, count(*) filter (where contains(line, chr(127))) as dels,
                     count(*) filter (where not starts_with(line, '{')) as non_objects,
                     min(rowid) as first, max(rowid) as last
              from _direct group by all)
        group by _file""").fetchall():  # keys: one parse per line, then once per distinct key list
        f = names[i]
        with open(f, "rb") as fh:
            fh.seek(sizes[f] - 1)
            ends_with_newline = fh.read(1) == b"\n"
        breaks = n - (0 if ends_with_newline else 1)
        if (content + breaks == sizes[f] and longest + 1 <= src.max_line_bytes and not dels
                and last - first + 1 == n):
            direct[f] = DirectJsonl(Prescan(f, sizes[f], n, None, None, None, lf_lines=breaks),
                                    set(keys), non_objects, first)
    left_out = [str(i) for i, f in enumerate(names) if f not in direct]
    if left_out:  # read by the line-by-line reader instead (or not read: nothing of them is here)
        con.execute(f"delete from _direct where _file in ({', '.join(left_out)})")
    return direct


def _read_jsonl(con: duckdb.DuckDBPyConnection, files: list[str], src: SourceConfig, scratch: Path
                ) -> tuple[set[str], list[str]]:
    """Read JSON-lines files with exact line numbers; invalid JSON is rejected.

    Files DuckDB can read whole (:func:`_jsonl_direct`: the usual clean export) are read by it in
    one parallel pass, with no check in Python. Any other file is read line by line: each line is
    checked as it is read (oversized lines, bad bytes and control characters are set aside) and
    handed to DuckDB in chunks, so memory holds one chunk whatever the file's size."""
    import numpy as np
    import pyarrow as pa

    # a temporary table: in memory up to the connection's memory_limit, spilled to disk beyond it
    con.execute("create or replace temp table _lines "
                "(_file varchar, line varchar, _line bigint, _rownum bigint, _ok boolean)")
    numbers: list[int] = []
    texts: list[str] = []
    file_order = {f: i for i, f in enumerate(sorted(files))}  # the order `order by _file` gives

    def insert(f: str, lines: pa.Array, line_numbers: pa.Array) -> None:
        con.register("_chunk", pa.table({"line": lines, "_line": line_numbers}))
        try:  # blank lines are not rows (a line of other whitespace is invalid JSON); _rownum: the
            # reading order (files in their sorted order, then lines), with no sort of the rows
            con.execute(
                """insert into _lines select $1, line, _line, $2 * 4294967296 + _line,
                       case when json_valid(line) then json_type(line) = 'OBJECT' else false end
                   from _chunk where line <> '' and (line[1] <> ' ' or trim(line, ' ') <> '')""",
                [f, file_order[f]])
        finally:
            con.unregister("_chunk")

    def flush(f: str) -> None:
        if numbers:
            insert(f, pa.array(texts, pa.string()), pa.array(numbers, pa.int64()))
            numbers.clear()
            texts.clear()

    scans: dict[str, Prescan] = {}
    direct = _jsonl_direct(con, files, src)
    for f in files:
        if f in direct:
            scans[f] = direct[f].scan
            continue

        def keep(n: int, text: str, f: str = f) -> None:  # a line read on its own
            numbers.append(n)
            texts.append(text)
            if len(numbers) >= JSONL_CHUNK_LINES:
                flush(f)

        def keep_block(first: int, block: list[str], f: str = f) -> None:  # ~8 MB of plain lines
            flush(f)  # lines read one by one before it go first
            insert(f, pa.array(block, pa.string()), pa.array(np.arange(first, first + len(block), dtype=np.int64)))

        try:
            scans[f] = prescan(f, fmt="jsonl", encoding=src.encoding, scratch=scratch / "clean",
                               max_line_bytes=src.max_line_bytes, on_line=keep, on_block=keep_block)
            flush(f)
        except duckdb.Error as exc:
            raise SourceError(f"source {src.name!r}: file {f} cannot be read as JSON lines: "
                              f"{redact(str(exc).splitlines()[0])[:300]}") from None

    def direct_rows(f: str) -> str:  # the file's lines, numbered by their reading order
        first, n = direct[f].first_rowid, direct[f].scan.lines
        return f"(select line, rowid - {first - 1} as _line from _direct where rowid between {first} and {first + n - 1})"

    con.execute(
        f"""create or replace temp table _rejects as
        select _file, _line, 'invalid_json' as reason, 'line is not a JSON object' as detail,
               {mask_text_sql('line')} as record
        from _lines where not _ok"""
        + "".join(f" union all select {lit(f)}, _line, 'invalid_json', 'line is not a JSON object', "
                  f"{mask_text_sql('line')} from {direct_rows(f)} where not starts_with(line, '{{')"
                  for f, d in direct.items() if d.non_objects)
        + "".join(f" union all {sql}" for sc in scans.values() if (sql := _removed_sql(sc)))
    )
    keys_by_file: dict[str, set[str]] = {f: d.keys for f, d in direct.items() if d.keys}
    for f, key in con.execute(
        "select distinct _file, unnest(json_keys(line)) from _lines where _ok"
    ).fetchall():
        keys_by_file.setdefault(f, set()).add(key)
    # a file none of whose lines is a JSON object has no keys to check: its lines are all rejects
    _require_columns(src, keys_by_file)
    all_keys = sorted(set().union(*keys_by_file.values())) if keys_by_file else []
    # every key's value as text (JSON null -> NULL) from one parse of the line
    paths = "[" + ", ".join(lit("$." + json.dumps(k)) for k in all_keys) + "]"
    extracts = ", ".join(f"_v[{i}] as {q(k)}" for i, k in enumerate(all_keys, start=1))
    values = f"json_extract_string(line, {paths}) as _v, " if all_keys else ""
    # a view: typing reads each line's values straight from its one parse, and no second copy of
    # the file's values is kept (_lines is freed with the connection, after typing)
    parts = [f"select {values}_file, _line, _rownum from _lines where _ok"] + [
        f"select {values}{lit(f)} as _file, _line, {file_order[f]} * 4294967296 + _line as _rownum "
        f"from {direct_rows(f)}" + (" where starts_with(line, '{')" if d.non_objects else "")
        for f, d in direct.items()]
    con.execute(
        f"""create or replace temp view _src as
        select {extracts + ',' if extracts else ''} _file, _line, _rownum
        from ({" union all ".join(parts)})"""
    )
    return set(all_keys), _file_warnings(scans, src)


def _read_parquet(con: duckdb.DuckDBPyConnection, files: list[str], src: SourceConfig, scratch: Path
                  ) -> tuple[set[str], list[str]]:
    file_list = "[" + ", ".join(lit(f) for f in files) + "]"
    cols_by_file: dict[str, set[str]] = {}
    for f in files:
        try:
            names = con.execute(f"select name from parquet_schema({lit(f)}) where num_children is null").fetchall()
        except duckdb.Error as exc:
            raise SourceError(f"source {src.name!r}: file {f} cannot be read as Parquet: "
                              f"{redact(str(exc).splitlines()[0])[:300]}. Re-export it, or fix files.format") from None
        cols_by_file[f] = {n for (n,) in names}
    _require_columns(src, cols_by_file)
    all_cols = sorted(set().union(*cols_by_file.values()))
    # a view: the files are read as the rows are typed, and raw values are never stored in a table
    parts = [
        f"""select {", ".join(f"{q(c)}::varchar as {q(c)}" for c in sorted(cols_by_file[f]))},
                   {lit(f)} as _file, file_row_number + 1 as _line, {i} * 4294967296 + file_row_number + 1 as _rownum
            from read_parquet({lit(f)}, file_row_number = true)"""
        for i, f in enumerate(files)]
    con.execute("create or replace temp view _src as "
                + (" union all by name ".join(parts) if all_cols else
                   f"select filename as _file, file_row_number + 1 as _line, file_row_number + 1 as _rownum "
                   f"from read_parquet({file_list}, filename = true, file_row_number = true)"))
    con.execute(
        "create or replace temp table _rejects as select null::varchar as _file, "
        "null::bigint as _line, null::varchar as reason, null::varchar as detail, "
        "null::varchar as record where false"
    )
    return set(all_cols), []


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




def _read_xlsx(con: duckdb.DuckDBPyConnection, files: list[str], src: SourceConfig, scratch: Path
               ) -> tuple[set[str], list[str]]:
    """Excel workbooks (first sheet, or ``files.sheet``) via DuckDB's excel extension."""
    load_extension(con, "excel")
    cols_by_file: dict[str, set[str]] = {}
    parts = []
    for f in files:
        sheet = f", sheet = {lit(src.sheet)}" if src.sheet else ""
        scan = f"read_xlsx({lit(f)}, all_varchar = true, header = true{sheet})"
        try:
            cols_by_file[f] = {r[0] for r in con.execute(f"describe select * from {scan}").fetchall()}
        except duckdb.Error as exc:
            raise SourceError(f"source {src.name!r}: file {f} cannot be read as an Excel workbook: "
                              f"{redact(str(exc).splitlines()[0])[:300]}") from None
        parts.append(f"select *, {lit(f)} as _file, row_number() over () as _rn from {scan}")
    _require_columns(src, cols_by_file)
    con.execute(
        "create or replace temp table _src as select * exclude (_rn), null::bigint as _line, "
        "row_number() over (order by _file, _rn) as _rownum from ("
        + " union all by name ".join(parts) + ")"
    )
    _no_rejects(con)
    return set().union(*cols_by_file.values()), []


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


def pg_alias(src: SourceConfig) -> str:
    """The catalog a source's PostgreSQL database is attached as (one per source: extracts share a
    DuckDB instance, whose attached catalogs every connection sees). Quote it with :func:`q`."""
    return f"_pgsrc_{src.name}"


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
            con.execute(f"attach {lit(dsn)} as {q(pg_alias(src))} (type postgres, read_only)")
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
            relation = ".".join(q(p) for p in (pg_alias(src), *pg.table.split(".")))
        else:
            relation = f"postgres_query({lit(pg_alias(src))}, {lit(str(pg.query))})"
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
    # the caller detaches `pg_alias(src)` after its transaction ends (DuckDB cannot detach inside it)


READERS = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet, "xlsx": _read_xlsx}
