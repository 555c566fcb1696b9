"""The whole Prefect flow, end to end, on real files: publish, refuse bad input, keep readers consistent."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from expectations.results import GateFailed
from flows.ingest.load import SourceError
from tests.support.pipeline import DEMO_CONFIG
from tests.support.processes import as_seen, run_in_terminal
from tests.support.report_checks import check_report, page_figures

REPO = Path(__file__).resolve().parents[2]

AS_OF = date(2025, 12, 31)
REPO = Path(__file__).resolve().parents[2]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_flow(sources: Path, warehouse: Path, full_refresh: bool = False) -> dict:
    from flows.retention_pipeline import retention_pipeline

    os.environ["LIUCUN_DATA_DIR"] = str(sources)
    return retention_pipeline(config_path=str(DEMO_CONFIG), warehouse_dir=str(warehouse), as_of=AS_OF,
                              full_refresh=full_refresh)


@pytest.fixture(scope="module")
def published(prefect_backend, clean_sources: Path, tmp_path_factory: pytest.TempPathFactory):
    warehouse = tmp_path_factory.mktemp("warehouse")
    summary = run_flow(clean_sources, warehouse)
    return warehouse, summary


def test_flow_publishes_marts_duckdb_and_parquet(published):
    warehouse, summary = published
    db = warehouse / "liucun.duckdb"
    assert summary["published"] == str(db)
    assert all(g["passed"] and g["evaluated"] > 0 for g in summary["gates"].values())
    assert summary["rows_read"] == summary["rows_loaded"] + summary["rows_quarantined"]
    with duckdb.connect(str(db), read_only=True) as con:
        schemas = {r[0] for r in con.execute("select distinct schema_name from duckdb_tables()").fetchall()}
        assert schemas == {"marts", "audit"}  # raw, staging and intermediate are not published
        for mart, n in summary["mart_rows"].items():
            assert n > 0
            assert con.execute(f"select count(*) from marts.{mart}").fetchone()[0] == n
            pq = warehouse / "parquet" / "current" / f"{mart}.parquet"
            assert con.execute(f"select count(*) from read_parquet('{pq}')").fetchone()[0] == n
        (pubs,) = con.execute("select count(*) from audit.publications").fetchone()
        assert pubs == 1
        loads = con.execute("select sum(rows_read), sum(rows_loaded + rows_quarantined) from audit.source_loads").fetchone()
        assert loads[0] == loads[1] == summary["rows_read"]
    assert (warehouse / "parquet" / "CURRENT").read_text().strip() == summary["version"]
    assert not any((warehouse / ".runs").iterdir()), "the published candidate is cleaned up"
    assert not list(warehouse.glob("*.wal")) and not list(warehouse.glob(".liucun.duckdb.*"))
    assert summary["headline"]["crr"] > 0


def test_the_publication_carries_its_report_and_it_draws_offline(published):
    """The run drew its report from the marts it published, into the publication's version folder
    (so parquet/current/report.html is always the page of the current marts), and the page draws
    every chart in a headless Chromium with no network, showing the marts' figures."""
    warehouse, summary = published
    page = warehouse / "parquet" / summary["version"] / "report.html"
    assert summary["report"] == str(page)
    assert (warehouse / "parquet" / "current" / "report.html").resolve() == page.resolve()
    assert summary["step_seconds"]["report"] > 0
    charts = check_report(page, warehouse / "liucun.duckdb", "report-demo")
    # the demo sample has every touchpoint: no section is empty
    assert {"cancel_funnel", "recall_roi", "drivers", "p_alive", "transitions"} <= set(charts)
    assert set(re.findall(r'data-empty="(\w+)"', page.read_text(encoding="utf-8"))) <= {"quarantine"}
    # the run's Prefect record carries it too: the headline and where the page is
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        arts = {a.key: a for a in client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(summary["run_id"])])))}
    markdown = str(arts["retention-report"].data)
    h = summary["headline"]
    assert str(page) in markdown and f"| {h['crr']:.1%} |" in markdown and summary["version"] in markdown


