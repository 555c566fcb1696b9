"""The run's resident memory, sampled in the background, so each step reports its peak.

DuckDB (extracts, merge, dbt's builds) and Python run inside the flow's process, and the gates in
one child process (flows/gates/worker.py): the resident set sizes of the two, added, are what a
step costs in memory. Sampled every 0.1 s from
/proc/self/status (Linux); elsewhere the peaks are not measured and reported as 0.
"""

from __future__ import annotations

import threading
from pathlib import Path

_STATUS = Path("/proc/self/status")


_tracked: set[int] = set()  # child processes that work for the run (the gate worker)


def track(pid: int | None) -> None:
    """Count ``pid``'s memory with this process's from now on (until :func:`untrack`)."""
    if pid is not None:
        _tracked.add(pid)


def untrack(pid: int | None) -> None:
    _tracked.discard(pid)


def _vm_rss_mb(status: Path) -> float:
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:  # no /proc, or the child has just ended
        pass
    return 0.0


def rss_mb() -> float:
    """The resident memory of this process and the children it tracks, now, in MB (0.0 where
    /proc is not available)."""
    return _vm_rss_mb(_STATUS) + sum(_vm_rss_mb(Path(f"/proc/{pid}/status")) for pid in list(_tracked))


class MemoryWatch:
    """``with MemoryWatch() as watch``: ``watch.since_mark()`` is the highest RSS seen since the
    last call (the start of a step), then marks anew."""

    def __init__(self, interval: float = 0.1) -> None:
        self._interval = interval
        self._peak = rss_mb()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="liucun-memory-watch", daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()

    def _sample(self) -> None:
        while not self._done.wait(self._interval):
            now = rss_mb()
            with self._lock:
                self._peak = max(self._peak, now)

    def since_mark(self) -> float:
        now = rss_mb()
        with self._lock:
            peak, self._peak = max(self._peak, now), now
        return round(peak, 1)
