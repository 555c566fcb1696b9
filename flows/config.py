"""The project config (``liucun.yml``): which sources to pull and how they map onto the contracts.

Example::

    business_timezone: Asia/Shanghai
    data_dir: ${LIUCUN_DATA_DIR}          # relative paths resolve against this file's folder
    sources:
      crm_customers:
        kind: customers                    # a contract in flows/ingest/contracts.py
        files: {path: "crm/*.csv", format: csv}
        timezone: Asia/Shanghai            # for timestamps written without an offset
        primary_key: [crm_id]              # default: the contract's
        columns: {crm_id: CustomerNo}      # canonical <- source column; default: same name
      orders_db:
        kind: orders
        postgres:
          dsn_env: LIUCUN_SHOP_DSN         # or dsn_secret: <Prefect Secret block name>
          table: commerce.orders           # or query: "select ... from ..."
          cursor: updated_at               # incremental: rows with cursor >= last seen - overlap
          overlap_minutes: 60
        columns:
          net_amount: {sql: "total - coalesce(discount, 0)"}   # an SQL expression over source columns

Every value that reaches SQL is validated here (names, expressions, timezones) or bound/quoted at
use (paths, DSNs); tests/unit/test_config_injection.py lists each one with its defence.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import yaml

from flows.ingest.contracts import CONTRACTS

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SOURCE_COLUMN_RE = re.compile(r"^[^\"\x00]{1,128}$")
FILE_FORMATS = ("csv", "jsonl", "parquet", "xlsx")
FILE_KEYS = {"path", "format", "encoding", "sheet", "delimiter", "quote", "header", "max_line_bytes"}
DELIMITERS = {",": ",", ";": ";", "\t": "\t", "tab": "\t", "|": "|", "whitespace": "whitespace"}
# strptime formats a timestamp column may be given in (per column `format:`): only these directives
_FORMAT_RE = re.compile(r"^(?:[^%'\x00]|%[YmdHMSfzZbBaAjpIy%T])+$")


class ConfigError(ValueError):
    """The config file is wrong; the message says where and what to do."""


@dataclass(frozen=True)
class PostgresConnector:
    dsn_env: str | None
    dsn_secret: str | None
    table: str | None
    query: str | None
    cursor: str | None
    overlap_minutes: int = 60


@dataclass(frozen=True)
class SourceConfig:
    name: str
    kind: str
    path: str  # files: glob, relative to data_dir ("" for database sources)
    format: str  # csv | jsonl | parquet | xlsx | postgres
    timezone: str
    columns: dict[str, str]  # canonical column -> source column
    primary_key: tuple[str, ...]
    encoding: str = "utf-8"
    delimiter: str | None = None  # csv: None = detected from the header line; "whitespace"
    quote: str | None = '"'  # csv: None = no quoting
    header: bool = True  # csv: False = columns are named column1, column2, ...
    max_line_bytes: int = 1_000_000  # longer lines are quarantined as oversized_line
    formats: dict[str, tuple[str, ...]] = field(default_factory=dict)  # column -> strptime formats
    expressions: dict[str, str] = field(default_factory=dict)  # canonical column -> SQL expression
    sheet: str | None = None  # xlsx
    postgres: PostgresConnector | None = None
    max_quarantine_share: float = 0.05  # the raw gate blocks a load that quarantines more
    # the raw gate warns (blocks) when the source's newest record is older than this many days
    # before the as-of date; None: not checked at that severity
    freshness_warn_days: float | None = None
    freshness_error_days: float | None = None

    def source_column(self, canonical: str) -> str:
        return self.columns.get(canonical, canonical)

    @property
    def location(self) -> str:
        if self.postgres:
            pg = self.postgres
            return f"postgres:{pg.table or 'query'}" + (f" (cursor {pg.cursor})" if pg.cursor else "")
        return self.path


@dataclass(frozen=True)
class ProjectConfig:
    path: Path
    data_dir: Path
    business_timezone: str
    sources: list[SourceConfig] = field(default_factory=list)
    # each mart's row count against the last publication: (low, high) factors; outside the
    # warn band is reported, outside the block band stops the publication
    row_count_band_warn: tuple[float, float] = (0.8, 1.25)
    row_count_band_block: tuple[float, float] = (0.5, 2.0)
    row_count_band_min_rows: int = 50  # marts that had fewer rows last time are not banded
    # the staging gate's plausibility floor for record dates (history older than this is an error)
    earliest_date: date = date(1970, 1, 1)
    # an order counts as activity when its net amount is above this (dbt var min_qualifying_amount)
    min_qualifying_amount: float = 0.0
    engine: EngineConfig = field(default_factory=lambda: EngineConfig())


ENGINES = ("duckdb", "spark")
SPARK_METHODS = ("session", "thrift")
# dbt-spark's (and PyHive's) thrift authentication mechanisms; LDAP and CUSTOM take a password
THRIFT_AUTH = ("NONE", "NOSASL", "LDAP", "KERBEROS", "CUSTOM")
_THRIFT_KEYS = {"host", "port", "user", "auth", "password_env", "password_secret", "kerberos_service_name"}
# Spark settings that carry credentials come from the environment (or the cluster's own config),
# never from liucun.yml: a conf key naming one is refused
_SECRET_CONF_RE = re.compile(r"(password|secret|token|credential|access\.key|secret\.key)", re.IGNORECASE)


@dataclass(frozen=True)
class SparkConfig:
    """``spark:`` in liucun.yml (with ``engine: spark``): how to reach Spark and where liucun keeps
    its tables. ``location`` None: ``<warehouse>/spark``."""

    method: str = "session"
    master: str | None = None  # None: a SparkSession already running in the process, else local[*]
    location: str | None = None
    database_prefix: str = "liucun_"
    conf: tuple[tuple[str, str], ...] = ()
    # method thrift: a Spark Thrift Server (HiveServer2 protocol), as dbt-spark's thrift method;
    # its password comes from the environment (password_env) or a Prefect Secret block
    # (password_secret), never from the file
    host: str | None = None
    port: int = 10000
    user: str = "liucun"
    auth: str = "NONE"
    password_env: str | None = None
    password_secret: str | None = None
    kerberos_service_name: str | None = None


@dataclass(frozen=True)
class EngineConfig:
    """``engine:`` in liucun.yml: ``duckdb`` (the embedded default) or ``spark``."""

    name: str = "duckdb"
    spark: SparkConfig = field(default_factory=SparkConfig)


def _expand(value: str, where: str) -> str:
    def repl(m: re.Match[str]) -> str:
        var = m.group(1)
        if var not in os.environ:
            raise ConfigError(f"{where}: environment variable {var} is not set; export it or edit the config")
        return os.environ[var]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", repl, value)


def _source(name: str, raw: dict, cfg_path: Path, default_tz: str) -> SourceConfig:
    where = f"{cfg_path}: sources.{name}"
    if not _NAME_RE.match(name):
        raise ConfigError(f"{where}: a source name must be lower_snake_case (a-z, 0-9, _)")
    kind = raw.get("kind")
    if kind not in CONTRACTS:
        raise ConfigError(f"{where}.kind is {kind!r}; use one of: {', '.join(CONTRACTS)}")
    contract = CONTRACTS[kind]
    files, pg_raw = raw.get("files"), raw.get("postgres")
    if bool(files) == bool(pg_raw):
        raise ConfigError(f"{where}: give exactly one connector: `files: {{path, format}}` or `postgres: {{...}}`")
    postgres, fmt, encoding, sheet, path = None, "postgres", "utf-8", None, ""
    file_opts: dict = {}
    if files:
        if not isinstance(files, dict) or "path" not in files:
            raise ConfigError(f"{where}: needs `files: {{path: <glob>, format: csv|jsonl|parquet|xlsx}}`")
        unknown = set(files) - FILE_KEYS
        if unknown:
            raise ConfigError(f"{where}.files: unknown key(s) {sorted(unknown)}; known: {sorted(FILE_KEYS)}")
        fmt = files.get("format") or Path(str(files["path"]).removesuffix(".gz")).suffix.lstrip(".")
        if fmt not in FILE_FORMATS:
            raise ConfigError(f"{where}.files.format is {fmt!r}; use one of: {', '.join(FILE_FORMATS)}")
        encoding = _encoding(files.get("encoding", "utf-8"), f"{where}.files.encoding")
        sheet = files.get("sheet")
        path = _expand(str(files["path"]), where)
        file_opts = _file_options(files, fmt, f"{where}.files")
    else:
        postgres = _postgres(pg_raw, where)
    columns: dict[str, str] = {}
    expressions: dict[str, str] = {}
    formats: dict[str, tuple[str, ...]] = {}
    for canonical, src in dict(raw.get("columns") or {}).items():
        if canonical not in contract.column_names:
            raise ConfigError(
                f"{where}.columns: {canonical!r} is not a column of the {kind} contract "
                f"({', '.join(contract.column_names)})"
            )
        if isinstance(src, dict) and "format" in src and set(src) <= {"column", "format"}:
            formats[canonical] = _formats(src["format"], contract.column(canonical).type,
                                          f"{where}.columns.{canonical}.format")
            src = src.get("column", canonical)
        if isinstance(src, dict) and set(src) == {"sql"} and isinstance(src["sql"], str):
            expressions[canonical] = check_expression(src["sql"], f"{where}.columns.{canonical}")
        elif isinstance(src, str) and _SOURCE_COLUMN_RE.match(src):
            columns[canonical] = src
        else:
            raise ConfigError(
                f"{where}.columns.{canonical}: give a source column name (1-128 characters, no double quote), "
                f"{{sql: <expression>}} or {{column: <name>, format: <strptime format>}}, not {src!r}")
    pk = tuple(raw.get("primary_key") or contract.primary_key)
    for col in pk:
        if col not in contract.column_names:
            raise ConfigError(f"{where}.primary_key: {col!r} is not a column of {kind}")
    return SourceConfig(
        name=name,
        kind=kind,
        path=path,
        format=fmt,
        timezone=_timezone(raw.get("timezone", default_tz), f"{where}.timezone"),
        columns=columns,
        primary_key=pk,
        encoding=encoding,
        formats=formats,
        **file_opts,
        expressions=expressions,
        sheet=str(sheet) if sheet is not None else None,
        postgres=postgres,
        max_quarantine_share=_share(raw.get("max_quarantine_share", 0.05), f"{where}.max_quarantine_share"),
        **_freshness(raw.get("freshness", {}), kind, where),
    )


def _encoding(value: object, where: str) -> str:
    """Any encoding Python knows (utf-8, gbk, gb18030, big5, utf-16, latin-1, ...)."""
    import codecs

    name = str(value).strip().lower()
    try:
        codecs.lookup(name)
    except LookupError:
        raise ConfigError(f"{where} {value!r} is not an encoding; use e.g. utf-8, gb18030 (GBK exports), "
                          "big5, utf-16 or latin-1") from None
    return "utf-8" if codecs.lookup(name).name in ("utf-8", "utf-8-sig") else name


def _file_options(files: dict, fmt: str, where: str) -> dict:
    """``delimiter``, ``quote``, ``header`` (csv) and ``max_line_bytes`` (csv, jsonl)."""
    out: dict = {}
    csv_only = {"delimiter", "quote", "header"} & set(files)
    if csv_only and fmt != "csv":
        raise ConfigError(f"{where}: {sorted(csv_only)} only apply to csv files")
    if "delimiter" in files:
        d = files["delimiter"]
        if d not in DELIMITERS:
            raise ConfigError(f"{where}.delimiter {d!r}: use one of ',', ';', '|', '\\t' (or tab), or "
                              "whitespace (runs of spaces/tabs, for fixed-width text exports)")
        out["delimiter"] = DELIMITERS[d]
    if "quote" in files:
        qv = files["quote"]
        if qv in (None, "", "none", False):
            out["quote"] = None
        elif qv in ('"', "'"):
            out["quote"] = qv
        else:
            raise ConfigError(f"{where}.quote {qv!r}: use '\"', \"'\" or none")
    if "header" in files:
        if not isinstance(files["header"], bool):
            raise ConfigError(f"{where}.header must be true or false, not {files['header']!r}")
        out["header"] = files["header"]
    if "max_line_bytes" in files:
        m = files["max_line_bytes"]
        if not isinstance(m, int) or isinstance(m, bool) or not 1_000 <= m <= 1_900_000:
            raise ConfigError(f"{where}.max_line_bytes must be a whole number from 1000 to 1900000 "
                              f"(DuckDB's reader stops at 2,000,000), not {m!r}")
        out["max_line_bytes"] = m
    return out


def _formats(value: object, col_type: str, where: str) -> tuple[str, ...]:
    """strptime format(s) for a timestamp or date column, tried in order."""
    if col_type not in ("timestamp", "date"):
        raise ConfigError(f"{where}: `format` applies to timestamp and date columns only")
    formats = [value] if isinstance(value, str) else value
    if not isinstance(formats, list) or not formats or not all(isinstance(f, str) for f in formats):
        raise ConfigError(f"{where}: give a strptime format such as '%d/%m/%Y %H:%M', or a list of them")
    for f in formats:
        if not _FORMAT_RE.match(f) or "%" not in f:
            raise ConfigError(f"{where}: {f!r} is not a strptime format (directives %Y %m %d %H %M %S %f "
                              "%z %Z %b %B %a %A %j %p %I %y %T; no quotes)")
    return tuple(formats)


# Days without a new record before the raw gate warns, per kind (sparse kinds get longer).
DEFAULT_FRESHNESS_WARN_DAYS = {"campaigns": 45.0, "campaign_contacts": 45.0,
                               "cancellation_sessions": 7.0, "memberships": 7.0, "invoices": 7.0,
                               "survey_responses": 7.0, "tickets": 7.0}
# The record time a source's freshness is measured on (kinds without one are not checked).
FRESHNESS_COLUMN = {"customers": "registered_at", "orders": "ordered_at", "order_lines": "ordered_at",
                    "events": "event_ts", "tickets": "opened_at", "survey_responses": "responded_at",
                    "memberships": "started_at", "invoices": "attempted_at",
                    "cancellation_sessions": "started_at", "campaigns": "launched_at",
                    "campaign_contacts": "sent_at"}


def _freshness(raw: object, kind: str, where: str) -> dict[str, float | None]:
    """``freshness: {warn_after_days: N, error_after_days: M}`` (either may be null = not checked)."""
    where = f"{where}.freshness"
    if raw is None or kind not in FRESHNESS_COLUMN:
        if raw and kind not in FRESHNESS_COLUMN:
            raise ConfigError(f"{where}: {kind} records carry no timestamp, so freshness cannot be checked")
        return {"freshness_warn_days": None, "freshness_error_days": None}
    if not isinstance(raw, dict) or set(raw) - {"warn_after_days", "error_after_days"}:
        raise ConfigError(f"{where}: give `{{warn_after_days: N, error_after_days: M}}` (days, or null)")
    out: dict[str, float | None] = {}
    for key, field_name, default in (("warn_after_days", "freshness_warn_days",
                                      DEFAULT_FRESHNESS_WARN_DAYS.get(kind, 2.0)),
                                     ("error_after_days", "freshness_error_days", None)):
        value = raw.get(key, default)
        if value is not None:
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{where}.{key} must be a number of days or null, not {value!r}") from None
            if value < 0:
                raise ConfigError(f"{where}.{key} must be >= 0, not {value}")
        out[field_name] = value
    return out


def _bands(raw: object, where: str) -> dict:
    """``quality: {row_count_bands: {warn: [low, high], block: [low, high]}}``: factors of the last
    publication's row count per mart."""
    defaults = {"warn": (0.8, 1.25), "block": (0.5, 2.0)}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict) or set(raw) - {"row_count_bands", "earliest_date"}:
        raise ConfigError(f"{where}: known keys are `row_count_bands: {{warn: [low, high], block: [low, high]}}` "
                          "and `earliest_date: YYYY-MM-DD`")
    out_dates: dict = {}
    if "earliest_date" in raw:
        value = raw["earliest_date"]
        try:
            out_dates["earliest_date"] = value if isinstance(value, date) else date.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(f"{where}.earliest_date must be a date like 1990-01-01, not {value!r}") from None
    bands = raw.get("row_count_bands") or {}
    if not isinstance(bands, dict) or set(bands) - {*defaults, "min_rows"}:
        raise ConfigError(f"{where}.row_count_bands: give `warn` and/or `block` as [low, high] factors, "
                          "and optionally `min_rows`")
    out: dict = {}
    min_rows = bands.get("min_rows", 50)
    if not isinstance(min_rows, int) or isinstance(min_rows, bool) or min_rows < 0:
        raise ConfigError(f"{where}.row_count_bands.min_rows must be a whole number >= 0, not {min_rows!r}")
    out["row_count_band_min_rows"] = min_rows
    for name, default in defaults.items():
        value = bands.get(name, default)
        try:
            low, high = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}.row_count_bands.{name} must be [low, high], e.g. {list(default)}") from None
        if not 0 <= low <= 1 <= high:
            raise ConfigError(f"{where}.row_count_bands.{name}: need 0 <= low <= 1 <= high, not [{low}, {high}]")
        out[f"row_count_band_{name}"] = (low, high)
    return {**out, **out_dates}


