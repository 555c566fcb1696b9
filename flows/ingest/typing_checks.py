"""Typing and contract checks: turn a source's varchar rows (``_src``) into typed, checked rows.

``stage_typed`` builds the table ``typed`` (in the extract's schema of the run's in-memory store):
for every contract column the typed value (``t_<col>``; PII hashed), the trimmed source text
(``r_<col>``, kept only where the quarantine may show it, and never for PII), the first failed
check as ``_reason``, and ``_dup`` for rows that lose a primary-key tie within the load.
"""

from __future__ import annotations

from datetime import date

import duckdb

from flows.config import SourceConfig
from flows.ingest.contracts import CONTRACTS, Column, Contract
from flows.ingest.pii import mask_text, mask_text_sql, pii_hash_sql
from flows.ingest.readers import SourceError, lit, q


def _strptime_expr(col: Column, raw: str, tz: str, formats: tuple[str, ...]) -> str:
    """The first of the column's configured formats that parses the value (NULL when none does).
    Formats with %z/%Z carry their offset; others are read in the source timezone."""
    parts = []
    for f in formats:
        parsed = f"try_strptime({raw}, {lit(f)})"
        if col.type == "date":
            parts.append(f"cast({parsed} as date)")
        elif "%z" in f or "%Z" in f:
            parts.append(f"timezone('UTC', cast({parsed} as timestamptz))")
        else:
            parts.append(f"timezone('UTC', timezone({lit(tz)}, cast({parsed} as timestamp)))")
    return f"coalesce({', '.join(parts)})"


def shape_sql(expr: str) -> str:
    """A value's shape, not its content: digits as 9, letters as a, other characters as ?, with
    spaces and - : / . , + kept ('2026/10/31 08:00' -> '9999/99/99 99:99'); 40 characters at most."""
    v = f"left({expr}, 40)"
    return (f"regexp_replace(regexp_replace(regexp_replace({v}, '[0-9]', '9', 'g'), '[A-Za-z]', 'a', 'g'), "
            "'[^9a \\-:/.,+]', '?', 'g')")


def _typed_expr(col: Column, raw: str, tz: str, formats: tuple[str, ...] = ()) -> str:
    """SQL turning a trimmed varchar expression into the contract type (NULL when it fails)."""
    if formats:
        return _strptime_expr(col, raw, tz, formats)
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


def _checks(contract: Contract, src: SourceConfig, as_of: date) -> list[tuple[str, str, str]]:
    """(condition that fails the row, reason, detail SQL) in priority order, over raw `r_` / typed
    `t_` cols. The detail of a value that does not parse gives its shape, never its content."""
    out: list[tuple[str, str, str]] = []
    for c in contract.columns:
        if c.required:
            out.append((f"r_{c.name} is null", f"missing_required:{c.name}", "null"))
    if contract.identifier_any_of:  # a row nobody can be identified by is useless whatever else it holds
        none = " and ".join(f"t_{c} is null" for c in contract.identifier_any_of)
        out.append((f"({none})", "no_customer_identifier", "null"))
    for c in contract.columns:
        if not c.pii and c.type != "varchar":
            fmts = src.formats.get(c.name)
            expected = f" matching {' or '.join(fmts)}" if fmts else ""
            hint = (f"; set sources.{src.name}.columns.{c.name}: {{column: ..., format: ...}}"
                    if c.type in ("timestamp", "date") and not fmts else "")
            detail = f"concat('value shaped \"', {shape_sql('r_' + c.name)}, '\" is not a {c.type}{expected}{hint}')"
            out.append((f"r_{c.name} is not null and t_{c.name} is null", f"invalid_{c.type}:{c.name}", detail))
    for c in contract.columns:
        if c.non_negative:
            out.append((f"t_{c.name} < 0", f"negative_value:{c.name}", "null"))
        if c.not_future:
            limit = f"timestamp '{as_of.isoformat()}' + interval 2 day"
            out.append((f"t_{c.name} >= {limit}", f"future_timestamp:{c.name}", "null"))
    return out


