"""The report is declared in dbt: its exposure depends on exactly the marts the report's SQL reads,
so `dbt ls --select +exposure:retention_report` and the docs lineage show what the page is drawn from."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from flows.models.dbt_runner import dbt_executable

REPO = Path(__file__).resolve().parents[2]


def test_the_report_exposure_lists_every_mart_the_report_reads(tmp_path: Path):
    sql = (REPO / "flows" / "report" / "queries.py").read_text(encoding="utf-8")
    read = set(re.findall(r"\bmarts\.((?:rpt|fct|dim)_\w+)", sql))
    assert len(read) >= 10  # retention, lifecycle, churn, cancellation, win-back, risk, identity
    project = REPO / "dbt_project"
    env = {**os.environ, "LIUCUN_DBT_TARGET": "duckdb", "LIUCUN_DUCKDB_PATH": str(tmp_path / "ls.duckdb"),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}

    def ls(*args: str) -> str:
        proc = subprocess.run(
            [dbt_executable(), "ls", *args, "--project-dir", str(project), "--profiles-dir", str(project),
             "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"), "--quiet"],
            cwd=project, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout

    (exposure,) = [json.loads(line) for line in ls("--select", "exposure:retention_report",
                                                  "--output", "json").splitlines() if line.strip()]
    declared = {node.split(".")[-1] for node in exposure["depends_on"]["nodes"]}
    assert declared == read, f"exposure lacks {sorted(read - declared)}; declares unread {sorted(declared - read)}"
    upstream = set(ls("--select", "+exposure:retention_report", "--resource-type", "model", "--output", "name").split())
    assert read < upstream and any(m.startswith("stg_") for m in upstream)  # the lineage runs down to staging
