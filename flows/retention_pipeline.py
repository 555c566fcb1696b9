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
from flows.engines import engine_for
from flows.engines.base import Engine
from flows.ingest.load import ExtractStore
from flows.models.churn_scoring import DBT_MODEL_INPUTS
from flows.models.dbt_runner import forget_parse
from flows.pipeline_tasks import (
    dbt_build,
    dbt_parse_ahead,
    extract_sources,
    finish_with_postgres,
    fit_bgnbd,
    merge_sources,
    nothing_new,
    prepare_publication,
    publish_candidate,
    publish_postgres,
    render_report,
    report_artifact,
    validate_layer,
)
from flows.publish import fingerprint
from flows.runtime import progress, stopping
from flows.runtime.memwatch import MemoryWatch
from flows.runtime.redact import redacting
from flows.settings import Settings, resolve_pii_salt

EXTRACT_WORKERS = 3  # sources extracted at once; they share one DuckDB instance and its memory cap


def _discard_when_written(engine: Engine, preparing: Any) -> None:
    """The run fails or stops: wait for the publication being prepared (a stop interrupts it) and
    remove it; one whose preparation failed has removed itself."""
    try:
        prepared = preparing.result()
    except BaseException:  # noqa: BLE001 - the run's own failure is the one to report
        return
    engine.discard_publication(prepared)


def _current_publication_if_unchanged(engine: Engine, inputs: dict[str, str], log: Any) -> Any:
    """The current publication when it was built from these same inputs (and, the caller knows, the
    same raw data): rebuilding would publish the same marts. Else None, saying why."""
    last, current = engine.last_build(), engine.current_publication()
    if current is None or last is None or last[0] != current.version:
        return None
    differ = fingerprint.changed(last[2], inputs)
    if differ:
        log.info("no new rows in any source, but %s changed since publication %s: rebuilding",
                 ", ".join(differ), current.version)
        return None
    return current


def _gate_detail(gate: Any) -> str:
    return (f"{'passed' if gate.passed else 'FAILED'}: {gate.evaluated} checks, "
            f"{len(gate.warnings)} warning{'' if len(gate.warnings) == 1 else 's'}")


def _existing_page(engine: Engine, version: str) -> str | None:
    """The report page of publication ``version`` (None when it has none: one published before
    liucun drew reports, or one whose page could not be drawn)."""
    page = engine.report_page(version)
    return str(page) if not isinstance(page, Path) or page.is_file() else None


