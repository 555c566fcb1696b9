"""``liucun`` command line: generate sample data, run the demo, run a configured pipeline."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

DEFAULT_END_DATE = date(2026, 10, 31)


def _generate(args: argparse.Namespace) -> int:
    from flows.generate import generate

    summary = generate(
        Path(args.out), customers=args.customers, months=args.months, seed=args.seed,
        faults=args.faults, end_date=args.end_date,
    )
    total = sum(summary.files.values())
    print(f"generated {summary.persons:,} people -> {total:,} rows in {len(summary.files)} files "
          f"under {summary.out_dir} in {summary.seconds:.1f}s")
    for path, rows in sorted(summary.files.items()):
        print(f"  {rows:>10,}  {path}")
    if args.to_postgres:
        from flows.pg_export import export_to_postgres

        dsn = os.environ.get(args.to_postgres, args.to_postgres)
        for table, rows in export_to_postgres(Path(args.out), dsn).items():
            print(f"  {rows:>10,}  postgres {table}")
    return 0


def _last_publication(warehouse: Path) -> str:
    published = warehouse / "liucun.duckdb"
    if not published.exists():
        return "there is no earlier publication"
    import duckdb

    try:
        with duckdb.connect(str(published), read_only=True) as con:
            row = con.execute(
                "select version, published_at from audit.publications order by published_at desc limit 1"
            ).fetchone()
        return f"the last publication (version {row[0]}, {row[1]:%Y-%m-%d %H:%M} UTC) is unchanged" if row else ""
    except Exception as exc:  # noqa: BLE001
        return f"the published file could not be read: {exc}"


def _run_pipeline(config: Path, warehouse: Path, as_of: date | None, full_refresh: bool,
                  allow_generated_salt: bool) -> int:
    from flows.retention_pipeline import retention_pipeline

    started, started_wall = time.perf_counter(), time.time()
    try:
        summary = retention_pipeline(
            config_path=str(config), warehouse_dir=str(warehouse), as_of=as_of,
            full_refresh=full_refresh, allow_generated_salt=allow_generated_salt,
        )
    except Exception as exc:  # noqa: BLE001 - report any failure plainly
        print("\nPIPELINE FAILED — nothing was published.", file=sys.stderr)
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        print(f"{_last_publication(warehouse)}.", file=sys.stderr)
        reports = [p for p in (warehouse / "reports").glob("*/validation_*.md")
                   if p.stat().st_mtime >= started_wall]
        if reports:
            print(f"Validation reports of this run: {reports[0].parent}", file=sys.stderr)
        return 1
    _print_summary(summary, time.perf_counter() - started)
    return 0


def _print_summary(s: dict[str, Any], seconds: float) -> None:
    print("\n" + "=" * 72)
    print(f"liucun run {s['run_id']} published in {seconds:.0f}s (as of {s['as_of']})")
    print(f"  rows: raw read {s['rows_read']:,} -> loaded {s['rows_loaded']:,}, "
          f"quarantined {s['rows_quarantined']:,}")
    layers = s["layer_rows"]
    print("  rows per layer: " + ", ".join(f"{k} {v:,}" for k, v in layers.items()))
    print("  gates: " + ", ".join(
        f"{k} {'passed' if g['passed'] else 'FAILED'} ({g['evaluated']} checks, {g['warnings']} warnings)"
        for k, g in s["gates"].items()))
    print("  marts: " + ", ".join(f"{k} {v:,}" for k, v in s["mart_rows"].items()))
    print(f"  published: {s['published']}")
    print(f"  parquet:   {s['parquet']}")
    print(f"  reports:   {s['reports']}")
    h = s.get("headline")
    if h:
        print(f"  headline: {h['period_start'][:7]} customer retention rate CRR = (E - N) / S = "
              f"({h['customers_end']:,} - {h['customers_new']:,}) / {h['customers_start']:,} = "
              f"{h['crr']:.1%}; strict retention {h['strict_retention_rate']:.1%}")
    print("=" * 72)


def _demo(args: argparse.Namespace) -> int:
    from flows.settings import Settings

    warehouse = Path(args.warehouse).resolve()
    sources = Path(args.sources).resolve() if args.sources else warehouse / "demo_sources"
    params = {"customers": args.customers, "months": args.months, "seed": args.seed,
              "faults": args.faults, "end_date": args.end_date.isoformat()}
    marker = sources / ".liucun_generated.json"
    if not marker.exists() or json.loads(marker.read_text()) != params:
        from flows.generate import generate

        print(f"generating demo sources ({args.customers:,} customers, {args.months} months) in {sources}")
        if sources.exists():
            import shutil

            shutil.rmtree(sources)
        s = generate(sources, customers=args.customers, months=args.months, seed=args.seed,
                     faults=args.faults, end_date=args.end_date)
        print(f"  {sum(s.files.values()):,} rows in {len(s.files)} files ({s.seconds:.1f}s)")
        marker.write_text(json.dumps(params))
    else:
        print(f"using demo sources already generated in {sources}")
    os.environ["LIUCUN_DATA_DIR"] = str(sources)
    return _run_pipeline(Settings().demo_config, warehouse, args.end_date, False, allow_generated_salt=True)


def _run(args: argparse.Namespace) -> int:
    return _run_pipeline(Path(args.config), Path(args.warehouse).resolve(), args.as_of,
                         args.full_refresh, allow_generated_salt=False)


def _contracts(args: argparse.Namespace) -> int:
    from flows.contracts import CONTRACTS

    print("# Canonical touchpoint contracts (flows/contracts.py)\n")
    for c in CONTRACTS.values():
        print(f"## {c.kind}\n\n{c.description}\n")
        print(f"Primary key: {', '.join(c.primary_key)}."
              + (f" At least one identifier of: {', '.join(c.identifier_any_of)}." if c.identifier_any_of else ""))
        print("\n| column | type | rules |\n|---|---|---|")
        for col in c.columns:
            rules = [r for r, on in [("required", col.required), (f"PII: stored as {col.stored_name}", col.pii),
                                     (">= 0", col.non_negative), ("not in the future", col.not_future)] if on]
            print(f"| {col.name} | {col.type} | {'; '.join(rules)} |")
        print()
    return 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-10-31") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="liucun", description="liucun (留存): customer-retention analytics pipeline")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write a realistic sample of every source export")
    g.add_argument("--out", required=True, help="output folder")
    g.add_argument("--customers", type=int, default=20_000, help="number of real people (default 20000)")
    g.add_argument("--months", type=int, default=24, help="months of history (default 24)")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--end-date", type=_date, default=DEFAULT_END_DATE, help="last day simulated")
    g.add_argument("--faults", action="store_true", help="inject realistic bad input")
    g.add_argument("--to-postgres", metavar="DSN",
                   help="also serve CRM and orders from PostgreSQL (crm.customers, commerce.orders): "
                        "a DSN, or the name of an environment variable holding one")
    g.set_defaults(func=_generate)

    d = sub.add_parser("demo", help="generate the sample and run the whole pipeline on it")
    d.add_argument("--warehouse", default="warehouse", help="warehouse folder (default ./warehouse)")
    d.add_argument("--sources", help="where to generate the sample (default WAREHOUSE/demo_sources)")
    d.add_argument("--customers", type=int, default=20_000)
    d.add_argument("--months", type=int, default=24)
    d.add_argument("--seed", type=int, default=42)
    d.add_argument("--end-date", type=_date, default=DEFAULT_END_DATE)
    d.add_argument("--faults", action="store_true", help="demo with corrupted input (the run must fail)")
    d.set_defaults(func=_demo)

    c = sub.add_parser("contracts", help="print the canonical source contracts (markdown)")
    c.set_defaults(func=_contracts)

    r = sub.add_parser("run", help="run the pipeline on a liucun.yml config")
    r.add_argument("--config", required=True, help="path to liucun.yml")
    r.add_argument("--warehouse", default="warehouse")
    r.add_argument("--as-of", type=_date, default=None, help="as-of date (default today)")
    r.add_argument("--full-refresh", action="store_true")
    r.set_defaults(func=_run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
