"""The run's gates in their worker process (flows/gates/worker.py) find exactly what they find in the
run's own process, say what they logged, raise what they raised, and never outlive the run."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import duckdb
import pytest

from expectations.gate import run_gate
from flows.gates.worker import GateWorker, GateWorkerDied
from tests.integration.test_gates import params

REPO = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def _children() -> set[int]:
    return {int(pid) for f in Path("/proc/self/task").glob("*/children") for pid in f.read_text().split()}


def test_the_worker_finds_what_the_run_process_finds(built, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    db, _ = built
    bad = tmp_path / "bad.duckdb"
    shutil.copy(db, bad)
    with duckdb.connect(str(bad)) as con:  # one blocking failure, with failing-row samples
        con.execute("update raw.orders set net_amount = gross_amount + 1 where order_id = "
                    "(select min(order_id) from raw.orders)")
    caplog.set_level(logging.INFO, logger="expectations.gate")
    children = _children()
    with GateWorker() as worker:
        pid = worker.pid
        for layer, path in (("raw", db), ("staging", db), ("marts", db), ("raw", bad)):
            here, there = tmp_path / "here" / path.stem, tmp_path / "there" / path.stem
            expected = run_gate(layer, path, params(), here)
            got = worker.run(layer, path, params(), there)
            assert got.passed is expected.passed is (path == db)
            assert [asdict(o) for o in got.outcomes] == [asdict(o) for o in expected.outcomes]
            assert got.skipped_tables == expected.skipped_tables
            for name in (f"validation_{layer}.md", f"validation_{layer}.json"):
                assert (there / name).read_text() == (here / name).read_text()
            # the gate's own log line, logged in the worker, arrives here under its logger's name
            worker_lines = [r for r in caplog.records if r.name == "expectations.gate"
                            and r.getMessage() == got.summary() and r.process == pid]
            assert worker_lines, [r.getMessage() for r in caplog.records]
        assert _children() == children | {pid}  # the worker is the run's only new child process
    assert not _alive(pid) and _children() == children


def test_what_a_gate_raises_in_the_worker_is_raised_in_the_run(built, tmp_path: Path):
    db, _ = built
    with GateWorker() as worker:
        with pytest.raises(duckdb.IOException) as in_worker:
            worker.run("raw", tmp_path / "missing.duckdb", params(), None)
        with pytest.raises(duckdb.IOException) as here:
            run_gate("raw", tmp_path / "missing.duckdb", params(), None)
        assert str(in_worker.value) == str(here.value)
        assert worker.run("raw", db, params(), None).passed  # and the worker goes on serving


def test_a_worker_that_died_is_reported_and_not_waited_for(built):
    db, _ = built
    worker = GateWorker()
    try:
        worker.kill()
        worker._proc.wait(timeout=10)
        started = time.perf_counter()
        with pytest.raises(GateWorkerDied, match="validating the raw layer"):
            worker.run("raw", db, params(), None)
        assert time.perf_counter() - started < 5
    finally:
        worker.close()


def test_the_worker_ends_when_the_run_is_killed(tmp_path: Path):
    """A SIGKILLed run cannot close its worker: the worker notices and ends by itself."""
    code = ("import sys, time; from flows.gates.worker import GateWorker; w = GateWorker(); "
            "print(w.pid, flush=True); time.sleep(600)")
    run = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert run.stdout is not None
        pid = int(run.stdout.readline())
        assert _alive(pid)
        run.send_signal(signal.SIGKILL)
        run.wait()
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid), "the gate worker outlived its run"
    finally:
        if run.poll() is None:
            run.kill()
