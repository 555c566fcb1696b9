"""Recovery of the Parquet pointer after a run died between replacing liucun.duckdb and switching
parquet/current (real publications of real DuckDB files; the death is recreated by putting the
pointer back, as the killed run left it — the kill itself is tests/e2e/test_failure_safety.py)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from flows.ingest.load import create_raw_schema
from flows.publish.duckdb_file import align_parquet_with_published, publish
from flows.publish.warehouse import Warehouse


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


def _listing(wh: Warehouse) -> set[str]:
    return {str(p.relative_to(wh.root)) for p in wh.root.rglob("*")}


def test_a_prepared_publication_is_invisible_until_completed(two_publications, tmp_path: Path):
    """The pipeline prepares the next publication while the marts gate still validates the
    candidate: until complete(), a reader finds exactly the last publication, and nothing named
    like a version appears in parquet/."""
    from flows.publish.duckdb_file import complete, latest_publication, prepare

    wh, _, last = two_publications
    published = wh.published.read_bytes()

    def visible() -> set[str]:
        return {n for n in os.listdir(wh.parquet_dir) if not n.startswith(".")}

    before = visible()
    prepared = prepare(wh, _candidate(tmp_path / "c3.duckdb", 7), "run-three-0003")
    assert wh.published.read_bytes() == published
    assert latest_publication(wh.published).version == last
    assert (wh.parquet_dir / "CURRENT").read_text().strip() == last
    assert visible() == before and prepared.version not in before
    assert prepared.row_counts == {"rpt_a": 7, "rpt_b": 1}

    pub = complete(wh, prepared, "2025-12-31", {"marts": {"passed": True}})
    assert latest_publication(wh.published).version == pub.version == prepared.version
    assert (wh.parquet_dir / "CURRENT").read_text().strip() == pub.version
    assert duckdb.sql(f"select count(*) from '{wh.parquet_dir / 'current' / 'rpt_a.parquet'}'").fetchone()[0] == 7
    with duckdb.connect(str(wh.published), read_only=True) as con:
        gates = con.execute("select gates from audit.publications where version = ?", [pub.version]).fetchone()[0]
    assert '"passed": true' in gates
    assert not [n for n in os.listdir(wh.parquet_dir) if n.startswith(".")]
    assert not list(wh.root.glob(".liucun.duckdb.*"))


def test_a_discarded_or_abandoned_preparation_leaves_nothing(two_publications, tmp_path: Path):
    from flows.publish.duckdb_file import discard, prepare

    wh, _, _ = two_publications
    before = _listing(wh)
    discard(prepare(wh, _candidate(tmp_path / "c3.duckdb", 7), "run-three-0003"))  # a gate failed
    assert _listing(wh) == before
    prepare(wh, _candidate(tmp_path / "c4.duckdb", 7), "run-four-0004")  # the run died here
    assert _listing(wh) != before
    (wh.runs_dir / "run-four-0004").mkdir(parents=True)  # its candidate folder, as a dead run leaves it
    wh.clear_stale_runs()  # what the next run does first
    assert _listing(wh) == before | {".runs"}


def test_preparing_reads_a_candidate_another_process_is_reading(two_publications, tmp_path: Path):
    """The marts gate (in the gate worker, another process) holds the candidate open read-only
    while the publication is prepared from it."""
    import subprocess
    import sys

    from flows.publish.duckdb_file import discard, prepare

    wh, _, _ = two_publications
    candidate = _candidate(tmp_path / "c3.duckdb", 7)
    reader = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True); "
         "c.execute('select count(*) from marts.rpt_a').fetchone(); print('open', flush=True); time.sleep(60)",
         str(candidate)], stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
        prepared = prepare(wh, candidate, "run-three-0003")
        assert prepared.row_counts["rpt_a"] == 7
        discard(prepared)
    finally:
        reader.kill()
        reader.wait()
