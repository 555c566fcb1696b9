"""The run's Great Expectations gates, in one child process that imports GX while the run ingests.

Importing Great Expectations (with the pandas, SciPy, SQLAlchemy and Altair it loads) takes 2–3 s
of one core: more than a small run's three gates take to evaluate, and all of it on the run's
critical path when the first gate imports it. A run therefore starts this worker first (the CLI
before Prefect's own imports, a deployment's flow at its start): its imports happen on the
machine's other core while the run checks its config, starts Prefect and ingests, and the gates
then run there, one after another, with the run's one GX context.

Nothing else changes: the run waits for each gate where it waited before (so nothing reads a layer
that is not validated, and nothing is published unless every gate passed); the gate opens the
candidate read-only and closes it before answering, as it did in the run's process; its log
records come back with its answer and are logged here under their own names.

The worker is the run's: it ends with the run (:meth:`GateWorker.close`), with a stop (a stop
kills it, see flows/runtime/stopping.py) and with the run's process, even a SIGKILLed one: idle, it sees its
pipe close; busy with a gate, a thread that watches its parent ends it. Ctrl-C reaches the whole
process group; the worker ignores it, the run decides.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.runtime import memwatch, stopping

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from expectations.results import GateResult
    from expectations.suites import GateParams


class GateWorkerDied(RuntimeError):
    """The gate worker ended before it answered (killed from outside, or out of memory)."""


class GateWorker:
    """``with GateWorker() as gates: gates.run("raw", candidate, params, reports)``."""

    def __init__(self) -> None:
        # a fresh interpreter (no locks or threads inherited), started as a plain child process:
        # multiprocessing's own start methods would also start a resource-tracker process, one more
        # child that outlives the run by a moment
        self._conn, child = multiprocessing.Pipe()
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, json.dumps(sys.path), str(child.fileno()), str(os.getpid())],
            pass_fds=[child.fileno()], stdin=subprocess.DEVNULL)
        child.close()
        memwatch.track(self._proc.pid)  # the run's memory figures include the worker's
        self._lock = threading.Lock()  # one gate at a time

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def __enter__(self) -> GateWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, layer: str, db_path: Path, params: GateParams, report_dir: Path | None) -> GateResult:
        """:func:`expectations.gate.run_gate` in the worker: its result, or the exception it raised."""
        with self._lock, stopping.on_stop(self.kill):
            try:
                self._conn.send((layer, Path(db_path), params, report_dir))
                outcome, value, records = self._conn.recv()
            except (EOFError, OSError) as exc:
                stopping.check()  # killed by a stop: say so, not "the worker died"
                raise GateWorkerDied(
                    f"the gate worker (pid {self._proc.pid}) ended while validating the {layer} layer "
                    f"(exit code {self._proc.poll()}); nothing was published") from exc
        for record in records:
            logging.getLogger(record["name"]).handle(logging.makeLogRecord(record))
        if outcome == "error":
            raise value
        return value

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self._proc.kill()

    def close(self) -> None:
        """End the worker (it is idle between gates: closing its pipe ends it at once)."""
        with contextlib.suppress(OSError):
            self._conn.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            self._proc.wait()
        memwatch.untrack(self._proc.pid)


_early: list[GateWorker] = []


def start_early() -> None:
    """Start the run's worker now (the CLI, before it imports Prefect); :func:`for_this_run` takes it."""
    if not _early:
        _early.append(GateWorker())


def discard_early() -> None:
    """Close a worker started early that no run took (the run never started)."""
    while _early:
        _early.pop().close()


def for_this_run() -> GateWorker:
    """The worker started early for this run, if it is alive, else a new one."""
    while _early:
        worker = _early.pop()
        if worker._proc.poll() is None:
            return worker
        worker.close()
    return GateWorker()


# ---- in the worker ----------------------------------------------------------------------------

class _Collect(logging.Handler):
    """Keeps the worker's log records (as dicts) to send back with the answer."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        d = dict(record.__dict__)
        d["msg"], d["args"] = record.getMessage(), None
        if record.exc_info:
            d["exc_text"] = logging.Formatter().formatException(record.exc_info)
        d["exc_info"] = None
        self.records.append(d)


# the worker's command: Ctrl-C ignored first of all (it reaches the whole process group; the run
# decides), then the run's import path, then the loop. ``__main__`` gets this module's file: under
# ``python -c`` it has neither a file nor a spec, and pyspark's Spark Connect module (which GX
# imports when pyspark is installed, as with the Spark engine's extra) then takes the process for a
# doctest run and calls sys.exit(0) in the middle of GX's import.
_BOOT = ("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); import json, sys; "
         "sys.path[:0] = json.loads(sys.argv[1]); from multiprocessing.connection import Connection; "
         "import __main__, flows.gates.worker as w; __main__.__file__ = w.__file__; "
         "w._serve(Connection(int(sys.argv[2])), int(sys.argv[3]))")


def _serve(conn: Connection, parent: int) -> None:
    threading.Thread(target=_exit_with_parent, args=(parent,), name="liucun-gates-parent", daemon=True).start()
    collect = _Collect()
    root = logging.getLogger()
    root.handlers[:] = [collect]
    root.setLevel(logging.INFO)
    from expectations.context import get_context
    from expectations.gate import run_gate

    context, layers_done = get_context(), set()  # the run's one GX context
    while True:
        try:
            layer, db_path, params, report_dir = conn.recv()
        except (EOFError, OSError):  # the run closed the pipe: done. Nothing to flush, and an
            os._exit(0)  # interpreter's teardown of GX's objects would keep the run waiting ~1 s
        collect.records = []
        try:
            if layer in layers_done:  # the same layer again (not in a run): its names are taken
                context = get_context()
                layers_done.clear()
            layers_done.add(layer)
            answer: tuple[str, Any] = ("ok", run_gate(layer, db_path, params, report_dir, context=context))
        except Exception as exc:  # noqa: BLE001 - the run re-raises it
            answer = ("error", exc)
        try:
            if answer[0] == "error":  # it must also unpickle in the run (a custom __init__ may not)
                pickle.loads(pickle.dumps(answer[1]))
            conn.send((*answer, collect.records))
        except Exception as exc:  # noqa: BLE001 - an exception that does not travel: its text does
            conn.send(("error", RuntimeError(f"{type(answer[1]).__name__}: {answer[1]} ({exc})"), collect.records))


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)
