"""The run's resident memory, sampled in the background, so each step reports its peak.

DuckDB (extracts, merge, dbt's builds) and Python all run inside the flow's process, so the
process's resident set size is what a step costs in memory. Sampled every 0.1 s from
/proc/self/status (Linux); elsewhere the peaks are not measured and reported as 0.
"""

from __future__ import annotations

import threading
from pathlib import Path

_STATUS = Path("/proc/self/status")


def rss_mb() -> float:
    """This process's resident memory now, in MB (0.0 where /proc is not available)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


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