def _share(value: object, where: str) -> float:
    try:
        share = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a number between 0 and 1") from None
    if not 0 <= share <= 1:
        raise ConfigError(f"{where} must be between 0 and 1, not {share}")
    return share


def _postgres(raw: object, where: str) -> PostgresConnector:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}.postgres must be a mapping")
    where = f"{where}.postgres"
    unknown = set(raw) - {"dsn_env", "dsn_secret", "table", "query", "cursor", "overlap_minutes"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    if bool(raw.get("dsn_env")) == bool(raw.get("dsn_secret")):
        raise ConfigError(f"{where}: give the connection as dsn_env (an environment variable) or dsn_secret "
                          "(a Prefect Secret block); never the DSN itself")
    if bool(raw.get("table")) == bool(raw.get("query")):
        raise ConfigError(f"{where}: give exactly one of `table` or `query`")
    table = raw.get("table")
    if table is not None and not _TABLE_RE.match(str(table)):
        raise ConfigError(f"{where}.table {table!r} is not a table name like schema.table")
    cursor = raw.get("cursor")
    if cursor is not None and not _IDENT_RE.match(str(cursor)):
        raise ConfigError(f"{where}.cursor {cursor!r} is not a column name")
    if raw.get("dsn_env") and not _IDENT_RE.match(str(raw["dsn_env"])):
        raise ConfigError(f"{where}.dsn_env {raw['dsn_env']!r} is not an environment variable name")
    return PostgresConnector(
        dsn_env=raw.get("dsn_env"), dsn_secret=raw.get("dsn_secret"), table=table,
        query=raw.get("query"), cursor=cursor, overlap_minutes=_minutes(raw.get("overlap_minutes", 60), where),
    )


def _minutes(value: object, where: str) -> int:
    try:
        minutes = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ConfigError(f"{where}.overlap_minutes must be a whole number of minutes, not {value!r}") from None
    if minutes < 0:
        raise ConfigError(f"{where}.overlap_minutes must be >= 0, not {minutes}")
    return minutes


@functools.lru_cache(maxsize=1)
def _known_timezones() -> frozenset[str]:
    import duckdb

    with duckdb.connect() as con:
        return frozenset(r[0] for r in con.execute("select name from pg_timezone_names()").fetchall())


def _timezone(value: object, where: str) -> str:
    """A timezone name reaches SQL (ingestion and dbt's business_timezone var): only known names pass."""
    tz = str(value)
    if tz not in _known_timezones():
        raise ConfigError(f"{where} {tz!r} is not a known timezone; use an IANA name such as "
                          "Asia/Shanghai, Europe/London or UTC")
    return tz


# Scalar functions that read the environment, settings, variables, secrets or the running query.
_FORBIDDEN_FUNCTIONS = {"getenv", "current_setting", "getvariable", "current_query", "which_secret",
                        "read_text", "read_blob", "query", "query_table", "postgres_query",
                        "postgres_execute", "system"}
_FORBIDDEN_CLASSES = {"SUBQUERY": "subqueries", "PARAMETER": "query parameters ($name, ?)",
                      "STAR": "* or COLUMNS(...)"}


@functools.lru_cache(maxsize=1)
def _table_functions() -> frozenset[str]:
    """Names DuckDB knows only as table functions (read_csv, glob, ...): never valid in a column."""
    import duckdb

    with duckdb.connect() as con:
        return frozenset(r[0].lower() for r in con.execute(
            "select distinct function_name from duckdb_functions() "
            "where function_type in ('table', 'table_macro', 'pragma') and function_name not in ("
            "select function_name from duckdb_functions() where function_type in ('scalar', 'aggregate', 'macro'))"
        ).fetchall())


def _walk(node: object) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def check_expression(expr: str, where: str) -> str:
    """Accept a column expression only if it is one scalar SQL expression over the source's columns:
    no second statement, no subquery, no parameter (the PII salt is one), no table, file or
    environment access. DuckDB parses ``select (<expr>) from _src``; anything but exactly that
    shape (e.g. ``x) , (y`` or ``1) from _src union select (2``) is refused.
    Raises :class:`ConfigError`."""
    import json

    import duckdb

    fix = 'write one scalar expression over the source\'s columns, e.g. {sql: "total - coalesce(discount, 0)"}'
    if ";" in expr:
        raise ConfigError(f"{where}: an expression cannot contain ';'; {fix}")
    with duckdb.connect() as con:
        ast = json.loads(con.execute("select json_serialize_sql(?)", [f"select ({expr}) from _src"]).fetchone()[0])
    statements = ast.get("statements") or []
    if ast.get("error") or len(statements) != 1:
        raise ConfigError(f"{where}: {expr!r} is not a valid SQL expression ({ast.get('error_message', '')}); {fix}")
    node = statements[0].get("node", {})
    src = node.get("from_table") or {}
    if (node.get("type") != "SELECT_NODE" or len(node.get("select_list", [])) != 1
            or src.get("type") != "BASE_TABLE" or src.get("table_name") != "_src"
            or any(node.get(k) for k in ("where_clause", "group_expressions", "group_sets", "having",
                                          "qualify", "modifiers", "sample"))
            or (node.get("cte_map") or {}).get("map")):
        raise ConfigError(f"{where}: {expr!r} is not one SQL expression; {fix}")
    parts = list(_walk(node["select_list"]))
    bad = sorted({_FORBIDDEN_CLASSES[c] for p in parts if (c := p.get("class")) in _FORBIDDEN_CLASSES}
                 | {"table functions" for p in parts if p.get("type") == "TABLE_FUNCTION"})
    if bad:
        raise ConfigError(f"{where}: {expr!r} may only use the source's columns (no {', '.join(bad)}); {fix}")
    names = {str(p["function_name"]).lower() for p in parts if "function_name" in p}
    banned = names & (_FORBIDDEN_FUNCTIONS | _table_functions())
    if banned:
        raise ConfigError(f"{where}: {expr!r} calls {sorted(banned)}, which is not allowed in a column "
                          f"expression; {fix}")
    return expr


def load_config(path: Path | str) -> ProjectConfig:
    """Read and validate ``liucun.yml``; raise :class:`ConfigError` naming the bad key."""
    cfg_path = Path(path).resolve()
    if not cfg_path.is_file():
        raise ConfigError(f"config file {cfg_path} does not exist")
    try:
        raw = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{cfg_path}: not valid YAML{where}: {problem}. Check the indentation (spaces, "
                          "not tabs) and the quoting on that line") from None
    tz = _timezone(raw.get("business_timezone", "Asia/Shanghai"), f"{cfg_path}: business_timezone")
    data_dir = Path(_expand(str(raw.get("data_dir", ".")), f"{cfg_path}: data_dir"))
    if not data_dir.is_absolute():
        data_dir = (cfg_path.parent / data_dir).resolve()
    sources_raw = raw.get("sources") or {}
    if not isinstance(sources_raw, dict) or not sources_raw:
        raise ConfigError(f"{cfg_path}: `sources:` must map source names to their settings")
    sources = [_source(n, s or {}, cfg_path, tz) for n, s in sources_raw.items()]
    return ProjectConfig(cfg_path, data_dir, tz, sources, **_bands(raw.get("quality"), f"{cfg_path}: quality"),
                         **_activity(raw.get("activity"), f"{cfg_path}: activity"),
                         engine=engine_config(raw.get("engine"), raw.get("spark"), cfg_path))


def engine_config(name: object, spark: object, cfg_path: Path | str = "liucun.yml") -> EngineConfig:
    """``engine:`` and ``spark:`` of liucun.yml (both optional)."""
    name = "duckdb" if name is None else name
    if name not in ENGINES:
        raise ConfigError(f"{cfg_path}: engine must be one of {', '.join(ENGINES)}, not {name!r}")
    if spark is None:
        return EngineConfig(str(name))
    where = f"{cfg_path}: spark"
    if not isinstance(spark, dict):
        raise ConfigError(f"{where} must be a mapping (method, master, location, database_prefix, conf)")
    if "password" in spark or "token" in spark:
        raise ConfigError(f"{where}: never put a password or token in liucun.yml; give `password_env` (an "
                          "environment variable) or `password_secret` (a Prefect Secret block)")
    unknown = set(spark) - {"method", "master", "location", "database_prefix", "conf"} - _THRIFT_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    method = spark.get("method", "session")
    if method not in SPARK_METHODS:
        raise ConfigError(
            f"{where}.method: {method!r} is not available in this version of liucun; use `session` (a "
            "SparkSession in the run's process: local, or a cluster through `master`) or `thrift` (a Spark "
            "Thrift Server); see the README's Spark section")
    prefix = str(spark.get("database_prefix", "liucun_"))
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}_", prefix):
        raise ConfigError(f"{where}.database_prefix {prefix!r}: lower-case letters, digits and _, ending in _")
    conf = spark.get("conf") or {}
    if not isinstance(conf, dict):
        raise ConfigError(f"{where}.conf must map Spark settings to values")
    for key in conf:
        if not re.fullmatch(r"spark\.[A-Za-z0-9_.\-]+", str(key)):
            raise ConfigError(f"{where}.conf: {key!r} is not a Spark setting (spark.*)")
        if _SECRET_CONF_RE.search(str(key)):
            raise ConfigError(f"{where}.conf: {key!r} carries a credential; give it through the environment "
                              "or the cluster's own configuration, never in liucun.yml")
    location = spark.get("location")
    if location is not None:
        location = _expand(str(location), f"{where}.location")
        if "://" not in location and not Path(location).is_absolute():
            location = str((Path(cfg_path).parent / location).resolve())
    master = spark.get("master")
    thrift = _thrift(spark, method, where) if method == "thrift" else {}
    if method == "session":
        given = sorted(set(spark) & _THRIFT_KEYS)
        if given:
            raise ConfigError(f"{where}: {given} belong to `method: thrift`; a session runs in this process")
    elif master is not None:
        raise ConfigError(f"{where}.master: a Thrift Server has its own master; `master` is for `method: session`")
    return EngineConfig(str(name), SparkConfig(
        method=str(method), master=None if master is None else str(master), location=location,
        database_prefix=prefix, conf=tuple(sorted((str(k), str(v)) for k, v in conf.items())), **thrift))


