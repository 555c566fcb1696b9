"""Run dbt against a candidate warehouse in a child process and report what failed, by node."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flows import stopping


class DbtFailed(RuntimeError):
    pass


@dataclass
class DbtRunSummary:
    command: list[str]
    results: list[dict[str, Any]]
    elapsed: float

    def count(self, resource: str) -> int:
        return sum(1 for r in self.results if r["unique_id"].split(".")[0] == resource)


def dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def run_dbt(
    args: list[str],
    project_dir: Path,
    work_dir: Path,
    env: dict[str, str],
    dbt_vars: dict[str, Any],
    log: logging.Logger | logging.LoggerAdapter | None = None,
    on_line: Callable[[str], None] | None = None,
) -> DbtRunSummary:
    """``dbt <args>`` with artifacts under ``work_dir``; raise :class:`DbtFailed` naming failures."""
    log = log or logging.getLogger(__name__)
    target = work_dir / "dbt_target"
    cmd = [
        dbt_executable(), *args,
        "--project-dir", str(project_dir), "--profiles-dir", str(project_dir),
        "--target-path", str(target), "--log-path", str(work_dir / "dbt_logs"),
        "--vars", yaml.safe_dump(dbt_vars, default_flow_style=True).strip(),
        "--no-use-colors",
    ]
    child_env = {**os.environ, **env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    log.info("dbt %s", " ".join(args))
    # same process group as liucun: a SIGKILL of the whole run (or Ctrl-C in a terminal) reaches dbt
    # too; a stop by signal (flows/stopping.py) terminates it explicitly
    proc = subprocess.Popen(cmd, cwd=project_dir, env=child_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    tail: list[str] = []
    no_space = ""  # a full disk makes dbt crash in its logging: its tail then hides the cause
    assert proc.stdout is not None
    with stopping.child(proc):
        for line in proc.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-40:]
            if not no_space and "No space left on device" in line:
                no_space = line.strip()
            if on_line:
                on_line(line)
            elif any(k in line for k in ("ERROR", "FAIL", "WARN", "Finished running", "Done.")):
                log.info("dbt | %s", line)
        code = proc.wait()
    stopping.check()  # dbt ended because the run is stopping: say so, not "dbt failed"
    results, elapsed = [], 0.0
    run_results = target / "run_results.json"
    if run_results.exists():
        data = json.loads(run_results.read_text())
        results = data.get("results", [])
        elapsed = float(data.get("elapsed_time", 0.0))
    if code != 0:
        failed = [r for r in results if r.get("status") in ("error", "fail", "runtime error")]
        detail = "\n".join(
            f"  - {r['unique_id']}: {r.get('status')}: {(r.get('message') or '').strip()[:400]}"
            + (f" ({r['failures']} failing rows)" if r.get("failures") else "")
            for r in failed
        ) or "\n".join("  " + t for t in tail[-15:])
        if no_space and no_space not in detail:
            detail = f"  {no_space}\n{detail}"
        raise DbtFailed(f"dbt {' '.join(args)} failed (exit {code}):\n{detail}")
    return DbtRunSummary(cmd, results, elapsed)
