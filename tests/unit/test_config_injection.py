"""Hostile values in ``liucun.yml`` cannot inject SQL.

Every config value that reaches SQL, and how it is defended:

| value                              | reaches                                 | defence                          |
|------------------------------------|-----------------------------------------|----------------------------------|
| source name                        | SQL literals, gate SQL, scratch file     | lower_snake_case only            |
| kind, files.format, files.encoding | table names, reader choice, decoding   | fixed lists; codecs.lookup       |
| files.path, data_dir, file names   | read_csv/read_text/read_parquet paths    | string literal (quotes doubled)  |
| columns: <source column>           | select list                              | no `"`/NUL, then quoted identifier |
| columns: {sql: <expression>}       | select list                              | DuckDB parse: one scalar expression, no subquery, parameter, star, table/env function |
| timezone, business_timezone        | ingestion SQL, dbt var in model SQL      | must be a known timezone name    |
| primary_key                        | partition/delete SQL                     | contract column names only       |
| postgres.table / cursor / dsn_env  | attached relation, where clause          | identifier patterns, then quoted |
| postgres.overlap_minutes           | interval in the where clause             | whole number                     |
| postgres.query                     | sent to PostgreSQL as one prepared query | literal in DuckDB; PG refuses a second statement and DML |
| max_quarantine_share               | raw gate SQL                             | number in [0, 1]                 |
| source file headers / JSON keys    | select list, ``_extra``                  | quoted identifiers / literals    |

Each hostile value is either refused by ``load_config`` with a message that names the key and says
what to do, or shown harmless by running a real ingestion: the marker file a `copy ... to` would
write does not appear and the warehouse's tables are all still there.
"""

from __future__ import annotations

import json
import traceback
from datetime import date
from pathlib import Path

import duckdb
import psycopg2
import pytest
import yaml

from flows.config import ConfigError, load_config
from flows.ingest.load import SourceError, ingest
from tests.support.postgres import throwaway_cluster

SALT = "unit-salt-must-never-leak"
AS_OF = date(2024, 6, 30)
MARKER = "pwn.csv"  # relative: a successful `copy ... to 'pwn.csv'` would create it in the cwd
COPY = f"copy (select 1) to '{MARKER}'"
CRM_CSV = "crm_id,registered_at\nC1,2024-01-01 08:00:00\n"


def write_config(root: Path, sources: dict, **top: object) -> Path:
    cfg = root / "liucun.yml"
    cfg.write_text(yaml.safe_dump({"data_dir": ".", "business_timezone": "Asia/Shanghai", **top,
                                   "sources": sources}, allow_unicode=True))
    return cfg


def crm(**extra: object) -> dict:
    return {"kind": "customers", "files": {"path": "crm/*.csv", "format": "csv"}, **extra}


def pg(**extra: object) -> dict:
    return {"kind": "customers",
            "postgres": {"dsn_env": "LIUCUN_TEST_PG_DSN", "table": "crm.customers", **extra}}


