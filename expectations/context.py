"""One place that builds the Great Expectations context and connects it to a DuckDB warehouse.

GX 1.x's SQL datasource closes its connection before fetching results on DuckDB
(``MetricResolutionError: list index out of range``; upstream GX issues #10738 and #11579).
Registering DuckDB among GX's persisted-connection dialects fixes it. This module is the only place
that does so; ``tests/integration/test_gates.py`` keeps a test that a known-bad row is caught.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.execution_engine import sqlalchemy_execution_engine as _sae


class _DuckDBDialect:
    """Stands in for a GXSqlDialect member named 'duckdb' (GX has none)."""

    value = "duckdb"

    def __eq__(self, other: object) -> bool:
        name = getattr(other, "value", other)
        return isinstance(name, str) and name.lower() == "duckdb"

    def __hash__(self) -> int:
        return hash(self.value)


def _enable_duckdb_persisted_connection() -> None:
    if not any(getattr(d, "value", None) == "duckdb" for d in _sae._PERSISTED_CONNECTION_DIALECTS):
        _sae._PERSISTED_CONNECTION_DIALECTS = (*_sae._PERSISTED_CONNECTION_DIALECTS, _DuckDBDialect())


def get_context() -> Any:
    """An ephemeral GX context (suites are code; nothing is written to a GX project folder)."""
    _enable_duckdb_persisted_connection()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def add_duckdb_datasource(context: Any, db_path: Path, name: str = "warehouse") -> Any:
    """A read-only SQL datasource over a DuckDB file."""
    return context.data_sources.add_sql(
        name=name,
        connection_string=f"duckdb:///{Path(db_path).resolve()}",
        kwargs={"connect_args": {"read_only": True}},
    )
