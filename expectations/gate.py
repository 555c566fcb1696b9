"""Run one layer's gate as a GX checkpoint and turn the result into evidence and a verdict.

A gate fails when any blocking expectation fails, when an expectation could not be evaluated
(it raised), or when nothing was evaluated at all (GX reports an empty checkpoint as a success).
Gates never retry.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import duckdb
import great_expectations as gx

from expectations.context import add_duckdb_datasource, get_context
from expectations.results import ExpectationOutcome, GateResult
from expectations.suites import GateParams, SparkSql, layer_suites

log = logging.getLogger(__name__)
logging.getLogger("great_expectations").setLevel(logging.WARNING)
LAYERS = ("raw", "staging", "marts")


def _existing_tables(db_path: Path) -> set[str]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return {f"{s}.{t}" for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables").fetchall()}


def _run_checkpoint(result: GateResult, layer: str, context: Any, datasource: Any, params: GateParams,
                    table_suites: list[tuple[Any, str]], prefix: str = "") -> None:
    """One checkpoint over a SQL datasource (``datasource(context)`` makes it): a query asset per
    table, its suite, run; the outcomes into ``result``; GX's connections closed."""
    context = context if context is not None else get_context()
    gx_stdout = io.StringIO()  # GX prints notices to stdout; keep them in the debug log
    with contextlib.redirect_stdout(gx_stdout):
        ds = datasource(context)
        vds = []
        for ts, query in table_suites:
            built = context.suites.add(_prefixed_suite(ts.build(params), prefix))
            batch = ds.add_query_asset(name=ts.relation, query=query).add_batch_definition_whole_table(
                f"{ts.relation}:all")
            vds.append(context.validation_definitions.add(
                gx.ValidationDefinition(name=f"{layer}:{ts.relation}", data=batch, suite=built)))
        checkpoint = context.checkpoints.add(gx.Checkpoint(
            name=f"liucun_{layer}_gate", validation_definitions=vds,
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5}))
        run = checkpoint.run()
    if gx_stdout.getvalue().strip():
        log.debug("GX: %s", gx_stdout.getvalue().strip())
    engine = ds.get_execution_engine()
    _collect(result, run.run_results.values(), table_suites, lambda query: _sample_rows(engine, query))
    _close(engine, ds)


def run_gate(layer: str, db_path: Path, params: GateParams, report_dir: Path | None = None,
             context: Any = None) -> GateResult:
    """Validate one layer of the warehouse at ``db_path``; write the report; return the result.

    ``context``: the GX context to add this layer's datasource, suites and checkpoint to (a run
    keeps one for its three gates, see flows/gates/worker.py); None: a new ephemeral one."""
    result = GateResult(layer)
    existing = _existing_tables(db_path)
    queries = [(ts, ts.batch_query(params, existing)) for ts in layer_suites(layer)]
    table_suites = [(ts, q) for ts, q in queries if q is not None]
    result.skipped_tables = [ts.relation for ts, q in queries if q is None]
    if table_suites:
        _run_checkpoint(result, layer, context,
                        lambda ctx: add_duckdb_datasource(ctx, db_path, name=f"warehouse_{layer}"),
                        params, table_suites)
    return _finish(result, report_dir)


def run_gate_spark(layer: str, spark: Any, prefix: str, params: GateParams, report_dir: Path | None = None,
                   context: Any = None) -> GateResult:
    """:func:`run_gate` on Spark: the same suites, severities and verdict rules, evaluated by GX's
    Spark execution engine on the candidate whose databases are ``<prefix>raw``, ``<prefix>staging``
    and so on (the suites' SQL names ``raw.x``; each name is given the prefix here). Each table's
    batch is a Spark DataFrame of its batch query; nothing is collected but counts and samples."""
    result = GateResult(layer)
    params = dataclasses.replace(params, sql=SparkSql())
    existing = {f"{db}.{t.name}" for db in LAYER_SCHEMAS
                if spark.catalog.databaseExists(prefix + db)
                for t in spark.catalog.listTables(prefix + db) if not t.isTemporary}
    queries = [(ts, ts.batch_query(params, existing)) for ts in layer_suites(layer)]
    table_suites = [(ts, _prefixed(q, prefix)) for ts, q in queries if q is not None]
    result.skipped_tables = [ts.relation for ts, q in queries if q is None]
    if table_suites:
        context = context if context is not None else get_context()
        gx_stdout = io.StringIO()
        runs = []
        with contextlib.redirect_stdout(gx_stdout):
            ds = context.data_sources.add_spark(name=f"spark_{layer}")
            for ts, query in table_suites:
                built = context.suites.add(_prefixed_suite(ts.build(params), prefix))
                batch = ds.add_dataframe_asset(name=ts.relation).add_batch_definition_whole_dataframe(
                    f"{ts.relation}:all")
                vd = context.validation_definitions.add(
                    gx.ValidationDefinition(name=f"{layer}:{ts.relation}", data=batch, suite=built))
                runs.append(vd.run(batch_parameters={"dataframe": spark.sql(query)},
                                   result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5}))
        if gx_stdout.getvalue().strip():
            log.debug("GX: %s", gx_stdout.getvalue().strip())

        def sample(query: str) -> list[dict[str, Any]]:
            try:
                return [r.asDict() for r in spark.sql(f"select * from ({query}) as failing limit 5").collect()]
            except Exception as exc:  # noqa: BLE001 - a sample is a courtesy, never a reason to crash
                return [{"sample_unavailable": str(exc)[:200]}]

        _collect(result, runs, table_suites, sample)
    return _finish(result, report_dir)