# (id, sources, top-level keys, the key the message must name, a fragment saying what to do)
REFUSED = [
    ("source name with a double quote", {'crm"; drop table raw._loads; --': crm()}, {},
     "sources.crm\"; drop", "lower_snake_case"),
    ("source name with a single quote", {"crm'); drop table raw._loads; --": crm()}, {},
     "sources.crm'); drop", "lower_snake_case"),
    ("kind", {"crm": {**crm(), "kind": "customers; drop table raw._loads"}}, {},
     "sources.crm.kind", "use one of"),
    ("format", {"crm": {**crm(), "files": {"path": "crm/*.csv", "format": f"csv'); {COPY}; --"}}}, {},
     "sources.crm.files.format", "use one of"),
    ("encoding", {"crm": {**crm(), "files": {"path": "crm/*.csv", "encoding": f"utf-8'); {COPY}; --"}}},
     {}, "sources.crm.files.encoding", "is not an encoding"),
    ("source column with a double quote",
     {"crm": crm(columns={"crm_id": 'x"; drop table raw._loads; --'})}, {},
     "sources.crm.columns.crm_id", "no double quote"),
    ("canonical column", {"crm": crm(columns={'crm_id" varchar); drop table raw._loads; --': "x"})}, {},
     "sources.crm.columns", "is not a column of the customers contract"),
    ("expression: second statement", {"crm": crm(columns={"region": {"sql": f"1); {COPY}; --"}})}, {},
     "sources.crm.columns.region", "write one scalar expression"),
    ("expression: statement without ';'", {"crm": crm(columns={"region": {"sql": f"1) {COPY} --"}})}, {},
     "sources.crm.columns.region", "write one scalar expression"),
    ("expression: getenv", {"crm": crm(columns={"region": {"sql": "getenv('HOME')"}})}, {},
     "sources.crm.columns.region", "not allowed"),
    ("expression: read_csv", {"crm": crm(columns={"region": {"sql": "read_csv('/etc/passwd')"}})}, {},
     "sources.crm.columns.region", "not allowed"),
    ("expression: read_text", {"crm": crm(columns={"region": {"sql": "read_text('/etc/passwd')"}})}, {},
     "sources.crm.columns.region", "not allowed"),
    ("expression: settings", {"crm": crm(columns={"region": {"sql": "current_setting('home_directory')"}})},
     {}, "sources.crm.columns.region", "not allowed"),
    ("expression: subquery",
     {"crm": crm(columns={"region": {"sql": "(select max(source) from raw._loads)"}})}, {},
     "sources.crm.columns.region", "no subqueries"),
    # The PII salt is bound to every ingestion query as $salt: an expression must not read it.
    ("expression: the salt parameter", {"crm": crm(columns={"region": {"sql": "$salt"}})}, {},
     "sources.crm.columns.region", "no query parameters"),
    ("expression: positional parameter", {"crm": crm(columns={"region": {"sql": "'x' || ?"}})}, {},
     "sources.crm.columns.region", "no query parameters"),
    ("expression: breaks out into a second column", {"crm": crm(columns={"region": {"sql": "region) , (1"}})},
     {}, "sources.crm.columns.region", "not one SQL expression"),
    ("expression: breaks out into a union",
     {"crm": crm(columns={"region": {"sql": "1) from _src union select (getenv('HOME')"}})}, {},
     "sources.crm.columns.region", "not one SQL expression"),
    ("expression: star", {"crm": crm(columns={"region": {"sql": "columns(*)"}})}, {},
     "sources.crm.columns.region", "no * or COLUMNS"),
    ("source timezone", {"crm": crm(timezone="UTC'; drop table raw._loads; --")}, {},
     "sources.crm.timezone", "IANA name"),
    # business_timezone is interpolated into dbt model SQL as '{{ var("business_timezone") }}'
    ("business timezone", {"crm": crm()}, {"business_timezone": "UTC') as x; drop schema raw cascade; --"},
     "business_timezone", "IANA name"),
    ("primary key", {"crm": crm(primary_key=["crm_id); drop table raw._loads; --"])}, {},
     "sources.crm.primary_key", "is not a column of customers"),
    ("quarantine share", {"crm": crm(max_quarantine_share="0.05) or (1=1")}, {},
     "sources.crm.max_quarantine_share", "between 0 and 1"),
    ("postgres table", {"crm": pg(table="crm.customers; drop schema raw cascade")}, {},
     "sources.crm.postgres.table", "like schema.table"),
    ("postgres table with quotes", {"crm": pg(table='crm."customers"; drop')}, {},
     "sources.crm.postgres.table", "like schema.table"),
    ("postgres cursor", {"crm": pg(cursor='updated_at"; drop table raw._loads; --')}, {},
     "sources.crm.postgres.cursor", "is not a column name"),
    ("postgres cursor breaking the where clause", {"crm": pg(cursor="updated_at) or (1=1")}, {},
     "sources.crm.postgres.cursor", "is not a column name"),
    ("postgres overlap", {"crm": pg(cursor="updated_at", overlap_minutes="60 minute) or (true")}, {},
     "sources.crm.postgres.overlap_minutes", "whole number of minutes"),
    ("postgres dsn_env", {"crm": pg(dsn_env="X; rm -rf /")}, {},
     "sources.crm.postgres.dsn_env", "not an environment variable name"),
    ("postgres DSN written into the config", {"crm": pg(dsn="postgresql://u:pw@h/db")}, {},
     "sources.crm.postgres", "unknown keys"),
]


@pytest.mark.parametrize(("sources", "top", "key", "hint"), [c[1:] for c in REFUSED],
                         ids=[c[0] for c in REFUSED])
