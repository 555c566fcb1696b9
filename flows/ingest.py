"""Load configured file sources into the raw layer, row by row accounted for.

For each source: read every matching file with DuckDB (no pandas), map source columns onto the
kind's contract, type and check each row, hash PII, and split rows into ``raw.<kind>`` (loaded)
and ``raw._quarantine`` (with a reason code and the file and line, or key). Every load is recorded
in ``raw._loads`` and ``rows_read = rows_loaded + rows_quarantined`` is checked.

Reason codes: ``malformed_row`` (wrong number of columns, unclosed quote), ``invalid_encoding``,
``invalid_json``, ``invalid_<type>:<column>`` (not parseable as the contract's type),
``missing_required:<column>``, ``negative_value:<column>``, ``future_timestamp:<column>``,
``no_customer_identifier``, ``duplicate_row`` (identical to a loaded row), ``duplicate_key``
(same primary key as a later row of the load, which wins).
"""

from __future__ import annotations

import glob
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from flows.config import ProjectConfig, SourceConfig
from flows.contracts import CONTRACTS, Column, Contract
from flows.pii import pii_hash_sql
from flows.readers import READERS, SourceError, lit, q

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


def create_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every contract's raw table (empty) plus the quarantine and load ledgers."""
    con.execute("create schema if not exists raw")
    for contract in CONTRACTS.values():
        cols = ", ".join(f"{q(c.stored_name)} {c.sql_type}" for c in contract.columns)
        con.execute(f"create table if not exists raw.{contract.kind} ({cols}, {META_COLUMNS})")
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
            warnings json)"""
    )


def _file_sha256(paths: list[str]) -> str:
    digest = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _typed_expr(col: Column, raw: str, tz: str) -> str:
    """SQL turning a trimmed varchar expression into the contract type (NULL when it fails)."""
    if col.type == "timestamp":
        return (
            f"(case when {raw} is null then null"
            f" when regexp_matches({raw}, '(Z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$')"
            f"  then timezone('UTC', try_cast({raw} as timestamptz))"
            f" else timezone('UTC', timezone({lit(tz)}, try_cast({raw} as timestamp))) end)"
        )
    if col.type == "boolean":
        return (
            f"(case lower({raw}) when '1' then true when '0' then false "
            f"else try_cast({raw} as boolean) end)"
        )
    if col.type in ("bigint",):
        return f"coalesce(try_cast({raw} as bigint), try_cast(try_cast({raw} as double) as bigint))"
    return f"try_cast({raw} as {col.sql_type})"


def _checks(contract: Contract, src: SourceConfig, as_of: date) -> list[tuple[str, str]]:
    """(condition that fails the row, reason) in priority order, over raw `r_` / typed `t_` cols."""
    out: list[tuple[str, str]] = []
    for c in contract.columns:
        if c.required:
            out.append((f"r_{c.name} is null", f"missing_required:{c.name}"))
    for c in contract.columns:
        if not c.pii and c.type != "varchar":
            out.append((f"r_{c.name} is not null and t_{c.name} is null", f"invalid_{c.type}:{c.name}"))
    for c in contract.columns:
        if c.non_negative:
            out.append((f"t_{c.name} < 0", f"negative_value:{c.name}"))
        if c.not_future:
            limit = f"timestamp '{as_of.isoformat()}' + interval 2 day"
            out.append((f"t_{c.name} >= {limit}", f"future_timestamp:{c.name}"))
    if contract.identifier_any_of:
        none = " and ".join(f"t_{c} is null" for c in contract.identifier_any_of)
        out.append((f"({none})", "no_customer_identifier"))
    return out


def load_source(
    con: duckdb.DuckDBPyConnection,
    src: SourceConfig,
    data_dir: Path,
    load_id: str,
    as_of: date,
    salt: str,
) -> LoadResult:
    """Load one configured file source into ``raw.<kind>``; quarantine what breaks the contract."""
    started = datetime.now(UTC).replace(tzinfo=None)
    contract = CONTRACTS[src.kind]
    pattern = str(data_dir / src.path)
    files = sorted(glob.glob(pattern, recursive=True))
    if not files:
        raise SourceError(
            f"source {src.name!r}: no file matches {pattern}. Check `files.path` in the config "
            f"and that the export has landed."
        )
    source_cols = READERS[src.format](con, files, src)
    mapped = {src.source_column(c.name) for c in contract.columns}
    drift = sorted(source_cols - mapped)
    present = [c for c in contract.columns if src.source_column(c.name) in source_cols]

    raw_sel = ", ".join(
        f"nullif(trim({q(src.source_column(c.name))}), '') as r_{c.name}" for c in present
    )
    absent = [c for c in contract.columns if c not in present]
    raw_sel += "".join(f", null::varchar as r_{c.name}" for c in absent)
    typed_sel = ", ".join(
        (f"{pii_hash_sql(c.pii, 'r_' + c.name)} as t_{c.name}" if c.pii
         else f"{_typed_expr(c, 'r_' + c.name, src.timezone)} as t_{c.name}")
        for c in contract.columns
    )
    extra = (
        "to_json(struct_pack(" + ", ".join(f"{q(d)} := {q(d)}" for d in drift) + "))"
        if drift else "null::json"
    )
    checks = _checks(contract, src, as_of)
    reason = "case " + " ".join(f"when {cond} then {lit(r)}" for cond, r in checks) + " end"
    pk = ", ".join(f"t_{k}" for k in src.primary_key)
    key_expr = " || '|' || ".join(f"coalesce(t_{k}::varchar, '')" for k in src.primary_key)
    content = ", ".join([f"t_{c.name}" for c in contract.columns] + ["_extra"])
    typed_sql = (
        f"""create or replace temp table _typed as
        with r as (select _file, _line, _rownum, {extra} as _extra, {raw_sel} from _src),
        t as (select *, {typed_sel} from r),
        c as (select *, {reason} as _reason from t),
        d as (select *,
                row_number() over (partition by {pk} order by _rownum desc) as _rn,
                first_value(md5(row({content})::varchar)) over (
                    partition by {pk} order by _rownum desc) as _winner_md5
              from c where _reason is null)
        select * exclude (_rn, _winner_md5),
            case when _rn = 1 then null
                 when md5(row({content})::varchar) = _winner_md5 then 'duplicate_row'
                 else 'duplicate_key' end as _dup
        from d
        union all by name
        select *, null as _dup from c where _reason is not null"""
    )
    con.execute(typed_sql, {"salt": salt} if "$salt" in typed_sql else None)
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
    con.execute(
        f"""insert into raw._quarantine
        select {lit(src.name)}, {lit(src.kind)}, {lit(load_id)}, _file, _line,
               {key_expr}, coalesce(_reason, _dup),
               case when _dup is not null then 'kept the last row with this key' end,
               to_json(struct_pack({record_cols}))::varchar
        from _typed where _reason is not null or _dup is not null
        union all
        select {lit(src.name)}, {lit(src.kind)}, {lit(load_id)}, _file, _line, null, reason,
               detail, record
        from _rejects"""
    )
    (n_src,) = con.execute("select count(*) from _src").fetchone()  # type: ignore[misc]
    (n_rej,) = con.execute("select count(*) from _rejects").fetchone()  # type: ignore[misc]
    (loaded,) = con.execute(
        f"select count(*) from raw.{contract.kind} where _load_id = ?", [load_id]
    ).fetchone()  # type: ignore[misc]
    reasons = dict(
        con.execute(
            "select reason, count(*) from raw._quarantine where load_id = ? group by 1 order by 1",
            [load_id],
        ).fetchall()
    )
    quarantined = sum(reasons.values())
    rows_read = n_src + n_rej
    if rows_read != loaded + quarantined:
        raise SourceError(
            f"source {src.name!r}: accounting broke: read {rows_read}, loaded {loaded}, "
            f"quarantined {quarantined}. This is a bug in liucun; please report it."
        )
    warnings = []
    if reasons.get("invalid_encoding"):
        warnings.append(
            f"{reasons['invalid_encoding']} rows are not valid {src.encoding}: re-export as UTF-8 "
            f"or set files.encoding for source {src.name!r}"
        )
    result = LoadResult(
        source=src.name,
        kind=src.kind,
        load_id=load_id,
        location=pattern,
        files=files,
        started_at=started,
        finished_at=datetime.now(UTC).replace(tzinfo=None),
        rows_read=rows_read,
        rows_loaded=loaded,
        rows_quarantined=quarantined,
        reasons=reasons,
        schema_drift=drift,
        warnings=warnings,
    )
    con.execute(
        "insert into raw._loads values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            result.source, result.kind, load_id, pattern, json.dumps(files), _file_sha256(files),
            result.started_at, result.finished_at, rows_read, loaded, quarantined,
            json.dumps(reasons), json.dumps(drift), json.dumps(warnings),
        ],
    )
    for t in ("_src", "_rejects", "_typed", "_lines", "_rej_err", "_rej_scan"):
        con.execute(f"drop table if exists {t}")
    return result


def ingest(
    db_path: Path, config: ProjectConfig, run_id: str, as_of: date, salt: str
) -> list[LoadResult]:
    """Load every configured source into ``db_path``; one DuckDB transaction per source."""
    results, errors = [], []
    with duckdb.connect(str(db_path)) as con:
        con.execute("set TimeZone = 'UTC'")
        create_raw_schema(con)
        known = {r[0] for r in con.execute("select name from pg_timezone_names()").fetchall()}
        for src in config.sources:
            if src.timezone not in known:
                raise SourceError(f"source {src.name!r}: unknown timezone {src.timezone!r}")
            con.execute("begin")
            try:
                results.append(load_source(con, src, config.data_dir, f"{run_id}:{src.name}", as_of, salt))
                con.execute("commit")
            except SourceError as exc:  # keep going: report every broken source at once
                con.execute("rollback")
                errors.append(str(exc))
            except Exception:
                con.execute("rollback")
                raise
    if errors:
        raise SourceError(f"{len(errors)} source(s) could not be loaded:\n- " + "\n- ".join(errors))
    return results
