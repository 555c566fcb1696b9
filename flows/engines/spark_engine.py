"""The Spark engine: the raw layer, the models, the gates and the publications as Spark tables and
Parquet folders in one location (``spark.location`` in liucun.yml; default ``DIR/spark``).

The run's SparkSession lives in the run's process (dbt-spark's ``session`` method): one made from
``spark.master`` and ``spark.conf``, or the one already running there (a test's, a notebook's).
Everything the engine keeps is files in the location, so the Spark catalog may be the session's
own in-memory one: each run registers the tables it reads.

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
- **Gates.** Great Expectations' Spark execution engine, in the run's process (expectations/gate.py).
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
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from flows.config import SparkConfig
from flows.engines.base import Build, Candidate, Engine, Publication, PublishedVersion
from flows.ingest.load import SourceState, merge_extracts
from flows.publish import fingerprint
from flows.publish.warehouse import Warehouse, write_atomically
from flows.runtime import memwatch

if TYPE_CHECKING:
    from expectations.results import GateResult
    from expectations.suites import GateParams
    from flows.engines.base import Log
    from flows.ingest.load import Extract, LoadResult
    from flows.models.churn_scoring import ScoringResult
    from flows.publish.postgres import PostgresPublication

KEEP_VERSIONS = 3
LAYERS = ("raw", "staging", "intermediate", "marts", "ml", "incremental")
# what every session liucun makes gets, unless spark.conf says otherwise: dbt-spark turns ANSI mode
# off on the session it uses, so the engine's own SQL runs under the same semantics from the start
SESSION_DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",  # no stage bars in the run's terminal output
}


def _lit(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SparkEngine(Engine):
    name = "spark"

    def __init__(self, warehouse: Warehouse, config: SparkConfig) -> None:
        super().__init__(warehouse)
        self.config = config
        self.location = Path(config.location) if config.location else warehouse.root / "spark"
        if "://" in str(config.location or ""):
            raise ValueError(f"spark.location {config.location!r}: this version of liucun keeps its Spark "
                             "tables in a folder every Spark worker sees (a local path, or a shared mount)")
        self._spark: Any = None
        self._tables: dict[str, dict[str, str]] = {}  # per candidate run: raw table -> its files

    # ---- where things are ---------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.location / "state.json"

    @property
    def published_dir(self) -> Path:
        return self.location / "published"

    def prefix(self, run_id: str) -> str:
        """The candidate's database prefix: ``<database_prefix>c<first 8 of the run id>_``."""
        return f"{self.config.database_prefix}c{re.sub(r'[^0-9a-z]', '', run_id.lower())[:8]}_"

    def _db(self, candidate: Candidate, layer: str) -> str:
        return self.prefix(candidate.run_id) + layer

    @property
    def spark(self) -> Any:
        if self._spark is None:
            raise RuntimeError("the Spark engine is used outside a run: open_run() first")
        return self._spark

    def prerequisites(self) -> list[str]:
        import importlib.util

        missing = []
        if importlib.util.find_spec("pyspark") is None or importlib.util.find_spec("dbt.adapters.spark") is None:
            missing.append("engine spark needs PySpark and dbt-spark: install liucun's spark extra (`make "
                           "setup-spark`, or `uv sync --extra spark`, or pip install 'liucun[spark]')")
        if os.environ.get("SPARK_REMOTE"):
            missing.append("SPARK_REMOTE is set, but this version of liucun runs Spark in its own process "
                           "(method: session, with spark.master naming a cluster); unset SPARK_REMOTE")
        if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
            missing.append("engine spark needs Java 17 (a local or cluster SparkSession starts a JVM): install it "
                           "(e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME")
        return missing

    # ---- a run's frame ------------------------------------------------------------------------

    def open_run(self, scope: contextlib.ExitStack) -> None:
        from flows.config import EngineConfig
        from flows.engines import record_engine

        self._spark, made = session(self.config, self.warehouse.root)
        if made:
            scope.callback(self._spark.stop)
            # the JVM pyspark started is this run's: its memory counts in the run's figures
            jvm = getattr(getattr(self._spark.sparkContext, "_gateway", None), "proc", None)
            if jvm is not None:
                memwatch.track(jvm.pid)
                scope.callback(memwatch.untrack, jvm.pid)
        scope.callback(setattr, self, "_spark", None)
        for sub in ("raw", "candidates", "incoming", "published"):
            (self.location / sub).mkdir(parents=True, exist_ok=True)
        record_engine(self.warehouse.root, EngineConfig("spark", self.config))

    def recover(self, log: Log) -> None:
        stale = self.clear_leftovers()
        if stale:
            log.info("removed %d leftover candidate(s) of earlier runs that did not finish", len(stale))

    def clear_leftovers(self) -> list[str]:
        """Candidates, incoming rows and unpublished versions of runs not running now, and raw
        table files the state no longer names."""
        removed = sorted({p.name for p in (self.location / "candidates").glob("*")}
                         | {p.name for p in (self.location / "incoming").glob("*")}
                         | {p.name for p in self.warehouse.runs_dir.glob("*")} if self.location.exists() else set())
        if self._spark is not None:
            ours = self.config.database_prefix + "c"
            for row in self.spark.sql("show databases").collect():
                name = row[0]
                if name.startswith(ours) and any(name.endswith("_" + layer) for layer in LAYERS):
                    self.spark.sql(f"drop database if exists `{name}` cascade")
        for folder in ("candidates", "incoming"):
            for d in (self.location / folder).glob("*"):
                shutil.rmtree(d, ignore_errors=True)
        self.warehouse.clear_stale_runs()
        for tmp in self.location.glob(f".{self.state_file.name}.*"):  # a state being written
            tmp.unlink(missing_ok=True)
        live = set(self._state().get("tables", {}).values())
        for table_dir in (self.location / "raw").glob("*"):
            for version in table_dir.glob("*"):
                if str(version) not in live:
                    shutil.rmtree(version, ignore_errors=True)
        current = self._pointer()
        for d in self.published_dir.glob("*") if self.published_dir.exists() else []:
            if d.name.startswith(".") and d.is_dir():  # a publication being written when its run died
                shutil.rmtree(d, ignore_errors=True)
            elif d.name.startswith(".CURRENT."):  # a pointer being written
                d.unlink(missing_ok=True)
            elif d.is_dir() and (current is None or d.name > current):  # renamed, never made current
                shutil.rmtree(d, ignore_errors=True)
        return removed

    # ---- the last good state ------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        if not self.state_file.exists():
            return {}
        return json.loads(self.state_file.read_text(encoding="utf-8"))

    def _pointer(self) -> str | None:
        pointer = self.published_dir / "CURRENT"
        return pointer.read_text(encoding="utf-8").strip() if pointer.exists() else None

    def source_state(self) -> dict[str, SourceState]:
        tables = self._state().get("tables", {})
        state: dict[str, SourceState] = {}
        if "_files" not in tables or "_cursors" not in tables:
            return state
        spark = self.spark
        for source, sha, path in spark.read.parquet(tables["_files"]).select("source", "sha256", "file").collect():
            st = state.setdefault(source, SourceState())
            st.hashes.add(sha)
            st.paths.add(path)
        spark.read.parquet(tables["_cursors"]).createOrReplaceTempView("liucun_state_cursors")
        for source, ctype, value in spark.sql(
                "select source, cursor_type, cursor_value from (select *, row_number() over (partition by source "
                "order by updated_at desc) as n from liucun_state_cursors) where n = 1").collect():
            state.setdefault(source, SourceState()).cursor = (ctype, value)
        return state

    def last_build(self) -> Build | None:
        build = self._state().get("build")
        return (build["version"], build["fingerprint"], build["inputs"]) if build else None

    def current_publication(self) -> PublishedVersion | None:
        version = self._pointer()
        if version is None:
            return None
        import pyarrow.parquet as pq

        folder = self.published_dir / version
        rows = pq.read_table(folder / "audit" / "publications").to_pylist()
        last = max((r for r in rows if r["version"] == version), key=lambda r: r["published_at"], default=None)
        if last is None:
            return None
        counts = {str(k): int(v) for k, v in json.loads(last["row_counts"] or "{}").items()}
        return PublishedVersion(version, last["published_at"], counts, folder, folder / "marts")

    def headline(self) -> dict[str, Any]:
        version = self._pointer()
        if version is None:
            return {}
        import pyarrow.parquet as pq

        keys = ["period_start", "customers_start", "customers_end", "customers_new", "crr", "strict_retention_rate"]
        rows = [r for r in pq.read_table(self.published_dir / version / "marts" / "rpt_retention_rate",
                                         columns=[*keys, "segment_type", "base_definition"]).to_pylist()
                if r["segment_type"] == "all" and r["base_definition"] == "active_in_period"
                and (r["customers_start"] or 0) > 0]
        if not rows:
            return {}
        row = max(rows, key=lambda r: r["period_start"])
        return {k: (str(row[k]) if k == "period_start" else row[k]) for k in keys}

    # ---- building a candidate -----------------------------------------------------------------

    def dbt_env(self, run_id: str, as_of: date) -> dict[str, str]:
        return {"LIUCUN_DBT_TARGET": "spark", "LIUCUN_SCHEMA_PREFIX": self.prefix(run_id),
                "LIUCUN_AS_OF_DATE": as_of.isoformat()}

    def start_candidate(self, run_id: str, full_refresh: bool) -> Candidate:
        """The candidate's databases, each with its folder under ``candidates/<run_id>``; its raw
        tables are the state's (their files are not copied: a table the run changes is written anew)."""
        candidate = Candidate(run_id, self.location / "candidates" / run_id)
        candidate.location.mkdir(parents=True, exist_ok=True)
        for layer in LAYERS:
            db = self._db(candidate, layer)
            self.spark.sql(f"drop database if exists `{db}` cascade")
            self.spark.sql(f"create database `{db}` location {_lit(str(candidate.location / (db + '.db')))}")
        tables = {} if full_refresh else dict(self._state().get("tables", {}))
        self._tables[run_id] = tables
        for table, files in tables.items():
            self._register(candidate, table, files)
        return candidate

    def _register(self, candidate: Candidate, table: str, files: str) -> None:
        db = self._db(candidate, "raw")
        self.spark.sql(f"drop table if exists `{db}`.`{table}`")
        self.spark.sql(f"create table `{db}`.`{table}` using parquet location {_lit(files)}")

    def land_raw(self, candidate: Candidate, extracts: list[Extract], run_id: str, store: str) -> list[LoadResult]:
        from flows.engines.spark_raw import land

        landing = self.run_dir(run_id) / "landing.duckdb"
        landing.parent.mkdir(parents=True, exist_ok=True)
        landing.unlink(missing_ok=True)
        # the new rows, typed, checked, quarantined and counted by the same code as on DuckDB
        results = merge_extracts(landing, extracts, run_id, store)
        tables = self._tables[run_id]
        written = land(self.spark, landing, extracts, results, tables, self.location, run_id)
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

        create_ml_tables(self.spark, self._db(candidate, "ml"))

    def models_built(self, candidate: Candidate, rebuild: str | None, new_loads: int) -> str:
        return f"every model computed in full ({rebuild}); {new_loads} new load(s)"

    def fit_churn_model(self, candidate: Candidate, as_of: date, log: Log) -> ScoringResult:
        from flows.engines.spark_models import score

        return score(self.spark, self.prefix(candidate.run_id), as_of, log)

    def run_gate(self, layer: str, candidate: Candidate, params: GateParams, report_dir: Path) -> GateResult:
        from expectations.gate import run_gate_spark

        return run_gate_spark(layer, self.spark, self.prefix(candidate.run_id), params, report_dir)

    def _tables_of(self, db: str) -> list[str]:
        return [t.name for t in self.spark.catalog.listTables(db) if not t.isTemporary and not t.name.startswith("_")]

    def layer_row_counts(self, candidate: Candidate) -> dict[str, int]:
        out: dict[str, int] = {}
        for layer in ("raw", "staging", "intermediate", "marts"):
            db = self._db(candidate, layer)
            parts = [f"select count(*) as n from `{db}`.`{t}`" for t in self._tables_of(db)]
            if parts:
                out[layer] = int(self.spark.sql(f"select sum(n) from ({' union all '.join(parts)})").first()[0])
        return out

    def activity_exclusions(self, candidate: Candidate) -> dict[str, int]:
        rows = self.spark.sql(
            f"""select case when net_amount < 0 then 'negative value (returns, credit notes)'
                            when net_amount = 0 then 'zero value'
                            else 'at or below activity.min_qualifying_amount' end as reason, count(*) as n
                from `{self._db(candidate, 'marts')}`.fct_orders where not is_qualifying group by 1 order by 1""").collect()
        return {reason: int(n) for reason, n in rows}

    # ---- write-audit-publish ------------------------------------------------------------------

    def prepare_publication(self, candidate: Candidate, run_id: str) -> Any:
        from flows.engines.spark_publish import prepare

        return prepare(self.spark, self.published_dir, self._pointer(), self.prefix(run_id), run_id)

    def complete_publication(self, prepared: Any, as_of: date, gates: dict[str, dict]) -> Publication:
        from flows.engines.spark_publish import complete

        return complete(self.spark, self.published_dir, self._pointer(), prepared, as_of, gates,
                        keep=KEEP_VERSIONS)

    def discard_publication(self, prepared: Any) -> None:
        shutil.rmtree(prepared.staged, ignore_errors=True)

    def commit(self, candidate: Candidate, run_id: str, pub: Publication, inputs: dict[str, str]) -> None:
        state = {"run_id": run_id, "committed_at": datetime.now(UTC).isoformat(),
                 "tables": self._tables.pop(run_id, {}),
                 "build": {"version": pub.version, "fingerprint": fingerprint.fingerprint(inputs), "inputs": inputs}}
        write_atomically(self.state_file, json.dumps(state, indent=1) + "\n", run_id)
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
                for d in sorted((pub.path / schema).iterdir()):
                    if d.is_dir():
                        con.execute(f'create table {schema}."{d.name}" as select * from read_parquet(?)',
                                    [str(d / "*.parquet")])
        try:
            return publish_to_postgres(local, dsn, pub.run_id, pub.version, log=log)
        finally:
            local.unlink(missing_ok=True)


