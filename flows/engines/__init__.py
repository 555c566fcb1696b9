"""Engines: where a warehouse's layers live and run (flows/engines/base.py is the interface).

:func:`engine_for` is the one place that chooses an implementation; the flow, its tasks and the CLI
talk to the :class:`~flows.engines.base.Engine` it returns.
"""

from __future__ import annotations

from pathlib import Path

from flows.engines.base import Engine
from flows.publish.warehouse import Warehouse

DEFAULT = "duckdb"


def engine_for(warehouse_dir: Path, name: str = DEFAULT) -> Engine:
    """The engine ``name`` on the warehouse folder ``warehouse_dir``."""
    if name == "duckdb":
        from flows.engines.duckdb_engine import DuckDBEngine

        return DuckDBEngine(Warehouse(Path(warehouse_dir).resolve()))
    raise ValueError(f"unknown engine {name!r}: liucun runs on 'duckdb'")
