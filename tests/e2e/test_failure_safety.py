"""Failure safety with real processes: a run killed mid-build leaves the last publication intact and
the next run recovers on its own; a second concurrent run is refused and changes nothing."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from flows.warehouse import Warehouse

LIUCUN = str(Path(sys.executable).with_name("liucun"))


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_LOGGING_LEVEL": "INFO"}


def _demo(tmp_path: Path, wh: Path, seed: int) -> list[str]:
    return [LIUCUN, "demo", "--warehouse", str(wh), "--sources", str(tmp_path / f"src{seed}"),
            "--customers", "1500", "--months", "12", "--seed", str(seed)]


def _fingerprint(wh: Path) -> tuple[str, str]:
    return (hashlib.sha256((wh / "liucun.duckdb").read_bytes()).hexdigest(),
            (wh / "parquet" / "CURRENT").read_text())


def test_killed_during_dbt_build_keeps_the_publication_and_recovers(tmp_path: Path):
    wh = tmp_path / "wh"
    first = subprocess.run(_demo(tmp_path, wh, 1), env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    before = _fingerprint(wh)

    proc = subprocess.Popen(_demo(tmp_path, wh, 2), env=_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    saw_dbt = False
    deadline = time.time() + 300
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until the dbt build is under way, then kill the whole run
        if "dbt build" in line:
            saw_dbt = True
            time.sleep(1.0)
            os.killpg(proc.pid, signal.SIGKILL)
            break
        assert time.time() < deadline, "the run never reached the dbt build"
    proc.wait(timeout=60)
    assert saw_dbt and proc.returncode == -signal.SIGKILL

    assert _fingerprint(wh) == before  # untouched, byte for byte
    with duckdb.connect(str(wh / "liucun.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from audit.publications").fetchone()[0] == 1
    assert any((wh / ".runs").iterdir()), "the killed run left its candidate behind"

    again = subprocess.run(_demo(tmp_path, wh, 2), env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "leftover candidate" in again.stdout + again.stderr
    assert _fingerprint(wh) != before
    with duckdb.connect(str(wh / "liucun.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from audit.publications").fetchone()[0] == 2


def test_a_second_run_while_one_holds_the_warehouse_is_refused(tmp_path: Path):
    wh = Warehouse(tmp_path / "wh")
    with wh.lock():  # a real flock held by this process, as a running pipeline holds it
        proc = subprocess.run(_demo(tmp_path, wh.root, 3), env=_env(tmp_path), capture_output=True,
                              text=True, timeout=600)
    assert proc.returncode == 1
    assert "another liucun run" in proc.stderr and f"pid {os.getpid()}" in proc.stderr
    assert not (wh.root / "liucun.duckdb").exists() and not (wh.root / "state.duckdb").exists()
