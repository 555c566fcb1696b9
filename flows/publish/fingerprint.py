"""What a publication was built from, so that a run with nothing new can say so instead of rebuilding.

The published marts are a function of the raw layer and of the run's inputs: the as-of date, the
config, the dbt project (models, macros, seeds, vars), liucun's own code (gates, the BG/NBD fit,
publishing) and the versions of the libraries that compute them. Every publication records a
fingerprint of those inputs in its state (``raw._builds``). A run whose extracts found no new rows
in any source, and whose fingerprint equals the one recorded with the current publication, would
publish the same marts again: it stops there and says so (``--full-refresh`` rebuilds anyway).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb

from flows.config import ProjectConfig

REPO = Path(__file__).resolve().parents[2]
CODE_DIRS = ("flows", "expectations")  # the Python that validates, fits and publishes
DBT_SKIP = {"target", "logs", "dbt_packages", "__pycache__"}  # dbt's outputs, not its inputs
LIBRARIES = ("dbt-core", "dbt-duckdb", "duckdb", "great-expectations", "numpy", "scipy", "pandas")

BUILDS_DDL = """create table if not exists raw._builds (
    run_id varchar, version varchar, published_at timestamp, fingerprint varchar, inputs json)"""


def _tree_hash(root: Path, suffixes: tuple[str, ...] | None = None) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not p.is_file() or DBT_SKIP.intersection(rel.parts) or (suffixes and p.suffix not in suffixes):
            continue
        h.update(str(rel).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def inputs(config: ProjectConfig, as_of: date, dbt_vars: dict[str, Any], dbt_project_dir: Path) -> dict[str, str]:
    """Every input of a build except the raw data, each as a short string or a hash."""
    return {
        "as_of": as_of.isoformat(),
        "dbt_vars": json.dumps(dbt_vars, sort_keys=True, default=str),
        "config": hashlib.sha256(repr(config).encode()).hexdigest(),
        "dbt_project": _tree_hash(dbt_project_dir),
        "liucun_code": hashlib.sha256("".join(_tree_hash(REPO / d, (".py",)) for d in CODE_DIRS).encode()).hexdigest(),
        "libraries": ", ".join(f"{d} {_version(d)}" for d in LIBRARIES),
    }


def fingerprint(parts: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def record(candidate: Path, run_id: str, version: str, published_at: datetime, parts: dict[str, str]) -> None:
    """Record what the publication ``version`` was built from, in the candidate that becomes the state."""
    with duckdb.connect(str(candidate)) as con:
        con.execute(BUILDS_DDL)
        con.execute("insert into raw._builds values (?, ?, ?, ?, ?)",
                    [run_id, version, published_at, fingerprint(parts), json.dumps(parts)])


def last_build(state: Path) -> tuple[str, str, dict[str, str]] | None:
    """(version, fingerprint, inputs) recorded with the state's publication, or None."""
    if not state.exists():
        return None
    with duckdb.connect(str(state), read_only=True) as con:
        if not con.execute("select count(*) from duckdb_tables() where schema_name = 'raw' "
                           "and table_name = '_builds'").fetchone()[0]:  # type: ignore[index]
            return None
        row = con.execute("select version, fingerprint, inputs from raw._builds "
                          "order by published_at desc limit 1").fetchone()
    return (row[0], row[1], json.loads(row[2])) if row else None


def changed(before: dict[str, str], now: dict[str, str]) -> list[str]:
    """The names of the inputs that differ (for the log: why a run with no new data rebuilt)."""
    return sorted(k for k in {*before, *now} if before.get(k) != now.get(k))


def models_rebuild_reason(full_refresh: bool, last: tuple[str, str, dict[str, str]] | None,
                          now: dict[str, str], loads: list[Any], candidate: Path) -> str | None:
    """Why this run must compute every model from all the data (dbt ``--full-refresh``), or None
    when the models that absorb new loads (dbt_project/macros/incremental.sql) may add only this
    run's loads to the state's models. They may when the state was built by the same models, dbt
    vars, code and libraries (a new as-of date is fine: those models do not read it; nor do they read
    the rest of the config, such as where the source files are, except through the loads), and this run only
    added rows: a row replaced by key or by a new version of its file, or a new line of an order
    loaded before, changes rows those models already hold."""
    if full_refresh:
        return "--full-refresh"
    if last is None:
        return "first build of this warehouse"
    differ = [k for k in changed(last[2], now) if k not in ("as_of", "config")]
    if differ:
        return f"{', '.join(differ)} changed since the last build"
    replaced = {r.source: r.rows_replaced for r in loads if r.rows_replaced}
    if replaced:
        return (f"{sum(replaced.values()):,} rows were replaced by key or by a new version of their file "
                f"({', '.join(sorted(replaced))}): corrections rebuild in full")
    new_ids = [r.load_id for r in loads if r.kind == "order_lines" and r.rows_loaded]
    if new_ids:
        with duckdb.connect(str(candidate), read_only=True) as con:
            spread = con.execute(
                "select count(distinct order_id) from raw.order_lines "
                "where _load_id in (select unnest($ids)) and order_id in (select order_id from raw.order_lines "
                "where _load_id not in (select unnest($ids)))", {"ids": new_ids}).fetchone()[0]  # type: ignore[index]
        if spread:
            return f"new lines of {spread:,} orders loaded before: those orders rebuild in full"
    return None


def clear_model_builds(candidate: Path) -> None:
    """Forget which way the last run built each model (incremental._model_builds, written by dbt)."""
    with duckdb.connect(str(candidate)) as con:
        if con.execute("select count(*) from duckdb_tables() where schema_name = 'incremental' "
                       "and table_name = '_model_builds'").fetchone()[0]:  # type: ignore[index]
            con.execute("delete from incremental._model_builds")


def models_built(candidate: Path, rebuild: str | None, new_loads: int) -> str:
    """One line for the run's summary: which models absorbed this run's new loads, which were
    computed in full, and why (dbt_project/macros/incremental.sql records it)."""
    if rebuild:
        return f"in full ({rebuild})"
    with duckdb.connect(str(candidate), read_only=True) as con:
        rows = con.execute("select model, computed_in_full_because from incremental._model_builds "
                           "order by model").fetchall()
    absorbed = [m for m, why in rows if not why]
    full: dict[str, list[str]] = {}
    for m, why in rows:
        if why:
            full.setdefault(why, []).append(m)
    text = f"{len(absorbed)} absorbed {new_loads:,} new load(s) ({', '.join(absorbed) or 'none'})"
    for why, models in full.items():
        text += f"; in full because {why}: {', '.join(models)}"
    return text + "; every other model in full"
