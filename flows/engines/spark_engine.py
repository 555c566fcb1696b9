"""The Spark engine: the raw layer, the models, the gates and the publications as Spark tables and
Parquet folders in one location (``spark.location`` in liucun.yml; default ``DIR/spark``).

The engine talks to Spark through one connection of the run (flows/engines/spark_sql.py), by
``spark.method`` as dbt-spark users give it: ``session``, a SparkSession in the run's process (one
made from ``spark.master`` and ``spark.conf``, or the one already running there: a test's, a
notebook's), or ``thrift``, a Spark Thrift Server. Every step below is Spark SQL through that
connection, so both methods run the same statements. Everything the engine keeps is files in the
location, so the Spark catalog may be the session's own in-memory one: each run registers the
tables it reads.

    LOC/state.json                      the last good state: where each raw table's files are,
                                        and what the last publication was built from
    LOC/raw/<table>/<run_id>/           a raw table as one run wrote it (the state names one per table)
    LOC/candidates/<run_id>/<db>.db/    a run's candidate databases <prefix>c<run>_raw, _staging, ...
    LOC/incoming/<run_id>/              the run's new rows, as the per-file DuckDB extraction typed them
    LOC/published/<version>/            a publication: marts/<mart>/ and audit/<table>/ (Parquet)
    LOC/published/CURRENT               the version readers see (switched by one rename)

- **Raw layer.** Extraction stays per-file DuckDB work (typed against the contract, PII hashed,
  rejects quarantined, every row counted: flows/ingest/load.py writes the run's new rows and its
  ledger rows into a DuckDB file of its own). Spark then writes each changed raw table anew:
  the state's rows minus those replaced (a new version of a file, or a key loaded again) plus the
  new ones, in one distributed job, never collected into the driver; unchanged tables keep the
  state's files. Ledgers (loads, files, cursors, quarantine) are Spark tables too.
- **Models.** dbt-spark builds the candidate databases (``$LIUCUN_SCHEMA_PREFIX``); the BG/NBD fit
  reads distinct (frequency, recency, age) rows with their customer counts, and its scores are
  joined back to the customers in Spark.
- **Gates.** Great Expectations' Spark execution engine in the run's process (``session``), or its
  SQL execution engine on the Thrift Server (``thrift``) (expectations/gate.py).
- **Write-audit-publish.** A publication is a Parquet folder per version, written apart
  (``published/.<version>``), renamed into place, then made current by replacing the ``CURRENT``
  pointer (one rename): a reader that follows the pointer sees one whole publication, old or new.
  Versions are immutable and the last three are kept, so a reader that resolved the pointer
  finishes reading its version. ``audit.publications`` is in every version folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from flows.config import SparkConfig
from flows.engines.base import REPORT_PAGE, Build, Candidate, Engine, Publication, PublishedVersion
from flows.engines.spark_location import Location
from flows.engines.spark_sql import lit, parquet_files
from flows.ingest.load import SourceState, merge_extracts
from flows.publish import fingerprint
from flows.publish.warehouse import Warehouse
from flows.runtime import memwatch

if TYPE_CHECKING:
    from expectations.results import GateResult
    from expectations.suites import GateParams
    from flows.engines.base import Log
    from flows.engines.spark_sql import SparkSql
    from flows.ingest.load import Extract, LoadResult
    from flows.models.churn_scoring import ScoringResult
    from flows.publish.postgres import PostgresPublication

KEEP_VERSIONS = 3
LAYERS = ("raw", "staging", "intermediate", "marts", "ml", "incremental")


class SparkEngine(Engine):
    name = "spark"

    def __init__(self, warehouse: Warehouse, config: SparkConfig, filesystem: Any = None) -> None:
        """``filesystem``: a pyarrow file system for the location instead of the one its URI names
        (tests: an in-memory one standing in for an object store)."""
        super().__init__(warehouse)
        self.config = config
        self.loc = Location(config.location or warehouse.root / "spark", filesystem)
        self._sql: SparkSql | None = None
        self._tables: dict[str, dict[str, str]] = {}  # per candidate run: raw table -> its files

    # ---- where things are ---------------------------------------------------------------------

    @property
    def location(self) -> Path | str:
        """The location, as a message shows it."""
        return self.loc.display()

    def prefix(self, run_id: str) -> str:
        """The candidate's database prefix: ``<database_prefix>c<first 8 of the run id>_``."""
        return f"{self.config.database_prefix}c{re.sub(r'[^0-9a-z]', '', run_id.lower())[:8]}_"

    def _db(self, candidate: Candidate, layer: str) -> str:
        return self.prefix(candidate.run_id) + layer

    @property
    def sql(self) -> SparkSql:
        """The run's connection to Spark (flows/engines/spark_sql.py)."""
        if self._sql is None:
            raise RuntimeError("the Spark engine is used outside a run: open_run() first")
        return self._sql

    def prerequisites(self) -> list[str]:
        import importlib.util

        missing = []
        needs = ("pyspark", "dbt.adapters.spark") + (("pyhive", "thrift") if self.config.method == "thrift" else ())
        if any(importlib.util.find_spec(m) is None for m in needs):
            missing.append(f"engine spark (method {self.config.method}) needs PySpark, dbt-spark and PyHive: install "
                           "liucun's spark extra (`make setup-spark`, or `uv sync --extra spark`, or pip install "
                           "'liucun[spark]')")
        if self.config.method == "thrift":
            if self.config.password_env and not os.environ.get(self.config.password_env):
                missing.append(f"spark.password_env: the environment variable {self.config.password_env} (the Spark "
                               "Thrift Server's password) is not set")
            return missing  # Spark runs on the server: no Java here
        if os.environ.get("SPARK_REMOTE"):
            missing.append("SPARK_REMOTE is set, but this version of liucun runs Spark in its own process "
                           "(method: session, with spark.master naming a cluster) or through a Thrift Server "
                           "(method: thrift); unset SPARK_REMOTE")
        if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
            missing.append("engine spark needs Java 17 (a local or cluster SparkSession starts a JVM): install it "
                           "(e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME")
        return missing

    # ---- a run's frame ------------------------------------------------------------------------

    def open_run(self, scope: contextlib.ExitStack) -> None:
        from flows.config import EngineConfig
        from flows.engines import record_engine
        from flows.engines.spark_sql import connect

        self._sql = connect(self.config, self.warehouse.root)
        scope.callback(self._sql.close)
        if self._sql.jvm_pid is not None:  # the JVM pyspark started is this run's: its memory counts
            memwatch.track(self._sql.jvm_pid)
            scope.callback(memwatch.untrack, self._sql.jvm_pid)
        scope.callback(setattr, self, "_sql", None)
        for sub in ("raw", "candidates", "incoming", "published"):
            self.loc.makedirs(sub)
        record_engine(self.warehouse.root, EngineConfig("spark", self.config))

    def recover(self, log: Log) -> None:
        stale = self.clear_leftovers()
        if stale:
            log.info("removed %d leftover candidate(s) of earlier runs that did not finish", len(stale))

    def clear_leftovers(self) -> list[str]:
        """Candidates, incoming rows and unpublished versions of runs not running now, and raw
        table files the state no longer names."""
        loc = self.loc
        removed = sorted(set(loc.names("candidates")) | set(loc.names("incoming"))
                         | {p.name for p in self.warehouse.runs_dir.glob("*")} if loc.exists() else set())
        if self._sql is not None:
            ours = self.config.database_prefix + "c"
            for row in self.sql.rows("show databases"):
                name = str(row[0])
                if name.startswith(ours) and any(name.endswith("_" + layer) for layer in LAYERS):
                    self.sql.execute(f"drop database if exists `{name}` cascade")
        for folder in ("candidates", "incoming"):
            for d in loc.names(folder):
                loc.remove(folder, d)
        self.warehouse.clear_stale_runs()
        for name in loc.names():
            if name.startswith(".state.json."):  # a state being written
                loc.remove(name)
        live = {loc.relative(files) for files in self._state().get("tables", {}).values()}
        if None not in live:  # the state's files are all in this location (else the location moved: keep all)
            for table in loc.names("raw"):
                for version in loc.names("raw", table):
                    if f"raw/{table}/{version}" not in live:
                        loc.remove("raw", table, version)
        current = self._pointer()
        versions = set(loc.names("published", dirs_only=True))
        for name in loc.names("published"):
            pointer_being_written = name.startswith(".CURRENT.")
            version_being_written = name in versions and name.startswith(".")  # when its run died
            never_made_current = name in versions and (current is None or name > current)
            if pointer_being_written or version_being_written or never_made_current:
                loc.remove("published", name)
        return removed

    # ---- the last good state ------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        text = self.loc.read_text("state.json")
        return json.loads(text) if text else {}

    def _pointer(self) -> str | None:
        text = self.loc.read_text("published", "CURRENT")
        return text.strip() if text else None

    def source_state(self) -> dict[str, SourceState]:
        tables = self._state().get("tables", {})
        state: dict[str, SourceState] = {}
        if "_files" not in tables or "_cursors" not in tables:
            return state
        for source, sha, path in self.sql.rows(f"select source, sha256, file from {parquet_files(tables['_files'])}"):
            st = state.setdefault(source, SourceState())
            st.hashes.add(sha)
            st.paths.add(path)
        for source, ctype, value in self.sql.rows(
                "select source, cursor_type, cursor_value from (select *, row_number() over (partition by source "
                f"order by updated_at desc) as n from {parquet_files(tables['_cursors'])}) as c where n = 1"):
            state.setdefault(source, SourceState()).cursor = (ctype, value)
        return state

    def last_build(self) -> Build | None:
        build = self._state().get("build")
        return (build["version"], build["fingerprint"], build["inputs"]) if build else None

    def current_publication(self) -> PublishedVersion | None:
        version = self._pointer()
        if version is None:
            return None
        rows = self.loc.read_table("published", version, "audit", "publications").to_pylist()
        last = max((r for r in rows if r["version"] == version), key=lambda r: r["published_at"], default=None)
        if last is None:
            return None
        counts = {str(k): int(v) for k, v in json.loads(last["row_counts"] or "{}").items()}
        return PublishedVersion(version, last["published_at"], counts, self.loc.display("published", version),
                                self.loc.display("published", version, "marts"))

    def headline(self) -> dict[str, Any]:
        version = self._pointer()
        if version is None:
            return {}
        keys = ["period_start", "customers_start", "customers_end", "customers_new", "crr", "strict_retention_rate",
                "period_grain"]
        rows = [r for r in self.loc.read_table("published", version, "marts", "rpt_retention_rate",
                                               columns=[*keys, "segment_type", "base_definition"]).to_pylist()
                if r["segment_type"] == "all" and r["base_definition"] == "active_in_period"
                and (r["customers_start"] or 0) > 0]
        if not rows:
            return {}
        # the coarsest grain with a figure (month; a young source's week or day), its last period
        coarse = {"month": 2, "week": 1}
        row = max(rows, key=lambda r: (coarse.get(r["period_grain"], 0), r["period_start"]))
        return {k: (str(row[k]) if k == "period_start" else row[k]) for k in keys}

    # ---- building a candidate -----------------------------------------------------------------

    def dbt_env(self, run_id: str, as_of: date) -> dict[str, str]:
        env = {"LIUCUN_DBT_TARGET": "spark", "LIUCUN_SCHEMA_PREFIX": self.prefix(run_id),
               "LIUCUN_AS_OF_DATE": as_of.isoformat()}
        if self.config.method == "thrift":  # dbt-spark's thrift method, to the same server and login
            c = self.config
            sql = self.sql
            target = {"LDAP": "spark_thrift_password", "CUSTOM": "spark_thrift_password",
                      "KERBEROS": "spark_thrift_kerberos"}.get(c.auth, "spark_thrift")
            env.update({"LIUCUN_DBT_TARGET": target, "LIUCUN_SPARK_HOST": str(c.host),
                        "LIUCUN_SPARK_PORT": str(c.port), "LIUCUN_SPARK_USER": c.user, "LIUCUN_SPARK_AUTH": c.auth,
                        "LIUCUN_SPARK_SESSION_CONF": json.dumps(getattr(sql, "configuration", {}))})
            if target == "spark_thrift_password":  # dbt keeps DBT_ENV_SECRET_ variables out of logs and artifacts
                env["DBT_ENV_SECRET_SPARK_PASSWORD"] = getattr(sql, "password", None) or ""
            if target == "spark_thrift_kerberos":
                env["LIUCUN_SPARK_KERBEROS_SERVICE"] = str(c.kerberos_service_name)
        return env

    def start_candidate(self, run_id: str, full_refresh: bool) -> Candidate:
        """The candidate's databases, each with its folder under ``candidates/<run_id>``; its raw
        tables are the state's (their files are not copied: a table the run changes is written anew)."""
        candidate = Candidate(run_id, self.loc.display("candidates", run_id))  # type: ignore[arg-type]
        self.loc.makedirs("candidates", run_id)
        for layer in LAYERS:
            db = self._db(candidate, layer)
            self.sql.execute(f"drop database if exists `{db}` cascade")
            self.sql.execute(f"create database `{db}` location {lit(self.loc.spark('candidates', run_id, db + '.db'))}")
        tables = {} if full_refresh else dict(self._state().get("tables", {}))
        self._tables[run_id] = tables
        for table, files in tables.items():
            self._register(candidate, table, files)
        return candidate

    def _register(self, candidate: Candidate, table: str, files: str) -> None:
        db = self._db(candidate, "raw")
        self.sql.execute(f"drop table if exists `{db}`.`{table}`")
        self.sql.execute(f"create table `{db}`.`{table}` using parquet location {lit(files)}")

    def land_raw(self, candidate: Candidate, extracts: list[Extract], run_id: str, store: str) -> list[LoadResult]:
        from flows.engines.spark_raw import land

        landing = self.run_dir(run_id) / "landing.duckdb"
        landing.parent.mkdir(parents=True, exist_ok=True)
        landing.unlink(missing_ok=True)
        # the new rows, typed, checked, quarantined and counted by the same code as on DuckDB
        results = merge_extracts(landing, extracts, run_id, store)
        tables = self._tables[run_id]
        written = land(self.sql, landing, extracts, results, tables, self.loc, run_id)
        for table, files in written.items():
            tables[table] = files
            self._register(candidate, table, files)
        landing.unlink(missing_ok=True)
        return results

    def models_rebuild_reason(self, candidate: Candidate, full_refresh: bool, inputs: dict[str, str],
                              loads: list[LoadResult]) -> str | None:
        if full_refresh:
            return "a full refresh was asked for"
        return "on Spark, whose Parquet tables take no deletes"

    def prepare_models(self, candidate: Candidate) -> None:
        from flows.engines.spark_models import create_ml_tables

        create_ml_tables(self.sql, self._db(candidate, "ml"))

    def models_built(self, candidate: Candidate, rebuild: str | None, new_loads: int) -> str:
        return f"every model computed in full ({rebuild}); {new_loads} new load(s)"

    def fit_churn_model(self, candidate: Candidate, as_of: date, log: Log) -> ScoringResult:
        from flows.engines.spark_models import score

        return score(self.sql, self.prefix(candidate.run_id), as_of, self.loc, candidate.run_id, log)

    def run_gate(self, layer: str, candidate: Candidate, params: GateParams, report_dir: Path) -> GateResult:
        return self.sql.run_gate(layer, self.prefix(candidate.run_id), params, report_dir)

    def _tables_of(self, db: str) -> list[str]:
        return [str(name) for _, name, temporary in self.sql.rows(f"show tables in `{db}`")
                if not temporary and not str(name).startswith("_")]

    def layer_row_counts(self, candidate: Candidate) -> dict[str, int]:
        out: dict[str, int] = {}
        for layer in ("raw", "staging", "intermediate", "marts"):
            db = self._db(candidate, layer)
            parts = [f"select count(*) as n from `{db}`.`{t}`" for t in self._tables_of(db)]
            if parts:
                out[layer] = int(self.sql.scalar(f"select sum(n) from ({' union all '.join(parts)}) as c"))
        return out

    def activity_exclusions(self, candidate: Candidate) -> dict[str, int]:
        rows = self.sql.rows(
            f"""select case when net_amount < 0 then 'negative value (returns, credit notes)'
                            when net_amount = 0 then 'zero value'
                            else 'at or below activity.min_qualifying_amount' end as reason, count(*) as n
                from `{self._db(candidate, 'marts')}`.fct_orders where not is_qualifying group by 1 order by 1""")
        return {reason: int(n) for reason, n in rows}

    # ---- write-audit-publish ------------------------------------------------------------------

    def prepare_publication(self, candidate: Candidate, run_id: str) -> Any:
        from flows.engines.spark_publish import prepare

        return prepare(self.sql, self.loc, self._pointer(), self.prefix(run_id), run_id)

    def complete_publication(self, prepared: Any, as_of: date, gates: dict[str, dict]) -> Publication:
        from flows.engines.spark_publish import complete

        return complete(self.loc, self._pointer(), prepared, as_of, gates,
                        keep=KEEP_VERSIONS)

    def discard_publication(self, prepared: Any) -> None:
        self.loc.remove("published", prepared.staged)

    @contextlib.contextmanager
    def open_publication(self, prepared: Any = None) -> Iterator[duckdb.DuckDBPyConnection]:
        # the version folder's Parquet, scanned in place through Arrow datasets (any file system
        # the location is on): marts.<mart> and audit.<table> as views of an in-memory DuckDB
        folder = prepared.staged if prepared is not None else self._pointer()
        if folder is None:
            raise LookupError(f"{self.location} has no publication yet: run the pipeline first")
        with duckdb.connect() as con:
            for schema in ("marts", "audit"):
                con.execute(f"create schema {schema}")
                for name in self.loc.names("published", folder, schema, dirs_only=True):
                    arrow = f"liucun_{schema}_{name}"
                    con.register(arrow, self.loc.dataset("published", folder, schema, name))
                    con.execute(f'create view {schema}."{name}" as select * from "{arrow}"')
            yield con

    def write_report(self, prepared: Any, html: str) -> None:
        self.loc.write_text(("published", prepared.staged, REPORT_PAGE), html, prepared.run_id)

    def report_page(self, version: str) -> Path | str:
        return self.loc.display("published", version, REPORT_PAGE)

    def commit(self, candidate: Candidate, run_id: str, pub: Publication, inputs: dict[str, str]) -> None:
        state = {"run_id": run_id, "committed_at": datetime.now(UTC).isoformat(),
                 "tables": self._tables.pop(run_id, {}),
                 "build": {"version": pub.version, "fingerprint": fingerprint.fingerprint(inputs), "inputs": inputs}}
        self.loc.write_text(("state.json",), json.dumps(state, indent=1) + "\n", run_id)
        self.clear_leftovers()

    def publish_to_postgres(self, pub: Publication, dsn: str, log: Log) -> PostgresPublication:
        from flows.publish.postgres import publish_to_postgres

        # the publication's Parquet, as the DuckDB file the PostgreSQL publisher copies from
        local = self.run_dir(pub.run_id) / "postgres_source.duckdb"
        local.parent.mkdir(parents=True, exist_ok=True)
        local.unlink(missing_ok=True)
        with duckdb.connect(str(local)) as con:
            for schema in ("marts", "audit"):
                con.execute(f"create schema {schema}")
                for name in self.loc.names("published", pub.version, schema, dirs_only=True):
                    con.register("liucun_part", self.loc.read_table("published", pub.version, schema, name))
                    con.execute(f'create table {schema}."{name}" as select * from liucun_part')
                    con.unregister("liucun_part")
        try:
            return publish_to_postgres(local, dsn, pub.run_id, pub.version, log=log)
        finally:
            local.unlink(missing_ok=True)


