"""The scheduled deployments, with real processes and the documented commands: ``liucun serve``
starts a Prefect server on 127.0.0.1, creates the work pool, deploys flows/prefect.yaml and starts a
process worker; the deployments carry their cron, timezone and parameters; the server's scheduler
plans runs on the business clock; ``prefect deployment run --param ...`` runs the pipeline through
the worker to a publication; Ctrl-C stops everything."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import duckdb
import pytest
import yaml

from flows.generate import generate
from flows.serve import READY_MARKER, descendants

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SHANGHAI = ZoneInfo("Asia/Shanghai")
AS_OF = date(2025, 12, 31)


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    port: int
    api_url: str
    home: Path
    log: Path
    env: dict[str, str]
    tmp: Path
    liucun_home: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else f"({path} missing)"


@contextlib.contextmanager
def _client(api_url: str) -> Iterator[Any]:
    """A Prefect client for this server only (the session may also run a test harness server)."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        yield client


def _running(pid: int) -> bool:
    """Alive and not a zombie (a container's init may never reap orphans)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _kill_everything(proc: subprocess.Popen[bytes], pids: list[int]) -> None:
    for pid in [proc.pid, *pids]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``liucun serve`` as an operator starts it (from a folder that is not the repository), with a
    temporary Prefect home and no PII salt in the environment, so the demo default is exercised.

    LIUCUN_HOME is a stand-in for the repository (a folder linking to its code): a scheduled run
    that falls due while the test runs (05:00 Shanghai is 21:00 UTC) then uses a throwaway
    ./warehouse instead of the developer's.
    """
    tmp = tmp_path_factory.mktemp("serve")
    liucun_home = tmp / "liucun_home"
    liucun_home.mkdir()
    for name in ("flows", "expectations", "dbt_project"):
        (liucun_home / name).symlink_to(REPO / name, target_is_directory=True)
    port = _free_port()
    home = tmp / "prefect"
    env = {k: v for k, v in os.environ.items() if k not in ("LIUCUN_PII_SALT", "PREFECT_API_URL")}
    env.update(PREFECT_HOME=str(home), PREFECT_LOGGING_LEVEL="INFO", PREFECT_WORKER_QUERY_SECONDS="2",
               LIUCUN_HOME=str(liucun_home))
    log = tmp / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(BIN / "liucun"), "serve", "--port", str(port), "--prefect-home", str(home)],
                                cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 150
        while READY_MARKER not in log.read_text(errors="replace"):
            pids = sorted(set(pids) | set(descendants(proc.pid)))
            assert proc.poll() is None, f"liucun serve exited with {proc.returncode}:\n{_tail(log)}"
            assert time.monotonic() < deadline, f"liucun serve was not ready after 150 s:\n{_tail(log)}"
            time.sleep(0.5)
        pids = sorted(set(pids) | set(descendants(proc.pid)))
        yield Served(proc, port, f"http://127.0.0.1:{port}/api", home, log, env, tmp, liucun_home)
    finally:
        pids = sorted(set(pids) | (set(descendants(proc.pid)) if proc.poll() is None else set()))
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=90)
        _kill_everything(proc, pids)


def test_both_deployments_are_registered_with_schedule_timezone_and_parameters(served: Served):
    project = yaml.safe_load((REPO / "flows" / "prefect.yaml").read_text())
    assert {d["name"] for d in project["deployments"]} == {"daily-incremental", "weekly-full-refresh"}
    expected = {
        "daily-incremental": ("0 5 * * *", False),
        "weekly-full-refresh": ("0 3 * * 0", True),
    }
    with _client(served.api_url) as client:
        pool = client.read_work_pool("liucun-local")
        assert pool.type == "process"
        for name, (cron, full_refresh) in expected.items():
            dep = client.read_deployment_by_name(f"retention_pipeline/{name}")
            assert dep.entrypoint == "flows/retention_pipeline.py:retention_pipeline"
            assert dep.work_pool_name == "liucun-local"
            assert len(dep.schedules) == 1 and dep.schedules[0].active
            schedule = dep.schedules[0].schedule
            assert (schedule.cron, schedule.timezone) == (cron, "Asia/Shanghai")
            assert dep.parameters == {"config_path": "flows/demo/liucun.yml", "warehouse_dir": "warehouse",
                                      "allow_generated_salt": True, "full_refresh": full_refresh}
            # LIUCUN_HOME was written into the pull step and the job's environment at deploy time
            assert dep.pull_steps == [{"prefect.deployments.steps.set_working_directory": {
                "directory": str(served.liucun_home)}}]
            assert dep.job_variables == {
                "env": {"LIUCUN_DATA_DIR": f"{served.liucun_home}/warehouse/demo_sources"}}


