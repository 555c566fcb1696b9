"""``liucun`` command line: generate sample data, run the demo, run a configured pipeline."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from flows.runtime import progress, stopping

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
        from flows.generate.pg_export import export_to_postgres

        dsn = os.environ.get(args.to_postgres, args.to_postgres)
        for table, rows in export_to_postgres(Path(args.out), dsn).items():
            print(f"  {rows:>10,}  postgres {table}")
    return 0


def _last_publication(warehouse: Path) -> str:
    from flows.engines import engine_for

    try:
        last = engine_for(warehouse).current_publication()
    except Exception as exc:  # noqa: BLE001
        return f"the published marts could not be read: {exc}"
    if last is None:
        return "there is no earlier publication"
    return f"the last publication (version {last.version}, {last.published_at:%Y-%m-%d %H:%M} UTC) is unchanged"


def _no_space_left(exc: BaseException, warehouse: Path) -> str | None:
    """One paragraph saying a disk filled up, where, and what to do — or None for other failures.

    A full disk surfaces in many shapes: Python's OSError (ENOSPC, with the file name), DuckDB's
    IOException/TransactionException/FatalException and dbt failures that carry DuckDB's text
    ('Could not write file "...": No space left on device'). So the whole exception chain is
    searched, by errno and by the OS's own wording.
    """
    import errno
    import re
    import shutil

    wording = os.strerror(errno.ENOSPC).lower()  # "no space left on device"
    found, path, todo, seen = False, None, [exc], set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            found = True
            path = path or e.filename2 or e.filename  # copy: filename2 is the file being written
        elif wording in str(e).lower():
            found = True
            # DuckDB: 'Could not write file "<path>": No space left on device'
            quoted = re.search(r"""["'](/[^"'\n]+)["']:\s*no space left""", str(e), re.I)
            path = path or (quoted.group(1) if quoted else None)
        todo += [e.__cause__, e.__context__, *getattr(e, "exceptions", ())]
    if not found:
        return None
    where = Path(os.path.abspath(path)) if path else warehouse
    mount = where
    while not (mount.exists() and os.path.ismount(mount)) and mount != mount.parent:
        mount = mount.parent
    free = f" ({shutil.disk_usage(mount).free / 2**20:,.1f} MB free now)" if mount.exists() else ""
    return (f"No space left on device while writing {where}: free space on {mount}{free} and run "
            f"again. Nothing was published; what this run left behind is removed by the next run.")


USER_ERRORS = ("ConfigError", "SourceError", "SourceUnreachable", "SaltMissing", "WarehouseBusy", "GateFailed",
               "GateSettingError", "DbtFailed", "RedactedError")


def _run_pipeline(config: Path, warehouse: Path, as_of: date | None, full_refresh: bool,
                  allow_generated_salt: bool, publish_postgres: str | None = None, engine: str | None = None,
                  quiet: bool = False) -> int:
    from flows.gates import worker as gate_worker

    started, started_wall = time.perf_counter(), time.time()
    # the run's gate worker imports Great Expectations on the other core while this process checks
    # the config, imports Prefect and ingests (flows/gates/worker.py); the flow takes it
    gate_worker.start_early()
    try:
        return _checked_run(config, warehouse, as_of, full_refresh, allow_generated_salt, publish_postgres,
                            started, started_wall, engine, quiet)
    finally:
        gate_worker.discard_early()  # the run never took it (it stopped before its flow started)


def _checked_run(config: Path, warehouse: Path, as_of: date | None, full_refresh: bool,
                 allow_generated_salt: bool, publish_postgres: str | None, started: float,
                 started_wall: float, engine: str | None = None, quiet: bool = False) -> int:
    from flows.check import check

    report = check(config, warehouse, allow_generated_salt, as_of, engine)  # before Prefect starts: a second, not minutes
    if not report.ok:
        print(report.render(), file=sys.stderr)
        return 2

    from flows.publish.postgres import PostgresPublishFailed
    from flows.retention_pipeline import retention_pipeline
    from flows.runtime import clilog
    from flows.runtime.prefect_api import use_for_this_process
    from flows.runtime.redact import redact

    # on a terminal: one line per step and bars (flows/runtime/progress.py) instead of the library
    # logs, which go to the debug log (and Prefect) only; cron, CI and --quiet see plain output
    show = sys.stdout.isatty() and not quiet
    # (the steps' lines carry the loads' warnings and the gates' warning counts)
    debug_log = clilog.setup(warehouse, console_level=logging.ERROR if show else logging.WARNING if quiet else None)
    published_before = _published_version(warehouse)
    # SIGTERM (kill, a service manager) stops the run as Ctrl-C does; inside the flow
    # flows/runtime/stopping.py ends the running tasks first
    previous_term = signal.signal(signal.SIGTERM, _raise_stopped)
    # if a stopped run does not end in time, the watchdog ends it with the same paragraph
    stopping.on_forced_exit(lambda signum: _stopped_message(signum, warehouse, published_before))
    try:
        api = _prefect_api()
        if api is not None:
            use_for_this_process(api)
        with progress.show_in_terminal() if show else contextlib.nullcontext():
            summary = retention_pipeline(
                config_path=str(config), warehouse_dir=str(warehouse), as_of=as_of,
                full_refresh=full_refresh, allow_generated_salt=allow_generated_salt,
                publish_postgres_dsn_env=_publish_postgres_env(publish_postgres), engine=engine,
            )
        summary = {**summary, "log": str(debug_log)}
        if api is not None:
            summary = {**summary, "prefect_ui": f"{api.ui}/runs/flow-run/{summary['run_id']}"}
    except PostgresPublishFailed as exc:
        clilog.log_exception(exc, "PostgreSQL publish failed")
        _print_summary(exc.summary, time.perf_counter() - started)
        print("\nPOSTGRESQL PUBLISH FAILED — the DuckDB publication above succeeded and stays.",
              file=sys.stderr)
        print(redact(str(exc)), file=sys.stderr)
        return 3
    except BaseException as exc:  # noqa: BLE001 - report any failure plainly
        signum = stopping.is_stop(exc)
        if signum is None and not isinstance(exc, Exception):
            raise
        if signum is not None:
            clilog.log_exception(exc, "run stopped by a signal")
            print(_stopped_message(signum, warehouse, published_before), file=sys.stderr)
            print(f"Details: {debug_log}", file=sys.stderr)
            return 128 + signum
        clilog.log_exception(exc, "pipeline failed")
        print("\nPIPELINE FAILED — nothing was published.", file=sys.stderr)
        what = str(exc) if type(exc).__name__ in USER_ERRORS else f"{type(exc).__name__}: {exc}"
        print(redact(_no_space_left(exc, warehouse) or what), file=sys.stderr)
        print(f"{_last_publication(warehouse)}.", file=sys.stderr)
        reports = [p for p in (warehouse / "reports").glob("*/validation_*.md")
                   if p.stat().st_mtime >= started_wall]
        if reports:
            print(f"Validation reports of this run: {reports[0].parent}", file=sys.stderr)
        print(f"Details (with the traceback): {debug_log}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous_term)
    _print_summary(summary, time.perf_counter() - started)
    return 0


def _prefect_api():  # noqa: ANN202 - flows.runtime.prefect_api.Api | None
    """The Prefect server this run reports to: PREFECT_API_URL, else a local one kept running in the
    background for later runs (started now if none runs). None: Prefect's temporary server."""
    from flows.runtime.prefect_api import ServerError, ensure_server

    try:
        api = ensure_server()
    except ServerError as exc:
        print(f"liucun: {exc}; this run uses a temporary Prefect server instead", file=sys.stderr)
        return None
    if api.how == "started":
        print(f"Started a local Prefect server at {api.ui} (UI); later runs reuse it. "
              "Stop it with `liucun server stop`.", flush=True)
    return api


