"""GX gates on a real candidate: clean data passes, a known-bad row is caught, an empty gate fails."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import yaml

from expectations.gate import run_gate
from expectations.suites import GateParams
from tests.support.pipeline import DEMO_CONFIG

AS_OF = date(2025, 12, 31)
DEMO_KINDS = frozenset(s["kind"] for s in yaml.safe_load(DEMO_CONFIG.read_text())["sources"].values())


def params() -> GateParams:
    return GateParams(AS_OF, configured_kinds=DEMO_KINDS)


def test_clean_sample_passes_every_gate(built, tmp_path: Path):
    db, _ = built
    for layer in ("raw", "staging", "marts"):
        result = run_gate(layer, db, params(), tmp_path)
        assert result.passed, result.failure_message()
        assert result.evaluated >= 5
        report = (tmp_path / f"validation_{layer}.md").read_text()
        assert "PASSED" in report


def test_known_bad_row_is_caught(built, tmp_path: Path):
    """Keeps the DuckDB shim of expectations/context.py honest: a bad row must fail the gate."""
    db, _ = built
    bad = tmp_path / "bad.duckdb"
    shutil.copy(db, bad)
    with duckdb.connect(str(bad)) as con:
        con.execute(
            "insert into raw.orders (order_id, ordered_at, channel, gross_amount, net_amount) "
            "values ('BAD-1', timestamp '2025-06-01 10:00:00', 'store', 10.00, 99.00)")
    result = run_gate("raw", bad, params(), tmp_path)
    assert not result.passed
    (failure,) = result.blocking_failures
    assert failure.table == "raw.orders"
    assert failure.column == "gross_amount,net_amount"
    assert failure.unexpected_count == 1
    assert "raw.orders.gross_amount,net_amount" in result.failure_message()
    assert "1 of" in result.failure_message()


def test_gate_that_evaluates_nothing_fails(tmp_path: Path):
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    result = run_gate("marts", empty, params(), tmp_path)
    assert result.evaluated == 0
    assert not result.passed
    assert "evaluated no expectations" in result.failure_message()