def session(config: SparkConfig, warehouse_root: Path) -> tuple[Any, bool]:
    """The run's SparkSession and whether this call made it (then the run stops it at its end).

    With no ``master`` configured, a session already running in the process is used as it is; else
    a new one: ``master`` (default ``local[*]``), :data:`SESSION_DEFAULTS`, then ``spark.conf`` from
    liucun.yml."""
    import importlib.util
    import logging

    if importlib.util.find_spec("pyspark") is None:
        raise RuntimeError("engine spark needs PySpark and Java 17: install liucun's spark extra "
                           "(`make setup-spark`, or `uv sync --extra spark`, or pip install 'liucun[spark]')")
    from pyspark.sql import SparkSession

    # PySpark logs every failing query with the JVM's stack (a gate's error is in its report)
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    active = SparkSession.getActiveSession()
    if active is not None and config.master is None:
        for key in ("spark.sql.session.timeZone", "spark.sql.ansi.enabled"):  # runtime settings: the same semantics
            active.conf.set(key, dict(config.conf).get(key, SESSION_DEFAULTS[key]))
        return active, False
    builder = SparkSession.builder.appName("liucun").master(config.master or "local[*]")
    scratch = warehouse_root / ".spark"
    settings = {**SESSION_DEFAULTS, "spark.local.dir": str(scratch / "tmp"),
                "spark.sql.warehouse.dir": str(scratch / "default-catalog")}
    if (config.master or "local").startswith("local"):
        # local mode runs the executors in the driver's JVM: Spark's default 1g heap is too small
        # for the demo's 10x sample; a quarter of this machine's memory, 1 to 8 GiB (spark.conf wins)
        total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        settings["spark.driver.memory"] = f"{max(1024, min(8192, total_mb // 4))}m"
    settings.update(dict(config.conf))
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark, True
