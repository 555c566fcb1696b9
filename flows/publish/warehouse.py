"""The warehouse folder: published file, versioned Parquet, candidates, reports and the run lock.

    DIR/liucun.duckdb            published marts (schema marts) and audit tables; replaced atomically
    DIR/state.duckdb             the last good working warehouse (raw layer, load ledgers, models):
                                 a run starts from a copy of it and replaces it only after publishing
    DIR/parquet/<version>/       each mart as Parquet; DIR/parquet/current -> the live version
    DIR/parquet/CURRENT          the live version's name, for tools that do not follow symlinks
    DIR/.runs/<run_id>/          a run's candidate warehouse and dbt artifacts (removed on success)
    DIR/reports/<run_id>/        validation reports of every gate of a run (kept)
    DIR/.liucun.lock             held by the running pipeline: a second run is refused
    DIR/.dbt/partial_parse.msgpack  dbt's parse of the project at the last run: the next run
                                 re-reads only the files that changed (a cache; safe to delete)
    DIR/.dbt/run -> ../.runs/<run_id>  the running run's folder, as dbt sees it: its path is the
                                 same every run (dbt parses the whole project again when a
                                 profile value, such as the database path, changes)
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class WarehouseBusy(RuntimeError):
    pass


@dataclass(frozen=True)
class Warehouse:
    root: Path

    @property
    def published(self) -> Path:
        return self.root / "liucun.duckdb"

    @property
    def state(self) -> Path:
        return self.root / "state.duckdb"

    @property
    def parquet_dir(self) -> Path:
        return self.root / "parquet"

    @property
    def runs_dir(self) -> Path:
        return self.root / ".runs"

    @property
    def dbt_parse_cache(self) -> Path:
        return self.root / ".dbt" / "partial_parse.msgpack"

    def candidate_for_dbt(self, run_id: str) -> Path:
        """The run's candidate through ``DIR/.dbt/run``, a symlink to its folder (switched atomically).
        The link is on the folder, so DuckDB's write-ahead log lands beside the real file."""
        link = self.root / ".dbt" / "run"
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".run.{run_id}.tmp")
        tmp.unlink(missing_ok=True)
        os.symlink(os.path.relpath(self.run_dir(run_id), link.parent), tmp)
        os.replace(tmp, link)
        return link / self.candidate(run_id).name

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def candidate(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "candidate.duckdb"

    def report_dir(self, run_id: str) -> Path:
        return self.root / "reports" / run_id

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive run lock (released by the OS if the process dies)."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / ".liucun.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                raise WarehouseBusy(
                    f"another liucun run (pid {holder}) is using {self.root}; wait for it to "
                    f"finish — this run was refused and changed nothing"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)

    def clear_stale_runs(self) -> list[str]:
        """Remove candidates left by runs that died (we hold the lock, so none is running)."""
        removed = []
        if self.runs_dir.exists():
            for d in sorted(self.runs_dir.iterdir()):
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d.name)
        for tmp in [*self.root.glob(".liucun.duckdb.*.tmp*"), *self.root.glob(".state.*.tmp*"),
                    *self.parquet_dir.glob(".current.*"), *self.parquet_dir.glob(".CURRENT.*")]:
            tmp.unlink(missing_ok=True)
        # Parquet folders of those runs (version "<time>-<run_id[:8]>", or ".<version>" while a
        # publication is prepared) that never became current, e.g. half-written when the run died:
        # readers globbing parquet/ must not find them.
        live = os.readlink(self.parquet_dir / "current") if (self.parquet_dir / "current").is_symlink() else None
        for run_id in removed:
            for d in self.parquet_dir.glob(f"*-{run_id[:8]}"):
                if d.name != live and d.is_dir() and not d.is_symlink():
                    shutil.rmtree(d, ignore_errors=True)
        return removed

    def start_candidate(self, run_id: str, full_refresh: bool) -> Path:
        """A fresh candidate: a copy of the last good state, or empty on a full refresh / first run."""
        candidate = self.candidate(run_id)
        candidate.parent.mkdir(parents=True, exist_ok=True)
        if self.state.exists() and not full_refresh:
            shutil.copyfile(self.state, candidate)
        return candidate

    def commit_state(self, candidate: Path, run_id: str) -> None:
        """Make the published run's candidate the new state (atomic rename, same filesystem)."""
        if Path(str(candidate) + ".wal").exists():
            raise RuntimeError(f"{candidate}.wal exists: the candidate was not closed cleanly")
        tmp = self.root / f".state.{run_id}.tmp"
        os.replace(candidate, tmp)
        fsync_path(tmp)
        os.replace(tmp, self.state)
        fsync_path(self.root)


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, text: str, tag: str) -> None:
    """Replace ``path`` with ``text`` at once: written to ``.<name>.<tag>`` beside it, fsynced, renamed
    over it, the folder fsynced (a reader sees the old text or the new, never part of it)."""
    tmp = path.with_name(f".{path.name}.{tag}")
    tmp.write_text(text, encoding="utf-8")
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(path.parent)
