"""Engines: where a warehouse's layers live and run (flows/engines/base.py is the interface).

:func:`engine_for` is the one place that chooses an implementation; the flow, its tasks and the CLI
talk to the :class:`~flows.engines.base.Engine` it returns.

A warehouse folder belongs to one engine. A Spark warehouse says so in ``DIR/engine.json`` (written
by its first run, with where its tables live, never a credential), so commands given only the
folder (``liucun check``, the CLI's "what is still published") find its engine; a folder without it
is a DuckDB warehouse.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from flows.config import EngineConfig, SparkConfig
from flows.engines.base import Engine
from flows.publish.warehouse import Warehouse, write_atomically

DEFAULT = "duckdb"
MARKER = "engine.json"


class EngineMismatch(RuntimeError):
    """The warehouse folder holds another engine's warehouse."""


def recorded_engine(warehouse_dir: Path) -> EngineConfig | None:
    """The engine a warehouse folder was written by (None: none recorded, a DuckDB warehouse or new)."""
    marker = Path(warehouse_dir) / MARKER
    if not marker.exists():
        return None
    data = json.loads(marker.read_text(encoding="utf-8"))
    spark = dict(data.get("spark") or {})
    spark["conf"] = tuple((k, v) for k, v in spark.get("conf", []))
    known = {f.name for f in dataclasses.fields(SparkConfig)}
    return EngineConfig(data["engine"], SparkConfig(**{k: v for k, v in spark.items() if k in known}))


def record_engine(warehouse_dir: Path, engine: EngineConfig) -> None:
    """Write ``DIR/engine.json`` (atomically) for a non-default engine."""
    # the settings, never a credential: a password is named by its variable or Secret block only
    settings = {k: v for k, v in dataclasses.asdict(engine.spark).items() if v is not None}
    data = {"engine": engine.name, "spark": {**settings, "conf": list(engine.spark.conf)}}
    write_atomically(Path(warehouse_dir) / MARKER, json.dumps(data, indent=1) + "\n", "engine")


def engine_for(warehouse_dir: Path, engine: EngineConfig | str | None = None, name: str | None = None) -> Engine:
    """The engine of the warehouse folder ``warehouse_dir``: ``engine`` (a config's, or a name), or
    the one the folder records, or DuckDB; ``name`` (``--engine``) overrides the config's choice
    (keeping its settings when it names the same engine). Refuses a folder that holds another
    engine's warehouse."""
    root = Path(warehouse_dir).resolve()
    recorded = recorded_engine(root)
    if name is not None and not (isinstance(engine, EngineConfig) and engine.name == name):
        engine = name
    if engine is None:
        engine = recorded or EngineConfig(DEFAULT)
    elif isinstance(engine, str):
        engine = recorded if recorded is not None and recorded.name == engine else EngineConfig(engine)
    holds = recorded.name if recorded else ("duckdb" if (root / "state.duckdb").exists()
                                            or (root / "liucun.duckdb").exists() else None)
    if holds is not None and holds != engine.name:
        raise EngineMismatch(
            f"the warehouse folder {root} holds a {holds} warehouse, and this run asks for {engine.name}: "
            f"give this engine a folder of its own (--warehouse), or run with engine {holds}")
    if engine.name == "duckdb":
        from flows.engines.duckdb_engine import DuckDBEngine

        return DuckDBEngine(Warehouse(root))
    if engine.name == "spark":
        from flows.engines.spark_engine import SparkEngine

        return SparkEngine(Warehouse(root), engine.spark)
    raise ValueError(f"unknown engine {engine.name!r}: liucun runs on 'duckdb' or 'spark'")