def stage_typed(con: duckdb.DuckDBPyConnection, src: SourceConfig, source_cols: set[str],
                 as_of: date, salt: str) -> list[str]:
    """Build ``typed`` from ``_src`` in one pass: typed (t_) columns, raw (r_) texts where the
    quarantine may need them, a reason, then a duplicate mark (see the module docstring)."""
    contract = CONTRACTS[src.kind]
    mapped = {src.source_column(c.name) for c in contract.columns if c.name not in src.expressions}
    drift = sorted(source_cols - mapped)
    raw_cols = {}
    for c in contract.columns:
        if c.name in src.expressions:
            raw_cols[c.name] = f"nullif(trim(cast(({src.expressions[c.name]}) as varchar)), '') as r_{c.name}"
        elif src.source_column(c.name) in source_cols:
            raw_cols[c.name] = f"nullif(trim({q(src.source_column(c.name))}), '') as r_{c.name}"
        else:
            raw_cols[c.name] = f"null::varchar as r_{c.name}"
    typed_cols = {
        c.name: (f"{pii_hash_sql(c.pii, 'r_' + c.name)} as t_{c.name}" if c.pii
                 else f"{_typed_expr(c, 'r_' + c.name, src.timezone, src.formats.get(c.name, ()))} as t_{c.name}")
        for c in contract.columns
    }
    # Unmapped columns are kept as text for the drift report, with phones and emails masked: an
    # unknown column may carry personal data, and raw values must never reach the warehouse.
    extra = (
        "to_json(struct_pack(" + ", ".join(
            f"{q(d)} := {mask_text_sql(f'cast({q(d)} as varchar)')}" for d in drift) + "))"
        if drift else "null::json"
    )
    checks = _checks(contract, src, as_of)
    reason = "case " + " ".join(f"when {cond} then {lit(r)}" for cond, r, _ in checks) + " end"
    detail = "case " + " ".join(f"when {cond} then {d}" for cond, _, d in checks) + " end"
    pk = ", ".join(f"t_{k}" for k in src.primary_key)
    content = ", ".join([f"t_{c.name}" for c in contract.columns] + ["_extra"])
    dup_key_cols = ", ".join(f"t_{k} as _dk_{k}" for k in src.primary_key)
    same_key = " and ".join(f"t.t_{k} is not distinct from dk._dk_{k}" for k in src.primary_key)
    # Keys that occur more than once, typed as the rows will be (a superset of the keys that lose a
    # tie: a row that fails a check still counts here). Usually none: one hash aggregate over the
    # key columns alone, not over the typed rows.
    dup_keys_sql = (
        f"""create or replace temp table _dup_keys as
        with r as (select {", ".join(raw_cols[k] for k in src.primary_key)} from _src),
        t as (select {", ".join(typed_cols[k] for k in src.primary_key)} from r)
        select {pk} from t group by all having count(*) > 1"""
    )
    # Raw PII (r_phone, r_email) never leaves this statement: only its hash reaches the file. The
    # other raw texts are kept for the rows the quarantine may show (a failed check, a key that
    # occurs more than once); a loaded row is written by its typed columns only.
    kept_raw = ", ".join(
        f"case when _reason is not null or _repeated then r_{c.name} end as r_{c.name}"
        for c in contract.columns if not c.pii)
    raw_pii = ", ".join(f"r_{c.name}" for c in contract.columns if c.pii)
    typed_sql = (
        f"""create or replace table typed as
        with r as (select _file, _line, _rownum, {extra} as _extra, {", ".join(raw_cols.values())} from _src),
        t as (select *, {", ".join(typed_cols.values())} from r),
        c as (select t.*, {reason} as _reason, {detail} as _detail, dk._repeated is not null as _repeated
              from t left join (select {dup_key_cols}, true as _repeated from _dup_keys) as dk on {same_key})
        select * {f"exclude ({raw_pii})" if raw_pii else ""} {f"replace ({kept_raw})" if kept_raw else ""},
            null::varchar as _dup
        from c"""
    )
    # Of the rows that pass the checks, the last row of a key wins; the others are duplicates
    # ('duplicate_row' when identical to the winner). Only the rows of repeated keys are ranked.
    dup_sql = (
        f"""update typed set _dup = d._dup
        from (select _rownum,
                case when _rn = 1 then null when _md5 = _winner_md5 then 'duplicate_row'
                     else 'duplicate_key' end as _dup
              from (select _rownum, _md5,
                      row_number() over (partition by {pk} order by _rownum desc) as _rn,
                      first_value(_md5) over (partition by {pk} order by _rownum desc) as _winner_md5
                    from (select _rownum, {pk}, md5(row({content})::varchar) as _md5 from typed
                          where _reason is null and _repeated))) as d
        where typed._rownum = d._rownum and d._dup is not null"""
    )
    try:
        for sql in (dup_keys_sql, typed_sql, dup_sql):
            con.execute(sql, {"salt": salt} if "$salt" in sql else None)
        con.execute("drop table _dup_keys")
    except duckdb.BinderException as exc:
        raise SourceError(f"source {src.name!r}: a column mapping does not fit the source's columns "
                          f"({', '.join(sorted(source_cols))}): {str(exc).splitlines()[0]}") from None
    except duckdb.Error as exc:  # a {sql: ...} expression failed on a value, which may be a phone or email
        raise SourceError(f"source {src.name!r}: a column expression failed: "
                          f"{mask_text(str(exc).splitlines()[0])}. Make it total: try_cast(...) instead of "
                          f"cast(...), try_strptime(...) instead of strptime(...)") from None
    return drift
