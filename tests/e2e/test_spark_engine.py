"""The whole pipeline on Spark (engine: spark, the test run's local[2] SparkSession, a throwaway
location) against the same pipeline on DuckDB: one generated sample, then a daily run that brings
a new day, a new version of a file (its earlier rows replaced) and customers whose key was loaded
before (upserted) — the daily run through a real Spark Thrift Server (spark.method: thrift). After
each run every published mart is compared row for row, and the audit tables (loads, quarantine) too.

Tolerance: doubles to a relative 1e-9 (sums of doubles are added in another order by the two
engines); everything else exactly. Columns that say when or how long (fitted_at, fit_seconds) and
the ids of runs and loads differ by nature and are left out, by name."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.generate import generate
from tests.integration.test_spark_portability import _differences
from tests.support.browser import visit
from tests.support.pipeline import DEMO_CONFIG, add_one_day
from tests.support.report_checks import READY, page_figures

# the first test's setup makes every run of the module (about 11 minutes alone; 30 beside the other
# test worker in the CI of 0c6ce4a, which builds day, week and month in every run: that CI's setup
# reached the old limit of 1800 s in the marts gate of its last run), so this module's tests get
# three times the suite's 900-second limit
pytestmark = [pytest.mark.spark, pytest.mark.timeout(2700)]

END = date(2025, 12, 31)
AS_OF = date(2026, 1, 1)
RUN_DEPENDENT = {"fitted_at", "fit_seconds", "run_id", "load_id", "_load_id", "started_at", "finished_at",
                 "loaded_at", "published_at", "version", "file", "location", "files", "file_sha256"}


def _run(sources: Path, warehouse: Path, engine: str | None, as_of: date = AS_OF,
         config: Path = DEMO_CONFIG) -> dict[str, Any]:
    from flows.retention_pipeline import retention_pipeline

    os.environ["LIUCUN_DATA_DIR"] = str(sources)
    return retention_pipeline(config_path=str(config), warehouse_dir=str(warehouse), as_of=as_of,
                              engine=engine)


def _daily(sources: Path, out: Path) -> Path:
    """The next day's exports: one more day of orders and events, a new version of invoices.csv
    (its last 20 rows gone: those rows are replaced by none), and a CRM update file that brings 15
    known customers again with another region (upserted by crm_id)."""
    add_one_day(sources, out, END)
    invoices = out / "billing" / "invoices.csv"
    lines = invoices.read_text(encoding="utf-8").splitlines(keepends=True)
    invoices.unlink()  # a hard link to the first run's file: write a new one
    invoices.write_text("".join(lines[:-20]), encoding="utf-8")
    crm = (sources / "crm" / "customers.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    header, rows = crm[0], crm[1:16]
    region = header.rstrip("\n").split(",").index("region")
    updated = []
    for row in rows:
        cells = row.rstrip("\n").split(",")
        cells[region] = "Xinjiang"
        updated.append(",".join(cells) + "\n")
    (out / "crm" / "customers_update.csv").write_text(header + "".join(updated), encoding="utf-8")
    return out


THRIFT_PASSWORD = "thrift-pw-7Qx9-not-in-any-message"  # noqa: S105 - planted, to be looked for


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """DuckDB: the first run, the daily run, the daily run again (nothing new). Spark: the first run
    on the test run's session (method session); the daily run started as `liucun run --engine spark`
    in its own process and SIGKILLed while it publishes (DuckDB's runs go on meanwhile, in this
    process); then the daily run and its rerun through
    a real Spark Thrift Server (method thrift, its own JVM) on the same location: the state and the
    publications are files, so either method continues the other's warehouse. The Thrift login is
    LDAP-style with the password from a Prefect Secret block (HiveServer2 with authentication NONE
    takes any password, so the password's whole path is exercised)."""

    from tests.support.spark import launch_thrift_server

    root = tmp_path_factory.mktemp("spark_engine")
    # the Thrift Server's JVM starts while the runs before it work (its start is a minute of waiting)
    server = launch_thrift_server(root / "thrift_server")
    try:
        return _all_runs(root, server)
    finally:
        server.stop()


def _all_runs(root: Path, server: Any) -> dict[str, Any]:
    from prefect.blocks.system import Secret

    first = root / "sources"
    generate(first, customers=300, months=12, seed=11, end_date=END)
    second = _daily(first, root / "sources_day2")
    out: dict[str, Any] = {"root": root}
    wh = root / "warehouse_spark"
    out["spark"] = {"warehouse": wh, "first": _run(first, wh, "spark")}
    out["spark"]["first_marts"] = _published(wh, "spark")
    # the killed run works in its own process (and JVM) while this one makes DuckDB's three runs
    with ThreadPoolExecutor(1) as pool:
        killing = pool.submit(_kill_while_publishing, second, wh)
        duck = root / "warehouse_duckdb"
        out["duckdb"] = {"warehouse": duck, "first": _run(first, duck, "duckdb")}
        out["duckdb"]["first_marts"] = _published(duck, "duckdb")
        out["duckdb"]["second"] = _run(second, duck, "duckdb")
        out["duckdb"]["second_marts"] = _published(duck, "duckdb")
        out["duckdb"]["third"] = _run(second, duck, "duckdb")  # nothing new
        out["killed"] = killing.result()
    server.wait_ready()
    Secret(value=THRIFT_PASSWORD).save("liucun-test-spark-password", overwrite=True)
    config = root / "liucun_thrift.yml"
    config.write_text(DEMO_CONFIG.read_text(encoding="utf-8") + f"""
engine: spark
spark:
  method: thrift
  host: {server.host}
  port: {server.port}
  user: liucun_ci
  auth: LDAP
  password_secret: liucun-test-spark-password
  location: file://{wh / "spark"}
""", encoding="utf-8")  # the session's location, as a URI: Spark and pyarrow read it, and the state's paths match
    out["spark"]["second"] = _run(second, wh, None, config=config)  # recovers what the killed run left
    out["spark"]["second_marts"] = _published(wh, "spark")
    out["spark"]["third"] = _run(second, wh, None, config=config)  # nothing new
    out["thrift_log"] = server.log.read_text(errors="replace")
    return out


def _snapshot(location: Path) -> dict[str, Any]:
    """What a reader and the next run see: the pointer, the current version's files, the state."""
    published = location / "published"
    version = (published / "CURRENT").read_text()
    return {"CURRENT": version, "state.json": (location / "state.json").read_bytes(),
            "files": sorted((str(p.relative_to(published)), p.stat().st_size)
                            for p in (published / version.strip()).rglob("*") if p.is_file())}


def _kill_while_publishing(sources: Path, warehouse: Path) -> dict[str, Any]:
    """`liucun run --engine spark` in its own process (its own SparkSession), SIGKILLed (the whole
    process group: the JVM too) when its next publication's hidden folder appears; what it left."""
    location = warehouse / "spark"
    before = _snapshot(location)
    env = {**os.environ, "LIUCUN_DATA_DIR": str(sources)}
    cmd = [str(Path(sys.executable).with_name("liucun")), "run", "--config", str(DEMO_CONFIG),
           "--warehouse", str(warehouse), "--as-of", AS_OF.isoformat(), "--engine", "spark"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    fired, deadline = False, time.time() + 900
    try:
        while proc.poll() is None and time.time() < deadline:
            staged = [p for p in (location / "published").iterdir() if p.name.startswith(".") and p.is_dir()]
            if staged and any(staged[0].rglob("*.parquet")):  # marts being written
                os.killpg(proc.pid, signal.SIGKILL)
                fired = True
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None and not fired:
            os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    assert fired, f"the run ended before it wrote a publication (exit {proc.returncode}): {err[-2000:]}"
    left = {"candidates": any((location / "candidates").iterdir()),
            "staged": [p.name for p in (location / "published").iterdir() if p.name.startswith(".")]}
    return {"before": before, "after": _snapshot(location), "left": left, "returncode": proc.returncode}


def _published(warehouse: Path, engine: str, location: Path | None = None) -> dict[str, list[tuple]]:
    """Every published mart and the audit tables, rows without the run-dependent columns."""
    tables: dict[str, list[tuple]] = {}
    if engine == "duckdb":
        with duckdb.connect(str(warehouse / "liucun.duckdb"), read_only=True) as con:
            for schema, table in con.execute("select schema_name, table_name from duckdb_tables() where schema_name "
                                             "in ('marts', 'audit') and table_name <> 'publications'").fetchall():
                cols = [c for (c,) in con.execute("select column_name from duckdb_columns() where schema_name = ? "
                                                  "and table_name = ? order by column_index", [schema, table]).fetchall()
                        if c not in RUN_DEPENDENT]
                tables[f"{schema}.{table}"] = con.execute(
                    f'select {", ".join(chr(34) + c + chr(34) for c in cols)} from {schema}."{table}"').fetchall()
        return tables
    location = (location or warehouse / "spark") / "published"
    version = (location / "CURRENT").read_text().strip()
    for schema in ("marts", "audit"):
        for folder in sorted((location / version / schema).iterdir()):
            if folder.name == "publications":
                continue
            files = f"{folder}/*.parquet"
            cols = [c for c, *_ in duckdb.sql(f"describe select * from read_parquet('{files}')").fetchall()
                    if c not in RUN_DEPENDENT]
            tables[f"{schema}.{folder.name}"] = duckdb.sql(
                f'select {", ".join(chr(34) + c + chr(34) for c in cols)} from read_parquet(\'{files}\')').fetchall()
    return tables


@pytest.mark.parametrize("run", ["first", "second"])
def test_every_published_mart_and_audit_table_equals_duckdbs(runs, run: str):
    duck, spark = runs["duckdb"][f"{run}_marts"], runs["spark"][f"{run}_marts"]
    assert sorted(duck) == sorted(spark)
    assert sum(1 for t in duck if t.startswith("marts.")) >= 19
    different = {t: _differences(duck[t], spark[t])[:3] for t in duck if _differences(duck[t], spark[t])}
    assert different == {}
    assert all(duck[t] for t in ("marts.rpt_retention_rate", "marts.fct_orders", "audit.source_loads"))
    # Spark's builds ran every data test of the project, and each passed (the portability test
    # runs the unit tests on Spark; these are the project's data tests there)
    reports = Path(runs["spark"][run]["reports"])
    results = [r for n in (1, 2) for r in json.loads((reports / f"dbt_run_results_{n}.json").read_text())["results"]
               if r["unique_id"].startswith("test.")]
    assert len(results) >= 150 and {r["status"] for r in results} == {"pass"}


@pytest.mark.parametrize("run", ["first", "second"])
def test_each_spark_publication_carries_the_report_duckdb_draws(runs, run: str):
    """The report is drawn from the Spark publication's own Parquet (read in place through Arrow)
    into its version folder, and shows the figures DuckDB's report shows for the same data."""
    duck, spark = runs["duckdb"][run], runs["spark"][run]
    page = Path(spark["report"])
    assert page == runs["spark"]["warehouse"] / "spark" / "published" / spark["version"] / "report.html"
    duck_page = Path(duck["report"]).read_text(encoding="utf-8")
    html = page.read_text(encoding="utf-8")
    assert f'<meta name="liucun-version" content="{spark["version"]}">' in html and "engine spark" in html
    assert page_figures(html) == page_figures(duck_page) and page_figures(html)[("crr", "last")] != "—"
    seen = visit(page, READY)
    assert seen.blocked == [] and seen.console_errors == [] and seen.page_errors == []
    charts, expected = seen.result["charts"], seen.result["expected"]
    assert expected == json.loads(re.search(r"const expected = (.*);\n", duck_page).group(1))
    assert all(c["error"] is None and c["marks"] >= expected[k] > 0 for k, c in charts.items()), charts


def test_the_same_rows_are_loaded_replaced_and_quarantined_and_the_gates_agree(runs):
    for run in ("first", "second"):
        d, s = runs["duckdb"][run], runs["spark"][run]
        for key in ("rows_read", "rows_loaded", "rows_quarantined", "rows_replaced", "mart_rows", "headline"):
            assert d[key] == s[key], (run, key)
        assert d["gates"] == s["gates"]
        assert s["gates"]["marts"]["evaluated"] > 50 and all(g["passed"] for g in s["gates"].values())
    second = runs["spark"]["second"]
    # the invoices file's new version replaced its 20 dropped rows... and the rest of its old rows
    # (a new version of a file replaces all its earlier rows), the 15 customers were upserted
    assert second["rows_replaced"] >= 15 + 20
    assert second["rows_loaded"] > 0
    # the CRM update reached the mart: those customers now live in Xinjiang, on both engines
    moved = [row for row in runs["spark"]["second_marts"]["marts.dim_customers"] if "Xinjiang" in row]
    assert moved and not [row for row in runs["spark"]["first_marts"]["marts.dim_customers"] if "Xinjiang" in row]


def test_a_run_killed_while_publishing_changes_nothing_a_reader_sees_and_the_next_run_recovers(runs):
    killed = runs["killed"]
    assert killed["returncode"] == -signal.SIGKILL
    assert killed["left"]["candidates"] and killed["left"]["staged"], "the kill landed mid-publish"
    # the pointer, every file of the current version and the state are as before, byte for byte
    assert killed["after"] == killed["before"]
    version = killed["before"]["CURRENT"].strip()
    current = runs["spark"]["warehouse"] / "spark" / "published" / version / "marts"
    assert {p.name for p in current.iterdir()} == set(runs["spark"]["first"]["mart_rows"])
    # the next run (in-process, on the test run's session) removed what the killed one left and
    # published: the comparison with DuckDB above is of that run
    second = runs["spark"]["second"]
    assert second["version"] != version and not second.get("skipped")
    published = runs["spark"]["warehouse"] / "spark" / "published"
    assert not [p for p in published.iterdir() if p.name.startswith(".")]


def test_a_rerun_with_nothing_new_publishes_nothing_on_spark(runs):
    third, second = runs["spark"]["third"], runs["spark"]["second"]
    assert "skipped" in third and third["version"] == second["version"]


def test_the_daily_run_went_through_the_thrift_server(runs):
    """The daily run's statements ran on the Thrift Server (its log names the run's candidate
    databases and the statements that wrote the raw layer and the publication), and the warehouse
    now records method thrift."""
    log = runs["thrift_log"]
    prefix = "liucun_c" + runs["spark"]["second"]["run_id"].replace("-", "")[:8]
    assert f"{prefix}_raw" in log and f"{prefix}_marts" in log
    assert "insert overwrite directory" in log.lower()
    recorded = json.loads((runs["spark"]["warehouse"] / "engine.json").read_text())["spark"]
    assert recorded["method"] == "thrift" and recorded["password_secret"] == "liucun-test-spark-password"


def test_the_thrift_password_is_in_no_file_log_or_prefect_record(runs, prefect_backend):
    """The password went from the Secret block to PyHive (the engine's steps, GX) and to dbt, and
    nowhere else: not in the warehouses, the location, the run's logs and reports, the recorded
    engine settings, the Thrift Server's own files, or the Prefect server's records of the run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )

    needle = THRIFT_PASSWORD.encode()
    assert not [p for p in runs["root"].rglob("*") if p.is_file() and needle in p.read_bytes()]
    assert THRIFT_PASSWORD not in runs["thrift_log"]
    with get_client(sync_client=True) as client:
        run_id = runs["spark"]["second"]["run_id"]
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
        flow_run = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))[0]
    assert logs, "the run logged to the Prefect server"
    assert not [log.message for log in logs if THRIFT_PASSWORD in log.message]
    assert THRIFT_PASSWORD not in flow_run.model_dump_json()


def test_the_spark_warehouse_keeps_its_state_and_publications_in_its_location(runs):
    wh = runs["spark"]["warehouse"]
    location = wh / "spark"
    state = json.loads((location / "state.json").read_text())
    assert state["build"]["version"] == runs["spark"]["second"]["version"]
    # the daily run (through the Thrift Server) named the location as a file:// URI
    files = [p.removeprefix("file://") for p in state["tables"].values()]
    assert all(Path(p).is_dir() and p.startswith(str(location / "raw")) for p in files)
    # nothing of the runs is left: no candidate, no incoming rows, no raw files the state does not name
    assert not any((location / "candidates").iterdir()) and not any((location / "incoming").iterdir())
    on_disk = {str(v) for t in (location / "raw").iterdir() for v in t.iterdir()}
    assert on_disk == set(files)
    assert (location / "published" / "CURRENT").read_text().strip() == state["build"]["version"]
    assert json.loads((wh / "engine.json").read_text())["engine"] == "spark"


def test_a_warehouse_folder_refuses_the_other_engine(runs):
    from flows.engines import EngineMismatch, engine_for

    with pytest.raises(EngineMismatch, match="holds a spark warehouse"):
        engine_for(runs["spark"]["warehouse"], "duckdb")
    with pytest.raises(EngineMismatch, match="holds a duckdb warehouse"):
        engine_for(runs["duckdb"]["warehouse"], "spark")
    # a reader needs no Spark: the pointer and the version's Parquet (what `liucun` prints uses this)
    current = engine_for(runs["spark"]["warehouse"]).current_publication()
    assert current is not None and current.version == runs["spark"]["second"]["version"]
    assert current.row_counts == runs["spark"]["second"]["mart_rows"]

