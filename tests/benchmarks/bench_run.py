"""`make bench`: what a liucun run costs, beside the two reference points, as ratios from one run.

    .venv/bin/python -m tests.benchmarks.bench_run --scale 1 --scale 10 [--out bench.md]

Reference points, measured in the same run on the same files (this machine is shared: quote the
ratios, not the seconds):
- **raw scan** — one DuckDB pass counting the rows of every raw file: the physical limit; a pipeline
  cannot ingest faster than it can read;
- **pandas notebook** (tests/benchmarks/pandas_notebook.py) — what a user would write instead:
  monthly cohorts, S/E/N/CRR and lifecycle from the published ``fct_orders`` (identity for free).

Measured for liucun, each through the real CLI (`liucun run`, gates and publish included) with a
Prefect server already running, as a scheduled run finds it:
- a **tiny input** (100 customers, 6 months): the fixed cost of a run, first in a new warehouse (dbt parses
  the project) and again (dbt's parse cache warm, as a scheduled run finds it);
- at each scale (20,000 customers x scale, 24 months): a **full refresh** — wall time, peak memory
  of the whole process tree (liucun, dbt), seconds per step (the run's ``run_summary.json``) and dbt's
  own node time per mart family (the run's ``dbt_run_results_*.json``); then a **rerun with nothing
  new**, and a run with **one more day** of orders and app events (new files, the as-of date a day on);
- at each scale, with PySpark installed (``--no-spark`` leaves it out): the same full refresh and
  one more day on the **Spark engine** (``--engine spark``, a local[*] session on this machine);
- at each ``--large`` scale (e.g. 50: 1M customers, ~38M raw rows) the full refresh only, and from
  the two largest scales the growth exponent of each step (time ~ rows^k) and its projection to
  100M raw rows.

Speed is reported, never asserted. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[2]
LIUCUN = str(Path(sys.executable).with_name("liucun"))
DEMO_CONFIG = REPO / "flows" / "demo" / "liucun.yml"
END = date(2026, 10, 31)
FAMILIES = {  # dbt models by name prefix
    "identity": ("int_identifier", "dim_customers", "rpt_identity"),
    "retention + cohorts + lifecycle": ("fct_customer_periods", "rpt_retention_rate", "rpt_cohort_retention",
                                        "rpt_activity_lifecycle", "fct_customer_lifecycle", "rpt_lifecycle",
                                        "int_customer_activity", "int_customer_segments", "int_periods",
                                        "int_retention_period_counts"),
    "churn": ("fct_churn_events", "rpt_churn_drivers", "int_churn"),
    "cancellation + recall": ("rpt_cancellation_flow", "fct_recall_contacts", "rpt_recall_roi", "int_recall"),
    "churn risk": ("fct_churn_risk", "int_customer_rfm", "fct_customer_bgnbd_scores", "rpt_bgnbd_fit"),
}
# The notebook's fair comparison: every model between the customer-attributed orders (where the
# notebook starts, identity for free) and the three marts it reproduces (rpt_cohort_retention,
# rpt_retention_rate, rpt_activity_lifecycle) - their segments and revenue columns included.
NOTEBOOK_MODELS = ("int_customer_activity_periods", "int_periods", "int_customer_segments",
                   "int_retention_period_counts", "rpt_retention_rate", "rpt_cohort_retention",
                   "rpt_activity_lifecycle")
PROJECT_TO_ROWS = 100_000_000


def raw_scan(root: Path) -> tuple[float, int]:
    """(seconds, rows): one DuckDB pass counting the rows of every raw file under ``root``."""
    started, rows = time.perf_counter(), 0
    with duckdb.connect() as con:
        for p in sorted(root.rglob("*")):
            if p.suffix == ".parquet":
                q = f"select count(*) from read_parquet('{p}')"
            elif p.name.endswith((".csv", ".csv.gz")):
                q = f"select count(*) from read_csv_auto('{p}')"
            elif p.suffix in (".jsonl", ".json"):
                q = f"select count(*) from read_json_auto('{p}')"
            else:
                continue
            rows += con.execute(q).fetchone()[0]
    return time.perf_counter() - started, rows


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, in MB (Linux /proc)."""
    parents, rss = {}, {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        p = int(status.parent.name)
        parents[p] = int(fields.get("PPid", "0").strip() or 0)
        rss[p] = int(fields.get("VmRSS", "0 kB").split()[0]) if "VmRSS" in fields else 0
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == parent and c not in tree]
        tree.update(kids)
        frontier += kids
    return sum(rss.get(p, 0) for p in tree) / 1024


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak MB of the process tree, stdout) of a command that must succeed."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0.0]

    def watch() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss_mb(proc.pid))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed (exit {proc.returncode}):\n{out[-3000:]}\n{err[-3000:]}")
    return seconds, peak[0], out


