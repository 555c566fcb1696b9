"""``liucun check``: catch a run's mistakes in about a second, before anything starts.

Validates, without a Prefect server and without loading data:
- the config (``load_config``: keys, kinds, columns, expressions, timezones, encodings, ...);
- every file source's glob, and the header of every file it matches: the columns the contract
  needs are there (CSV headers under the configured or detected delimiter, with the delimiter it
  looks like when they are not; the first JSON object's keys; the Parquet schema); empty files;
- PostgreSQL sources: the environment variable holding the connection is set;
- the PII salt: ``LIUCUN_PII_SALT``, or the Prefect Secret block when a Prefect API is configured,
  or (demo config only) the generated one;
- the warehouse folder: it can be created and written, and no other run holds its lock.

``liucun run`` runs the same checks first. Each problem is one paragraph: what, where, what to do.
"""

from __future__ import annotations

import glob
import json
import os
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from flows.config import ConfigError, ProjectConfig, SourceConfig, load_config
from flows.runtime.redact import redact


@dataclass
class CheckReport:
    config: ProjectConfig | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        if self.ok:
            n = len(self.config.sources) if self.config else 0
            head = (f"liucun check: OK — {n} sources, {self.files} files, headers match their contracts "
                    f"({self.seconds:.1f}s)")
            return "\n".join([head, *(f"  {x}" for x in self.notes)])
        return "\n\n".join([f"liucun check: {len(self.problems)} problem(s) — nothing was run."]
                           + [redact(p) for p in self.problems])


def _csv_problem(f: str, src: SourceConfig) -> str | None:
    from flows.ingest.readers import _needed_columns
    from flows.ingest.textfiles import (
        DELIMITER_CANDIDATES,
        open_binary,
        sniff_delimiter,
        split_fields,
    )

    with open_binary(f) as fh:
        first = fh.readline(2_000_000)
    if not first:
        return None  # empty: a warning at load, not a failure
    text = first.decode(src.encoding if src.encoding != "utf-8" else "utf-8-sig", errors="replace")
    text = text.rstrip("\r\n")
    if not src.header:
        return None
    needed = _needed_columns(src)
    delim = src.delimiter or sniff_delimiter(text, needed)
    fields = {x.strip() for x in split_fields(text, delim, src.quote)}
    missing = [n for n in needed if n not in fields]
    if not missing:
        return None
    for d in (*DELIMITER_CANDIDATES, "whitespace"):
        if d != delim and set(needed) <= {x.strip() for x in split_fields(text, d, src.quote)}:
            shown = {"\t": "'\\t'", "whitespace": "whitespace"}.get(d, repr(d))
            return (f"source {src.name!r}: file {f}: this file looks {shown}-delimited; set "
                    f"`delimiter: {shown}` under sources.{src.name}.files.")
    return (f"source {src.name!r}: file {f} has no column(s) {', '.join(map(repr, missing))} in its header "
            f"(required by the {src.kind} contract). Fix the export, or map the columns under "
            f"sources.{src.name}.columns.")


def _jsonl_problem(f: str, src: SourceConfig) -> str | None:
    from flows.ingest.readers import _needed_columns
    from flows.ingest.textfiles import open_binary

    with open_binary(f) as fh:
        for _ in range(100):
            line = fh.readline(2_000_000)
            if not line:
                return None
            if line.strip():
                break
        else:
            return None
    try:
        obj = json.loads(line.decode("utf-8", errors="replace"))
    except ValueError:
        return None  # that line is quarantined at load; the file itself is readable
    if not isinstance(obj, dict):
        return None
    missing = [n for n in _needed_columns(src) if n not in obj]
    if missing:
        return (f"source {src.name!r}: file {f}: its first record has no key(s) {', '.join(map(repr, missing))} "
                f"(required by the {src.kind} contract). Fix the export, or map them under "
                f"sources.{src.name}.columns.")
    return None


def _parquet_problem(f: str, src: SourceConfig) -> str | None:
    import duckdb

    from flows.ingest.readers import _needed_columns, lit

    try:
        with duckdb.connect() as con:
            names = {n for (n,) in con.execute(
                f"select name from parquet_schema({lit(f)}) where num_children is null").fetchall()}
    except duckdb.Error as exc:
        return f"source {src.name!r}: file {f} cannot be read as Parquet ({str(exc).splitlines()[0][:200]})."
    missing = [n for n in _needed_columns(src) if n not in names]
    if missing:
        return (f"source {src.name!r}: file {f} has no column(s) {', '.join(map(repr, missing))} "
                f"(required by the {src.kind} contract). Fix the export, or map them under sources.{src.name}.columns.")
    return None