def run_gate_sql(layer: str, existing: set[str], url: str, engine_kwargs: dict[str, Any], prefix: str,
                 params: GateParams, report_dir: Path | None = None, context: Any = None) -> GateResult:
    """:func:`run_gate_spark` through SQL: the same suites on the candidate ``<prefix>raw`` ...,
    evaluated by GX's SQL execution engine over SQLAlchemy (``url``, e.g. a Spark Thrift Server's
    ``hive://user@host:port/default``; ``engine_kwargs`` go to ``create_engine``, credentials among
    them). ``existing``: the candidate's tables as ``layer.table``, unprefixed. Every expectation runs
    as SQL on the server; nothing comes back but metrics and samples."""
    result = GateResult(layer)
    params = dataclasses.replace(params, sql=SparkSql())
    queries = [(ts, ts.batch_query(params, existing)) for ts in layer_suites(layer)]
    table_suites = [(ts, _prefixed(q, prefix)) for ts, q in queries if q is not None]
    result.skipped_tables = [ts.relation for ts, q in queries if q is None]
    if table_suites:
        _run_checkpoint(result, layer, context,
                        lambda ctx: ctx.data_sources.add_sql(name=f"spark_sql_{layer}", connection_string=url,
                                                             kwargs=engine_kwargs),
                        params, table_suites, prefix)
    return _finish(result, report_dir)


def _prefixed_suite(suite: Any, prefix: str) -> Any:
    """The suites' own SQL names the layers unprefixed: each unexpected-rows query gets the prefix."""
    for exp in suite.expectations:
        q = getattr(exp, "unexpected_rows_query", None)
        if q:
            exp.unexpected_rows_query = _prefixed(q, prefix)
    return suite


LAYER_SCHEMAS = ("raw", "staging", "intermediate", "marts", "ml", "incremental")
_SCHEMA_RE = re.compile(r"(?<![\w.`])(" + "|".join(LAYER_SCHEMAS) + r")\.(?=[A-Za-z_`])")


def _prefixed(sql: str, prefix: str) -> str:
    """``raw.x`` -> ``<prefix>raw.x`` for every layer schema named in ``sql``."""
    return _SCHEMA_RE.sub(lambda m: prefix + m.group(1) + ".", sql) if prefix else sql


def _collect(result: GateResult, validations: Any, table_suites: list[tuple[Any, str]],
             sample_rows: Any) -> None:
    """Turn GX's validation results into :class:`ExpectationOutcome` rows of ``result``."""
    for vr in validations:
        table = vr.suite_name if hasattr(vr, "suite_name") else vr.meta.get("suite_name")
        relation = next(ts.relation for ts, _ in table_suites if ts.table == table)
        for er in vr.results:
            cfg = er.expectation_config
            exc = er.exception_info or {}
            raised = bool(exc.get("raised_exception")) or any(
                isinstance(v, dict) and v.get("exception_traceback") for v in exc.values())
            error = None
            if raised:
                msgs = [exc.get("exception_message")] + [
                    v.get("exception_message") for v in exc.values() if isinstance(v, dict)]
                error = next((m for m in msgs if m), "expectation raised an exception")
            res = er.result or {}
            observed = res.get("observed_value")
            sample = res.get("partial_unexpected_list") or []
            query = cfg.kwargs.get("unexpected_rows_query")
            if query and not er.success and not raised:
                batch_sql = next(f"({q})" for ts, q in table_suites if ts.relation == relation)
                sample = sample_rows(query.format(batch=batch_sql))
                res = {**res, "unexpected_count": observed}
            result.outcomes.append(ExpectationOutcome(
                table=relation,
                expectation=cfg.type,
                column=cfg.kwargs.get("column") or (
                    f"{cfg.kwargs['column_A']},{cfg.kwargs['column_B']}" if "column_A" in cfg.kwargs else None),
                description=getattr(cfg, "description", None),
                severity=(cfg.meta or {}).get("severity", "blocking"),
                success=bool(er.success) and not raised,
                evaluated=not raised,
                unexpected_count=res.get("unexpected_count"),
                element_count=res.get("element_count"),
                observed=observed,
                sample=[_jsonable(s) for s in list(sample)[:5]],
                error=error,
            ))


def _finish(result: GateResult, report_dir: Path | None) -> GateResult:
    log.info(result.summary())
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        layer = result.layer
        (report_dir / f"validation_{layer}.md").write_text(result.to_markdown(), encoding="utf-8")
        (report_dir / f"validation_{layer}.json").write_text(
            json.dumps({"layer": layer, "passed": result.passed, "evaluated": result.evaluated,
                        "outcomes": [asdict(o) for o in result.outcomes]}, default=str, indent=1),
            encoding="utf-8")
    return result


def _close(execution_engine: Any, datasource: Any) -> None:
    """Release every DuckDB connection GX opened (its datasource engine and its execution engine's
    persisted connection), so the file lock is free for dbt and publishing. Closing them is enough:
    no garbage collection is needed (a full one cost about 0.4 s per gate, as it walks every object
    dbt and GX hold), which ``tests/integration/test_gates.py`` checks with the collector off."""
    conn = getattr(execution_engine, "_connection", None)
    if conn is not None:
        conn.close()
        execution_engine._connection = None
    execution_engine.engine.dispose()
    datasource.get_engine().dispose()


def _sample_rows(engine: Any, query: str, limit: int = 5) -> list[dict[str, Any]]:
    """Up to ``limit`` failing rows of an unexpected-rows query (on GX's own connection)."""
    import sqlalchemy as sa

    try:
        rows = engine.execute_query(sa.text(f"select * from ({query}) as failing limit {limit}"))
        return [dict(r._mapping) for r in rows.fetchall()]
    except Exception as exc:  # noqa: BLE001 - a sample is a courtesy, never a reason to crash
        return [{"sample_unavailable": str(exc)[:200]}]


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
