"""Publish a validated candidate: a new DuckDB file swapped in atomically, then Parquet by pointer.

1. Copy the candidate's ``marts`` schema and the audit tables into a new file next to the
   published one (``.liucun.duckdb.<run>.tmp``), checkpoint it, close it, fsync it.
2. Write every mart as Parquet into a new version folder ``parquet/<version>/``.
3. ``rename()`` the new file over ``liucun.duckdb`` (atomic on POSIX; a reader that has the old
   file open keeps reading the old inode) and fsync the folder.
4. Switch ``parquet/current`` (a symlink replaced by rename) and ``parquet/CURRENT`` to the version.

A crash before step 3 leaves the previous publication untouched; leftovers are removed by the
next run. Nothing is ever written into the published file in place.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from flows.readers import lit, q
from flows.warehouse import Warehouse, fsync_path

KEEP_PARQUET_VERSIONS = 3


@dataclass
class Publication:
    run_id: str
    version: str
    published_at: datetime
    path: Path
    parquet_dir: Path
    row_counts: dict[str, int]


def _copy_audit(con: duckdb.DuckDBPyConnection, has_previous: bool) -> None:
    con.execute("create schema audit")
    # The state carries the load ledger forward; a full refresh starts it anew, so earlier
    # publications' loads are kept too (each load_id once).
    prev_loads = "union all by name select * from prev.audit.source_loads" if has_previous else ""
    con.execute(
        f"""create table audit.source_loads as
        select * from (select * from cand.raw._loads {prev_loads})
        qualify row_number() over (partition by load_id order by finished_at desc) = 1
        order by started_at, source"""
    )
    con.execute("create table audit.quarantine as select * from cand.raw._quarantine")
    con.execute("create table audit.source_files as select * from cand.raw._files")
    if has_previous:
        con.execute("create table audit.publications as select * from prev.audit.publications")
    else:
        con.execute(
            """create table audit.publications (run_id varchar, version varchar,
               published_at timestamp, as_of_date date, gates json, row_counts json)"""
        )


def publish(
    warehouse: Warehouse,
    candidate: Path,
    run_id: str,
    as_of: str,
    gates: dict[str, dict],
) -> Publication:
    """Publish the candidate's marts; see the module docstring for the order of operations."""
    now = datetime.now(UTC).replace(tzinfo=None)
    version = now.strftime("%Y%m%dT%H%M%S") + "-" + run_id[:8]
    tmp = warehouse.root / f".liucun.duckdb.{run_id}.tmp"
    tmp.unlink(missing_ok=True)
    has_previous = warehouse.published.exists()
    con = duckdb.connect(str(tmp))
    try:
        con.execute(f"attach {lit(str(candidate))} as cand (read_only)")
        if has_previous:
            con.execute(f"attach {lit(str(warehouse.published))} as prev (read_only)")
        tables = [r[0] for r in con.execute(
            "select table_name from duckdb_tables() where database_name = 'cand' "
            "and schema_name = 'marts' order by table_name").fetchall()]
        if not tables:
            raise RuntimeError(f"candidate {candidate} has no marts: refusing to publish")
        con.execute("create schema marts")
        row_counts: dict[str, int] = {}
        for t in tables:
            con.execute(f"create table marts.{q(t)} as select * from cand.marts.{q(t)}")
            row_counts[t] = con.execute(f"select count(*) from marts.{q(t)}").fetchone()[0]  # type: ignore[index]
        for t, (comment,) in {
            t: con.execute(
                "select comment from duckdb_tables() where database_name = 'cand' "
                "and schema_name = 'marts' and table_name = ?", [t]).fetchone()
            for t in tables
        }.items():
            if comment:
                con.execute(f"comment on table marts.{q(t)} is {lit(comment)}")
        # every column's dbt description (persist_docs put it on the candidate) is a column comment
        # of the published file, so a BI tool browsing it sees the documentation
        for t, column, comment in con.execute(
                "select table_name, column_name, comment from duckdb_columns() where database_name = 'cand' "
                "and schema_name = 'marts' and comment is not null and comment <> ''").fetchall():
            con.execute(f"comment on column marts.{q(t)}.{q(column)} is {lit(comment)}")
        _copy_audit(con, has_previous)
        con.execute(
            "insert into audit.publications values (?, ?, ?, ?, ?, ?)",
            [run_id, version, now, as_of, json.dumps(gates), json.dumps(row_counts)],
        )
        con.execute("detach cand")
        if has_previous:
            con.execute("detach prev")
        con.execute("checkpoint")
    finally:
        con.close()
    if Path(str(tmp) + ".wal").exists():
        raise RuntimeError(f"{tmp}.wal still exists after checkpoint: refusing a partial publication")
    fsync_path(tmp)

    version_dir = warehouse.parquet_dir / version
    version_dir.mkdir(parents=True, exist_ok=False)
    with duckdb.connect(str(tmp), read_only=True) as ro:
        for t in tables:
            ro.execute(f"copy marts.{q(t)} to {lit(str(version_dir / (t + '.parquet')))} (format parquet)")
    for f in version_dir.iterdir():
        fsync_path(f)
    fsync_path(version_dir)

    os.replace(tmp, warehouse.published)  # the atomic publish
    fsync_path(warehouse.root)

    _switch_parquet(warehouse, version, run_id)
    _prune_parquet(warehouse, keep=version)
    return Publication(run_id, version, now, warehouse.published, version_dir, row_counts)


