"""The retention pipeline flow: ingest -> gate raw -> staging and the intermediate models the BG/NBD
fit reads (int_customer_rfm and what it needs) -> gate staging -> BG/NBD fit (ml.customer_bgnbd_scores)
-> the rest of intermediate and the marts + dbt data tests -> gate marts -> publish.

Write-audit-publish: everything is built into a fresh candidate warehouse under ``DIR/.runs``; the
published ``DIR/liucun.duckdb`` and ``DIR/parquet/current`` change only after every blocking gate
has passed. A failure anywhere publishes nothing and leaves the last publication as it was.

Three things overlap to keep a run's fixed cost down, none of them ahead of a gate's verdict: the
gates run in a worker process that imports Great Expectations while the run starts
(flows/gates/worker.py); dbt is imported and the project parsed while the run merges its extracts
and the raw gate runs; the next publication is written where no reader looks while the marts gate
validates the candidate, and made visible only after it passed (flows/publish/duckdb_file.py).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from expectations.suites import GateParams
from flows.config import load_config
from flows.gates import worker as gate_worker
from flows.ingest.load import ExtractStore
from flows.models.churn_scoring import DBT_MODEL_INPUTS, create_ml_schema
from flows.models.dbt_runner import forget_parse
from flows.pipeline_tasks import (
    dbt_build,
    dbt_parse_ahead,
    extract_sources,
    finish_with_postgres,
    fit_bgnbd,
    layer_row_counts,
    merge_sources,
    nothing_new,
    prepare_publication,
    publish_candidate,
    publish_postgres,
    validate_layer,
)
from flows.publish import fingerprint
from flows.publish.duckdb_file import (
    align_parquet_with_published,
    discard,
    last_publication_row_counts,
    latest_publication,
)
from flows.publish.warehouse import Warehouse
from flows.runtime import stopping
from flows.runtime.memwatch import MemoryWatch
from flows.runtime.redact import redacting
from flows.settings import Settings, resolve_pii_salt

EXTRACT_WORKERS = 3  # sources extracted at once; they share one DuckDB instance and its memory cap


def activity_exclusions(candidate: Path, min_qualifying_amount: float) -> dict[str, int]:
    """Orders that do not count as activity, per reason (``fct_orders.is_qualifying`` is false)."""
    import duckdb

    with duckdb.connect(str(candidate), read_only=True) as con:
        rows = con.execute(
            """select case when net_amount < 0 then 'negative value (returns, credit notes)'
                           when net_amount = 0 then 'zero value'
                           else 'at or below activity.min_qualifying_amount' end, count(*)
               from marts.fct_orders where not is_qualifying group by 1 order by 1""").fetchall()
    return {reason: n for reason, n in rows}


def _discard_when_written(preparing: Any) -> None:
    """The run fails or stops: wait for the publication being prepared (a stop interrupts it) and
    remove it; one whose preparation failed has removed itself."""
    try:
        prepared = preparing.result()
    except BaseException:  # noqa: BLE001 - the run's own failure is the one to report
        return
    discard(prepared)


def _headline(published: Path) -> dict[str, Any]:
    import duckdb

    with duckdb.connect(str(published), read_only=True) as con:
        row = con.execute(
            """select period_start, customers_start, customers_end, customers_new, crr,
                      strict_retention_rate
               from marts.rpt_retention_rate
               where segment_type = 'all' and base_definition = 'active_in_period'
                 and customers_start > 0
               order by period_start desc limit 1"""
        ).fetchone()
    if row is None:
        return {}
    keys = ["period_start", "customers_start", "customers_end", "customers_new", "crr", "strict_retention_rate"]
    return dict(zip(keys, [str(row[0]), *row[1:]], strict=False))


def _current_publication_if_unchanged(wh: Warehouse, inputs: dict[str, str], log: Any) -> Any:
    """The current publication when it was built from these same inputs (and, the caller knows, the
    same raw data): rebuilding would publish the same marts. Else None, saying why."""
    last, current = fingerprint.last_build(wh.state), latest_publication(wh.published)
    if current is None or last is None or last[0] != current.version:
        return None
    differ = fingerprint.changed(last[2], inputs)
    if differ:
        log.info("no new rows in any source, but %s changed since publication %s: rebuilding",
                 ", ".join(differ), current.version)
        return None
    return current


def _skipped_summary(wh: Warehouse, run_id: str, as_of: date, current: Any, extracts: list[Any],
                     seconds: dict[str, float], peak_mb: dict[str, float], log: Any) -> dict[str, Any]:
    reason = (f"nothing new: no source has a new or changed row since publication {current.version}, "
              "which was built from the same as-of date, config, models and code. Nothing was rebuilt; "
              "that publication stands (--full-refresh rebuilds everything anyway)")
    log.info(reason)
    reports = wh.report_dir(run_id)
    reports.mkdir(parents=True, exist_ok=True)
    summary = {
        "run_id": run_id, "as_of": as_of.isoformat(), "skipped": reason,
        "published": str(wh.published), "parquet": str(wh.parquet_dir / current.version),
        "version": current.version, "reports": str(reports),
        "rows_read": 0, "rows_loaded": 0, "rows_quarantined": 0,
        "files_skipped": sum(ex.files_skipped for ex in extracts), "rows_replaced": 0,
        "step_seconds": seconds, "step_peak_mb": peak_mb, "headline": _headline(wh.published),
    }
    (reports / "run_summary.json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    return summary


@flow(name="retention_pipeline", log_prints=False,
      task_runner=ThreadPoolTaskRunner(max_workers=EXTRACT_WORKERS))
@redacting
def retention_pipeline(
    config_path: str,
    warehouse_dir: str = "warehouse",
    as_of: date | None = None,
    full_refresh: bool = False,
    allow_generated_salt: bool = False,
    publish_postgres_dsn_env: str | None = None,
) -> dict[str, Any]:
    """Ingest the configured sources, build and validate every layer, and publish the marts.

    ``full_refresh`` starts from an empty warehouse and reloads every source from scratch.
    ``publish_postgres_dsn_env`` names an environment variable holding a PostgreSQL DSN (never the
    DSN itself: flow parameters are stored by Prefect): the marts are then also published there, in
    one transaction (flows/publish/postgres.py). If that fails the run fails; the DuckDB publication
    stands, and the next run publishes to PostgreSQL again.
    """
    log = get_run_logger()
    settings = Settings()
    config = load_config(config_path)
    # a generated salt is for the demo only: a deployment pointed at real data never falls back to it
    allow_generated_salt = allow_generated_salt and config.path == settings.demo_config.resolve()
    wh = Warehouse(Path(warehouse_dir).resolve())
    as_of = as_of or date.today()
    run_id = str(flow_run.id or uuid.uuid4())
    seconds: dict[str, float] = {}  # where the run's time went, step by step (the summary shows it)
    peak_mb: dict[str, float] = {}  # and the process's peak resident memory during each step
    watch = MemoryWatch()

    @contextlib.contextmanager
    def step(name: str) -> Iterator[None]:
        stopping.check()  # a stop requested by a signal takes effect between steps
        started = time.perf_counter()
        watch.since_mark()
        try:
            yield
        finally:
            seconds[name] = round(seconds.get(name, 0.0) + time.perf_counter() - started, 3)
            peak_mb[name] = max(peak_mb.get(name, 0.0), watch.since_mark())
        stopping.check()
    # SIGINT/SIGTERM stop the run: tasks end, nothing is published, the lock is released
    with stopping.stop_on_signals(log), wh.lock(), watch, contextlib.ExitStack() as run_scope:
        # the gates run in a child process that imports GX meanwhile (the CLI started it already)
        gate_runner = run_scope.enter_context(gate_worker.for_this_run())
        aligned = align_parquet_with_published(wh)  # before clearing: it may keep a dead run's folder
        if aligned:
            log.warning("parquet/current pointed at an older version than liucun.duckdb (a run died "
                        "mid-publish); switched it to %s", aligned)
        stale = wh.clear_stale_runs()
        if stale:
            log.info("removed %d leftover candidate(s) of earlier runs that did not finish", len(stale))
        resolve_pii_salt(settings, wh.root, allow_generated_salt)  # fail early when there is none
        run_dir = wh.run_dir(run_id)
        state_db = None if full_refresh else wh.state
        dbt_vars = {"business_timezone": config.business_timezone,
                    "min_qualifying_amount": config.min_qualifying_amount}  # the as-of date: see dbt_build
        inputs = fingerprint.inputs(config, as_of, dbt_vars, settings.dbt_project_dir)
        # the extracts wait in memory (one cap for all: LIUCUN_INGEST_MEMORY_MB) until the merge
        store = run_scope.enter_context(ExtractStore(run_id, run_dir / "extract.spill", settings.ingest_memory_mb))
        with step("ingest"):
            extracts = extract_sources(config, state_db, run_dir, as_of, wh.root, allow_generated_salt,
                                       store.name)
        # nothing new and nothing else changed: the current publication is what this run would
        # publish. A run that also publishes to PostgreSQL always runs in full, so a PostgreSQL
        # target that missed a publication catches up.
        if state_db is not None and not publish_postgres_dsn_env and nothing_new(extracts):
            current = _current_publication_if_unchanged(wh, inputs, log)
            if current is not None:
                wh.clear_stale_runs()  # this run's scratch
                return _skipped_summary(wh, run_id, as_of, current, extracts, seconds, peak_mb, log)
        dbt_db = wh.candidate_for_dbt(run_id)  # the candidate, at a path that is the same every run
        # dbt's import and parse (about 2 s) run in a background thread while the run merges its
        # extracts (DuckDB's work, mostly outside Python) and the raw gate runs in its worker
        dbt_parse_ahead(dbt_db, settings.dbt_project_dir, run_dir, dbt_vars, as_of, wh.dbt_parse_cache)
        with step("start"):  # copy of the raw state the run builds on
            candidate = wh.start_candidate(run_id, full_refresh)
        reports = wh.report_dir(run_id)
        log.info("run %s: building candidate %s (as of %s)", run_id, candidate, as_of)
        with step("ingest"):
            loads = merge_sources(candidate, extracts, run_id, store.name)
        store.close()  # its memory goes back before dbt runs
        # daily builds: the identity models absorb this run's loads instead of recomputing
        rebuild = fingerprint.models_rebuild_reason(full_refresh, fingerprint.last_build(wh.state), inputs,
                                                   loads, candidate)
        fingerprint.clear_model_builds(candidate)
        params = GateParams.from_config(config, as_of, last_publication_row_counts(wh.published))
        with step("gate raw"):
            gates = {"raw": validate_layer("raw", candidate, params, reports, gate_runner)}
        create_ml_schema(candidate)  # source ml exists (empty) before dbt runs, fitted or not
        # two dbt invocations, not three (each costs seconds before its first node): staging with
        # int_customer_rfm and its upstream, the staging gate, the BG/NBD fit the marts read (source
        # ml), then the rest. Nothing is published unless every gate passes.
        with step("dbt staging + model inputs"):
            dbt_build(f"staging {DBT_MODEL_INPUTS}", dbt_db, settings.dbt_project_dir, run_dir, dbt_vars, as_of,
                      buildable=True, keep_results=reports / "dbt_run_results_1.json",
                      parse_cache=wh.dbt_parse_cache, full_refresh=rebuild is not None)
        with step("gate staging"):
            gates["staging"] = validate_layer("staging", candidate, params, reports, gate_runner)
        with step("fit"):
            fit_bgnbd(candidate, as_of)
        with step("dbt intermediate + marts"):
            dbt_build("", dbt_db, settings.dbt_project_dir, run_dir, dbt_vars, as_of,
                      exclude=f"staging {DBT_MODEL_INPUTS}", buildable=True,
                      keep_results=reports / "dbt_run_results_2.json", parse_cache=wh.dbt_parse_cache,
                      full_refresh=rebuild is not None)
            forget_parse(run_dir)
        models_built = fingerprint.models_built(candidate, rebuild, sum(1 for r in loads if r.rows_loaded))
        log.info("models: %s", models_built)
        with step("gate marts"):
            # the next publication is written where no reader looks while the marts gate validates
            # the candidate (both only read it); it becomes visible only once every gate has passed
            preparing = prepare_publication.submit(wh, candidate, run_id)
            try:
                gates["marts"] = validate_layer("marts", candidate, params, reports, gate_runner)
                counts = layer_row_counts(candidate)
                excluded = activity_exclusions(candidate, config.min_qualifying_amount)
            except BaseException:
                _discard_when_written(preparing)
                raise
            prepared = preparing.result()
        gate_summary = {k: {"passed": g.passed, "evaluated": g.evaluated, "warnings": len(g.warnings)}
                        for k, g in gates.items()}
        with stopping.deferred(), step("publish"):  # a stop while publishing waits for the publish
            pub = publish_candidate(wh, prepared, as_of, gate_summary)
            fingerprint.record(candidate, run_id, pub.version, pub.published_at, inputs)  # goes with the state
            wh.commit_state(candidate, run_id)  # raw loads and ledgers of this run become the state
            wh.clear_stale_runs()
        # after the DuckDB side is complete, still under the lock (the published file cannot change)
        postgres = None
        if publish_postgres_dsn_env:
            with step("publish postgres"):
                postgres = publish_postgres(pub, publish_postgres_dsn_env)

    summary = {
        "run_id": run_id,
        "as_of": as_of.isoformat(),
        "published": str(pub.path),
        "parquet": str(pub.parquet_dir),
        "version": pub.version,
        "reports": str(reports),
        "rows_read": sum(r.rows_read for r in loads),
        "rows_loaded": sum(r.rows_loaded for r in loads),
        "rows_quarantined": sum(r.rows_quarantined for r in loads),
        "files_skipped": sum(r.files_skipped for r in loads),
        "rows_replaced": sum(r.rows_replaced for r in loads),
        "models_built": models_built,
        "layer_rows": counts,
        "activity_exclusions": excluded,
        "min_qualifying_amount": config.min_qualifying_amount,
        "mart_rows": pub.row_counts,
        "gates": gate_summary,
        "step_seconds": seconds,
        "step_peak_mb": peak_mb,
        "headline": _headline(pub.path),
    }
    # the run's figures beside its validation reports (machines read this; the CLI prints it)
    (reports / "run_summary.json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    return finish_with_postgres(postgres, summary)