def _raise_stopped(signum: int, frame: object) -> None:
    stopping.request_stop(signum)
    raise stopping.RunStopped(signum)


def _published_version(warehouse: Path) -> str | None:
    from flows.engines import engine_for

    try:
        last = engine_for(warehouse).current_publication()
    except Exception:  # noqa: BLE001 - no publication yet, or unreadable: nothing to compare
        return None
    return last.version if last else None


def _stopped_message(signum: int, warehouse: Path, published_before: str | None) -> str:
    name = signal.Signals(signum).name
    now = _published_version(warehouse)
    if now is not None and now != published_before:
        return (f"\nSTOPPED by {name} after this run had published version {now} (a publish under "
                "way is completed before stopping); it stopped there.")
    return (f"\nSTOPPED by {name} — nothing was published; {_last_publication(warehouse)}. "
            "The warehouse is unlocked; the next run clears what this one left behind.")


def _check(args: argparse.Namespace) -> int:
    from flows.check import check

    report = check(Path(args.config), Path(args.warehouse).resolve())
    print(report.render(), file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 2


def _print_summary(s: dict[str, Any], seconds: float) -> None:
    print("\n" + "=" * 72)
    if s.get("skipped"):  # nothing new since the current publication: nothing was rebuilt
        print(f"liucun run {s['run_id']} checked its sources in {seconds:.0f}s (as of {s['as_of']}): NOTHING NEW")
        print(f"  {s['skipped']}.")
        print(f"  files already loaded: {s['files_skipped']:,}")
        print(f"  published: {s['published']} (version {s['version']})")
        if s.get("report"):
            print(f"  report:    {s['report']}")
        if s.get("prefect_ui"):
            print(f"  prefect:   {s['prefect_ui']}")
        print("=" * 72)
        return
    print(f"liucun run {s['run_id']} published in {seconds:.0f}s (as of {s['as_of']})")
    print(f"  rows: raw read {s['rows_read']:,} -> loaded {s['rows_loaded']:,}, "
          f"quarantined {s['rows_quarantined']:,}")
    layers = s["layer_rows"]
    print("  rows per layer: " + ", ".join(f"{k} {v:,}" for k, v in layers.items()))
    excluded = s.get("activity_exclusions") or {}
    print(f"  not activity: {sum(excluded.values()):,} orders"
          + (f" ({', '.join(f'{k} {v:,}' for k, v in excluded.items())})" if excluded else "")
          + f"; activity.min_qualifying_amount = {s.get('min_qualifying_amount', 0):g}")
    if s.get("models_built"):
        print(f"  models: {s['models_built']}")
    print("  gates: " + ", ".join(
        f"{k} {'passed' if g['passed'] else 'FAILED'} ({g['evaluated']} checks, {g['warnings']} warnings)"
        for k, g in s["gates"].items()))
    print("  marts: " + ", ".join(f"{k} {v:,}" for k, v in s["mart_rows"].items()))
    steps = s.get("step_seconds") or {}
    if steps:
        print("  seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in steps.items() if v >= 0.05)
              + f"; Prefect and Python start-up {max(0.0, seconds - sum(steps.values())):.1f}")
    peaks = s.get("step_peak_mb") or {}
    if any(peaks.values()):
        print(f"  peak memory: {max(peaks.values()):,.0f} MB ("
              + ", ".join(f"{k} {v:,.0f}" for k, v in peaks.items() if steps.get(k, 0) >= 0.05) + ")")
    print(f"  published: {s['published']}")
    print(f"  parquet:   {s['parquet']}")
    pg = s.get("postgres")
    if pg:
        print(f"  postgres:  {pg['dsn']} schema {pg['schema']} (audit {pg['audit_table']})" if pg["published"]
              else f"  postgres:  NOT PUBLISHED to {pg['dsn']}")
    print(f"  report:    {s['report']}  (open it in a browser; works offline)" if s.get("report")
          else "  report:    NOT DRAWN (see the log); `liucun report --warehouse DIR` draws it again")
    print(f"  reports:   {s['reports']}")
    if s.get("log"):
        print(f"  log:       {s['log']}")
    if s.get("prefect_ui"):
        print(f"  prefect:   {s['prefect_ui']}")
    h = s.get("headline")
    if h:
        grain = h.get("period_grain", "month")
        period = h["period_start"][:7] if grain == "month" else f"{grain} of {h['period_start']}"
        print(f"  headline: {period} customer retention rate CRR = (E - N) / S = "
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
    return _run_pipeline(Settings().demo_config, warehouse, args.end_date, False, allow_generated_salt=True,
                         publish_postgres=args.publish_postgres, engine=args.engine, quiet=args.quiet)


def _run(args: argparse.Namespace) -> int:
    return _run_pipeline(Path(args.config), Path(args.warehouse).resolve(), args.as_of,
                         args.full_refresh, allow_generated_salt=False, publish_postgres=args.publish_postgres,
                         engine=args.engine, quiet=args.quiet)


def _contracts(args: argparse.Namespace) -> int:
    from flows.ingest.contracts import CONTRACTS

    print("# Canonical touchpoint contracts (flows/ingest/contracts.py)\n")
    for c in CONTRACTS.values():
        print(f"## {c.kind}\n\n{c.description}\n")
        print(f"Primary key: {', '.join(c.primary_key)}."
              + (f" At least one identifier of: {', '.join(c.identifier_any_of)}." if c.identifier_any_of else ""))
        print("\n| column | type | rules, meaning |\n|---|---|---|")
        for col in c.columns:
            rules = [r for r, on in [("required", col.required), (f"PII: stored as {col.stored_name}", col.pii),
                                     (">= 0", col.non_negative), ("not in the future", col.not_future),
                                     (col.description, col.description)] if on]
            print(f"| {col.name} | {col.type} | {'; '.join(rules)} |")
        print()
    return 0


def _server(args: argparse.Namespace) -> int:
    from flows.runtime import prefect_api

    home = Path(args.prefect_home).resolve() if args.prefect_home else None
    print(prefect_api.stop_recorded(home) if args.action == "stop" else prefect_api.status(home))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from flows.serve import ServeError, serve

    try:
        return serve(port=args.port, host=args.host,
                     prefect_home=Path(args.prefect_home) if args.prefect_home else None,
                     prefect_file=Path(args.prefect_file))
    except ServeError as exc:
        print(f"liucun serve: {exc}", file=sys.stderr)
        return 1


PUBLISH_POSTGRES_DSN_ENV = "LIUCUN_PUBLISH_POSTGRES_DSN"
PUBLISH_POSTGRES_HELP = ("also publish the marts to this PostgreSQL database (schema marts, audit.publications), "
                         "swapped in one transaction: a DSN, or the name of an environment variable holding one")
ENGINES = ("duckdb", "spark")  # flows/config.py ENGINES, without importing the config module at start
ENGINE_HELP = ("the engine to run on (default: `engine:` in the config, else duckdb); spark needs the spark "
               "extra (pip install 'liucun[spark]') and Java 17. A warehouse folder belongs to one engine")


def _dsn_or_env(text: str) -> str:
    """``--publish-postgres``: a DSN (has '://' or '='), else the name of a set environment variable."""
    if "://" in text or "=" in text or os.environ.get(text):
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r} is neither a DSN (postgresql://user@host:5432/db or 'host=... dbname=...') nor the "
        "name of a set environment variable holding one")


def _publish_postgres_env(value: str | None) -> str | None:
    """The NAME of the environment variable holding the ``--publish-postgres`` DSN. A literal DSN is
    put into LIUCUN_PUBLISH_POSTGRES_DSN: only a variable name becomes a Prefect flow parameter
    (Prefect stores parameters in its database and shows them in the UI)."""
    if not value:
        return None
    if "://" in value or "=" in value:
        os.environ[PUBLISH_POSTGRES_DSN_ENV] = value
        return PUBLISH_POSTGRES_DSN_ENV
    return value


def _at_least(minimum: int, why: str):  # noqa: ANN202 - an argparse type
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"{n} is too few: {why}")
        return n
    return parse