def _switch_parquet(warehouse: Warehouse, version: str, tag: str) -> None:
    """Point ``parquet/current`` (symlink) and ``parquet/CURRENT`` at ``version``, each by rename."""
    link_tmp = warehouse.parquet_dir / f".current.{tag}"
    link_tmp.unlink(missing_ok=True)
    link_tmp.symlink_to(version, target_is_directory=True)
    os.replace(link_tmp, warehouse.parquet_dir / "current")
    pointer_tmp = warehouse.parquet_dir / f".CURRENT.{tag}"
    pointer_tmp.write_text(version + "\n")
    os.replace(pointer_tmp, warehouse.parquet_dir / "CURRENT")
    fsync_path(warehouse.parquet_dir)


def align_parquet_with_published(warehouse: Warehouse) -> str | None:
    """After a run died between replacing ``liucun.duckdb`` and switching the Parquet pointer, the
    DuckDB file holds the new marts and ``parquet/current`` the old ones. The new version folder
    was complete (written and fsynced before the rename), so point Parquet at it: both readers then
    agree again, even if the next run fails. Returns the version switched to, or None when the two
    already agree (or there is nothing to align). Call under the run lock."""
    last = latest_publication(warehouse.published)
    if last is None:
        return None
    version, marts = last.version, last.row_counts
    pointer = warehouse.parquet_dir / "CURRENT"
    if pointer.exists() and pointer.read_text().strip() == version:
        return None
    folder = warehouse.parquet_dir / version
    if not folder.is_dir() or not marts or any(not (folder / f"{t}.parquet").is_file() for t in marts):
        return None  # not complete: leave the pointer; the next publication replaces both
    _switch_parquet(warehouse, version, "align")
    return version


@dataclass(frozen=True)
class PublishedVersion:
    """The newest row of ``audit.publications`` in a published file."""

    version: str
    published_at: datetime
    row_counts: dict[str, int]


def latest_publication(published: Path) -> PublishedVersion | None:
    """What ``published`` holds now (None when nothing was published yet)."""
    if not published.exists():
        return None
    with duckdb.connect(str(published), read_only=True) as con:
        row = con.execute("select version, published_at, row_counts from audit.publications "
                          "order by published_at desc limit 1").fetchone()
    if row is None:
        return None
    return PublishedVersion(row[0], row[1], {str(k): int(v) for k, v in json.loads(row[2] or "{}").items()})


def last_publication_row_counts(published: Path) -> dict[str, int]:
    """Row count per mart of the publication in ``published`` (empty when there is none yet): the
    reference of the marts gate's row-count bands."""
    last = latest_publication(published)
    return last.row_counts if last else {}


def _prune_parquet(warehouse: Warehouse, keep: str) -> None:
    versions = sorted(
        d for d in warehouse.parquet_dir.iterdir() if d.is_dir() and not d.is_symlink()
    )
    for d in versions[:-KEEP_PARQUET_VERSIONS]:
        if d.name != keep:
            shutil.rmtree(d, ignore_errors=True)
