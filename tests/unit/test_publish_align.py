"""Recovery of the Parquet pointer after a run died between replacing liucun.duckdb and switching
parquet/current (real publications of real DuckDB files; the death is recreated by putting the
pointer back, as the killed run left it — the kill itself is tests/e2e/test_failure_safety.py)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from flows.ingest import create_raw_schema
from flows.publish import align_parquet_with_published, publish
from flows.warehouse import Warehouse


def _candidate(path: Path, rows: int) -> Path:
    with duckdb.connect(str(path)) as con:
        create_raw_schema(con)
        con.execute("create schema marts")
        con.execute(f"create table marts.rpt_a as select range as n from range({rows})")
        con.execute("create table marts.rpt_b as select 'x' as s")
    return path


@pytest.fixture()
def two_publications(tmp_path: Path) -> tuple[Warehouse, str, str]:
    wh = Warehouse(tmp_path / "wh")
    wh.root.mkdir()
    first = publish(wh, _candidate(tmp_path / "c1.duckdb", 3), "run-one-0001", "2025-12-31", {})
    second = publish(wh, _candidate(tmp_path / "c2.duckdb", 5), "run-two-0002", "2025-12-31", {})
    return wh, first.version, second.version


def _point_back(wh: Warehouse, version: str) -> None:
    """The state a kill right after the rename leaves: DuckDB new, Parquet pointer old."""
    (wh.parquet_dir / "current").unlink()
    (wh.parquet_dir / "current").symlink_to(version, target_is_directory=True)
    (wh.parquet_dir / "CURRENT").write_text(version + "\n")


def test_pointer_left_behind_is_switched_to_the_published_version(two_publications):
    wh, old, new = two_publications
    assert align_parquet_with_published(wh) is None  # they agree: nothing to do
    _point_back(wh, old)
    assert align_parquet_with_published(wh) == new
    assert (wh.parquet_dir / "CURRENT").read_text().strip() == new
    assert os.readlink(wh.parquet_dir / "current") == new
    rows = duckdb.sql(f"select count(*) from '{wh.parquet_dir / 'current' / 'rpt_a.parquet'}'").fetchone()[0]
    with duckdb.connect(str(wh.published), read_only=True) as con:
        assert rows == con.execute("select count(*) from marts.rpt_a").fetchone()[0] == 5
    assert not list(wh.parquet_dir.glob(".current.*")) and not list(wh.parquet_dir.glob(".CURRENT.*"))


def test_an_incomplete_version_folder_is_not_made_current(two_publications):
    wh, old, new = two_publications
    _point_back(wh, old)
    (wh.parquet_dir / new / "rpt_b.parquet").unlink()
    assert align_parquet_with_published(wh) is None
    assert (wh.parquet_dir / "CURRENT").read_text().strip() == old