def test_the_scheduler_plans_runs_on_the_business_clock(served: Served):
    """The server's scheduler turns the cron + timezone into flow runs: 05:00 Shanghai daily (21:00
    UTC the day before), Sundays 03:00 Shanghai for the full refresh."""
    deadline = time.monotonic() + 60
    while True:
        with _client(served.api_url) as client:
            deps = {n: client.read_deployment_by_name(f"retention_pipeline/{n}").id
                    for n in ("daily-incremental", "weekly-full-refresh")}
            runs = [r for r in client.read_flow_runs(limit=200) if r.state_type.value == "SCHEDULED"]
        planned = {n: sorted(r.expected_start_time for r in runs if r.deployment_id == i) for n, i in deps.items()}
        if all(len(v) >= 3 for v in planned.values()):
            break
        scheduler_errors = re.findall(r"ERROR .*schedule\w*deployments.*", _tail(served.home / "server.log", 20000))
        assert not scheduler_errors, (
            "the Prefect scheduler service failed, so no scheduled run is ever created (Prefect "
            "3.8.8 fails so with SQLAlchemy 2.1: pin sqlalchemy<2.1):\n"
            + _tail(served.home / "server.log", 1500))
        assert time.monotonic() < deadline, f"no scheduled runs after 60 s: {planned}"
        time.sleep(2)

    daily = [t.astimezone(SHANGHAI) for t in planned["daily-incremental"]]
    assert all((t.hour, t.minute) == (5, 0) for t in daily)
    assert all(b - a == timedelta(days=1) for a, b in zip(daily, daily[1:], strict=False))
    assert {t.astimezone(ZoneInfo("UTC")).hour for t in planned["daily-incremental"]} == {21}
    weekly = [t.astimezone(SHANGHAI) for t in planned["weekly-full-refresh"]]
    assert all((t.weekday(), t.hour, t.minute) == (6, 3, 0) for t in weekly)  # Sunday 03:00


def test_a_parameterised_run_goes_through_the_worker_to_a_publication(served: Served):
    """The README's trigger command: the worker (started outside the repository) runs the
    daily deployment with the default config (relative: found only through the pull step) on a
    generated sample, into a warehouse given as a parameter, with the demo's generated salt."""
    sources, warehouse = served.tmp / "sources", served.tmp / "warehouse"
    generate(sources, customers=1500, months=12, seed=7, end_date=AS_OF)
    started = time.monotonic()
    run = subprocess.run(
        [str(BIN / "prefect"), "deployment", "run", "retention_pipeline/daily-incremental",
         "--param", f"warehouse_dir={warehouse}", "--param", f"as_of={AS_OF.isoformat()}",
         "--job-variable", f'env={{"LIUCUN_DATA_DIR": "{sources}"}}', "--watch", "--watch-timeout", "240"],
        env={**served.env, "PREFECT_API_URL": served.api_url}, cwd=served.tmp,
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}\n--- serve log ---\n{_tail(served.log)}"
    match = re.search(r"UUID: ([0-9a-f-]{36})", run.stdout)
    assert match, run.stdout[-2000:]
    print(f"flow run through the worker took {time.monotonic() - started:.0f}s")

    with _client(served.api_url) as client:
        flow_run = client.read_flow_run(UUID(match.group(1)))
        daily = client.read_deployment_by_name("retention_pipeline/daily-incremental")
    assert flow_run.state_type.value == "COMPLETED"
    assert flow_run.deployment_id == daily.id and flow_run.work_pool_name == "liucun-local"
    assert flow_run.parameters == {"config_path": "flows/demo/liucun.yml", "warehouse_dir": str(warehouse),
                                   "allow_generated_salt": True, "full_refresh": False,
                                   "as_of": AS_OF.isoformat()}

    with duckdb.connect(str(warehouse / "liucun.duckdb"), read_only=True) as con:
        pubs = con.execute("select run_id, as_of_date from audit.publications").fetchall()
        customers = con.execute("select count(*) from marts.dim_customers").fetchone()[0]
    assert len(pubs) == 1 and pubs[0][0] == str(flow_run.id)
    assert str(pubs[0][1])[:10] == AS_OF.isoformat()
    assert customers > 1000
    salt = warehouse / ".secrets" / "pii_salt"  # no LIUCUN_PII_SALT, no Secret block: demo default
    assert salt.exists() and salt.stat().st_mode & 0o777 == 0o600
    assert (warehouse / "reports" / str(flow_run.id)).is_dir()  # the parameter, not ./warehouse
    assert not (served.liucun_home / "warehouse" / "reports" / str(flow_run.id)).exists()


def test_ctrl_c_stops_worker_and_server(served: Served):
    children = descendants(served.proc.pid)
    assert len(children) >= 2, "expected the Prefect server and the worker under liucun serve"
    os.kill(served.proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal delivers
    assert served.proc.wait(timeout=90) == 0, _tail(served.log)
    log = served.log.read_text(errors="replace")
    assert "shutting down" in log and "did not stop" not in log, _tail(served.log)
    time.sleep(0.5)
    alive = [pid for pid in children if _running(pid)]
    assert not alive, f"processes left running after Ctrl-C: {alive}"
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", served.port)) != 0, "the Prefect server still listens"
