"""Tasks of the retention pipeline. I/O retries with backoff; gates never retry, dbt never caches."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from expectations.suites import GateParams
from flows.config import ProjectConfig, SourceConfig
from flows.engines.base import Candidate, Engine, Publication
from flows.ingest.load import (
    Extract,
    LoadResult,
    SourceError,
    SourceState,
    collect_extracts,
    extract_source,
)
from flows.models.churn_scoring import ScoringResult
from flows.models.dbt_runner import DbtRunSummary, parse_ahead, run_dbt_in_process
from flows.publish.postgres import (
    PostgresPublication,
    PostgresPublishError,
    PostgresPublishFailed,
    PostgresUnreachable,
    masked_dsn,
    redact,
)
from flows.runtime import progress, stopping
from flows.runtime.redact import redacting
from flows.settings import Settings, resolve_pii_salt

if TYPE_CHECKING:
    from expectations.results import GateResult


def _retry_io_only(task: Any, task_run: Any, state: Any) -> bool:
    """Retry transient I/O trouble (connections, locks), never a contract or config error, and
    nothing once the run is stopping."""
    if stopping.requested():
        return False
    try:
        state.result()
    except SourceError:
        return False
    except (ConnectionError, TimeoutError, OSError):
        return True
    except Exception:  # noqa: BLE001
        return False
    return False


@task(name="extract-source", task_run_name="extract-{src.name}", retries=2, retry_delay_seconds=[2, 10],
      retry_condition_fn=_retry_io_only, cache_policy=NO_CACHE)
@redacting
def extract_source_task(src: SourceConfig, data_dir: Path, scratch_dir: Path, state: SourceState,
                        as_of: date, warehouse_root: Path, allow_generated_salt: bool, store: str) -> Extract:
    """Read what is new in one source, then type, check and hash it into its own schema of the
    run's extract store (in memory, shared with the other sources; see flows/ingest/load.py)."""
    salt = resolve_pii_salt(Settings(), warehouse_root, allow_generated_salt)  # never a task input
    ex = extract_source(src, data_dir, scratch_dir, state, as_of, salt, store)
    progress.advance()  # one more source read (the ingest step's bar)
    get_run_logger().info("%s: %d rows read from %d new file(s)%s", src.name, ex.rows_read, len(ex.files),
                          f", {ex.files_skipped} unchanged file(s) skipped" if ex.files_skipped else "")
    return ex


@task(name="merge-sources", cache_policy=NO_CACHE)
@redacting
def merge_sources(engine: Engine, candidate: Candidate, extracts: list[Extract], run_id: str,
                  store: str) -> list[LoadResult]:
    """Write the extracts into the candidate's raw layer, one transaction per source, and log each load."""
    log = get_run_logger()
    results = engine.land_raw(candidate, extracts, run_id, store)
    for r in results:
        secs = (r.finished_at - r.started_at).total_seconds()
        log.info(
            "loaded %-22s %9d read  %9d loaded  %7d quarantined  %6d replaced  (%.1fs)%s%s",
            r.source, r.rows_read, r.rows_loaded, r.rows_quarantined, r.rows_replaced, secs,
            f"  reasons={r.reasons}" if r.reasons else "",
            f"  schema drift: extra columns {r.schema_drift}" if r.schema_drift else "",
        )
        for w in r.warnings:
            log.warning("%s: %s", r.source, w)
    return results


def extract_sources(config: ProjectConfig, state: dict[str, SourceState], run_dir: Path, as_of: date,
                    warehouse_root: Path, allow_generated_salt: bool, store: str) -> list[Extract]:
    """Extract all sources concurrently as Prefect tasks; what is new is judged by the load ledgers
    of ``state`` (empty: everything is new). A broken source is reported with every other broken
    source, and nothing is merged."""
    scratch = run_dir / "extract"
    futures = [
        extract_source_task.submit(src, config.data_dir, scratch, state.get(src.name, SourceState()), as_of,
                                   warehouse_root, allow_generated_salt, store)
        for src in config.sources
    ]
    return collect_extracts(futures)


