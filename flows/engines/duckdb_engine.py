"""The embedded engine: every layer in DuckDB files of the warehouse folder (flows/publish/warehouse.py).

- State: ``DIR/state.duckdb`` (raw layer, load ledgers, models). A candidate is a copy of it under
  ``DIR/.runs/<run_id>/``, which dbt reaches through ``DIR/.dbt/run`` (the same path every run, so
  dbt's partial parse survives) and which replaces the state by rename after publishing.
- Gates: the run's gate worker process (flows/gates/worker.py) opens the candidate read-only.
- Publication: a new ``DIR/liucun.duckdb`` renamed over the old, and versioned Parquet behind the
  ``parquet/current`` pointer (flows/publish/duckdb_file.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from flows.engines.base import REPORT_PAGE, Build, Candidate, Engine, Publication, PublishedVersion
from flows.gates import worker as gate_worker
from flows.ingest.readers import lit
from flows.publish import duckdb_file, fingerprint
from flows.publish.warehouse import Warehouse, write_atomically

if TYPE_CHECKING:
    from expectations.results import GateResult
    from expectations.suites import GateParams
    from flows.engines.base import Log
    from flows.ingest.load import Extract, LoadResult, SourceState
    from flows.models.churn_scoring import ScoringResult
    from flows.publish.postgres import PostgresPublication


class DuckDBEngine(Engine):
    name = "duckdb"

    def __init__(self, warehouse: Warehouse) -> None:
        super().__init__(warehouse)
        self._gates: gate_worker.GateWorker | None = None

    # ---- a run's frame ------------------------------------------------------------------------

    def open_run(self, scope: contextlib.ExitStack) -> None:
        # the gates run in a child process that imports GX meanwhile (the CLI may have started it)
        self._gates = scope.enter_context(gate_worker.for_this_run())
        scope.callback(setattr, self, "_gates", None)

    def recover(self, log: Log) -> None:
        aligned = duckdb_file.align_parquet_with_published(self.warehouse)  # before clearing: it may keep a dead run's folder
        if aligned:
            log.warning("parquet/current pointed at an older version than liucun.duckdb (a run died "
                        "mid-publish); switched it to %s", aligned)
        stale = self.clear_leftovers()
        if stale:
            log.info("removed %d leftover candidate(s) of earlier runs that did not finish", len(stale))

    def clear_leftovers(self) -> list[str]:
        return self.warehouse.clear_stale_runs()

    # ---- the last good state ------------------------------------------------------------------

    def source_state(self) -> dict[str, SourceState]:
        from flows.ingest.load import read_state

        return read_state(self.warehouse.state)

    def last_build(self) -> Build | None:
        return fingerprint.last_build(self.warehouse.state)

    def current_publication(self) -> PublishedVersion | None:
        last = duckdb_file.latest_publication(self.warehouse.published)
        if last is None:
            return None
        return dataclasses.replace(last, path=self.warehouse.published,
                                   parquet_dir=self.warehouse.parquet_dir / last.version)

    def headline(self) -> dict[str, Any]:
        with duckdb.connect(str(self.warehouse.published), read_only=True) as con:
            row = con.execute(
                """select period_start, customers_start, customers_end, customers_new, crr,
                          strict_retention_rate, period_grain
                   from marts.rpt_retention_rate
                   where segment_type = 'all' and base_definition = 'active_in_period'
                     and customers_start > 0
                   -- the coarsest grain with a figure (month; a young source's week or day)
                   order by case period_grain when 'month' then 0 when 'week' then 1 else 2 end,
                            period_start desc
                   limit 1"""
            ).fetchone()
        if row is None:
            return {}
        keys = ["period_start", "customers_start", "customers_end", "customers_new", "crr", "strict_retention_rate",
                "period_grain"]
        return dict(zip(keys, [str(row[0]), *row[1:]], strict=False))

    # ---- building a candidate -----------------------------------------------------------------

    def dbt_env(self, run_id: str, as_of: date) -> dict[str, str]:
        # the candidate, at a path that is the same every run (dbt re-parses when a profile value changes)
        return {"LIUCUN_DBT_TARGET": "duckdb", "LIUCUN_DUCKDB_PATH": str(self.warehouse.candidate_for_dbt(run_id)),
                "LIUCUN_AS_OF_DATE": as_of.isoformat()}

    def start_candidate(self, run_id: str, full_refresh: bool) -> Candidate:
        return Candidate(run_id, self.warehouse.start_candidate(run_id, full_refresh))

    def land_raw(self, candidate: Candidate, extracts: list[Extract], run_id: str, store: str) -> list[LoadResult]:
        from flows.ingest.load import merge_extracts

        return merge_extracts(candidate.location, extracts, run_id, store)

    def models_rebuild_reason(self, candidate: Candidate, full_refresh: bool, inputs: dict[str, str],
                              loads: list[LoadResult]) -> str | None:
        return fingerprint.models_rebuild_reason(full_refresh, self.last_build(), inputs, loads, candidate.location)

    def prepare_models(self, candidate: Candidate) -> None:
        from flows.models.churn_scoring import create_ml_schema

        fingerprint.clear_model_builds(candidate.location)
        create_ml_schema(candidate.location)  # source ml exists (empty) before dbt runs, fitted or not

    def models_built(self, candidate: Candidate, rebuild: str | None, new_loads: int) -> str:
        return fingerprint.models_built(candidate.location, rebuild, new_loads)

    def fit_churn_model(self, candidate: Candidate, as_of: date, log: Log) -> ScoringResult:
        from flows.models.churn_scoring import score_warehouse

        return score_warehouse(candidate.location, as_of, log)

    def run_gate(self, layer: str, candidate: Candidate, params: GateParams, report_dir: Path) -> GateResult:
        if self._gates is None:
            raise RuntimeError("run_gate outside a run: open_run() first")
        return self._gates.run(layer, candidate.location, params, report_dir)

    def layer_row_counts(self, candidate: Candidate) -> dict[str, int]:
        with duckdb.connect(str(candidate.location), read_only=True) as con:
            out: dict[str, int] = {}
            for schema, table in con.execute(
                "select schema_name, table_name from duckdb_tables() where schema_name in "
                "('raw','intermediate','marts') union all select schema_name, view_name from duckdb_views() "
                "where schema_name = 'staging'").fetchall():
                if table.startswith("_"):
                    continue
                n = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]  # type: ignore[index]
                out[schema] = out.get(schema, 0) + n
            return out

    def activity_exclusions(self, candidate: Candidate) -> dict[str, int]:
        with duckdb.connect(str(candidate.location), read_only=True) as con:
            rows = con.execute(
                """select case when net_amount < 0 then 'negative value (returns, credit notes)'
                               when net_amount = 0 then 'zero value'
                               else 'at or below activity.min_qualifying_amount' end, count(*)
                   from marts.fct_orders where not is_qualifying group by 1 order by 1""").fetchall()
        return {reason: n for reason, n in rows}

    # ---- write-audit-publish ------------------------------------------------------------------

    def prepare_publication(self, candidate: Candidate, run_id: str) -> duckdb_file.PreparedPublication:
        return duckdb_file.prepare(self.warehouse, candidate.location, run_id)

    def complete_publication(self, prepared: duckdb_file.PreparedPublication, as_of: date,
                             gates: dict[str, dict]) -> Publication:
        return duckdb_file.complete(self.warehouse, prepared, as_of.isoformat(), gates)

    def discard_publication(self, prepared: duckdb_file.PreparedPublication) -> None:
        duckdb_file.discard(prepared)

    @contextlib.contextmanager
    def open_publication(self, prepared: duckdb_file.PreparedPublication | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        # the prepared file (complete() opens it again only after this is closed), or the
        # published one: attached read-only, a run that replaces it meanwhile does not disturb it
        path = prepared.tmp if prepared is not None else self.warehouse.published
        if not path.exists():
            raise LookupError(f"{self.warehouse.root} has no publication yet: run the pipeline first")
        with duckdb.connect() as con:
            con.execute(f"attach {lit(str(path))} as publication (read_only)")
            con.execute("use publication")
            yield con

    def write_report(self, prepared: duckdb_file.PreparedPublication, html: str) -> None:
        write_atomically(prepared.staged / REPORT_PAGE, html, prepared.run_id)  # complete() fsyncs it

    def report_page(self, version: str) -> Path:
        return self.warehouse.parquet_dir / version / REPORT_PAGE

    def commit(self, candidate: Candidate, run_id: str, pub: Publication, inputs: dict[str, str]) -> None:
        fingerprint.record(candidate.location, run_id, pub.version, pub.published_at, inputs)  # goes with the state
        self.warehouse.commit_state(candidate.location, run_id)  # raw loads and ledgers of this run become the state
        self.clear_leftovers()

    def publish_to_postgres(self, pub: Publication, dsn: str, log: Log) -> PostgresPublication:
        from flows.publish.postgres import publish_to_postgres

        return publish_to_postgres(pub.path, dsn, pub.run_id, pub.version, log=log)
