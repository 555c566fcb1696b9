"""`liucun demo/run --publish-postgres`: the marts land in a real (throwaway) PostgreSQL cluster in one
transaction (flows/publish/postgres.py). BI readers see the old marts or the new, never a mix; a failed
publish leaves the previous marts as they were; the password is never shown or stored.

The DSN carries a password. The throwaway cluster trusts local connections and ignores it, which is
what lets the test check that it never appears anywhere.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import psycopg2
import pytest

from flows.publish.postgres import (
    PostgresDependentObjects,
    PostgresLockTimeout,
    PostgresUnreachable,
    publish_to_postgres,
)
from tests.support.postgres import throwaway_cluster

pytestmark = pytest.mark.postgres
PASSWORD = "PgPublish" + secrets.token_hex(8)
LIUCUN = str(Path(sys.executable).with_name("liucun"))
OUTPUTS: list[str] = []  # stdout + stderr of every liucun process of this module
ROOTS: list[Path] = []  # every folder a liucun process of this module wrote (warehouse, PREFECT_HOME)
# DuckDB type -> PostgreSQL type (format_type), written out independently of the implementation
PG_TYPES = {"BIGINT": "bigint", "INTEGER": "integer", "BOOLEAN": "boolean", "DATE": "date",
            "DECIMAL(18,2)": "numeric(18,2)", "DECIMAL(38,2)": "numeric(38,2)",
            "DOUBLE": "double precision", "JSON": "jsonb", "TIMESTAMP": "timestamp without time zone",
            "VARCHAR": "text"}


def _liucun(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    ROOTS.append(root)
    proc = subprocess.run(
        [LIUCUN, *args],
        env={**os.environ, "PREFECT_HOME": str(root / "prefect"),
             "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "60", **(env or {})},
        capture_output=True, text=True, timeout=600)
    OUTPUTS.append(proc.stdout + proc.stderr)
    assert PASSWORD not in proc.stdout + proc.stderr
    return proc


def _demo(root: Path, seed: int, publish_to: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return _liucun(root, "demo", "--customers", "1500", "--months", "12", "--seed", str(seed),
                   "--warehouse", str(root / "wh"), "--publish-postgres", publish_to, env=env)


def _latest(published: Path) -> tuple[str, str, dict[str, int]]:
    with duckdb.connect(str(published), read_only=True) as con:
        run_id, version, counts = con.execute(
            "select run_id, version, row_counts from audit.publications order by published_at desc limit 1"
        ).fetchone()
    return run_id, version, json.loads(counts)


def _pg_state(dsn: str) -> dict:
    """What a BI user sees: the current version, every mart's oid and row count, leftover schemas."""
    with psycopg2.connect(dsn) as con, con.cursor() as cur:
        cur.execute("select version from audit.publications order by publication_id desc limit 1")
        version = cur.fetchone()[0]
        cur.execute("select c.relname, c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                    "where n.nspname = 'marts' and c.relkind = 'r' order by 1")
        oids = dict(cur.fetchall())
        counts = {}
        for t in oids:
            cur.execute(f'select count(*) from marts."{t}"')
            counts[t] = cur.fetchone()[0]
        cur.execute("select count(*) from pg_namespace where nspname like 'liucun_staging%'")
        staging = cur.fetchone()[0]
    con.close()
    return {"version": version, "oids": oids, "counts": counts, "staging_schemas": staging}


def _norm(value: object, is_json: bool, from_duckdb: bool) -> object:
    if is_json and value is not None:
        return json.dumps(json.loads(value) if from_duckdb else value, sort_keys=True)
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


@pytest.fixture(scope="module")
def pg():
    with throwaway_cluster() as cluster:
        yield {**cluster, "secret_dsn": f"postgresql://postgres:{PASSWORD}@127.0.0.1:{cluster['port']}/liucun"}


@pytest.fixture(scope="module")
def first(pg, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo (seed 42) published to PostgreSQL with the DSN given literally on the command line."""
    root = tmp_path_factory.mktemp("pgpub-first")
    proc = _demo(root, 42, pg["secret_dsn"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"postgres:  postgresql://postgres:***@127.0.0.1:{pg['port']}/liucun schema marts" in proc.stdout
    return root


def test_demo_publishes_every_mart_with_its_contents_and_audit_row(pg, first: Path):
    published = first / "wh" / "liucun.duckdb"
    run_id, version, row_counts = _latest(published)
    with duckdb.connect(str(published), read_only=True) as duck, psycopg2.connect(pg["dsn"]) as con:
        cur = con.cursor()
        marts = [r[0] for r in duck.execute("select table_name from duckdb_tables() where schema_name = 'marts' "
                                            "order by 1").fetchall()]
        cur.execute("select table_name from information_schema.tables where table_schema = 'marts' order by 1")
        assert [r[0] for r in cur.fetchall()] == marts and len(marts) >= 15
        for t in marts:
            cols = duck.execute("select column_name, data_type from duckdb_columns() where schema_name = 'marts' "
                                "and table_name = ? order by column_index", [t]).fetchall()
            cur.execute("select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a "
                        "where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped order by a.attnum",
                        [f"marts.{t}"])
            assert cur.fetchall() == [(c, PG_TYPES[d]) for c, d in cols], t
            is_json = [d == "JSON" for _, d in cols]
            duck_rows = sorted((tuple(_norm(v, j, True) for v, j in zip(r, is_json, strict=True))
                                for r in duck.execute(f'select * from marts."{t}"').fetchall()), key=repr)
            cur.execute(f'select * from marts."{t}"')
            pg_rows = sorted((tuple(_norm(v, j, False) for v, j in zip(r, is_json, strict=True))
                              for r in cur.fetchall()), key=repr)
            assert len(pg_rows) == row_counts[t], t
            assert pg_rows == duck_rows, f"marts.{t} differs between DuckDB and PostgreSQL"
            comment = duck.execute("select comment from duckdb_tables() where schema_name = 'marts' "
                                   "and table_name = ?", [t]).fetchone()[0]
            cur.execute("select obj_description(%s::regclass, 'pg_class')", [f"marts.{t}"])
            assert cur.fetchone()[0] == comment
            duck_docs = dict(duck.execute("select column_name, comment from duckdb_columns() where schema_name = "
                                          "'marts' and table_name = ?", [t]).fetchall())
            cur.execute("select a.attname, col_description(a.attrelid, a.attnum) from pg_attribute a where "
                        "a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped", [f"marts.{t}"])
            pg_docs = dict(cur.fetchall())
            assert pg_docs == duck_docs and all(pg_docs.values()), f"marts.{t}: column comments differ"
            # analyzed before the swap: a BI tool's first query is planned on statistics
            cur.execute("select reltuples from pg_class where oid = %s::regclass", [f"marts.{t}"])
            assert cur.fetchone()[0] >= 0, f"marts.{t} was published without planner statistics"
        assert sum(row_counts.values()) > 10_000
        cur.execute("select run_id, version, as_of_date::text, row_counts, gates, postgres_schema "
                    "from audit.publications order by publication_id")
        rows = cur.fetchall()
        assert len(rows) == 1
        assert rows[0][:3] == (run_id, version, "2026-10-31") and rows[0][3] == row_counts
        assert set(rows[0][4]) == {"raw", "staging", "marts"} and all(g["passed"] for g in rows[0][4].values())
        assert rows[0][5] == "marts"
        cur.execute("select obj_description('marts'::regnamespace, 'pg_namespace')")
        assert cur.fetchone()[0].startswith(f"liucun publication {version} ")
    con.close()


def test_failed_postgres_publish_leaves_previous_marts_and_says_why_without_the_password(pg, first: Path):
    before = _pg_state(pg["dsn"])
    admin = psycopg2.connect(pg["dsn"])
    admin.autocommit = True
    admin.cursor().execute("create schema bi; create view bi.monthly_orders as "
                           "select date_trunc('month', ordered_at) as m, count(*) from marts.fct_orders group by 1")

    # 1. a BI user's view on a mart: the run fails (exit 3), the DuckDB publication stands
    proc = _demo(first, 42, "BI_PUBLISH_DSN", env={"BI_PUBLISH_DSN": pg["secret_dsn"]})
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    masked = f"postgresql://postgres:***@127.0.0.1:{pg['port']}/liucun"
    assert "POSTGRESQL PUBLISH FAILED — the DuckDB publication above succeeded and stays." in proc.stderr
    assert "view bi.monthly_orders" in proc.stderr and masked in proc.stderr
    assert "PostgreSQL keeps its previous marts" in proc.stderr
    assert f"postgres:  NOT PUBLISHED to {masked}" in proc.stdout
    run_id, version, _ = _latest(first / "wh" / "liucun.duckdb")
    assert version != before["version"]  # DuckDB moved on...
    assert _pg_state(pg["dsn"]) == before  # ...PostgreSQL did not: same tables (oids), rows, version
    published = first / "wh" / "liucun.duckdb"

    # 2. unreachable server, URL and key=value DSNs: clear, masked, fast
    for dsn, shown in [(f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/liucun", "postgresql://postgres:***@127.0.0.1:1"),
                       (f"host=127.0.0.1 port=1 user=postgres password={PASSWORD} dbname=liucun", "password=***")]:
        with pytest.raises(PostgresUnreachable) as err:
            publish_to_postgres(published, dsn, run_id, version)
        assert shown in str(err.value) and "Connection refused" in str(err.value)
        assert PASSWORD not in str(err.value)

    # 3. a reader in a long transaction: lock_timeout, the holder named, nothing changed
    admin.cursor().execute("drop view bi.monthly_orders")
    reader = psycopg2.connect(pg["dsn"], application_name="bi-dashboard")
    reader.cursor().execute("select count(*) from marts.dim_customers")  # holds its lock until rollback
    started = time.monotonic()
    with pytest.raises(PostgresLockTimeout) as err:
        publish_to_postgres(published, pg["secret_dsn"], run_id, version, lock_timeout=1.0)
    assert time.monotonic() - started < 15
    message = str(err.value)
    assert f"pid {reader.get_backend_pid()}" in message and "application bi-dashboard" in message
    assert "idle in transaction" in message and "dim_customers" in message and masked in message
    assert "The previous marts in PostgreSQL are unchanged" in message and PASSWORD not in message
    reader.rollback()
    assert _pg_state(pg["dsn"]) == before

    # 4. a view created inside the marts schema is refused as well
    admin.cursor().execute("create view marts.my_orders as select * from marts.fct_orders")
    with pytest.raises(PostgresDependentObjects, match=r"view marts\.my_orders"):
        publish_to_postgres(published, pg["secret_dsn"], run_id, version)
    admin.cursor().execute("drop view marts.my_orders")
    assert _pg_state(pg["dsn"]) == before

    # 5. once the obstacle is gone, publishing the DuckDB publication (what the next run does) catches up
    publish_to_postgres(published, pg["secret_dsn"], run_id, version)
    after = _pg_state(pg["dsn"])
    assert after["version"] == version and after["staging_schemas"] == 0
    assert set(after["oids"].values()).isdisjoint(before["oids"].values())
    admin.close()


def test_second_publish_is_seen_whole_or_not_at_all_by_concurrent_readers(pg, first: Path,
                                                                         tmp_path_factory: pytest.TempPathFactory):
    start = _pg_state(pg["dsn"])
    admin = psycopg2.connect(pg["dsn"])
    admin.autocommit = True
    admin.cursor().execute("create role bi_reader; grant usage on schema marts to bi_reader; "
                           "grant select on all tables in schema marts to bi_reader")
    stop, seen, errors = threading.Event(), [], []

    def read() -> None:
        con = psycopg2.connect(pg["dsn"], application_name="bi-reader")
        con.autocommit = True  # as BI tools run: each statement its own transaction
        cur = con.cursor()
        while not stop.is_set():
            try:
                cur.execute("""select (select version from audit.publications order by publication_id desc limit 1),
                                      (select count(*) from marts.fct_orders),
                                      (select count(*) from marts.dim_customers),
                                      (select count(*) from marts.rpt_retention_rate)""")
                seen.append(cur.fetchone())
            except psycopg2.Error as exc:
                errors.append(repr(exc))
            time.sleep(0.001)
        con.close()

    readers = [threading.Thread(target=read) for _ in range(2)]
    for r in readers:
        r.start()
    try:
        root = tmp_path_factory.mktemp("pgpub-second")
        proc = _demo(root, 7, pg["secret_dsn"])  # other data
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        seen_during_run = len(seen)
        # more swaps under the same readers, alternating between the two publications
        for wh in [first, root, first, root]:
            published = wh / "wh" / "liucun.duckdb"
            run_id, version, _ = _latest(published)
            publish_to_postgres(published, pg["secret_dsn"], run_id, version)
        time.sleep(0.5)
    finally:
        stop.set()
        for r in readers:
            r.join(timeout=30)

    assert errors == []
    with admin.cursor() as cur:
        cur.execute("select version, row_counts from audit.publications")
        expected = {v: (c["fct_orders"], c["dim_customers"], c["rpt_retention_rate"]) for v, c in cur.fetchall()}
        second = _latest(root / "wh" / "liucun.duckdb")[1]
        assert expected[start["version"]][0] != expected[second][0]  # a mix would be visible
        mixed = [s for s in seen if s[1:] != expected[s[0]]]
        assert mixed == [], f"{len(mixed)} reads saw a mix of publications: {sorted(set(mixed))[:5]}"
        assert {s[0] for s in seen} == {start["version"], second}  # both seen, nothing else
        assert seen_during_run > 100 and len(seen) > seen_during_run
        flips = sum(1 for a, b in zip(seen, seen[1:], strict=False) if a[0] != b[0])
        assert flips >= 3  # each thread's reads interleave; swaps were observed more than once
        cur.execute("select has_schema_privilege('bi_reader', 'marts', 'usage'), "
                    "has_table_privilege('bi_reader', 'marts.fct_orders', 'select'), "
                    "has_table_privilege('bi_reader', 'marts.rpt_retention_rate', 'select')")
        assert cur.fetchone() == (True, True, True)  # grants survive the swaps
    end = _pg_state(pg["dsn"])
    assert end["version"] == second and end["counts"] == _latest(root / "wh" / "liucun.duckdb")[2]
    admin.close()


def test_the_password_is_never_shown_or_stored(first: Path, prefect_server):
    assert OUTPUTS and all(PASSWORD not in out for out in OUTPUTS)
    needle = PASSWORD.encode()
    # the runs reported to the session's Prefect server: its database is scanned too
    leaked = [p for root in {*ROOTS, first, prefect_server.home} for p in root.rglob("*")
              if p.is_file() and not p.is_symlink() and needle in p.read_bytes()]
    assert leaked == []
    # Prefect stored the NAME of the variable holding the DSN, not the DSN
    with sqlite3.connect(prefect_server.home / "prefect.db") as db:
        params = [json.loads(r[0]) for r in db.execute("select parameters from flow_run")]
    assert "LIUCUN_PUBLISH_POSTGRES_DSN" in {p.get("publish_postgres_dsn_env") for p in params}