_customers = _at_least(100, "the sample needs at least 100 customers")
_months = _at_least(1, "at least 1 month")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-10-31") from None


def _report(args: argparse.Namespace) -> int:
    from flows.engines import engine_for
    from flows.report.build import render_current

    warehouse = Path(args.warehouse)
    if not warehouse.is_dir():
        print(f"liucun report: {warehouse} is not a folder: pass --warehouse with a warehouse a run published",
              file=sys.stderr)
        return 2
    try:
        engine = engine_for(warehouse, None, args.engine)
        current = engine.current_publication()
        if current is None:
            raise LookupError(f"{warehouse} has no publication yet: run the pipeline first "
                              "(`liucun run` or `liucun demo`)")
        out = Path(args.out) if args.out else Path(f"liucun-report-{current.version}.html")
        meta = render_current(engine, out)
    except LookupError as exc:
        print(f"liucun report: {exc}", file=sys.stderr)
        return 1
    print(f"report of publication {meta.version} (run {meta.run_id}, as of {meta.as_of}) -> {out.resolve()}")
    return 0


QUIET_HELP = ("no step-by-step progress and no informational logs on the console: warnings, errors "
              "and the summary only (output that is not a terminal never shows progress bars)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="liucun", description="liucun (留存): customer-retention analytics pipeline")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write a realistic sample of every source export")
    g.add_argument("--out", required=True, help="output folder")
    g.add_argument("--customers", type=_customers, default=20_000,
                   help="number of real people (default 20000, at least 100)")
    g.add_argument("--months", type=_months, default=24, help="months of history (default 24)")
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
    d.add_argument("--customers", type=_customers, default=20_000, help="default 20000, at least 100")
    d.add_argument("--months", type=_months, default=24)
    d.add_argument("--seed", type=int, default=42)
    d.add_argument("--end-date", type=_date, default=DEFAULT_END_DATE)
    d.add_argument("--faults", action="store_true", help="demo with corrupted input (the run must fail)")
    d.add_argument("--publish-postgres", metavar="DSN", type=_dsn_or_env, help=PUBLISH_POSTGRES_HELP)
    d.add_argument("--engine", choices=ENGINES, help=ENGINE_HELP)
    d.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    d.set_defaults(func=_demo)

    c = sub.add_parser("contracts", help="print the canonical source contracts (markdown)")
    c.set_defaults(func=_contracts)

    r = sub.add_parser("run", help="run the pipeline on a liucun.yml config")
    r.add_argument("--config", required=True, help="path to liucun.yml")
    r.add_argument("--warehouse", default="warehouse")
    r.add_argument("--as-of", type=_date, default=None, help="as-of date (default today)")
    r.add_argument("--full-refresh", action="store_true")
    r.add_argument("--publish-postgres", metavar="DSN", type=_dsn_or_env, help=PUBLISH_POSTGRES_HELP)
    r.add_argument("--engine", choices=ENGINES, help=ENGINE_HELP)
    r.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    r.set_defaults(func=_run)

    ck = sub.add_parser("check", help="validate a config, its files' headers, the salt and the warehouse "
                                      "in about a second (no Prefect server, no data loaded)")
    ck.add_argument("--config", required=True, help="path to liucun.yml")
    ck.add_argument("--warehouse", default="warehouse")
    ck.set_defaults(func=_check)

    rp = sub.add_parser("report", help="draw the retention report (one self-contained HTML page) of a "
                                       "warehouse's current publication again")
    rp.add_argument("--warehouse", default="warehouse", help="a published warehouse folder (default ./warehouse)")
    rp.add_argument("--out", help="the page to write (default ./liucun-report-<version>.html)")
    rp.add_argument("--engine", choices=ENGINES, help="the warehouse's engine, when engine.json does not say")
    rp.set_defaults(func=_report)

    srv = sub.add_parser("server", help="the local Prefect server `liucun run` starts and reuses: "
                                        "status, or stop it")
    srv.add_argument("action", choices=["status", "stop"])
    srv.add_argument("--prefect-home", help="its Prefect home (default: $PREFECT_HOME, else ~/.prefect)")
    srv.set_defaults(func=_server)

    sv = sub.add_parser("serve", help="local Prefect server + worker running the scheduled deployments "
                                      "of flows/prefect.yaml (Ctrl-C stops both)")
    sv.add_argument("--port", type=int, default=4200, help="server port on --host (default 4200)")
    sv.add_argument("--host", default="127.0.0.1", help="server address (default 127.0.0.1)")
    sv.add_argument("--prefect-home", help="server state folder (default $PREFECT_HOME, else "
                                           "warehouse/.prefect in the repository)")
    sv.add_argument("--prefect-file", default="flows/prefect.yaml",
                    help="Prefect project file, relative to the repository (default flows/prefect.yaml)")
    sv.set_defaults(func=_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


def console() -> None:
    """The ``liucun`` command: :func:`main`, then exit without tearing the interpreter down.

    After a run, Python's own shutdown frees every object dbt, Great Expectations and Prefect left
    in memory, one by one: about 1.7 s of a tiny run's 20, doing nothing anyone waits for. So once
    ``main`` has returned, this does what shutdown does that matters — waits for non-daemon
    threads, runs the ``atexit`` handlers (Prefect's log and event flushing, logging's), flushes
    stdout and stderr — and ends the process with ``os._exit``. Every file the run writes is closed
    by then (DuckDB files by ``with`` blocks, reports by ``write_text``). An exception out of
    ``main`` takes the ordinary path (traceback, full shutdown).
    """
    import atexit
    import threading

    code = main()
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    console()