def liucun_run(sources: Path, wh: Path, env: dict[str, str], full_refresh: bool, as_of: date = END,
               engine: str = "duckdb") -> dict:
    cmd = [LIUCUN, "run", "--config", str(DEMO_CONFIG), "--warehouse", str(wh), "--as-of", as_of.isoformat(),
           "--engine", engine]
    seconds, peak, out = timed(cmd + (["--full-refresh"] if full_refresh else []),
                               {**env, "LIUCUN_DATA_DIR": str(sources)})
    run_id = out.split("liucun run ", 1)[1].split()[0]
    reports = wh / "reports" / run_id
    summary = json.loads((reports / "run_summary.json").read_text())
    nodes: dict[str, float] = {}
    for f in sorted(reports.glob("dbt_run_results_*.json")):
        for r in json.loads(f.read_text())["results"]:
            nodes[r["unique_id"]] = float(r.get("execution_time") or 0.0)
    models = {uid.split(".")[-1]: s for uid, s in nodes.items() if uid.startswith("model.")}
    families = {family: sum(s for name, s in models.items() if name.startswith(prefixes))
                for family, prefixes in FAMILIES.items()}
    edges = None
    if engine == "duckdb":
        with duckdb.connect(str(wh / "state.duckdb"), read_only=True) as con:
            edges = con.execute("select count(*) from intermediate.int_identifier_pairs_observed").fetchone()[0]
    return {"seconds": seconds, "peak_mb": peak, "steps": summary["step_seconds"],
            "step_peak_mb": summary.get("step_peak_mb", {}), "families": families,
            "notebook_models": sum(models.get(m, 0.0) for m in NOTEBOOK_MODELS),
            "dbt_nodes": sum(nodes.values()), "rows_read": summary["rows_read"], "identity_edges": edges}


def one_more_day(sources: Path, work: Path) -> Path:
    """The same export plus the next day's orders and app events, as new files (tests/support)."""
    from tests.support.pipeline import add_one_day

    return add_one_day(sources, work / f"{sources.name}_plus_one_day", END)


