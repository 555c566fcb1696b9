"""Publish the marts to PostgreSQL in ONE transaction: BI tools see the old marts or the new, never a mix.

Runs after the DuckDB publication (flows/publish/duckdb_file.py), from the just-published file opened read-only:

1. One psycopg2 transaction. A transaction-scoped advisory lock keeps two liucun publishers of the
   same schema apart (the second is refused at once).
2. Refuse, before copying anything, when the target schema exists, is not empty and was not
   created by liucun (no ``liucun publication`` comment), or when objects liucun did not create
   depend on it: views, materialized views or foreign keys on its tables (in any schema), or
   views, functions, sequences inside it. ``DROP SCHEMA ... CASCADE`` would silently drop a BI
   user's views; we list them and stop. The drops below are RESTRICT, never CASCADE, so an object
   created during the publish stops it too.
3. Create a staging schema ``liucun_staging_<version>`` with one table per mart (PostgreSQL types,
   see :func:`pg_column`), loaded with COPY from CSV that DuckDB writes (one table at a time into a
   temporary folder under ``TMPDIR``); table and column comments copied; row counts checked. The
   grants on the old schema and its tables are carried over (a new mart gets the grants every old
   mart had), so ``GRANT SELECT ... TO bi_reader`` survives a swap.
4. Take ACCESS EXCLUSIVE locks on the old mart tables: for the first half of ``lock_timeout`` by
   polling with NOWAIT (readers never queue behind the publisher, and a reader that locks marts in
   another order cannot deadlock with it), for the second half by waiting. Not granted in time:
   roll back, name the sessions holding the locks; the old marts stay.
5. DROP the old tables and schema, RENAME the staging schema to the target, insert the publication
   into ``<audit_schema>.publications`` (append-only, ``publication_id`` increasing), COMMIT.

DDL is transactional in PostgreSQL: until COMMIT every other session sees the old schema, and a
statement blocked by the swap's locks runs after COMMIT on the new tables, with a snapshot that
also sees the new audit row. Any error rolls everything back. The DSN is never shown unmasked.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg2
from psycopg2 import errors as pg_errors
from psycopg2 import sql

from flows.ingest.readers import _mask_dsn, lit, q

MARKER = "liucun publication"
_ADVISORY_NAMESPACE = 7_412_019  # first key of pg_advisory_xact_lock(int, int) for liucun publishers
_PRIVILEGES = {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER",
               "USAGE", "CREATE", "MAINTAIN"}
_SIMPLE_TYPES = {
    "VARCHAR": "text", "BIGINT": "bigint", "INTEGER": "integer", "SMALLINT": "smallint",
    "TINYINT": "smallint", "UTINYINT": "smallint", "USMALLINT": "integer", "UINTEGER": "bigint",
    "UBIGINT": "numeric(20,0)", "HUGEINT": "numeric(39,0)", "UHUGEINT": "numeric(39,0)",
    "DOUBLE": "double precision", "FLOAT": "real", "BOOLEAN": "boolean", "DATE": "date",
    "TIME": "time", "TIMESTAMP": "timestamp", "TIMESTAMP_S": "timestamp", "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_NS": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "TIME WITH TIME ZONE": "timetz", "INTERVAL": "interval", "UUID": "uuid", "JSON": "jsonb",
}


class PostgresPublishError(RuntimeError):
    """The marts could not be published to PostgreSQL; the transaction was rolled back."""


class PostgresUnreachable(PostgresPublishError):
    """The server could not be reached or the connection dropped: worth retrying."""


class PostgresLockTimeout(PostgresPublishError):
    """Readers held the old marts longer than ``lock_timeout``."""


class PostgresDependentObjects(PostgresPublishError):
    """Objects liucun did not create depend on the marts schema; they would be dropped."""


class PostgresPublishFailed(RuntimeError):
    """Raised by the flow when the DuckDB publication succeeded and the PostgreSQL one did not.

    ``summary`` is the run's result dict (with ``postgres.published`` false), so the CLI can still
    print what was published. (``summary`` has a default so that the exception pickles.)
    """

    def __init__(self, message: str, summary: dict | None = None) -> None:
        super().__init__(message)
        self.summary = summary or {}


@dataclass
class PostgresPublication:
    dsn: str  # masked
    schema: str
    audit_table: str
    version: str
    row_counts: dict[str, int]
    previous_version: str | None
    seconds: float


def _password(dsn: str) -> str | None:
    try:
        return psycopg2.extensions.parse_dsn(dsn).get("password") or None
    except psycopg2.Error:
        return None


def masked_dsn(dsn: str) -> str:
    """The DSN as it may be shown: the password replaced by ``***`` (URL and key=value forms).
    A DSN libpq cannot parse is not shown at all: where its password is cannot be known."""
    try:
        psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.Error:
        return "<unparseable DSN>"
    shown = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", dsn)
    shown = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", r"\1***", shown, flags=re.I)
    pw = _password(dsn)
    return shown.replace(pw, "***") if pw else shown


def redact(text: str, dsn: str) -> str:
    """``text`` (an error message) with the DSN masked and its password removed wherever it is."""
    if not dsn:
        return text
    hole = "\x00dsn\x00"
    out = _mask_dsn(text.replace(dsn, hole), dsn).replace(hole, masked_dsn(dsn))  # readers' masking
    pw = _password(dsn)
    return out.replace(pw, "***") if pw else out


def _sentence(exc: BaseException, dsn: str) -> str:
    """A driver message on one line, redacted, ending in punctuation."""
    text = redact(" ".join(str(exc).split()), dsn)
    return text if text.endswith((".", "?", "!")) else text + "."


def pg_column(duck_type: str) -> tuple[str, str]:
    """(PostgreSQL type, DuckDB expression template for ``{c}``) for a DuckDB column type.

    Nested values (lists, structs, maps) go out as JSON into jsonb; blobs as hex into bytea; types
    PostgreSQL has no equivalent of (ENUM, BIT, VARINT, ...) as their text form.
    """
    t = duck_type.upper()
    if m := re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", t):
        return f"numeric({m[1]},{m[2]})", "{c}"
    if t.endswith("]") or t.startswith(("STRUCT", "MAP", "UNION")):
        return "jsonb", "to_json({c})"
    if t == "BLOB":
        return "bytea", "'\\x' || hex({c})"
    if t in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[t], "{c}"
    return "text", "{c}::varchar"


def _staging_name(version: str) -> str:
    return ("liucun_staging_" + re.sub(r"[^a-z0-9_]", "_", version.lower()))[:63]


def _read_publication(duck: duckdb.DuckDBPyConnection, path: Path, run_id: str, version: str) -> tuple:
    row = duck.execute(
        "select run_id, version, published_at, as_of_date, gates::varchar, row_counts::varchar "
        "from audit.publications order by published_at desc limit 1").fetchone()
    if row is None or row[0] != run_id or row[1] != version:
        raise PostgresPublishError(
            f"{path} holds publication {row[1] if row else 'none'}, not {version} of run {run_id}: "
            "a newer run replaced it (that run publishes to PostgreSQL itself); nothing was published")
    return row


def _blockers(cur, schema: str) -> list[str]:
    """Objects liucun did not create that depend on ``schema`` or live in it (see step 2)."""
    cur.execute(
        """with s as (select oid from pg_namespace where nspname = %(s)s)
        select format('%%s %%I.%%I', case v.relkind when 'm' then 'materialized view' else 'view' end,
                      vn.nspname, v.relname)
        from pg_depend d
        join pg_rewrite r on d.classid = 'pg_rewrite'::regclass and d.objid = r.oid
        join pg_class v on v.oid = r.ev_class join pg_namespace vn on vn.oid = v.relnamespace
        join pg_class t on d.refclassid = 'pg_class'::regclass and d.refobjid = t.oid
        where t.relnamespace = (select oid from s) and v.oid <> t.oid
        union
        select format('foreign key %%I on %%I.%%I', con.conname, cn.nspname, ct.relname)
        from pg_constraint con join pg_class ct on ct.oid = con.conrelid
        join pg_namespace cn on cn.oid = ct.relnamespace join pg_class rt on rt.oid = con.confrelid
        where con.contype = 'f' and rt.relnamespace = (select oid from s)
          and ct.relnamespace <> (select oid from s)
        union
        select format('%%s %%I.%%I', case c.relkind when 'v' then 'view' when 'm' then 'materialized view'
                      when 'S' then 'sequence' when 'f' then 'foreign table'
                      when 'p' then 'partitioned table' else 'relation' end, %(s)s, c.relname)
        from pg_class c where c.relnamespace = (select oid from s) and c.relkind not in ('r', 'i', 'I', 't')
        union
        select format('function %%I.%%I', %(s)s, p.proname)
        from pg_proc p where p.pronamespace = (select oid from s)
        order by 1""", {"s": schema})
    return [r[0] for r in cur.fetchall()]


def _old_schema(cur, schema: str) -> tuple[bool, str | None, list[str]]:
    """(exists, previous liucun version or None, its tables); refuses a schema that is not ours."""
    cur.execute("select obj_description(oid, 'pg_namespace') from pg_namespace where nspname = %s",
                [schema])
    row = cur.fetchone()
    if row is None:
        return False, None, []
    cur.execute("select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = %s and c.relkind = 'r' order by 1", [schema])
    tables = [r[0] for r in cur.fetchall()]
    blockers = _blockers(cur, schema)
    comment = row[0] or ""
    if not comment.startswith(MARKER) and (tables or blockers):
        raise PostgresPublishError(
            f"schema {schema} exists and was not created by liucun (its comment does not start with "
            f"{MARKER!r}): refusing to replace it. Publish to another schema, or drop it yourself")
    if blockers:
        raise PostgresDependentObjects(
            f"objects liucun did not create depend on schema {schema}, and the swap would drop them: "
            f"{'; '.join(blockers)}. liucun never drops them (no CASCADE): move such views onto "
            f"another schema's copy, or drop them, then run again")
    previous = (comment[len(MARKER):].split() or [None])[0] if comment.startswith(MARKER) else None
    return True, previous, tables


def _copy_marts(cur, duck: duckdb.DuckDBPyConnection, staging: str, log: logging.Logger) -> dict[str, int]:
    """Create every mart in ``staging`` and COPY its rows in; returns the row counts (checked)."""
    tables = duck.execute("select table_name, comment from duckdb_tables() where schema_name = 'marts' "
                          "order by table_name").fetchall()
    if not tables:
        raise PostgresPublishError("the published DuckDB file has no marts: nothing to publish")
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="liucun-pgpublish-") as tmp:
        for table, comment in tables:
            cols = duck.execute("select column_name, data_type, comment from duckdb_columns() "
                                "where schema_name = 'marts' and table_name = ? order by column_index",
                                [table]).fetchall()
            mapped = [(name, *pg_column(dtype), ccomment) for name, dtype, ccomment in cols]
            target = sql.Identifier(staging, table)
            cur.execute(sql.SQL("create table {} ({})").format(target, sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(pg_type)) for n, pg_type, _, _ in mapped)))
            csv_path = Path(tmp) / "mart.csv"
            select = ", ".join(expr.format(c=q(n)) + f" as {q(n)}" for n, _, expr, _ in mapped)
            expected = duck.execute(f"copy (select {select} from marts.{q(table)}) to {lit(str(csv_path))} "
                                    "(format csv, header false)").fetchone()[0]  # type: ignore[index]
            with csv_path.open("rb") as fh:
                cur.copy_expert(sql.SQL("copy {} ({}) from stdin with (format csv)").format(
                    target, sql.SQL(", ").join(sql.Identifier(n) for n, *_ in mapped)), fh, size=1 << 20)
            if cur.rowcount != expected:
                raise PostgresPublishError(f"mart {table}: DuckDB wrote {expected} rows, COPY loaded "
                                           f"{cur.rowcount}: refusing a partial publication")
            csv_path.unlink()
            counts[table] = expected
            # planner statistics before readers come: a fresh table has none until autovacuum
            # gets to it, and a BI tool's joins would be planned on default estimates meanwhile
            cur.execute(sql.SQL("analyze {}").format(target))
            if comment:
                cur.execute(sql.SQL("comment on table {} is {}").format(target, sql.Literal(comment)))
            for n, _, _, ccomment in mapped:
                if ccomment:
                    cur.execute(sql.SQL("comment on column {} is {}").format(
                        sql.Identifier(staging, table, n), sql.Literal(ccomment)))
            log.debug("postgres: %s.%s loaded (%d rows)", staging, table, expected)
    return counts


def _grantee(role: str | None) -> sql.Composable:
    return sql.SQL("public") if role is None else sql.Identifier(role)


def _carry_grants(cur, schema: str, staging: str, new_tables: list[str], old_tables: list[str]) -> None:
    """Give the new schema and tables the grants the old ones had (``with grant option`` kept)."""
    acl = """select case when a.grantee = 0 then null else pg_get_userbyid(a.grantee) end,
                    a.privilege_type, a.is_grantable"""
    cur.execute(acl + " from pg_namespace n, aclexplode(n.nspacl) a "
                "where n.nspname = %s and a.grantee <> n.nspowner", [schema])
    grants: list[tuple[sql.Composable, str, str | None, bool]] = [
        (sql.SQL("schema {}").format(sql.Identifier(staging)), p, r, g) for r, p, g in cur.fetchall()]
    cur.execute("select c.relname, x.* from pg_class c join pg_namespace n on n.oid = c.relnamespace, "
                "lateral (" + acl + " from aclexplode(c.relacl) a where a.grantee <> c.relowner) x "
                "where n.nspname = %s and c.relkind = 'r'", [schema])
    per_table: dict[str, set[tuple]] = {t: set() for t in old_tables}
    for table, role, privilege, grantable in cur.fetchall():
        per_table[table].add((role, privilege, grantable))
    common = set.intersection(*per_table.values()) if per_table else set()
    for t in new_tables:
        for role, privilege, grantable in per_table.get(t, common):
            grants.append((sql.SQL("table {}").format(sql.Identifier(staging, t)), privilege, role, grantable))
    for target, privilege, role, grantable in grants:
        if privilege not in _PRIVILEGES:
            continue
        cur.execute(sql.SQL("grant {} on {} to {}{}").format(
            sql.SQL(privilege), target, _grantee(role),
            sql.SQL(" with grant option" if grantable else "")))


def _lock_holders(cur, schema: str) -> str:
    cur.execute(
        """select l.pid, coalesce(a.usename::text, '?'), coalesce(nullif(a.application_name, ''), '?'),
                  coalesce(a.state, '?'), to_char(a.xact_start, 'YYYY-MM-DD HH24:MI:SS TZ'),
                  string_agg(distinct c.relname, ', ')
           from pg_locks l join pg_class c on c.oid = l.relation
           join pg_namespace n on n.oid = c.relnamespace left join pg_stat_activity a on a.pid = l.pid
           where n.nspname = %s and l.granted and l.pid <> pg_backend_pid()
           group by 1, 2, 3, 4, 5 order by 1""", [schema])
    return "; ".join(f"pid {p} (user {u}, application {app}, {st}, transaction since {since}) on {rels}"
                     for p, u, app, st, since, rels in cur.fetchall()) or "no session (it ended meanwhile)"


def _lock_old_tables(cur, schema: str, tables: list[str], lock_timeout: float) -> None:
    """ACCESS EXCLUSIVE on every old mart: NOWAIT polling, then waiting (see step 4)."""
    if not tables:
        return
    stmt = sql.SQL("lock table {} in access exclusive mode").format(
        sql.SQL(", ").join(sql.Identifier(schema, t) for t in tables))
    start = time.monotonic()
    while time.monotonic() - start < lock_timeout / 2:
        cur.execute("savepoint liucun_lock")
        try:
            cur.execute(stmt + sql.SQL(" nowait"))
            cur.execute("release savepoint liucun_lock")
            return
        except pg_errors.LockNotAvailable:
            cur.execute("rollback to savepoint liucun_lock")
            time.sleep(0.05)
    cur.execute("savepoint liucun_lock")
    remaining_ms = max(int((lock_timeout - (time.monotonic() - start)) * 1000), 100)
    try:
        cur.execute(f"set local lock_timeout = {remaining_ms}")
        cur.execute(stmt)
        cur.execute("release savepoint liucun_lock")
    except (pg_errors.LockNotAvailable, pg_errors.DeadlockDetected):
        cur.execute("rollback to savepoint liucun_lock")
        raise PostgresLockTimeout(
            f"could not get exclusive access to the marts in schema {schema} within {lock_timeout:g}s "
            f"(lock_timeout): {_lock_holders(cur, schema)}. End those transactions, or run again "
            "when BI load is lower") from None


def _swap(cur, schema: str, staging: str, old_tables: list[str], exists: bool, comment: str) -> None:
    for t in old_tables:
        cur.execute(sql.SQL("drop table {} restrict").format(sql.Identifier(schema, t)))
    if exists:
        cur.execute(sql.SQL("drop schema {} restrict").format(sql.Identifier(schema)))
    cur.execute(sql.SQL("alter schema {} rename to {}").format(sql.Identifier(staging), sql.Identifier(schema)))
    cur.execute(sql.SQL("comment on schema {} is {}").format(sql.Identifier(schema), sql.Literal(comment)))


def _record(cur, audit_schema: str, schema: str, publication: tuple) -> None:
    audit = sql.Identifier(audit_schema)
    cur.execute(sql.SQL("create schema if not exists {}").format(audit))
    cur.execute(sql.SQL(
        """create table if not exists {}.publications (
            publication_id bigint generated always as identity primary key,
            run_id text not null, version text not null, published_at timestamp, as_of_date date,
            gates jsonb, row_counts jsonb, postgres_schema text not null,
            postgres_published_at timestamptz not null default clock_timestamp())""").format(audit))
    cur.execute(sql.SQL(
        "comment on table {}.publications is {}").format(audit, sql.Literal(
            "One row per publication of the liucun marts to PostgreSQL (mirrors audit.publications of "
            "the DuckDB file); the row with the highest publication_id is what the marts schema holds.")))
    cur.execute(sql.SQL("insert into {}.publications (run_id, version, published_at, as_of_date, gates, "
                        "row_counts, postgres_schema) values (%s, %s, %s, %s, %s, %s, %s)").format(audit),
                [*publication, schema])


def _rollback(con) -> None:
    if not con.closed:
        try:
            con.rollback()
        except psycopg2.Error:
            pass  # the connection broke: the server rolls the transaction back itself


def publish_to_postgres(published_duckdb: Path, dsn: str, run_id: str, version: str,
                        schema: str = "marts", audit_schema: str = "audit", lock_timeout: float = 10.0,
                        log: logging.Logger | None = None) -> PostgresPublication:
    """Copy every ``marts.*`` table and the publication's ``audit.publications`` row of the
    published DuckDB file into PostgreSQL, swapping ``schema`` in one transaction (module docstring)."""
    log = log or logging.getLogger(__name__)
    shown = masked_dsn(dsn)
    if audit_schema == schema:
        raise PostgresPublishError(f"the audit schema must differ from the marts schema ({schema}): "
                                   "it would be replaced with the marts")
    started = time.monotonic()
    where = f"PostgreSQL publish to {shown} (schema {schema})"
    try:
        con = psycopg2.connect(dsn, connect_timeout=10, application_name="liucun publish")
    except psycopg2.OperationalError as exc:
        raise PostgresUnreachable(f"{where}: cannot connect: {_sentence(exc, dsn)} Check that the server "
                                  "runs and the DSN is right") from None
    except psycopg2.Error:
        raise PostgresPublishError(f"{where}: the DSN is not valid (expected postgresql://user@host:port/db "
                                   "or 'host=... dbname=...')") from None
    try:
        with duckdb.connect(str(published_duckdb), read_only=True) as duck, con.cursor() as cur:
            duck.execute("set TimeZone = 'UTC'")
            publication = _read_publication(duck, published_duckdb, run_id, version)
            cur.execute("set local lock_timeout = %s", [f"{int(lock_timeout * 1000)}ms"])
            cur.execute("set local idle_in_transaction_session_timeout = 0")  # DuckDB writes CSV between COPYs
            cur.execute("set local timezone = 'UTC'")
            cur.execute("select pg_try_advisory_xact_lock(%s, hashtext(%s))", [_ADVISORY_NAMESPACE, schema])
            if not cur.fetchone()[0]:
                raise PostgresPublishError(f"another liucun publish to schema {schema} is running in "
                                           "this database; let it finish, then run again")
            exists, previous, old_tables = _old_schema(cur, schema)
            staging = _staging_name(version)
            cur.execute(sql.SQL("create schema {}").format(sql.Identifier(staging)))
            counts = _copy_marts(cur, duck, staging, log)
            if exists:
                _carry_grants(cur, schema, staging, list(counts), old_tables)
            log.info("postgres: %d marts staged in %s; swapping %s", len(counts), staging, schema)
            _lock_old_tables(cur, schema, old_tables, lock_timeout)
            _swap(cur, schema, staging, old_tables, exists,
                  f"{MARKER} {version} (run {run_id}, as of {publication[3]}): replaced as a whole on "
                  "every publish; objects created here are refused")
            _record(cur, audit_schema, schema, publication)
        con.commit()
    except PostgresPublishError as exc:
        _rollback(con)
        raise type(exc)(f"{where}: {redact(str(exc), dsn)}. The previous marts in PostgreSQL are "
                        "unchanged") from None
    except psycopg2.Error as exc:
        lost = bool(con.closed) or (isinstance(exc, psycopg2.OperationalError) and exc.pgcode is None)
        _rollback(con)
        kind = (PostgresUnreachable if lost else PostgresLockTimeout if isinstance(exc, pg_errors.LockNotAvailable)
                else PostgresDependentObjects if isinstance(exc, pg_errors.DependentObjectsStillExist)
                else PostgresPublishError)
        text = exc.diag.message_primary or str(exc)
        if exc.diag.message_detail:
            text += f" ({exc.diag.message_detail})"
        raise kind(f"{where}: {'connection lost: ' if lost else ''}{_sentence(Exception(text), dsn)} The "
                   "transaction was rolled back; the previous marts in PostgreSQL are unchanged") from None
    except BaseException:
        _rollback(con)
        raise
    finally:
        con.close()
    return PostgresPublication(shown, schema, f"{audit_schema}.publications", version, counts, previous,
                               time.monotonic() - started)
