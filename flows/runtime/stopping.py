"""Stopping a run cleanly on SIGINT (Ctrl-C) or SIGTERM (``kill``, a service manager, a worker).

A run is stopped, not killed: within a few seconds every running piece ends, nothing is published,
the warehouse lock is released and the next run starts as after any failed run (it clears what this
one left). Three kinds of work are running when a signal arrives, and each is ended its own way:

- **child processes** (dbt): registered with :func:`child` while they run; a stop terminates them
  (dbt then cancels its queries and exits) and waits for them, killing one that lingers;
- **DuckDB queries** in any thread (extracts run in worker threads): connections registered with
  :func:`interruptible` are interrupted (DuckDB raises ``InterruptException`` in that thread);
- **dbt in this process** (flows/models/dbt_runner.py): registers a canceller with :func:`on_stop`; the
  stop monitor's thread calls it (it cancels dbt's queries and raises KeyboardInterrupt inside dbt,
  which ends its threads as on Ctrl-C);
- **Python loops** in worker threads (the line-by-line prescan of text files): they call
  :func:`check`, which raises :class:`RunStopped` once a stop was requested.

Publishing is not interrupted: a signal that arrives while the marts are being published (a second
or two) takes effect when the publication is complete (:func:`deferred`).

The main thread raises :class:`RunStopped` at its next safe point (:func:`check`: between the flow's
steps, when dbt has exited, when a publish completes), never from inside the signal handler: an
exception at an arbitrary point of Prefect's or an HTTP client's bookkeeping can leave a lock held
and hang the run. A watchdog bounds the stop: a run still alive 15 s after the signal (and not
publishing) prints its message and exits; the lock is an flock, released with the process. A second
signal ends the process at once. The CLI turns the exception into one paragraph and exit status 128 + the
signal number (130 for SIGINT, 143 for SIGTERM), as shells do.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_stop = threading.Event()
_defer = threading.Event()
_signal: list[int] = []
_lock = threading.RLock()  # the signal handler takes it in the main thread, which may hold it already
_children: set[subprocess.Popen[Any]] = set()
_connections: set[Any] = set()
_cancellers: list[Callable[[], None]] = []
_exit_message: list[Callable[[int], str]] = []
GRACE_SECONDS = 15.0  # a stopped run that is still alive after this is ended (publishing excepted)

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


@contextlib.contextmanager
def on_stop(cancel: Callable[[], None]) -> Iterator[None]:
    """While the block runs, a stop calls ``cancel()`` from the stop monitor's thread (not the
    signal handler: it may take locks). Raises :class:`RunStopped` at once if the run is stopping."""
    with _lock:
        _cancellers.append(cancel)
    try:
        check()
        yield
    finally:
        with _lock:
            _cancellers.remove(cancel)


def _run_cancellers() -> None:
    with _lock:
        cancellers = list(_cancellers)
    for cancel in cancellers:
        try:
            cancel()
        except Exception:  # noqa: BLE001 - the watchdog still bounds the stop
            log.debug("a stop canceller failed", exc_info=True)


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
    """SIGINT and SIGTERM stop the work inside the block (main thread only; elsewhere a no-op).

    The handler never raises at an arbitrary point of the main thread (an exception in the middle of
    Prefect's or an HTTP client's bookkeeping can leave a lock held and hang the run): it ends what
    runs elsewhere (:func:`request_stop`) and the main thread raises :class:`RunStopped` at its next
    safe point (:func:`check`: between steps, after dbt exits, when a publish completes). A watchdog
    makes the bound hard: a run still alive :data:`GRACE_SECONDS` after the signal (and not
    publishing) prints its stop message and exits.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _stop.clear()
    _signal.clear()
    done = threading.Event()
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        # only flags, kill(2) and DuckDB's interrupt here: no logging, no thread start, no raise
        if _stop.is_set():  # a second signal: the user insists
            os._exit(128 + signum)
        request_stop(signum)

    # in a copy of this thread's context: Prefect's settings (its API) and run context live in
    # contextvars, and a bare thread would log to a Prefect of its own
    monitor = threading.Thread(target=contextvars.copy_context().run, args=(_monitor, done, logger or log),
                               name="liucun-stop-monitor", daemon=True)
    monitor.start()
    for s in STOP_SIGNALS:
        previous[s] = signal.signal(s, handler)
    try:
        yield
    finally:
        for s, before in previous.items():
            signal.signal(s, before if before is not None else signal.SIG_DFL)
        if not _stop.is_set():  # after a stop the monitor stays: the process must end in time
            done.set()


def on_forced_exit(message: Callable[[int], str] | None) -> None:
    """What the watchdog prints before it ends a run that did not stop in time (the CLI's message)."""
    _exit_message[:] = [message] if message else []


def _monitor(done: threading.Event, say: logging.Logger | logging.LoggerAdapter) -> None:
    """Off the main thread: say that the run is stopping, and end it if it has not stopped in time."""
    while not _stop.wait(0.2):
        if done.is_set():
            return
    signum = _signal[0] if _signal else signal.SIGTERM
    say.warning("received %s: stopping — running tasks end, nothing is published%s (send it again to "
                "stop at once)", signal.Signals(signum).name,
                "; the publish under way completes first" if _defer.is_set() else "")
    _run_cancellers()
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline or _defer.is_set():  # a publish under way is never cut
        if done.wait(0.1):
            return
    try:
        text = _exit_message[0](signum) if _exit_message else f"STOPPED by {signal.Signals(signum).name}."
    except Exception:  # noqa: BLE001 - the exit must happen whatever the message does
        text = f"STOPPED by {signal.Signals(signum).name}."
    with contextlib.suppress(Exception):
        sys.stderr.write(f"{text}\n(part of the run was still busy {GRACE_SECONDS:.0f} s after the signal; "
                         "the process ended it)\n")
        sys.stderr.flush()
    os._exit(128 + signum)


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