def nothing_new(extracts: list[Extract]) -> bool:
    """No source has a new or changed row (a file replaced by a shorter one is a change)."""
    return all(ex.rows_read == 0 and not ex.replaced_files for ex in extracts)


@task(name="validate-layer", cache_policy=NO_CACHE)
@redacting
def validate_layer(engine: Engine, layer: str, candidate: Candidate, params: GateParams,
                   report_dir: Path) -> GateResult:
    """Run the layer's GX checkpoint on the candidate (through the run's engine); publish evidence as
    Prefect artifacts; fail on blocking failures."""
    from expectations.results import GateFailed

    log = get_run_logger()
    result = engine.run_gate(layer, candidate, params, report_dir)
    rows = [
        {
            "result": "error" if not o.evaluated else ("pass" if o.success else "FAIL"),
            "severity": o.severity, "table": o.table, "expectation": o.description or o.expectation,
            "column": o.column or "", "unexpected": o.unexpected_count, "rows": o.element_count,
        }
        for o in result.outcomes
    ]
    key = f"gx-{layer}-validation"
    create_table_artifact(key=key, table=rows, description=result.summary())
    create_markdown_artifact(key=f"{key}-report", markdown=result.to_markdown(), description=result.summary())
    for w in result.warnings:
        log.warning("gate %s warning: %s", layer, w.description or w.expectation)
    if not result.passed:
        raise GateFailed(result)
    log.info(result.summary())
    return result


def dbt_parse_ahead(env: dict[str, str], project_dir: Path, work_dir: Path, dbt_vars: dict[str, str],
                    parse_cache: Path | None) -> None:
    """Start importing dbt and parsing the project for the run's builds (flows/models/dbt_runner.py
    parse_ahead); ``env`` is the engine's (Engine.dbt_env)."""
    parse_ahead(project_dir, work_dir, env, dbt_vars, get_run_logger(), parse_cache)


@task(name="dbt-build", cache_policy=NO_CACHE)
@redacting
def dbt_build(select: str, env: dict[str, str], project_dir: Path, work_dir: Path, dbt_vars: dict[str, str],
              exclude: str | None = None, buildable: bool = False,
              keep_results: Path | None = None, parse_cache: Path | None = None,
              full_refresh: bool = False) -> DbtRunSummary:
    """``dbt build --select <select> [--exclude <exclude>]`` (models, seeds and data tests) on the
    candidate the engine's ``env`` points at (Engine.dbt_env), in this process (flows/models/dbt_runner.py:
    the project is parsed once per run, from the warehouse's ``parse_cache``); an empty ``select``
    builds everything not excluded. ``buildable``
    selects a test only when all its parents are built by this or an earlier step
    (``--indirect-selection buildable``), so a layer built in several steps runs each test once.
    The as-of date reaches dbt as ``LIUCUN_AS_OF_DATE`` (macros/time.sql), not as a var: a new
    date each day would otherwise make dbt parse the whole project again.

    dbt unit tests (hand-worked rows, no data) are left out, as dbt recommends for production
    builds: they test the models' logic, which does not change between runs, and they run in
    ``make test`` and CI (tests/unit/test_dbt_unit_tests.py, the integration builds).

    ``full_refresh`` computes the models that absorb new loads from all the data
    (dbt_project/macros/incremental.sql; flows/publish/fingerprint.py models_rebuild_reason says when)."""
    log = get_run_logger()
    args = ["build", *(["--select", *select.split()] if select else []),
            *(["--exclude", *exclude.split()] if exclude else []), "--exclude-resource-type", "unit_test"]
    if buildable:
        args += ["--indirect-selection", "buildable"]
    if full_refresh:
        args.append("--full-refresh")
    summary = run_dbt_in_process(args, project_dir=project_dir, work_dir=work_dir, env=env,
                                 dbt_vars=dbt_vars, log=log, parse_cache=parse_cache)
    log.info("dbt build %s: %d models, %d tests in %.1fs", " ".join(args[1:]),
             summary.count("model"), summary.count("test"), summary.elapsed)
    if keep_results is not None:  # dbt's own per-node timings, kept with the run's reports
        keep_results.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work_dir / "dbt_target" / "run_results.json", keep_results)
    return summary


