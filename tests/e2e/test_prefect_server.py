"""Without PREFECT_API_URL, the first `liucun run` starts a local Prefect server in the background and
later runs reuse it (no server start per run); the runs' tasks, logs and artifacts stay in it for the
UI; `liucun server status|stop` show and stop it. Real processes, a real server, real runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from flows.runtime.prefect_api import STATE_FILE, alive, healthy
from tests.support.processes import session_processes

LIUCUN = str(Path(sys.executable).with_name("liucun"))


def _flow_run(url: str, run_id: str) -> tuple[str, int, int, int]:
    """(state, task runs, log lines, artifacts) of a flow run, read from the server's API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
    return run.state.type.value, len(tasks), len(logs), len(arts)


def test_the_first_run_starts_a_server_later_runs_reuse_it_and_stop_ends_it(tmp_path: Path):
    home = tmp_path / "prefect_home"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(home), PREFECT_LOGGING_LEVEL="INFO")  # tests default to WARNING
    demo = [LIUCUN, "demo", "--warehouse", str(tmp_path / "wh"), "--sources", str(tmp_path / "src"),
            "--customers", "300", "--months", "6"]
    pid = None
    try:
        first = subprocess.run(demo, env=env, capture_output=True, text=True, timeout=600)
        assert first.returncode == 0, first.stderr[-3000:]
        assert "Started a local Prefect server at http://127.0.0.1:" in first.stdout, first.stdout[-2000:]
        # every thread of the run reports to that server: none starts a temporary one of its own
        # (a thread without the run's context did, logging dbt's parse: flows/models/dbt_runner.py)
        assert "Starting temporary server" not in first.stdout + first.stderr, first.stderr[-2000:]
        state = json.loads((home / STATE_FILE).read_text())
        pid, url = state["pid"], state["url"]
        assert healthy(url), "the server outlives the run that started it"
        run_id = first.stdout.split("liucun run ", 1)[1].split()[0]
        assert f"prefect:   {url.removesuffix('/api')}/runs/flow-run/{run_id}" in first.stdout
        status, tasks, logs, artifacts = _flow_run(url, run_id)
        assert status == "COMPLETED" and tasks >= 15 and logs >= 20 and artifacts >= 4, (status, tasks, logs, artifacts)

        second = subprocess.run(demo, env=env, capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stderr[-3000:]
        assert "Started a local Prefect server" not in second.stdout
        assert json.loads((home / STATE_FILE).read_text())["pid"] == pid  # the same server, reused
        second_id = second.stdout.split("liucun run ", 1)[1].split()[0]
        assert _flow_run(url, second_id)[0] == "COMPLETED"
        assert _flow_run(url, run_id)[0] == "COMPLETED"  # the first run is still there

        status_out = subprocess.run([LIUCUN, "server", "status"], env=env, capture_output=True, text=True, timeout=60)
        assert f"Prefect server at {url.removesuffix('/api')} (pid {pid}" in status_out.stdout and "answering" in status_out.stdout
        stopped = subprocess.run([LIUCUN, "server", "stop"], env=env, capture_output=True, text=True, timeout=60)
        assert stopped.returncode == 0 and f"stopped the Prefect server at {url.removesuffix('/api')}" in stopped.stdout
        deadline = time.time() + 20
        while session_processes(pid) and time.time() < deadline:
            time.sleep(0.2)
        assert session_processes(pid) == {}, "a process of the server outlived `liucun server stop`"
        assert not healthy(url) and not (home / STATE_FILE).exists()
        after = subprocess.run([LIUCUN, "server", "status"], env=env, capture_output=True, text=True, timeout=60)
        assert "no liucun Prefect server is running" in after.stdout
    finally:
        if pid and alive(pid):
            os.killpg(pid, 9)