def test_hostile_config_values_are_refused_naming_the_key(tmp_path: Path, sources: dict, top: dict,
                                                        key: str, hint: str):
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, sources, **top))
    msg = str(err.value)
    assert key in msg, msg
    assert hint in msg, msg
    assert str(tmp_path / "liucun.yml") in msg, "the message names the config file"


@pytest.mark.parametrize("expr", [
    "strptime(InvoiceDate, '%m/%d/%Y %H:%M')",
    "round(Quantity::double * UnitPrice::double, 2)",
    "starts_with(InvoiceNo, 'C')",
    "'select 1 -- inside a literal this is data'",
    "case when lower(trim(x)) in ('a', 'b') then 1 else 0 end",
    "coalesce(total, 0) - coalesce(discount, 0)",
    "list_transform(string_split(tags, '|'), t -> upper(t))[1]",
    "_line",
])
def test_ordinary_expressions_are_still_accepted(tmp_path: Path, expr: str):
    cfg = load_config(write_config(tmp_path, {"crm": crm(columns={"region": {"sql": expr}})}))
    assert cfg.sources[0].expressions == {"region": expr}


@pytest.fixture()
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A warehouse with one load in it, and the cwd where a relative `copy ... to` would land."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "customers.csv").write_text(CRM_CSV)
    db = tmp_path / "w.duckdb"
    ingest(db, load_config(write_config(tmp_path, {"crm": crm()})), "first", AS_OF, SALT)
    return db


def untouched(db: Path, root: Path) -> None:
    """No `copy` wrote its marker and every raw table and ledger is still there with its rows."""
    assert not (root / MARKER).exists() and not Path(MARKER).exists()
    with duckdb.connect(str(db), read_only=True) as con:
        tables = {r[0] for r in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'raw'").fetchall()}
        assert {"_loads", "_files", "_quarantine", "customers", "orders"} <= tables
        assert con.execute("select count(*) from raw._loads where load_id = 'first:crm'").fetchone()[0] == 1
        assert con.execute("select count(*) from raw.customers where crm_id = 'C1'").fetchone()[0] == 1


def test_quoted_file_names_globs_and_data_dir_are_harmless(warehouse: Path, tmp_path: Path):
    hostile = f"it's'); {COPY}; --"
    folder = tmp_path / hostile
    folder.mkdir()
    (folder / f"{hostile}.csv").write_text("crm_id,registered_at\nC2,2024-01-02 08:00:00\n")
    (folder / f"{hostile}.jsonl").write_text(json.dumps(
        {"event_id": "e1", "event_ts": "2024-01-02T08:00:00Z", "device_id": "d1", "event_type": "view"}) + "\n")
    sources = {"crm": crm(files={"path": "*'); copy*.csv", "format": "csv"}),
               "ev": {"kind": "events", "files": {"path": "*'); copy*.jsonl", "format": "jsonl"}}}
    cfg = load_config(write_config(tmp_path, sources, data_dir=hostile))
    results = {r.source: r for r in ingest(warehouse, cfg, "second", AS_OF, SALT)}
    assert (results["crm"].rows_loaded, results["ev"].rows_loaded) == (1, 1)
    assert results["crm"].files == [str(folder / f"{hostile}.csv")]
    untouched(warehouse, tmp_path)


def test_hostile_source_column_names_are_quoted_identifiers(warehouse: Path, tmp_path: Path):
    """Column names come from the config and from the source files' headers or JSON keys: SQL in
    them is just a strange name, loaded or kept in ``_extra`` under that exact name."""
    mapped = f"x'); {COPY}; --"  # no double quote: allowed, and quoted
    drift = 'evil") as a; drop table raw._loads; --'  # an unmapped header: goes to _extra
    (tmp_path / "crm" / "customers.csv").write_text(
        f'crm_id,registered_at,{mapped},"{drift.replace(chr(34), chr(34) * 2)}"\n'
        "C1,2024-01-01 08:00:00,Hainan,boo\n")
    (tmp_path / "ev").mkdir()
    key = f"k'\"); {COPY}; --"
    (tmp_path / "ev" / "e.jsonl").write_text(json.dumps(
        {"event_id": "e1", "event_ts": "2024-01-02T08:00:00Z", "device_id": "d1", "event_type": "view",
         key: "v"}) + "\n")
    sources = {"crm": crm(columns={"region": mapped}),
               "ev": {"kind": "events", "files": {"path": "ev/*.jsonl"}}}
    results = {r.source: r for r in ingest(warehouse, load_config(write_config(tmp_path, sources)),
                                           "second", AS_OF, SALT)}
    assert results["crm"].schema_drift == [drift] and results["ev"].schema_drift == [key]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        region, extra = con.execute("select region, _extra from raw.customers where crm_id = 'C1'").fetchone()
        (ev_extra,) = con.execute("select _extra from raw.events").fetchone()
    assert region == "Hainan" and json.loads(extra) == {drift: "boo"} and json.loads(ev_extra) == {key: "v"}
    untouched(warehouse, tmp_path)


def test_a_config_column_that_does_not_exist_is_reported_not_executed(warehouse: Path, tmp_path: Path):
    hostile = "x; drop table raw._loads; --"
    cfg = load_config(write_config(tmp_path, {"crm": crm(columns={"region": hostile})}))
    (tmp_path / "crm" / "customers.csv").write_text(CRM_CSV.replace("C1", "C9"))
    with pytest.raises(SourceError) as err:
        ingest(warehouse, cfg, "second", AS_OF, SALT)
    assert repr(hostile) in str(err.value) and "sources.crm.columns" in str(err.value)
    untouched(warehouse, tmp_path)


def test_an_expression_failing_on_a_value_reports_it_with_pii_masked(tmp_path: Path):
    """DuckDB quotes the offending value in a conversion error; that message reaches the CLI,
    Prefect's logs and the flow run's state, so phones and emails in it are masked."""
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "c.csv").write_text(
        "crm_id,Mobile,Mail,registered_at\nC1,138-1234-5678,Li.Wei@Example.com,2024-01-01 08:00:00\n")
    for column, expr in [("phone", "cast(Mobile as bigint)"), ("registered_at", "strptime(Mail, '%Y')")]:
        cfg = load_config(write_config(tmp_path, {"crm": crm(columns={column: {"sql": expr}})}))
        with pytest.raises(SourceError) as err:
            ingest(tmp_path / "w.duckdb", cfg, "r", AS_OF, SALT)
        msg = str(err.value)
        assert "source 'crm': a column expression failed" in msg and "try_cast" in msg, msg
        assert ("<phone>" if column == "phone" else "<email>") in msg, msg
        logged = "".join(traceback.format_exception(err.value))  # what a logger would print
        assert "138-1234-5678" not in logged and "li.wei@example.com" not in logged.lower(), logged