@task(name="fit-bgnbd", cache_policy=NO_CACHE)
@redacting
def fit_bgnbd(engine: Engine, candidate: Candidate, as_of: date) -> ScoringResult:
    """Fit the BG/NBD and Gamma–Gamma models on intermediate.int_customer_rfm and write the ml tables."""
    result = engine.fit_churn_model(candidate, as_of, get_run_logger())
    if result.fit is not None:
        p = result.fit.params
        create_markdown_artifact(
            key="bgnbd-fit", description=result.note,
            markdown=(f"| r | alpha (days) | a | b | log-likelihood | customers | seconds |\n|---|---|---|---|---|---|---|\n"
                      f"| {p.r:.4f} | {p.alpha:.4f} | {p.a:.4f} | {p.b:.4f} | {result.fit.log_likelihood:.1f} "
                      f"| {result.fit.n_customers} | {result.fit.seconds:.2f} |"))
    spend = result.spend
    if spend is not None and spend.params is not None and spend.fit_row is not None:
        row = spend.fit_row
        create_markdown_artifact(
            key="gamma-gamma-fit", description=spend.note,
            markdown=("| p | q | gamma | mean purchase value | spend-frequency correlation | log-likelihood "
                      "| customers | seconds |\n|---|---|---|---|---|---|---|---|\n"
                      f"| {spend.params.p:.4f} | {spend.params.q:.4f} | {spend.params.gamma:.4f} "
                      f"| {spend.params.population_mean:.2f} | {row['spend_frequency_correlation'] or float('nan'):.3f} "
                      f"| {row['log_likelihood']:.1f} | {row['n_customers']} | {row['fit_seconds']:.2f} |"))
    return result


@task(name="prepare-publication", cache_policy=NO_CACHE)
@redacting
def prepare_publication(engine: Engine, candidate: Candidate, run_id: str) -> Any:
    """Write the next publication where no reader looks (Engine.prepare_publication), while the marts
    gate validates the same candidate: it becomes visible only through :func:`publish_candidate`."""
    prepared = engine.prepare_publication(candidate, run_id)
    get_run_logger().info("prepared publication %s (%d marts), not yet visible", prepared.version,
                          len(prepared.row_counts))
    return prepared


@task(name="render-report", cache_policy=NO_CACHE)
@redacting
def render_report(engine: Engine, prepared: Any, run_id: str, as_of: date, reports: Path) -> bool:
    """Draw the report page from the prepared publication and put it into it (flows/report/), so
    page and marts become visible together. A page that cannot be drawn does not hold back marts
    that passed every gate: the run publishes without it and says so (a page drawn from other marts
    is never left in its place); ``liucun report`` draws it again."""
    from flows.report.build import render_prepared

    log = get_run_logger()
    try:
        size = render_prepared(engine, prepared, run_id, as_of, reports)
    except Exception as exc:  # noqa: BLE001 - the marts passed their gates; the page is secondary
        log.error("report: could not be drawn (%s: %s); publishing the marts without it. "
                  "`liucun report --warehouse DIR` draws it again", type(exc).__name__, exc)
        return False
    log.info("report: drawn from publication %s (%.1f MB, self-contained)", prepared.version, size / 1e6)
    return True


def report_artifact(summary: dict[str, Any], page: str | None) -> None:
    """The run's report as a Prefect artifact: the headline and where the page is."""
    from flows.report.build import artifact_markdown

    create_markdown_artifact(key="retention-report", markdown=artifact_markdown(summary, page),
                             description=f"retention report of publication {summary['version']}")


