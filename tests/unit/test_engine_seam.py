"""The engine seam holds: outside flows/engines/, no code names an engine's implementation or
compares anything with an engine's name, and the flow and its tasks never open a warehouse
themselves (they go through the Engine)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FLOWS = REPO / "flows"
ENGINE_NAMES = {"duckdb", "spark"}


def _modules() -> list[Path]:
    return [p for p in sorted(FLOWS.rglob("*.py")) if "engines" not in p.relative_to(FLOWS).parts]


def _branches_on_engine(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("flows.engines.")
                and node.module != "flows.engines.base"):
            found.append(f"line {node.lineno}: imports {node.module}")
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                if isinstance(side, ast.Constant) and side.value in ENGINE_NAMES:
                    found.append(f"line {node.lineno}: compares with {side.value!r}")
        if isinstance(node, ast.Name) and node.id.endswith("Engine") and node.id != "Engine":
            found.append(f"line {node.lineno}: names {node.id}")
    return found


def test_nothing_outside_the_engines_branches_on_the_engine():
    offenders = {str(p.relative_to(REPO)): hits for p in _modules()
                 if (hits := _branches_on_engine(ast.parse(p.read_text(), str(p))))}
    assert not offenders, offenders


def test_the_check_finds_a_branch_where_there_is_one():
    src = ('from flows.engines.duckdb_engine import DuckDBEngine\n'
           'def f(cfg):\n    if cfg.engine == "spark":\n        return DuckDBEngine\n')
    hits = _branches_on_engine(ast.parse(src))
    assert len(hits) == 3, hits


def test_the_flow_and_its_tasks_reach_the_warehouse_only_through_the_engine():
    for name in ("retention_pipeline.py", "pipeline_tasks.py"):
        tree = ast.parse((FLOWS / name).read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        direct = sorted(m for m in imported
                        if m == "duckdb" or m.startswith(("flows.publish.duckdb_file", "flows.publish.warehouse")))
        assert not direct, f"{name} imports {direct}"
