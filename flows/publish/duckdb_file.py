"""Publish a validated candidate: a new DuckDB file swapped in atomically, then Parquet by pointer.

:func:`prepare` (nothing in it is visible to a reader, so it may run while the marts gate still
validates the candidate — both only read it):

1. Copy the candidate's ``marts`` schema and the audit tables into a new file next to the
   published one (``.liucun.duckdb.<run>.tmp``).
2. Write every mart as Parquet into a hidden folder ``parquet/.<version>``.

:func:`complete` (only after every gate passed):

3. Record the publication (``audit.publications``, with the gates' verdicts) in the new file,
   checkpoint it, close it, fsync it and the Parquet files.
4. ``rename()`` the hidden folder to ``parquet/<version>/``, then the new file over
   ``liucun.duckdb`` (atomic on POSIX; a reader that has the old file open keeps reading the old
   inode), and fsync the folders.
5. Switch ``parquet/current`` (a symlink replaced by rename) and ``parquet/CURRENT`` to the version.

A crash before step 4's second rename leaves the previous publication untouched; leftovers are
removed by :func:`discard` (a failed gate) or the next run. Nothing is ever written into the
published file in place.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from flows.engines.base import Publication, PublishedVersion
from flows.ingest.readers import lit, q
from flows.publish.warehouse import Warehouse, fsync_path
from flows.runtime import stopping

KEEP_PARQUET_VERSIONS = 3


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


@dataclass
class PreparedPublication:
    """A publication written but not visible: ``tmp`` and ``staged`` are what :func:`complete` renames."""

    run_id: str
    version: str
    tmp: Path  # the new DuckDB file, .liucun.duckdb.<run>.tmp
    staged: Path  # the hidden Parquet folder, parquet/.<version>
    row_counts: dict[str, int]


def prepare(warehouse: Warehouse, candidate: Path, run_id: str) -> PreparedPublication:
    """Steps 1 and 2 (see the module docstring): the marts, their documentation and the audit
    tables in a new file, and their Parquet in a hidden folder. Reads the candidate only. A stop
    interrupts it (flows/runtime/stopping.py); on any failure what it wrote is removed."""
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + run_id[:8]
    tmp = warehouse.root / f".liucun.duckdb.{run_id}.tmp"
    staged = warehouse.parquet_dir / f".{version}"
    prepared = PreparedPublication(run_id, version, tmp, staged, {})
    tmp.unlink(missing_ok=True)
    has_previous = warehouse.published.exists()
    try:
        with stopping.interruptible(duckdb.connect(str(tmp))) as con:
            con.execute(f"attach {lit(str(candidate))} as cand (read_only)")
            if has_previous:
                con.execute(f"attach {lit(str(warehouse.published))} as prev (read_only)")
            tables = [r[0] for r in con.execute(
                "select table_name from duckdb_tables() where database_name = 'cand' "
                "and schema_name = 'marts' order by table_name").fetchall()]
            if not tables:
                raise RuntimeError(f"candidate {candidate} has no marts: refusing to publish")
            con.execute("create schema marts")
            for t in tables:
                con.execute(f"create table marts.{q(t)} as select * from cand.marts.{q(t)}")
                prepared.row_counts[t] = con.execute(f"select count(*) from marts.{q(t)}").fetchone()[0]  # type: ignore[index]
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
            con.execute("detach cand")
            if has_previous:
                con.execute("detach prev")
            staged.mkdir(parents=True, exist_ok=False)
            for t in tables:
                con.execute(f"copy marts.{q(t)} to {lit(str(staged / (t + '.parquet')))} (format parquet)")
    except BaseException:
        discard(prepared)
        raise
    return prepared


def complete(warehouse: Warehouse, prepared: PreparedPublication, as_of: str,
             gates: dict[str, dict]) -> Publication:
    """Steps 3 to 5 (see the module docstring): record the publication and make it visible."""
    now = datetime.now(UTC).replace(tzinfo=None)
    tmp, version = prepared.tmp, prepared.version
    con = duckdb.connect(str(tmp))
    try:
        con.execute(
            "insert into audit.publications values (?, ?, ?, ?, ?, ?)",
            [prepared.run_id, version, now, as_of, json.dumps(gates), json.dumps(prepared.row_counts)],
        )
        con.execute("checkpoint")
    finally:
        con.close()
    if Path(str(tmp) + ".wal").exists():
        raise RuntimeError(f"{tmp}.wal still exists after checkpoint: refusing a partial publication")
    fsync_path(tmp)
    for f in prepared.staged.iterdir():
        fsync_path(f)
    fsync_path(prepared.staged)

    version_dir = warehouse.parquet_dir / version
    os.replace(prepared.staged, version_dir)
    fsync_path(warehouse.parquet_dir)
    os.replace(tmp, warehouse.published)  # the atomic publish
    fsync_path(warehouse.root)

    _switch_parquet(warehouse, version, prepared.run_id)
    _prune_parquet(warehouse, keep=version)
    return Publication(prepared.run_id, version, now, warehouse.published, version_dir, prepared.row_counts)


def discard(prepared: PreparedPublication) -> None:
    """Remove a prepared publication that will not be completed (a gate failed, the run stopped)."""
    for path in (prepared.tmp, Path(f"{prepared.tmp}.wal")):
        path.unlink(missing_ok=True)
    shutil.rmtree(prepared.staged, ignore_errors=True)


def publish(warehouse: Warehouse, candidate: Path, run_id: str, as_of: str,
            gates: dict[str, dict]) -> Publication:
    """Prepare and complete at once (see the module docstring for the order of operations)."""
    return complete(warehouse, prepare(warehouse, candidate, run_id), as_of, gates)


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