@task(name="publish", cache_policy=NO_CACHE)
@redacting
def publish_candidate(engine: Engine, prepared: Any, as_of: date, gates: dict[str, dict]) -> Publication:
    """Make the prepared publication what readers see, at once (Engine.complete_publication)."""
    log = get_run_logger()
    pub = engine.complete_publication(prepared, as_of, gates)
    log.info("published %s (version %s): %s", pub.path, pub.version, pub.row_counts)
    return pub


def _retry_pg_unreachable(task: Any, task_run: Any, state: Any) -> bool:
    """Retry the PostgreSQL publish only when the server was unreachable or the connection dropped:
    a lock timeout, a dependent view or a data error would fail the same way again."""
    try:
        state.result()
    except PostgresUnreachable:
        return True
    except Exception:  # noqa: BLE001
        return False
    return False


@task(name="publish-postgres", retries=2, retry_delay_seconds=[5, 30],
      retry_condition_fn=_retry_pg_unreachable, cache_policy=NO_CACHE)
@redacting
def publish_postgres_task(engine: Engine, pub: Publication, dsn_env: str) -> PostgresPublication:
    """Copy the just-published marts and their audit row to PostgreSQL in one transaction
    (flows/publish/postgres.py). Takes the NAME of the environment variable holding the DSN, never
    the DSN: Prefect stores task and flow parameters in its database and shows them in the UI."""
    dsn = os.environ.get(dsn_env, "")
    if not dsn:
        raise PostgresPublishError(f"environment variable {dsn_env} (the PostgreSQL DSN to publish to) "
                                   "is not set in the process running the flow")
    log = get_run_logger()
    pg = engine.publish_to_postgres(pub, dsn, log)
    log.info("published %d marts to PostgreSQL %s, schema %s (version %s, replacing %s) in %.1fs",
             len(pg.row_counts), pg.dsn, pg.schema, pg.version, pg.previous_version or "nothing", pg.seconds)
    create_markdown_artifact(
        key="postgres-publication", description=f"marts published to PostgreSQL {pg.dsn}, schema {pg.schema}",
        markdown="| mart | rows |\n|---|---|\n" + "\n".join(f"| {pg.schema}.{t} | {n} |" for t, n in pg.row_counts.items()))
    return pg


def publish_postgres(engine: Engine, pub: Publication, dsn_env: str) -> dict[str, Any]:
    """Run publish-postgres after the DuckDB publication and return its outcome for the run summary.
    A failure is returned, not raised: the run first finishes its DuckDB side (state committed),
    then :func:`finish_with_postgres` fails it with the whole summary."""
    dsn = os.environ.get(dsn_env, "")
    shown = masked_dsn(dsn) if dsn else f"${dsn_env} (not set)"
    try:
        pg = publish_postgres_task(engine, pub, dsn_env)
    except Exception as exc:  # noqa: BLE001 - any failure: reported with the run summary
        return {"published": False, "dsn": shown, "error": f"{type(exc).__name__}: {redact(str(exc), dsn)}"}
    return {"published": True, "dsn": pg.dsn, "schema": pg.schema, "audit_table": pg.audit_table,
            "version": pg.version, "previous_version": pg.previous_version, "marts": len(pg.row_counts),
            "seconds": round(pg.seconds, 2)}


def finish_with_postgres(postgres: dict[str, Any] | None, summary: dict[str, Any]) -> dict[str, Any]:
    """The run's summary with the PostgreSQL outcome under ``postgres``; raises
    :class:`PostgresPublishFailed` (carrying the summary) when that publish failed."""
    if postgres is None:
        return summary
    summary["postgres"] = postgres
    if not postgres["published"]:
        raise PostgresPublishFailed(
            f"version {summary['version']} was published to {summary['published']}, but publishing it to "
            f"PostgreSQL {postgres['dsn']} failed: {postgres['error']}. The DuckDB publication stands; "
            "PostgreSQL keeps its previous marts; the next run with --publish-postgres publishes again",
            summary)
    return summary