def test_report_command_draws_the_same_page_again(published, tmp_path: Path):
    """`liucun report` draws the current publication again: the same charts and data as the run's."""
    warehouse, summary = published
    out = tmp_path / "again.html"
    proc = subprocess.run([str(Path(sys.executable).with_name("liucun")), "report", "--warehouse", str(warehouse),
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert summary["version"] in proc.stdout and str(out) in proc.stdout
    def specs(path: Path) -> str:
        return re.search(r"const specs = (.*);\n", path.read_text(encoding="utf-8")).group(1)
    assert specs(out) == specs(Path(summary["report"]))
    assert page_figures(out.read_text(encoding="utf-8")) == page_figures(Path(summary["report"]).read_text(encoding="utf-8"))
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run([str(Path(sys.executable).with_name("liucun")), "report", "--warehouse", str(empty)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "has no publication yet" in proc.stderr and "Traceback" not in proc.stderr


def _dbt_column_descriptions() -> dict[tuple[str, str], str]:
    """(model, column) -> description, read from the marts' yml files (independently of dbt)."""
    import yaml

    docs: dict[tuple[str, str], str] = {}
    for yml in (REPO / "dbt_project" / "models" / "marts").rglob("*.yml"):
        for model in (yaml.safe_load(yml.read_text()) or {}).get("models", []):
            for col in model.get("columns", []):
                docs[(model["name"], col["name"])] = " ".join(str(col.get("description", "")).split())
    return docs


def test_every_published_mart_column_carries_its_dbt_description(published):
    """BI tools browsing liucun.duckdb see each column's documentation as its comment."""
    warehouse, summary = published
    docs = _dbt_column_descriptions()
    with duckdb.connect(str(warehouse / "liucun.duckdb"), read_only=True) as con:
        cols = con.execute("select table_name, column_name, comment from duckdb_columns() "
                           "where schema_name = 'marts'").fetchall()
    assert len(cols) > 200 and {t for t, _, _ in cols} == set(summary["mart_rows"])
    differ = [(t, c) for t, c, comment in cols if " ".join((comment or "").split()) != docs.get((t, c), "")]
    assert not differ, f"comments differ from the dbt descriptions for {differ[:5]}"
    missing = [(t, c) for t, c, comment in cols if not comment]
    assert not missing, f"{len(missing)} published mart columns have no description, e.g. {missing[:5]}"


def test_faulty_input_fails_and_leaves_the_publication_untouched(published, faulty_sources: Path):
    warehouse, summary = published
    page = warehouse / "parquet" / "current" / "report.html"
    before = (sha256(warehouse / "liucun.duckdb"), (warehouse / "parquet" / "CURRENT").read_text(), sha256(page))
    with pytest.raises((SourceError, GateFailed)) as err:
        run_flow(faulty_sources, warehouse)
    msg = str(err.value)
    # --faults drops the `status` column from billing/invoices.csv: the error names file and column
    assert "invoices.csv" in msg and "'status'" in msg
    # the last good report stays, and no other page was drawn
    after = (sha256(warehouse / "liucun.duckdb"), (warehouse / "parquet" / "CURRENT").read_text(), sha256(page))
    assert sorted(p.name for p in (warehouse / "parquet").rglob("report.html")) == ["report.html"]
    assert after == before
    with duckdb.connect(str(warehouse / "liucun.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from audit.publications").fetchone()[0] == 1


def test_a_rerun_with_nothing_new_rebuilds_nothing_and_says_so(published, clean_sources: Path):
    """The same files on the same as-of date with the same models: the current publication is what
    a rebuild would publish, so the run stops after reading its sources (and changes no file)."""
    warehouse, first = published
    files = {p: sha256(p) for p in (warehouse / "liucun.duckdb", warehouse / "state.duckdb")}
    summary = run_flow(clean_sources, warehouse)
    assert summary["skipped"].startswith("nothing new") and first["version"] in summary["skipped"]
    assert summary["version"] == first["version"] and summary["published"] == first["published"]
    # the same files again: recognised by content hash, nothing is loaded
    assert summary["rows_read"] == 0 and summary["files_skipped"] >= 11
    assert "dbt staging + model inputs" not in summary["step_seconds"]  # no model was built
    assert {p: sha256(p) for p in files} == files
    assert not any((warehouse / ".runs").iterdir())


def test_nothing_new_but_another_input_changed_rebuilds(published, tmp_path: Path):
    """No new rows is not enough to skip: a different as-of date, config or model must rebuild."""
    import shutil

    from flows.config import load_config
    from flows.engines import engine_for
    from flows.publish import fingerprint
    from flows.retention_pipeline import _current_publication_if_unchanged
    from flows.settings import Settings

    warehouse, first = published
    config = load_config(DEMO_CONFIG)
    dbt_vars = {"business_timezone": config.business_timezone, "min_qualifying_amount": config.min_qualifying_amount}
    project = Settings().dbt_project_dir
    wh, log = engine_for(warehouse), __import__("logging").getLogger("test")
    same = fingerprint.inputs(config, AS_OF, dbt_vars, project)
    assert _current_publication_if_unchanged(wh, same, log).version == first["version"]
    next_day = fingerprint.inputs(config, date(2026, 1, 1), dbt_vars, project)
    assert fingerprint.changed(same, next_day) == ["as_of"]
    assert _current_publication_if_unchanged(wh, next_day, log) is None
    other_amount = fingerprint.inputs(config, AS_OF, {**dbt_vars, "min_qualifying_amount": 5}, project)
    assert _current_publication_if_unchanged(wh, other_amount, log) is None
    edited = tmp_path / "dbt_project"  # one model edited (a copy of the project)
    shutil.copytree(project, edited, ignore=shutil.ignore_patterns("target", "logs"))
    model = edited / "models" / "marts" / "retention" / "rpt_retention_rate.sql"
    model.write_text(model.read_text() + "\n-- edited\n")
    changed = fingerprint.inputs(config, AS_OF, dbt_vars, edited)
    assert fingerprint.changed(same, changed) == ["dbt_project"]
    assert _current_publication_if_unchanged(wh, changed, log) is None


def test_a_reader_of_the_old_file_keeps_a_consistent_old_version(published, clean_sources: Path):
    warehouse, first = published
    old = duckdb.connect(str(warehouse / "liucun.duckdb"), read_only=True)
    old_pubs = old.execute("select count(*) from audit.publications").fetchone()[0]
    mart_query = "select * from marts.rpt_retention_rate order by all"
    old_rows = old.execute(mart_query).fetchall()
    marts = [t for (t,) in old.execute("select table_name from duckdb_tables() where schema_name = 'marts'").fetchall()]
    old_marts = {t: old.execute(f"select * from marts.{t} order by all").fetchall() for t in marts}
    summary = run_flow(clean_sources, warehouse, full_refresh=True)  # publishes again while `old` is open
    assert summary["rows_read"] == first["rows_read"] > 0  # a full refresh reloads every file
    assert old.execute("select count(*) from audit.publications").fetchone()[0] == old_pubs
    assert old.execute(mart_query).fetchall() == old_rows
    old.close()
    with duckdb.connect(summary["published"], read_only=True) as new:
        assert new.execute("select count(*) from audit.publications").fetchone()[0] == old_pubs + 1
        # same input, same marts: every mart, row for row
        assert new.execute(mart_query).fetchall() == old_rows
        assert len(marts) >= 17
        for t in marts:
            assert new.execute(f"select * from marts.{t} order by all").fetchall() == old_marts[t], t


def test_demo_command_end_to_end(tmp_path: Path):
    """The README's `liucun demo`, as a user runs it at a terminal (its own process and Prefect
    server): one line per step with what it did, no pages of library logs, the full logs in the
    file the summary names."""
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("LIUCUN_PII_SALT", None)  # the demo makes its own salt beside the warehouse
    liucun = Path(sys.executable).with_name("liucun")
    code, shown = run_in_terminal(
        [str(liucun), "demo", "--warehouse", str(tmp_path / "wh"), "--customers", "1500", "--months", "12"],
        env, tmp_path, timeout=600)
    lines = as_seen(shown)
    assert code == 0, "\n".join(lines[-60:])
    steps = [line for line in lines if line.startswith("✓ ")]
    assert [s.split("  ")[0][2:].strip() for s in steps] == [
        "ingest: read sources", "start: copy the last state", "ingest: load raw layer", "gate raw",
        "dbt staging + model inputs", "gate staging", "fit: BG/NBD, spend, renewals", "dbt intermediate + marts",
        "gate marts", "report", "publish"], "\n".join(lines)
    assert any(re.search(r"gate raw\s+[\d.]+s  passed: \d+ checks", s) for s in steps)
    assert any(re.search(r"dbt staging \+ model inputs\s+[\d.]+s  \d+ models, \d+ tests", s) for s in steps)
    assert any(re.match(r"orders\s+[\d,]+ loaded\s+0 quarantined", line.strip()) for line in lines)
    assert "\x1b[" in shown  # a terminal: colours and redrawn progress rows
    # no library log lines on the terminal; they are in the log file the summary names
    assert not [line for line in lines if "| INFO" in line or "Task run '" in line], "\n".join(lines)
    assert "customer retention rate CRR = (E - N) / S" in shown
    log = re.search(r"^  log:\s+(\S+)$", "\n".join(lines), re.M).group(1)
    assert "gate raw: PASSED" in Path(log).read_text(encoding="utf-8")
    salt = tmp_path / "wh" / ".secrets" / "pii_salt"
    assert salt.exists() and oct(salt.stat().st_mode & 0o777) == "0o600"
    # a second run started with faults on the same warehouse fails and says why: the faulty
    # invoices export lacks a required column, which the checks before the run find
    published = sha256(tmp_path / "wh" / "liucun.duckdb")
    proc2 = subprocess.run(
        [str(liucun), "demo", "--warehouse", str(tmp_path / "wh"), "--customers", "1500", "--months", "12",
         "--faults"], capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert proc2.returncode == 2, proc2.stderr[-3000:]
    assert "nothing was run" in proc2.stderr and "Traceback" not in proc2.stderr
    assert "invoices.csv has no column(s) 'status'" in proc2.stderr, proc2.stderr
    assert sha256(tmp_path / "wh" / "liucun.duckdb") == published