@pytest.mark.postgres
def test_postgres_query_runs_as_one_read_only_select(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``postgres.query`` is the operator's SQL for the source database by design; it reaches DuckDB
    as a string literal and PostgreSQL as one prepared query: a second statement or a
    data-modifying CTE fails the source and changes nothing at the source."""
    monkeypatch.chdir(tmp_path)
    with throwaway_cluster() as pgc:
        with psycopg2.connect(pgc["dsn"]) as src:
            src.cursor().execute(
                "create schema crm; create table crm.customers (crm_id text primary key, "
                "registered_at timestamp, updated_at timestamp); "
                "insert into crm.customers values ('C1', '2024-01-01 08:00', '2024-01-01 08:00')")
        monkeypatch.setenv("LIUCUN_TEST_PG_DSN", pgc["dsn"])
        hostile = [
            f"select * from crm.customers; drop table crm.customers; {COPY}",
            "with d as (delete from crm.customers returning *) select * from d",
            "select * from crm.customers where crm_id = 'x'') ; drop table crm.customers; --'",
        ]
        for i, query in enumerate(hostile):
            db = tmp_path / f"w{i}.duckdb"
            cfg = load_config(write_config(tmp_path, {"crm": {
                "kind": "customers", "postgres": {"dsn_env": "LIUCUN_TEST_PG_DSN", "query": query}}}))
            if i < 2:
                with pytest.raises(SourceError, match="source 'crm': reading postgres:query failed"):
                    ingest(db, cfg, "r", AS_OF, SALT)
            else:  # the quote is data inside a PostgreSQL literal: no row matches
                (r,) = ingest(db, cfg, "r", AS_OF, SALT)
                assert r.rows_read == 0
        with psycopg2.connect(pgc["dsn"]) as src:
            cur = src.cursor()
            cur.execute("select crm_id from crm.customers")
            assert cur.fetchall() == [("C1",)]
    assert not (tmp_path / MARKER).exists()