def pandas_notebook(published: Path, work: Path) -> dict:
    orders = work / "fct_orders.parquet"
    with duckdb.connect(str(published), read_only=True) as con:
        con.execute(f"copy (select customer_id, ordered_at, net_amount as amount from marts.fct_orders) "
                    f"to '{orders}' (format parquet)")
    out = subprocess.run([sys.executable, "-m", "tests.benchmarks.pandas_notebook", str(orders)], cwd=REPO,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def models_alone(sources: Path, wh: Path, work: Path, as_of: date = END,
                 models: tuple[str, ...] = (), dbt_vars: dict | None = None) -> dict:
    """``models`` (default NOTEBOOK_MODELS) built again on their own (``dbt run --full-refresh``, the
    profile's threads) on a copy of the run's working state: measured alone, as the notebook is, not
    beside the other models of the run's builds sharing the two cores. ``wall``: from the first
    model's start to the last one's end (dbt's start-up before them not counted); ``nodes``: their
    node times added up; ``rows``: each model's rows."""
    from flows.config import load_config
    from flows.models.dbt_runner import run_dbt
    from flows.settings import Settings

    models = models or NOTEBOOK_MODELS
    alone = work / "models_alone"
    alone.mkdir(exist_ok=True)
    db = alone / "candidate.duckdb"  # the catalog name the staging views were created under
    shutil.copyfile(wh / "state.duckdb", db)
    os.environ["LIUCUN_DATA_DIR"] = str(sources)  # the demo config names its data folder by this variable
    config = load_config(DEMO_CONFIG)
    summary = run_dbt(["run", "--full-refresh", "--select", *models], Settings().dbt_project_dir, alone,
                      {"LIUCUN_DBT_TARGET": "duckdb", "LIUCUN_DUCKDB_PATH": str(db),
                       "LIUCUN_AS_OF_DATE": as_of.isoformat()},
                      {"business_timezone": config.business_timezone,
                       "min_qualifying_amount": config.min_qualifying_amount, **(dbt_vars or {})})
    timings = [t for r in summary.results for t in r.get("timing", []) if t.get("started_at") and t.get("completed_at")]
    wall = (max(datetime.fromisoformat(t["completed_at"]) for t in timings)
            - min(datetime.fromisoformat(t["started_at"]) for t in timings)).total_seconds()
    with duckdb.connect(str(db), read_only=True) as con:
        schemas = dict(con.execute("select table_name, schema_name from duckdb_tables() "
                                   "where schema_name in ('intermediate', 'marts')").fetchall())
        rows = {m: con.execute(f"select count(*) from {schemas[m]}.{m}").fetchone()[0]
                for m in models if m in schemas}
    shutil.rmtree(alone)
    return {"wall": wall, "nodes": sum(float(r.get("execution_time") or 0.0) for r in summary.results),
            "rows": rows}


# the models whose key holds period_grain (var period_grains) and what they read per grain
GRAIN_MODELS = ("int_customer_activity_periods", "int_periods", "int_retention_period_counts", "rpt_retention_rate",
                "rpt_cohort_retention", "rpt_cohort_retention_means", "rpt_activity_lifecycle")


def grains_alone(sources: Path, wh: Path, work: Path, as_of: date = END) -> dict:
    """The grain-keyed models built alone twice: the month only (period_grains: [month], one build
    per grain as before) and every grain at once (the default): their wall times and rows."""
    return {"month": models_alone(sources, wh, work, as_of, GRAIN_MODELS, {"period_grains": ["month"]}),
            "all": models_alone(sources, wh, work, as_of, GRAIN_MODELS, {"period_grains": ["day", "week", "month"]})}


def measure(scale: float, work: Path, env: dict[str, str], full_only: bool = False, spark: bool = False) -> dict:
    from flows.generate import generate

    customers, months = (100, 6) if scale == 0 else (int(20_000 * scale), 24)
    sources = work / f"sources_{scale}"
    started = time.perf_counter()
    generate(sources, customers=customers, months=months, seed=42, end_date=END)
    result = {"customers": customers, "generate": time.perf_counter() - started}
    result["scan"], result["raw_rows"] = raw_scan(sources)
    wh = work / f"wh_{scale}"
    result["full"] = liucun_run(sources, wh, env, full_refresh=True)
    if not scale:  # again: dbt's parse cache of the first run is warm, as a scheduled run finds it
        result["again"] = liucun_run(sources, wh, env, full_refresh=True)
    if scale and not full_only:
        result["rerun"] = liucun_run(sources, wh, env, full_refresh=False)
        plus_one_day = one_more_day(sources, work)
        result["next_day"] = liucun_run(plus_one_day, wh, env, full_refresh=False, as_of=END + timedelta(days=1))
        result["notebook"] = pandas_notebook(wh / "liucun.duckdb", work)
        result["models_alone"] = models_alone(plus_one_day, wh, work, as_of=END + timedelta(days=1))
        result["grains"] = grains_alone(plus_one_day, wh, work, as_of=END + timedelta(days=1))
        if spark:  # the same full refresh and next day on the Spark engine (local[*], this machine)
            wh_spark = work / f"wh_spark_{scale}"
            result["spark_full"] = liucun_run(sources, wh_spark, env, full_refresh=True, engine="spark")
            result["spark_next_day"] = liucun_run(plus_one_day, wh_spark, env, full_refresh=False,
                                                  as_of=END + timedelta(days=1), engine="spark")
            shutil.rmtree(wh_spark)
    if full_only:
        shutil.rmtree(sources)
        shutil.rmtree(wh)
    return result


def _grain_rows(build: dict) -> int:
    """Rows of the published grain-keyed marts (and the activity rows they read) of a grains build."""
    return sum(n for m, n in build["rows"].items() if m != "int_periods")


def _growth(a: dict, b: dict, value) -> tuple[float, float]:  # noqa: ANN001
    """(k, projection): ``value`` grows as raw_rows^k from scale a to scale b; its value at 100M raw rows."""
    va, vb = value(a), value(b)
    if va <= 0 or vb <= 0:
        return math.nan, math.nan
    k = math.log(vb / va) / math.log(b["raw_rows"] / a["raw_rows"])
    return k, vb * (PROJECT_TO_ROWS / b["raw_rows"]) ** k


def table(results: dict[float, dict]) -> str:
    scales = [s for s in results if s]
    head = "| | " + " | ".join(f"{results[s]['customers']:,} customers ({results[s]['raw_rows']:,} raw rows)"
                                for s in scales) + " |"
    lines = [head, "|---|" + "---|" * len(scales)]

    def row(label: str, fn, needs: str = "full") -> None:  # noqa: ANN001
        lines.append(f"| {label} | " + " | ".join(fn(results[s]) if needs in results[s] else "not measured"
                                                    for s in scales) + " |")

    row("raw scan (s)", lambda r: f"{r['scan']:.1f}")
    row("full refresh (s) / x scan", lambda r: f"{r['full']['seconds']:.1f} / {r['full']['seconds'] / r['scan']:.1f}x")
    row("full refresh peak memory (MB)", lambda r: f"{r['full']['peak_mb']:,.0f}")
    for step in results[scales[0]]["full"]["steps"]:
        row(f"· {step} (s)" + (" / x scan" if step == "ingest" else "") + " · its peak memory (MB)",
            lambda r, st=step: (
                f"{r['full']['steps'].get(st, 0):.1f}"
                + (f" / {r['full']['steps'][st] / r['scan']:.1f}x" if st == "ingest" else "")
                + f" · {r['full']['step_peak_mb'].get(st, 0):,.0f}"))
    row("· start-up, Prefect and the rest (s)",
        lambda r: f"{r['full']['seconds'] - sum(r['full']['steps'].values()):.1f}")
    row("dbt node time, all nodes (s)", lambda r: f"{r['full']['dbt_nodes']:.1f}")
    for family in FAMILIES:
        row(f"· dbt {family} (s)", lambda r, f=family: f"{r['full']['families'][f]:.1f}")
    row("identity edges (pairs of identifiers seen together)", lambda r: f"{r['full']['identity_edges']:,}")
    row("pandas notebook: cohorts, CRR, lifecycle (s)", lambda r: f"{r['notebook']['seconds']:.2f}", "notebook")
    row("liucun's models for the same marts, in the full refresh (s) / notebook",
        lambda r: f"{r['full']['notebook_models']:.2f} / {r['full']['notebook_models'] / r['notebook']['seconds']:.2f}x",
        "notebook")
    row("the same models built alone: wall time (s) / notebook · their node times added (s)",
        lambda r: f"{r['models_alone']['wall']:.2f} / {r['models_alone']['wall'] / r['notebook']['seconds']:.2f}x"
                  f" · {r['models_alone']['nodes']:.2f}", "notebook")
    row("pandas notebook peak memory (MB)", lambda r: f"{r['notebook']['peak_rss_mb']:,.0f}", "notebook")
    row("grain-keyed models alone, month only: wall (s) · rows of the retention and cohort marts",
        lambda r: f"{r['grains']['month']['wall']:.2f} · {_grain_rows(r['grains']['month']):,}", "grains")
    row("the same, day + week + month in one build: wall (s) / x month only · rows / x month only",
        lambda r: f"{r['grains']['all']['wall']:.2f} / {r['grains']['all']['wall'] / r['grains']['month']['wall']:.2f}x"
                  f" · {_grain_rows(r['grains']['all']):,} / "
                  f"{_grain_rows(r['grains']['all']) / _grain_rows(r['grains']['month']):.2f}x", "grains")
    row("rerun, nothing new (s) / x full refresh",
        lambda r: f"{r['rerun']['seconds']:.1f} / {r['rerun']['seconds'] / r['full']['seconds']:.2f}x", "rerun")
    row("one more day of orders and events (s) / x full refresh",
        lambda r: f"{r['next_day']['seconds']:.1f} / {r['next_day']['seconds'] / r['full']['seconds']:.2f}x",
        "next_day")
    if any("spark_full" in results[s] for s in scales):
        lines.append("")
        lines.append("**Spark engine** (`--engine spark`: a local[*] SparkSession on this machine, the same CLI run, "
                     "gates and publish), beside DuckDB's runs above on the same files:")
        lines.append("")
        lines.append(head)
        lines.append("|---|" + "---|" * len(scales))
        row("Spark full refresh (s) / x DuckDB's", lambda r: f"{r['spark_full']['seconds']:.1f} / "
            f"{r['spark_full']['seconds'] / r['full']['seconds']:.1f}x", "spark_full")
        row("Spark full refresh peak memory (MB) / x DuckDB's", lambda r: f"{r['spark_full']['peak_mb']:,.0f} / "
            f"{r['spark_full']['peak_mb'] / r['full']['peak_mb']:.1f}x", "spark_full")
        for step in results[scales[0]].get("spark_full", {}).get("steps", {}):
            row(f"· {step} (s) · its peak memory (MB): Spark / DuckDB",
                lambda r, st=step: f"{r['spark_full']['steps'].get(st, 0):.1f} / {r['full']['steps'].get(st, 0):.1f}"
                                   f" · {r['spark_full']['step_peak_mb'].get(st, 0):,.0f} / "
                                   f"{r['full']['step_peak_mb'].get(st, 0):,.0f}", "spark_full")
        row("· start-up, Prefect, the JVM and the rest (s): Spark / DuckDB",
            lambda r: f"{r['spark_full']['seconds'] - sum(r['spark_full']['steps'].values()):.1f} / "
                      f"{r['full']['seconds'] - sum(r['full']['steps'].values()):.1f}", "spark_full")
        row("Spark dbt node time, all nodes (s) / x DuckDB's", lambda r: f"{r['spark_full']['dbt_nodes']:.1f} / "
            f"{r['spark_full']['dbt_nodes'] / r['full']['dbt_nodes']:.1f}x", "spark_full")
        row("Spark one more day (s) / x DuckDB's one more day", lambda r: f"{r['spark_next_day']['seconds']:.1f} / "
            f"{r['spark_next_day']['seconds'] / r['next_day']['seconds']:.1f}x", "spark_next_day")
    lines.append("")
    lines.append(f"liucun's models for the same marts: {', '.join(NOTEBOOK_MODELS)}. In the full refresh their "
                 "node times are added up (they share the two cores with other models). Built alone (`dbt run "
                 "--full-refresh --select` on a copy of the run's working state, two dbt threads) as the notebook "
                 "runs alone: the wall time from the first model's start to the last one's end, and their node "
                 "times added up (models running side by side each count their own time).")
    if len(scales) > 1:
        a, b = results[scales[-2]], results[scales[-1]]
        grow = b["raw_rows"] / a["raw_rows"]
        lines.append("")
        lines.append(f"Growth from {a['customers']:,} to {b['customers']:,} customers (raw rows x{grow:.1f}), "
                     f"as k in time ~ rows^k (1 = linear), and each figure projected to "
                     f"{PROJECT_TO_ROWS / 1e6:,.0f}M raw rows at that k:")
        lines.append("")
        lines.append("| | growth k | projected at 100M raw rows |")
        lines.append("|---|---|---|")
        measures = [("raw scan (s)", lambda r: r["scan"]), ("full refresh (s)", lambda r: r["full"]["seconds"]),
                    ("full refresh peak memory (MB)", lambda r: r["full"]["peak_mb"])]
        measures += [(f"· {st} (s)", lambda r, st=st: r["full"]["steps"][st])
                     for st in b["full"]["steps"] if a["full"]["steps"].get(st, 0) >= 0.5]
        measures += [(f"· dbt {f} (s)", lambda r, f=f: r["full"]["families"][f]) for f in FAMILIES]
        measures += [("identity edges", lambda r: r["full"]["identity_edges"])]
        for label, value in measures:
            k, projected = _growth(a, b, value)
            lines.append(f"| {label} | {k:.2f} | {projected:,.0f} |")
    if 0 in results:
        t = results[0]
        lines.append("")
        lines.append(f"Tiny input ({t['customers']} customers, {t['raw_rows']:,} raw rows): a full run end to end "
                     f"(checks, ingest, three gates, two dbt builds, the fit, publish) took "
                     f"{t['full']['seconds']:.1f} s: " + ", ".join(
                         f"{k} {v:.1f}" for k, v in t["full"]["steps"].items() if v >= 0.05)
                     + f", start-up and Prefect {t['full']['seconds'] - sum(t['full']['steps'].values()):.1f}. "
                     f"The first run in a warehouse parses the dbt project; run again (`--full-refresh`, dbt's "
                     f"parse cache warm, as every scheduled run finds it) it took {t['again']['seconds']:.1f} s: "
                     + ", ".join(f"{k} {v:.1f}" for k, v in t["again"]["steps"].items() if v >= 0.05)
                     + f", start-up and Prefect {t['again']['seconds'] - sum(t['again']['steps'].values()):.1f}.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, action="append", help="multiple of 20,000 customers (repeatable)")
    ap.add_argument("--large", type=float, action="append", default=[],
                    help="a larger multiple measured by its full refresh only (repeatable), e.g. 50")
    ap.add_argument("--out", type=Path, help="also write the table (markdown) here")
    ap.add_argument("--no-spark", action="store_true",
                    help="leave out the Spark engine's runs (measured at each --scale when PySpark is installed)")
    args = ap.parse_args()
    import importlib.util

    spark = not args.no_spark and importlib.util.find_spec("pyspark") is not None
    from flows.runtime.prefect_api import reporting_to, start_server, stop

    with tempfile.TemporaryDirectory(prefix="liucun-bench-") as tmp:
        work = Path(tmp)
        api = start_server(work / "prefect")  # running before the runs, as for a scheduled run
        env = {**os.environ, "LIUCUN_PII_SALT": os.environ.get("LIUCUN_PII_SALT", "benchmark-salt"),
               "PREFECT_API_URL": api.url, "PREFECT_HOME": str(work / "prefect")}
        try:
            with reporting_to(api):
                results = {s: measure(s, work, env, spark=spark) for s in [0.0, *(args.scale or [1.0, 10.0])]}
                for s in args.large:  # one at a time: each large sample is deleted once measured
                    results[s] = measure(s, work, env, full_only=True)
        finally:
            stop(api.pid)
    text = table(results)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
