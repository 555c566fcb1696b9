"""Expectation suites as code, one builder per table, grouped by layer.

A builder is ``build_<table>_suite(params) -> gx.ExpectationSuite``; the suite name is the table's
(dbt model's) name. Every expectation carries ``meta.severity``: ``blocking`` (default) stops
publication, ``warning`` is reported only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from flows.config import ProjectConfig

if TYPE_CHECKING:  # GateParams is needed long before a gate runs: GX (seconds to import) is not
    import great_expectations as gx


class SqlDialect:
    """The few SQL expressions the suites need that engines spell differently (DuckDB's here;
    :class:`SparkSql` for the Spark engine's gates, expectations/gate.py)."""

    def full_match(self, column: str, pattern: str) -> str:
        """``column`` matches the regular expression ``pattern`` as a whole."""
        return f"regexp_full_match({column}, '{pattern}')"

    def days_between(self, start: str, end: str) -> str:
        """Whole days from date ``start`` to date ``end``, an integer."""
        return f"date_diff('day', {start}, {end})"


class SparkSql(SqlDialect):
    def full_match(self, column: str, pattern: str) -> str:
        return f"regexp_like({column}, '^(?:{pattern})$')"

    def days_between(self, start: str, end: str) -> str:
        return f"datediff({end}, {start})"


@dataclass(frozen=True)
class GateParams:
    as_of: date
    # row counts of the last publication per table (for row-count bands); empty on a first run
    previous_row_counts: dict[str, int] = field(default_factory=dict)
    # kinds the config has a source for: only those must have rows (None: every kind)
    configured_kinds: frozenset[str] | None = None
    # share of a load's rows that may be quarantined before the raw gate blocks, per source
    max_quarantine_share: dict[str, float] = field(default_factory=dict)
    default_max_quarantine_share: float = 0.05
    # (source, kind, warn_after_days | None, error_after_days | None) per configured source
    freshness: tuple[tuple[str, str, float | None, float | None], ...] = ()
    # factors of the last publication's row count per mart: outside warn is reported, outside block stops
    row_count_band_warn: tuple[float, float] = (0.8, 1.25)
    row_count_band_block: tuple[float, float] = (0.5, 2.0)
    row_count_band_min_rows: int = 50  # marts smaller than this last time are not banded (too noisy)
    earliest_date: date = date(1970, 1, 1)  # quality.earliest_date: the plausibility floor of record dates
    sql: SqlDialect = field(default_factory=SqlDialect)  # the gate's engine's SQL (set by the gate)

    @classmethod
    def from_config(cls, config: ProjectConfig, as_of: date,
                    previous_row_counts: dict[str, int] | None = None) -> GateParams:
        """The gates' parameters for a run of ``config`` (sources, freshness, bands)."""
        return cls(
            as_of=as_of, configured_kinds=frozenset(s.kind for s in config.sources),
            max_quarantine_share={s.name: s.max_quarantine_share for s in config.sources},
            freshness=tuple((s.name, s.kind, s.freshness_warn_days, s.freshness_error_days) for s in config.sources),
            previous_row_counts=previous_row_counts or {},
            row_count_band_warn=config.row_count_band_warn, row_count_band_block=config.row_count_band_block,
            row_count_band_min_rows=config.row_count_band_min_rows, earliest_date=config.earliest_date,
        )

    def expects_rows(self, kind: str) -> bool:
        return self.configured_kinds is None or kind in self.configured_kinds


@dataclass(frozen=True)
class TableSuite:
    """A suite validating one table. ``schema.table`` names the suite (and the report's rows); the
    batch is ``reads`` (default: that same table), or, with ``query``, a derived relation computed
    at gate time from the parameters and the tables present (``query(params, existing) -> SQL |
    None``; None when there is nothing to check in this warehouse)."""

    schema: str
    table: str
    build: Callable[[GateParams], gx.ExpectationSuite]
    query: Callable[[GateParams, set[str]], str | None] | None = None
    reads: str | None = None

    @property
    def relation(self) -> str:
        return f"{self.schema}.{self.table}"

    def batch_query(self, params: GateParams, existing: set[str]) -> str | None:
        """The SQL of the batch to validate, or None when this warehouse has nothing for it."""
        if self.query is not None:
            return self.query(params, existing)
        source = self.reads or self.relation
        return f"select * from {source}" if source in existing else None


BLOCKING = {"severity": "blocking"}
WARNING = {"severity": "warning"}


def suite(name: str, *expectations: gx.expectations.Expectation) -> gx.ExpectationSuite:
    import great_expectations as gx

    s = gx.ExpectationSuite(name=name)
    for e in expectations:
        if not e.meta or "severity" not in e.meta:
            e.meta = {**(e.meta or {}), **BLOCKING}
        s.expectations.append(e)
    return s


def layer_suites(layer: str) -> list[TableSuite]:
    from expectations.suites import (
        churn,
        marts,
        memberships,
        quality,
        raw,
        recall,
        risk,
        staging,
        survival,
    )

    return {
        "raw": [*raw.SUITES, *quality.RAW_SUITES],
        "staging": [*staging.SUITES, *quality.STAGING_SUITES],
        "marts": [*marts.SUITES, *churn.SUITES, *recall.SUITES, *risk.SUITES, *survival.SUITES,
                  *memberships.SUITES,
                  *quality.MARTS_SUITES],
    }[layer]
