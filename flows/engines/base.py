"""The engine seam: the one interface through which the flow lands, builds, validates and publishes.

A run talks to its engine for everything that touches the warehouse's data; nothing outside
``flows/engines/`` knows which engine runs (``flows/engines/__init__.py`` picks it). What every
engine guarantees:

- **Candidates.** A run builds into a candidate that no reader sees (:meth:`Engine.start_candidate`):
  a copy of the last good state, or empty on a full refresh or first run. A failed or killed run
  leaves the state and the publication untouched; :meth:`Engine.recover` removes what it left.
- **Raw layer.** :meth:`Engine.land_raw` writes the run's typed extracts (per-file work, done in the
  run's in-memory DuckDB extract store whatever the engine) into the candidate's raw layer, one
  transaction per source, with the load ledgers that make loads happen once.
- **Models.** dbt builds the candidate with the profile target and environment of
  :meth:`Engine.dbt_env`; the BG/NBD fit between the two builds runs through
  :meth:`Engine.fit_churn_model`.
- **Gates.** :meth:`Engine.run_gate` evaluates a layer's Great Expectations suite on the candidate
  and returns plain results (expectations/results.py); the flow decides what a failure means.
- **Write-audit-publish.** :meth:`Engine.prepare_publication` writes the next publication where no
  reader looks (it may run beside the marts gate: both only read the candidate);
  :meth:`Engine.complete_publication` makes it visible at once, after every gate passed;
  :meth:`Engine.discard_publication` removes one that will not be. :meth:`Engine.commit` then makes
  the candidate the new state. :meth:`Engine.current_publication` reads what readers see.
- **Report.** :meth:`Engine.open_publication` lets the report read a publication's tables through SQL;
  :meth:`Engine.write_report` puts its page into the prepared publication, so page and marts become
  visible together (flows/report/).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from flows.publish.warehouse import Warehouse

if TYPE_CHECKING:
    import logging

    import duckdb

    from expectations.results import GateResult
    from expectations.suites import GateParams
    from flows.ingest.load import Extract, LoadResult, SourceState
    from flows.models.churn_scoring import ScoringResult
    from flows.publish.postgres import PostgresPublication

    Log = logging.Logger | logging.LoggerAdapter


@dataclass(frozen=True)
class Candidate:
    """A run's working warehouse: ``location`` is where the engine keeps it (a DuckDB file, a
    Spark database), shown in messages; only its engine looks inside."""

    run_id: str
    location: Path


@dataclass
class Publication:
    """A completed publication: ``path`` is where readers find the marts, ``parquet_dir`` the
    version's Parquet folder."""

    run_id: str
    version: str
    published_at: datetime
    path: Path | str  # str: a URI (a Spark location on an object store)
    parquet_dir: Path | str
    row_counts: dict[str, int]


@dataclass(frozen=True)
class PublishedVersion:
    """The newest row of ``audit.publications`` of the current publication, and (from its engine)
    where readers find it."""

    version: str
    published_at: datetime
    row_counts: dict[str, int]
    path: Path | str | None = None
    parquet_dir: Path | str | None = None


REPORT_PAGE = "report.html"  # the report page's name in a publication's version folder (flows/report/)

Build = tuple[str, str, dict[str, str]]  # (version, fingerprint, inputs) recorded with a publication


