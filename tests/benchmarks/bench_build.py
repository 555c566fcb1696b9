"""Benchmark: ingest, dbt build and BG/NBD fit at the default demo size and at multiples of it.

    .venv/bin/python -m tests.benchmarks.bench_build --scale 1 --scale 10 [--out bench.md]

For each scale it generates the sample (20,000 customers x scale, 24 months), ingests it, builds
every dbt node as the pipeline does (the intermediate models the fit reads, the BG/NBD fit, the
rest) and prints one table: seconds per mart family (dbt's own per-node execution times, summed),
the fit, and the whole build — then the ratio of each scale to the first. Speed is reported, never
asserted: this machine is shared, so quote ratios from one run. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import date
from pathlib import Path

FAMILIES = {
    "identity": ("int_identifier", "dim_customers", "rpt_identity"),
    "retention + lifecycle": ("fct_customer_periods", "rpt_retention_rate", "rpt_cohort_retention",
                              "rpt_activity_lifecycle", "fct_customer_lifecycle", "rpt_lifecycle",
                              "int_customer_activity", "int_customer_segments", "int_periods",
                              "int_retention_period_counts"),
    "churn (events, drivers)": ("fct_churn_events", "rpt_churn_drivers", "int_churn"),
    "cancellation + recall": ("rpt_cancellation_flow", "fct_recall_contacts", "rpt_recall_roi", "int_recall"),
    "churn risk": ("fct_churn_risk", "int_customer_rfm", "fct_customer_bgnbd_scores", "rpt_bgnbd_fit"),
}
END = date(2026, 10, 31)


def run(scale: int, work: Path) -> dict[str, float]:
    from flows.generate import generate
    from tests.support.pipeline import build_candidate

    os.environ.setdefault("LIUCUN_PII_SALT", "benchmark-salt")
    sources = work / f"sources_{scale}"
    started = time.perf_counter()
    generate(sources, customers=20_000 * scale, months=24, seed=42, end_date=END)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    _, summary = build_candidate(sources, work / f"candidate_{scale}", END, os.environ["LIUCUN_PII_SALT"])
    total = time.perf_counter() - started
    seconds = {r["unique_id"]: float(r.get("execution_time") or 0.0) for r in summary.results}
    out = {"generate": generated, "ingest + dbt build + fit": total, "dbt nodes (sum)": sum(seconds.values())}
    for family, prefixes in FAMILIES.items():
        out[family] = sum(s for uid, s in seconds.items()
                          if uid.startswith("model.") and uid.split(".")[-1].startswith(prefixes))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, action="append", help="multiple of 20,000 customers (repeatable)")
    ap.add_argument("--out", type=Path, help="also write the table (markdown) here")
    args = ap.parse_args()
    scales = args.scale or [1, 10]
    with tempfile.TemporaryDirectory(prefix="liucun-bench-") as tmp:
        results = {s: run(s, Path(tmp)) for s in scales}
    base = scales[0]
    lines = ["| step (seconds) | " + " | ".join(f"{20_000 * s:,} customers" for s in scales)
             + " | " + " | ".join(f"ratio x{s}/x{base}" for s in scales[1:]) + " |",
             "|---|" + "---|" * (2 * len(scales) - 1)]
    for key in results[base]:
        row = [f"{results[s][key]:.1f}" for s in scales]
        ratios = [f"{results[s][key] / results[base][key]:.1f}" if results[base][key] else "" for s in scales[1:]]
        lines.append(f"| {key} | " + " | ".join(row + ratios) + " |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