def _thrift(spark: dict, method: str, where: str) -> dict:
    """The ``method: thrift`` keys of ``spark:``: where the Thrift Server is and how to log in."""
    host = spark.get("host")
    if not host or not isinstance(host, str):
        raise ConfigError(f"{where}.host: `method: thrift` needs the Thrift Server's host name")
    host = _expand(host, f"{where}.host")
    port = spark.get("port", 10000)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"{where}.port must be a port number, not {port!r}")
    auth = str(spark.get("auth", "NONE")).upper()
    if auth not in THRIFT_AUTH:
        raise ConfigError(f"{where}.auth: {auth!r}; use one of {', '.join(THRIFT_AUTH)}")
    password_env, password_secret = spark.get("password_env"), spark.get("password_secret")
    if password_env and password_secret:
        raise ConfigError(f"{where}: give the password as password_env or password_secret, not both")
    wants_password = auth in ("LDAP", "CUSTOM")
    if wants_password != bool(password_env or password_secret):
        raise ConfigError(
            f"{where}: auth {auth} " + ("needs a password: password_env (an environment variable) or "
                                        "password_secret (a Prefect Secret block), never the password itself"
                                        if wants_password else "takes no password (LDAP and CUSTOM do)"))
    service = spark.get("kerberos_service_name")
    if service is not None and auth != "KERBEROS":
        raise ConfigError(f"{where}.kerberos_service_name is for auth KERBEROS, not {auth}")
    return {"host": host, "port": port, "user": _expand(str(spark.get("user", "liucun")), f"{where}.user"),
            "auth": auth, "password_env": password_env, "password_secret": password_secret,
            "kerberos_service_name": str(service or "hive") if auth == "KERBEROS" else None}


def _activity(raw: object, where: str) -> dict:
    """``activity: {min_qualifying_amount: N}``: orders with net amount <= N are not activity."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or set(raw) - {"min_qualifying_amount"}:
        raise ConfigError(f"{where}: only `min_qualifying_amount: <amount>` is known")
    value = raw.get("min_qualifying_amount", 0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}.min_qualifying_amount must be a number (an order amount), not {value!r}")
    return {"min_qualifying_amount": float(value)}
