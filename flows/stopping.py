"""Stopping a run cleanly on SIGINT (Ctrl-C) or SIGTERM (``kill``, a service manager, a worker).

A run is stopped, not killed: within a few seconds every running piece ends, nothing is published,
the warehouse lock is released and the next run starts as after any failed run (it clears what this
one left). Three kinds of work are running when a signal arrives, and each is ended its own way:

- **child processes** (dbt): registered with :func:`child` while they run; a stop terminates them
  (dbt then cancels its queries and exits) and waits for them, killing one that lingers;
- **DuckDB queries** in any thread (extracts run in worker threads): connections registered with
  :func:`interruptible` are interrupted (DuckDB raises ``InterruptException`` in that thread);
- **Python loops** in worker threads (the line-by-line prescan of text files): they call
  :func:`check`, which raises :class:`RunStopped` once a stop was requested.

Publishing is not interrupted: a signal that arrives while the marts are being published (a second
or two) takes effect when the publication is complete (:func:`deferred`).

The main thread gets the exception from the signal handler itself: :func:`stop_on_signals` wraps the
flow's body. It chains to the handler that was installed before it — inside a Prefect flow that is
Prefect's SIGTERM bridge, which raises ``TerminationSignal`` so Prefect records the run as crashed or
cancelled as it always does — and raises :class:`RunStopped` where there is none. A second signal
ends the process at once. The CLI turns the exception into one paragraph and exit status 128 + the
signal number (130 for SIGINT, 143 for SIGTERM), as shells do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_stop = threading.Event()
_defer = threading.Event()
_signal: list[int] = []
_lock = threading.Lock()
_children: set[subprocess.Popen[Any]] = set()
_connections: set[Any] = set()

log = logging.getLogger(__name__)


class RunStopped(BaseException):  # noqa: N818 - like KeyboardInterrupt: `except Exception` must not swallow it
    """The run was stopped by a signal; nothing was published."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


def requested() -> int | None:
    """The signal number of a requested stop, or None."""
    return _signal[0] if _stop.is_set() and _signal else None


def check() -> None:
    """Raise :class:`RunStopped` when a stop was requested (for loops in worker threads)."""
    if _stop.is_set():
        raise RunStopped(_signal[0] if _signal else signal.SIGTERM)


@contextlib.contextmanager
def child(proc: subprocess.Popen[Any]) -> Iterator[subprocess.Popen[Any]]:
    """While the block runs, a stop terminates ``proc``; leaving the block by an exception ends it too."""
    with _lock:
        _children.add(proc)
        stopping = _stop.is_set()
    if stopping:  # the signal came while the child was starting
        _terminate(proc)
    try:
        yield proc
    except BaseException:
        _terminate(proc)  # the caller is unwinding (a stop, or its own failure): the child ends too
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
        raise
    finally:
        with _lock:
            _children.discard(proc)


@contextlib.contextmanager
def interruptible(con: Any) -> Iterator[Any]:
    """``with interruptible(duckdb.connect(...)) as con``: a stop interrupts the running query."""
    with _lock:
        _connections.add(con)
    try:
        with con:
            check()
            yield con
    finally:
        with _lock:
            _connections.discard(con)


def _terminate(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()


def request_stop(signum: int) -> None:
    """Mark the run as stopping and end what runs outside the main thread."""
    with _lock:
        if not _stop.is_set():
            _signal[:] = [signum]
            _stop.set()
        children, connections = list(_children), list(_connections)
    for proc in children:
        _terminate(proc)
    for con in connections:
        with contextlib.suppress(Exception):
            con.interrupt()


@contextlib.contextmanager
def stop_on_signals(logger: logging.Logger | logging.LoggerAdapter | None = None) -> Iterator[None]:
    """SIGINT and SIGTERM stop the work inside the block (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _stop.clear()
    _signal.clear()
    say = logger or log
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        if _stop.is_set():  # a second signal: the user insists
            os._exit(128 + signum)
        if _defer.is_set():  # publishing: finish it (a second or two), then stop
            say.warning("received %s: stopping once the publish under way has completed",
                        signal.Signals(signum).name)
            with _lock:
                _signal[:] = [signum]
                _stop.set()
            return
        say.warning("received %s: stopping — running tasks end, nothing is published "
                    "(send it again to stop at once)", signal.Signals(signum).name)
        request_stop(signum)
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)  # Prefect's SIGTERM bridge, or Python's KeyboardInterrupt
        raise RunStopped(signum)

    for s in STOP_SIGNALS:
        previous[s] = signal.signal(s, handler)
    try:
        yield
    finally:
        for s, before in previous.items():
            signal.signal(s, before if before is not None else signal.SIG_DFL)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A stop requested inside the block takes effect at its end: a publish is never cut in half
    (it is safe against a kill too, but then the next run has to realign the Parquet pointer)."""
    _defer.set()
    try:
        yield
    finally:
        _defer.clear()
    check()


def is_stop(exc: BaseException) -> int | None:
    """The signal number when ``exc`` (or its chain) is a stop by signal, else None."""
    from prefect.exceptions import TerminationSignal

    seen, todo = set(), [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, RunStopped):
            return e.signum
        if isinstance(e, TerminationSignal):
            return e.signal
        if isinstance(e, KeyboardInterrupt):
            return signal.SIGINT
        todo += [e.__cause__, e.__context__]
    return requested()