def _skipped_summary(engine: Engine, run_id: str, as_of: date, current: Any, extracts: list[Any],
                     seconds: dict[str, float], peak_mb: dict[str, float], log: Any) -> dict[str, Any]:
    reason = (f"nothing new: no source has a new or changed row since publication {current.version}, "
              "which was built from the same as-of date, config, models and code. Nothing was rebuilt; "
              "that publication stands (--full-refresh rebuilds everything anyway)")
    log.info(reason)
    reports = engine.report_dir(run_id)
    reports.mkdir(parents=True, exist_ok=True)
    summary = {
        "run_id": run_id, "as_of": as_of.isoformat(), "skipped": reason,
        "published": str(current.path), "parquet": str(current.parquet_dir),
        "version": current.version, "reports": str(reports),
        "report": _existing_page(engine, current.version),
        "rows_read": 0, "rows_loaded": 0, "rows_quarantined": 0,
        "files_skipped": sum(ex.files_skipped for ex in extracts), "rows_replaced": 0,
        "step_seconds": seconds, "step_peak_mb": peak_mb, "headline": engine.headline(),
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
    engine: str | None = None,
) -> dict[str, Any]:
    """Ingest the configured sources, build and validate every layer, and publish the marts.

    ``full_refresh`` starts from an empty warehouse and reloads every source from scratch.
    ``publish_postgres_dsn_env`` names an environment variable holding a PostgreSQL DSN (never the
    DSN itself: flow parameters are stored by Prefect): the marts are then also published there, in
    one transaction (flows/publish/postgres.py). If that fails the run fails; the DuckDB publication
    stands, and the next run publishes to PostgreSQL again.
    ``engine`` (``duckdb`` or ``spark``) overrides the config's ``engine:`` (flows/engines/).
    """
    log = get_run_logger()
    settings = Settings()
    config = load_config(config_path)
    # a generated salt is for the demo only: a deployment pointed at real data never falls back to it
    allow_generated_salt = allow_generated_salt and config.path == settings.demo_config.resolve()
    engine = engine_for(Path(warehouse_dir), config.engine, engine)  # the warehouse's engine
    as_of = as_of or date.today()
    run_id = str(flow_run.id or uuid.uuid4())
    seconds: dict[str, float] = {}  # where the run's time went, step by step (the summary shows it)
    peak_mb: dict[str, float] = {}  # and the process's peak resident memory during each step
    watch = MemoryWatch()

    @contextlib.contextmanager
    def step(name: str, label: str | None = None, total: int | None = None) -> Iterator[dict[str, Any]]:
        stopping.check()  # a stop requested by a signal takes effect between steps
        started = time.perf_counter()
        watch.since_mark()
        try:  # on a terminal, one line per step (flows/runtime/progress.py); ``label`` names it there
            with progress.step(label or name, total) as shown:
                yield shown
        finally:
            seconds[name] = round(seconds.get(name, 0.0) + time.perf_counter() - started, 3)
            peak_mb[name] = max(peak_mb.get(name, 0.0), watch.since_mark())
        stopping.check()
    # SIGINT/SIGTERM stop the run: tasks end, nothing is published, the lock is released
    with stopping.stop_on_signals(log), engine.lock(), watch, contextlib.ExitStack() as run_scope:
        engine.open_run(run_scope)
        engine.recover(log)  # what dead runs left: the publication made consistent, scratch removed
        local = engine.warehouse  # the warehouse folder: salt file, reports, dbt's parse cache
        resolve_pii_salt(settings, local.root, allow_generated_salt)  # fail early when there is none
        run_dir = engine.run_dir(run_id)
        dbt_vars = {"business_timezone": config.business_timezone,
                    "min_qualifying_amount": config.min_qualifying_amount}  # the as-of date: see dbt_build
        inputs = fingerprint.inputs(config, as_of, dbt_vars, settings.dbt_project_dir)
        # the extracts wait in memory (one cap for all: LIUCUN_INGEST_MEMORY_MB) until the merge
        store = run_scope.enter_context(ExtractStore(run_id, run_dir / "extract.spill", settings.ingest_memory_mb))
        with step("ingest", "ingest: read sources", total=len(config.sources)) as shown:
            extracts = extract_sources(config, {} if full_refresh else engine.source_state(), run_dir, as_of,
                                       local.root, allow_generated_salt, store.name)
            shown["detail"] = (f"{sum(ex.rows_read for ex in extracts):,} new rows, {len(extracts)} sources"
                               + (f" ({sum(ex.files_skipped for ex in extracts)} files unchanged)"
                                  if any(ex.files_skipped for ex in extracts) else ""))
        # nothing new and nothing else changed: the current publication is what this run would
        # publish. A run that also publishes to PostgreSQL always runs in full, so a PostgreSQL
        # target that missed a publication catches up.
        if not full_refresh and not publish_postgres_dsn_env and nothing_new(extracts):
            current = _current_publication_if_unchanged(engine, inputs, log)
            if current is not None:
                engine.clear_leftovers()  # this run's scratch
                return _skipped_summary(engine, run_id, as_of, current, extracts, seconds, peak_mb, log)
        dbt_env = engine.dbt_env(run_id, as_of)  # where dbt finds the candidate
        # dbt's import and parse (about 2 s) run in a background thread while the run merges its
        # extracts (DuckDB's work, mostly outside Python) and the raw gate runs in its worker
        dbt_parse_ahead(dbt_env, settings.dbt_project_dir, run_dir, dbt_vars, local.dbt_parse_cache)
        with step("start", "start: copy the last state"):  # copy of the raw state the run builds on
            candidate = engine.start_candidate(run_id, full_refresh)
        reports = engine.report_dir(run_id)
        log.info("run %s: building candidate %s (as of %s)", run_id, candidate.location, as_of)
        with step("ingest", "ingest: load raw layer") as shown:
            loads = merge_sources(engine, candidate, extracts, run_id, store.name)
            shown["lines"] = [f"{r.source:<24} {r.rows_loaded:>11,} loaded {r.rows_quarantined:>9,} quarantined"
                              for r in loads if r.rows_read or r.rows_quarantined]
            shown["lines"] += [f"warning: {r.source}: {w}" for r in loads for w in r.warnings]
            shown["detail"] = (f"{sum(r.rows_loaded for r in loads):,} rows loaded, "
                               f"{sum(r.rows_quarantined for r in loads):,} quarantined")
        store.close()  # its memory goes back before dbt runs
        # daily builds: the identity models absorb this run's loads instead of recomputing
        rebuild = engine.models_rebuild_reason(candidate, full_refresh, inputs, loads)
        engine.prepare_models(candidate)  # and source ml exists (empty) before dbt runs, fitted or not
        current = engine.current_publication()
        params = GateParams.from_config(config, as_of, current.row_counts if current else {})
        with step("gate raw") as shown:
            gates = {"raw": validate_layer(engine, "raw", candidate, params, reports)}
            shown["detail"] = _gate_detail(gates["raw"])
        # two dbt invocations, not three (each costs seconds before its first node): staging with
        # int_customer_rfm and its upstream, the staging gate, the BG/NBD fit the marts read (source
        # ml), then the rest. Nothing is published unless every gate passes.
        with step("dbt staging + model inputs") as shown:
            shown["detail"] = dbt_build(f"staging {DBT_MODEL_INPUTS}", dbt_env, settings.dbt_project_dir, run_dir, dbt_vars,
                      buildable=True, keep_results=reports / "dbt_run_results_1.json",
                      parse_cache=local.dbt_parse_cache, full_refresh=rebuild is not None).brief()
        with step("gate staging") as shown:
            gates["staging"] = validate_layer(engine, "staging", candidate, params, reports)
            shown["detail"] = _gate_detail(gates["staging"])
        with step("fit", "fit: BG/NBD, spend, renewals") as shown:
            fitted = fit_bgnbd(engine, candidate, as_of)
            shown["detail"] = f"{fitted.fit.n_customers:,} customers" if fitted.fit else ""
        with step("dbt intermediate + marts") as shown:
            shown["detail"] = dbt_build("", dbt_env, settings.dbt_project_dir, run_dir, dbt_vars,
                      exclude=f"staging {DBT_MODEL_INPUTS}", buildable=True,
                      keep_results=reports / "dbt_run_results_2.json", parse_cache=local.dbt_parse_cache,
                      full_refresh=rebuild is not None).brief()
            forget_parse(run_dir)
        models_built = engine.models_built(candidate, rebuild, sum(1 for r in loads if r.rows_loaded))
        log.info("models: %s", models_built)
        with step("gate marts") as shown:
            # the next publication is written where no reader looks while the marts gate validates
            # the candidate (both only read it); it becomes visible only once every gate has passed
            preparing = prepare_publication.submit(engine, candidate, run_id)
            try:
                gates["marts"] = validate_layer(engine, "marts", candidate, params, reports)
                counts = engine.layer_row_counts(candidate)
                excluded = engine.activity_exclusions(candidate)
            except BaseException:
                _discard_when_written(engine, preparing)
                raise
            prepared = preparing.result()
            shown["detail"] = _gate_detail(gates["marts"])
        gate_summary = {k: {"passed": g.passed, "evaluated": g.evaluated, "warnings": len(g.warnings)}
                        for k, g in gates.items()}
        with step("report") as shown:  # drawn from the prepared publication, into it: visible with its marts
            try:
                drawn = render_report(engine, prepared, run_id, as_of, reports)
                shown["detail"] = "drawn" if drawn else "NOT DRAWN (see the log)"
            except BaseException:
                engine.discard_publication(prepared)
                raise
        with stopping.deferred(), step("publish") as shown:  # a stop while publishing waits for the publish
            pub = publish_candidate(engine, prepared, as_of, gate_summary)
            shown["detail"] = f"version {pub.version}, {len(pub.row_counts)} marts"
            # what it was built from, the run's raw loads and ledgers become the state
            engine.commit(candidate, run_id, pub, inputs)
        # after the DuckDB side is complete, still under the lock (the published file cannot change)
        postgres = None
        if publish_postgres_dsn_env:
            with step("publish postgres"):
                postgres = publish_postgres(engine, pub, publish_postgres_dsn_env)

    summary = {
        "run_id": run_id,
        "as_of": as_of.isoformat(),
        "published": str(pub.path),
        "parquet": str(pub.parquet_dir),
        "version": pub.version,
        "report": str(engine.report_page(pub.version)) if drawn else None,
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
        "headline": engine.headline(),
    }
    report_artifact(summary, summary["report"])
    # the run's figures beside its validation reports (machines read this; the CLI prints it)
    (reports / "run_summary.json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    return finish_with_postgres(postgres, summary)