class Engine(ABC):
    """One warehouse on one engine. The local folder ``warehouse`` (the run lock, reports, a run's
    scratch) exists for every engine; where the data lives is the engine's business."""

    name: ClassVar[str]

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def prerequisites(self) -> list[str]:
        """What this machine lacks to run the engine, one sentence each saying what to do (checked
        by ``liucun check`` and before every CLI run, in a second)."""
        return []

    # ---- a run's frame ------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive use of the warehouse for one run (refused at once if another holds it)."""
        with self.warehouse.lock():
            yield

    @abstractmethod
    def open_run(self, scope: contextlib.ExitStack) -> None:
        """Take what the run needs for its whole length (closed with ``scope``)."""

    @abstractmethod
    def recover(self, log: Log) -> None:
        """Under the lock, before anything else: finish or undo what a dead run left half done,
        so the last publication is whole and consistent and no leftover is visible."""

    @abstractmethod
    def clear_leftovers(self) -> list[str]:
        """Remove every candidate and scratch of runs not running now (ours included); their ids."""

    def report_dir(self, run_id: str) -> Path:
        return self.warehouse.report_dir(run_id)

    def run_dir(self, run_id: str) -> Path:
        """The run's local scratch (dbt's target, extract spill)."""
        return self.warehouse.run_dir(run_id)

    # ---- the last good state ------------------------------------------------------------------

    @abstractmethod
    def source_state(self) -> dict[str, SourceState]:
        """Per source, what the state has loaded (load-once ledgers, cursors)."""

    @abstractmethod
    def last_build(self) -> Build | None:
        """What the state's publication was built from (flows/publish/fingerprint.py)."""

    @abstractmethod
    def current_publication(self) -> PublishedVersion | None:
        """What readers see now (None before the first publication)."""

    @abstractmethod
    def headline(self) -> dict[str, Any]:
        """The current publication's last CRR figures, for the run's summary."""

    # ---- building a candidate -----------------------------------------------------------------

    @abstractmethod
    def dbt_env(self, run_id: str, as_of: date) -> dict[str, str]:
        """The environment dbt reads for this run's candidate (profiles.yml target, macros/time.sql)."""

    @abstractmethod
    def start_candidate(self, run_id: str, full_refresh: bool) -> Candidate:
        """A fresh candidate: a copy of the last good state, or empty on a full refresh / first run."""

    @abstractmethod
    def land_raw(self, candidate: Candidate, extracts: list[Extract], run_id: str, store: str) -> list[LoadResult]:
        """Write the extracts of the in-memory store ``store`` into the candidate's raw layer."""

    @abstractmethod
    def models_rebuild_reason(self, candidate: Candidate, full_refresh: bool, inputs: dict[str, str],
                              loads: list[LoadResult]) -> str | None:
        """Why every model must be computed from all the data, or None when the models that absorb
        new loads may add only this run's to what the state was built from (:meth:`last_build`;
        flows/publish/fingerprint.py)."""

    @abstractmethod
    def prepare_models(self, candidate: Candidate) -> None:
        """Before dbt: forget how the last run built each model; the (empty) ``ml`` source exists."""

    @abstractmethod
    def models_built(self, candidate: Candidate, rebuild: str | None, new_loads: int) -> str:
        """One line: which models absorbed the new loads, which were computed in full and why."""

    @abstractmethod
    def fit_churn_model(self, candidate: Candidate, as_of: date, log: Log) -> ScoringResult:
        """Fit BG/NBD on ``intermediate.int_customer_rfm`` and write the ``ml`` tables."""

    @abstractmethod
    def run_gate(self, layer: str, candidate: Candidate, params: GateParams, report_dir: Path) -> GateResult:
        """Evaluate the layer's suite on the candidate; its reports go to ``report_dir``."""

    @abstractmethod
    def layer_row_counts(self, candidate: Candidate) -> dict[str, int]:
        """Rows per layer (raw, staging, intermediate, marts) of the candidate."""

    @abstractmethod
    def activity_exclusions(self, candidate: Candidate) -> dict[str, int]:
        """Orders that do not count as activity, per reason (``fct_orders.is_qualifying`` false)."""

    # ---- write-audit-publish ------------------------------------------------------------------

    @abstractmethod
    def prepare_publication(self, candidate: Candidate, run_id: str) -> Any:
        """Write the next publication where no reader looks; interruptible by a stop."""

    @abstractmethod
    def complete_publication(self, prepared: Any, as_of: date, gates: dict[str, dict]) -> Publication:
        """Record the prepared publication and make it what readers see, at once."""

    @abstractmethod
    def discard_publication(self, prepared: Any) -> None:
        """Remove a prepared publication that will not be completed."""

    @abstractmethod
    def open_publication(self, prepared: Any = None) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A DuckDB connection in which ``marts.<mart>`` and ``audit.<table>`` are one publication's
        tables, read in place: the prepared one (not visible yet) or, with None, the current one
        (:class:`LookupError` when there is none). The report reads its figures through it."""

    @abstractmethod
    def write_report(self, prepared: Any, html: str) -> None:
        """Put the report page into the prepared publication: it becomes visible with the marts."""

    @abstractmethod
    def report_page(self, version: str) -> Path | str:
        """Where readers find the report page of publication ``version``."""

    @abstractmethod
    def commit(self, candidate: Candidate, run_id: str, pub: Publication, inputs: dict[str, str]) -> None:
        """After publishing: record what ``pub`` was built from and make the candidate the state."""

    @abstractmethod
    def publish_to_postgres(self, pub: Publication, dsn: str, log: Log) -> PostgresPublication:
        """Copy the publication's marts and its audit row to PostgreSQL in one transaction."""