def check_sources(config: ProjectConfig, report: CheckReport) -> None:
    for src in config.sources:
        if src.postgres:
            pg = src.postgres
            if pg.dsn_env and not os.environ.get(pg.dsn_env):
                report.problems.append(f"source {src.name!r}: environment variable {pg.dsn_env} (its PostgreSQL "
                                       "connection) is not set. Export it in the environment that runs liucun.")
            continue
        pattern = str(config.data_dir / src.path)
        files = sorted(glob.glob(pattern, recursive=True))
        if not files:
            report.problems.append(f"source {src.name!r}: no file matches {pattern}. Check `files.path` (and "
                                   "data_dir) in the config, and that the export has landed.")
            continue
        report.files += len(files)
        inspect = {"csv": _csv_problem, "jsonl": _jsonl_problem, "parquet": _parquet_problem}.get(src.format)
        for f in files:
            problem = None
            try:
                if inspect:
                    problem = inspect(f, src)
            except OSError as exc:
                problem = f"source {src.name!r}: file {f} cannot be read ({exc.strerror}). Check its permissions."
            if problem:
                report.problems.append(problem)
                break  # one file per source is enough to say what to fix


def check_salt(config: ProjectConfig, warehouse: Path, allow_generated: bool, report: CheckReport) -> None:
    from flows.settings import PREFECT_SALT_SECRET_BLOCK, Settings

    settings = Settings()
    if settings.pii_salt is not None and settings.pii_salt.get_secret_value():
        report.notes.append("PII salt: from LIUCUN_PII_SALT")
        return
    if os.environ.get("PREFECT_API_URL"):
        report.notes.append(f"PII salt: the Prefect Secret block {PREFECT_SALT_SECRET_BLOCK!r} is read at run time")
        return
    if allow_generated:
        report.notes.append(f"PII salt: the demo's generated salt in {warehouse / '.secrets' / 'pii_salt'}")
        return
    report.problems.append(
        "no PII salt: set LIUCUN_PII_SALT (a long random string, kept secret and stable: changing it changes "
        f"every customer hash), or create a Prefect Secret block named {PREFECT_SALT_SECRET_BLOCK!r} and set "
        "PREFECT_API_URL to the server that holds it.")


def check_warehouse(warehouse: Path, report: CheckReport) -> None:
    import fcntl

    try:
        warehouse.mkdir(parents=True, exist_ok=True)
        probe = warehouse / f".liucun-check-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        report.problems.append(f"the warehouse folder {warehouse} is not writable ({exc.strerror}). Choose another "
                               "--warehouse, or give this user write access to it.")
        return
    lock = warehouse / ".liucun.lock"
    if lock.exists():
        fd = os.open(lock, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            report.problems.append(f"another liucun run (pid {holder}) is using {warehouse}; wait for it to finish.")
        finally:
            os.close(fd)


def check_engine(config: ProjectConfig, warehouse: Path, engine: str | None, report: CheckReport) -> None:
    """The warehouse folder belongs to the engine this run asks for, and the machine can run it."""
    from flows.engines import EngineMismatch, engine_for

    try:
        chosen = engine_for(warehouse, config.engine, engine)
    except (EngineMismatch, ValueError) as exc:
        report.problems.append(str(exc))
        return
    report.problems.extend(chosen.prerequisites())


def check(config_path: Path | str, warehouse: Path, allow_generated_salt: bool = False,
          as_of: date | None = None, engine: str | None = None) -> CheckReport:
    started = time.perf_counter()
    report = CheckReport()
    try:
        report.config = load_config(config_path)
    except ConfigError as exc:
        report.problems.append(f"{exc}.".replace("..", "."))
    if report.config is not None:
        as_of = as_of or date.today()
        if report.config.earliest_date > as_of:
            report.problems.append(
                f"quality.earliest_date ({report.config.earliest_date}) is after the as-of date {as_of}: the orders "
                "date check could not be evaluated. Set quality.earliest_date to a date before your oldest record.")
        check_sources(report.config, report)
        check_salt(report.config, warehouse, allow_generated_salt, report)
        check_engine(report.config, warehouse, engine, report)
    check_warehouse(warehouse, report)
    report.seconds = time.perf_counter() - started
    return report
