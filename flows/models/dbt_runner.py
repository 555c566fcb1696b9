"""Run dbt against a candidate warehouse and report what failed, by node.

Two ways, the same arguments and the same :class:`DbtRunSummary`:

- :func:`run_dbt_in_process` (the pipeline): dbt runs inside this process. dbt is imported once and
  the project parsed once per run — from the partial-parse state the last run left, so dbt re-reads
  only the files that changed — and every build of the run reuses that manifest. A dbt child
  process paid about 4 s of imports and parsing per invocation, more than the nodes of a small run.
- :func:`run_dbt` (tests and tools): ``dbt`` in a child process, with its own environment.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flows.runtime import progress, stopping


class DbtFailed(RuntimeError):
    pass


@dataclass
class DbtRunSummary:
    command: list[str]
    results: list[dict[str, Any]]
    elapsed: float

    def count(self, resource: str) -> int:
        return sum(1 for r in self.results if r["unique_id"].split(".")[0] == resource)

    def brief(self) -> str:
        """What the invocation built, as a person reads it: ``20 models, 57 tests``."""
        seeds = self.count("seed")
        return (f"{self.count('model')} models, {self.count('test')} tests"
                + (f", {seeds} seed{'s' if seeds != 1 else ''}" if seeds else ""))


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
    cmd = [dbt_executable(), *args, *_common_args(project_dir, work_dir, dbt_vars)]
    child_env = {**os.environ, **env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    log.info("dbt %s", " ".join(args))
    # same process group as liucun: a SIGKILL of the whole run (or Ctrl-C in a terminal) reaches dbt
    # too; a stop by signal (flows/runtime/stopping.py) terminates it explicitly
    proc = subprocess.Popen(cmd, cwd=project_dir, env=child_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    tail: list[str] = []
    assert proc.stdout is not None
    with stopping.child(proc):
        for line in proc.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-40:]
            if on_line:
                on_line(line)
            elif any(k in line for k in ("ERROR", "FAIL", "WARN", "Finished running", "Done.")):
                log.info("dbt | %s", line)
        code = proc.wait()
    stopping.check()  # dbt ended because the run is stopping: say so, not "dbt failed"
    return _summarize(cmd, args, code, target, tail)


def _common_args(project_dir: Path, work_dir: Path, dbt_vars: dict[str, Any]) -> list[str]:
    """Project, profile, artifacts under ``work_dir`` (target, logs) and vars: every invocation's."""
    return ["--project-dir", str(project_dir), "--profiles-dir", str(project_dir),
            "--target-path", str(work_dir / "dbt_target"), "--log-path", str(work_dir / "dbt_logs"),
            "--vars", yaml.safe_dump(dbt_vars, default_flow_style=True).strip(), "--no-use-colors"]


def _summarize(cmd: list[str], args: list[str], code: int, target: Path, tail: list[str]) -> DbtRunSummary:
    """The run's results from dbt's run_results.json; :class:`DbtFailed` naming each failed node."""
    run_results = target / "run_results.json"
    try:
        data = json.loads(run_results.read_text()) if run_results.exists() else {}
    except (OSError, ValueError) as exc:  # e.g. cut short by a full disk: dbt's own messages say why
        tail = [*tail, f"{run_results} is unreadable: {exc}"]
        data = {}
    results = data.get("results", [])
    elapsed = float(data.get("elapsed_time", 0.0))
    if code != 0:
        failed = [r for r in results if r.get("status") in ("error", "fail", "runtime error")]
        detail = "\n".join(
            f"  - {r['unique_id']}: {r.get('status')}: {(r.get('message') or '').strip()[:400]}"
            + (f" ({r['failures']} failing rows)" if r.get("failures") else "")
            for r in failed
        ) or "\n".join("  " + t for t in tail[-15:])
        no_space = next((t.strip() for t in tail if "No space left on device" in t), "")
        if no_space and no_space not in detail:  # a full disk: dbt's last lines hide the cause
            detail = f"  {no_space}\n{detail}"
        raise DbtFailed(f"dbt {' '.join(args)} failed (exit {code}):\n{detail}")
    return DbtRunSummary(cmd, results, elapsed)


# dbt keeps process-wide state (its flags, the adapter registry, dbt-duckdb's one database handle):
# one invocation at a time per process
_IN_PROCESS = threading.Lock()
_manifest: dict[Path, Any] = {}  # the parsed project of the run whose work_dir is the key (one run)
_parse_failed: dict[Path, BaseException] = {}  # why parse_ahead's parse of that work_dir failed
_running: dict[str, int] = {}  # "thread": the thread id inside dbtRunner.invoke, while one is
_running_lock = threading.Lock()
_FORWARDED = {"StatsLine", "FinishedRunningStats"}  # besides every warning and error


def run_dbt_in_process(
    args: list[str],
    project_dir: Path,
    work_dir: Path,
    env: dict[str, str],
    dbt_vars: dict[str, Any],
    log: logging.Logger | logging.LoggerAdapter | None = None,
    parse_cache: Path | None = None,
) -> DbtRunSummary:
    """``dbt <args>`` in this process, artifacts under ``work_dir``; raise :class:`DbtFailed` naming failures.

    The first call for a ``work_dir`` parses the project (``dbt parse``), starting from
    ``parse_cache`` (dbt's ``partial_parse.msgpack`` of an earlier run, saved back after the parse):
    dbt then re-reads only what changed, and starts over by itself when the project, its vars, the
    profile or the dbt version differ. Later calls reuse the manifest. ``env`` is set for the
    duration of the call (dbt reads its profile's ``env_var()`` from the process environment).

    A stop by signal (flows/runtime/stopping.py) cancels the running queries and raises KeyboardInterrupt
    inside dbt, which then ends its threads as on Ctrl-C; the caller gets :class:`RunStopped`.
    """
    log = log or logging.getLogger(__name__)
    target = work_dir / "dbt_target"
    common = _in_process_args(project_dir, work_dir, dbt_vars)
    tail: list[str] = []

    def forward(event: Any) -> None:  # dbt's worker threads: what the old console filter showed
        info = event.info
        if info.name.endswith("Result") and getattr(event.data, "total", 0):  # a node done: N of total
            progress.advance(done=int(event.data.index), total=int(event.data.total))
        if info.level in ("warn", "error") or info.name in _FORWARDED:
            text = info.msg.strip()
            tail.append(text)
            del tail[:-40]
            log.info("dbt | %s", text)

    log.info("dbt %s", " ".join(args))
    with _IN_PROCESS, _environment({**env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}), _argv(["dbt", *args]):
        from dbt.cli.main import dbtRunner

        _quiet_console()

        with stopping.on_stop(_cancel_dbt):
            try:
                failed = _parse_failed.pop(work_dir, None)
                if failed is not None:  # parse_ahead's parse failed: the same error, here
                    stopping.check()
                    raise failed
                manifest = _manifest.get(work_dir)
                if manifest is None:
                    manifest = _parse_for(work_dir, dbtRunner, common, target, parse_cache, log)
                (target / "run_results.json").unlink(missing_ok=True)  # never an earlier build's results
                result = _invoke(dbtRunner(manifest=manifest, callbacks=[forward]), [*args, *common])
            finally:
                _release_database()
            if hasattr(result.result, "write"):  # dbt's own run_results.json, as --write-json writes it
                target.mkdir(parents=True, exist_ok=True)
                result.result.write(str(target / "run_results.json"))
        stopping.check()  # dbt ended because the run is stopping: say so, not "dbt failed"
    if result.exception is not None and not result.success:
        tail.append(f"{type(result.exception).__name__}: {result.exception}")
    return _summarize(["dbt", *args], args, 0 if result.success else 1, target, tail)


def parse_ahead(project_dir: Path, work_dir: Path, env: dict[str, str], dbt_vars: dict[str, Any],
                log: logging.Logger | logging.LoggerAdapter | None = None,
                parse_cache: Path | None = None) -> threading.Thread:
    """Import dbt and parse the project for ``work_dir`` in a background thread, now, so that the
    run's first :func:`run_dbt_in_process` finds the manifest ready (the same arguments as the
    builds will pass). The pipeline starts it before the raw gate: the gate runs in its worker
    process (flows/gates/worker.py) while this thread has the run's process to itself, so dbt's
    import and parse (about 2 s) no longer come before the first model. ``dbt parse`` does not
    open the warehouse, so the gate may read it meanwhile. A failure is raised by the first build;
    a build waits for the parse (one dbt invocation at a time)."""
    log = log or logging.getLogger(__name__)

    def parse() -> None:
        try:
            with _IN_PROCESS, _environment({**env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}), _argv(["dbt", "parse"]):
                if work_dir in _manifest:
                    return
                from dbt.cli.main import dbtRunner

                _quiet_console()
                with stopping.on_stop(_cancel_dbt):
                    _parse_for(work_dir, dbtRunner, _in_process_args(project_dir, work_dir, dbt_vars),
                               work_dir / "dbt_target", parse_cache, log)
        except BaseException as exc:  # noqa: BLE001 - a stop or a parse error: the first build raises it
            _parse_failed[work_dir] = exc

    # in a copy of the caller's context: Prefect's settings (its API) and run context live in
    # contextvars, and a bare thread logging through the run's logger would start a Prefect server
    # of its own (`make demo` showed "Starting temporary server" mid-build)
    thread = threading.Thread(target=contextvars.copy_context().run, args=(parse,), name="liucun-dbt-parse",
                              daemon=True)
    thread.start()
    return thread


def forget_parse(work_dir: Path) -> None:
    """Drop the manifest kept for ``work_dir`` (its run is over)."""
    _manifest.pop(work_dir, None)
    _parse_failed.pop(work_dir, None)


def _quiet_console() -> None:
    """No dbt output on this process's console before an invocation has read its flags: dbt-common
    starts with a stdout logger, which an invocation replaces by the loggers its flags ask for
    (``--log-level none``: none) only once it has parsed them, so a stop landing in that window
    would print dbt's traceback of the interruption. The flags' loggers (dbt's log file) are kept."""
    from dbt_common.events.event_manager_client import get_event_manager

    manager = get_event_manager()
    manager.loggers[:] = [lg for lg in manager.loggers if getattr(lg, "name", "") != "stdout_log"]


def _in_process_args(project_dir: Path, work_dir: Path, dbt_vars: dict[str, Any]) -> list[str]:
    # dbt's console stays quiet: the builds' `forward` passes what matters to the run's log. No JSON
    # artifacts: each invocation would write the whole manifest.json again (about 0.5 s each on this
    # project) that nothing here reads; a build's run_results.json is written from its result
    return [*_common_args(project_dir, work_dir, dbt_vars), "--log-level", "none", "--log-level-file", "info",
            "--no-write-json"]


def _parse_for(work_dir: Path, runner: Any, common: list[str], target: Path, cache: Path | None,
               log: logging.Logger | logging.LoggerAdapter) -> Any:
    """Parse for ``work_dir`` and keep the manifest (only the current run's: one at a time)."""
    _manifest.clear()
    manifest = _parse(runner, common, target, cache, log)
    _manifest[work_dir] = manifest
    return manifest


def user_parse_cache(project_dir: Path | str) -> Path:
    """dbt's parse state of the project at ``project_dir`` by the installed dbt, in the user's cache
    folder (``$XDG_CACHE_HOME/liucun``, else ``~/.cache/liucun``): a warehouse whose own state is
    missing (its first run) starts from it instead of parsing every file (5-6 s on 2 cores). dbt
    checks the state it reads — every file's checksum, the vars, the profile, its own version — and
    parses again whatever differs, so another warehouse's state of the same project is as safe as
    the warehouse's own: at worst dbt parses everything, as without it."""
    from importlib.metadata import version

    key = hashlib.sha256(f"{version('dbt-core')}\0{Path(project_dir).resolve()}".encode()).hexdigest()[:16]
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "liucun" / "dbt-parse" / f"{key}.msgpack"


def _keep(state: Path, cache: Path) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    shutil.copyfile(state, tmp)
    os.replace(tmp, cache)  # a later run parses from it; a torn copy is never seen


def _parse(runner: Any, common: list[str], target: Path, cache: Path | None,
           log: logging.Logger | logging.LoggerAdapter) -> Any:
    state = target / "partial_parse.msgpack"
    shared = user_parse_cache(common[common.index("--project-dir") + 1]) if cache is not None else None
    seed = next((c for c in (cache, shared) if c is not None and c.exists()), None)
    if seed is not None:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(seed, state)
    result = _invoke(runner(), ["parse", *common])
    _release_database()
    stopping.check()
    if not result.success:
        raise DbtFailed(f"dbt parse failed: {type(result.exception).__name__}: {result.exception}")
    if cache is not None and shared is not None and state.exists():
        _keep(state, cache)
        with contextlib.suppress(OSError):  # a read-only home: the warehouse's own state still is
            _keep(state, shared)
    log.info("dbt parse: %d nodes%s", len(result.result.nodes),
             f" (from {'the warehouse' if seed == cache else 'the user'}'s parse state)" if seed else "")
    return result.result


def _invoke(runner: Any, args: list[str]) -> Any:
    """``runner.invoke(args)``, marked as running so that a stop can interrupt it."""
    with _running_lock:
        _running["thread"] = threading.get_ident()
    try:
        stopping.check()  # a stop whose canceller ran before dbt was marked running
        return runner.invoke(args)
    except KeyboardInterrupt:  # a stop landed just as dbt returned
        stopping.check()
        raise
    finally:
        with _running_lock:
            _running.pop("thread", None)


def _cancel_dbt() -> None:
    """On a stop (the stop monitor's thread): cancel dbt's queries, then raise KeyboardInterrupt in
    the thread running dbt — dbtRunner catches it after ending its threads, as on Ctrl-C."""
    with contextlib.suppress(Exception):
        from dbt.adapters.factory import FACTORY

        for adapter in list(FACTORY.adapters.values()):
            adapter.cancel_open_connections()
    with _running_lock:
        tid = _running.get("thread")
        if tid is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), ctypes.py_object(KeyboardInterrupt))


def _release_database() -> None:
    """Close dbt-duckdb's database handle so that the next step (a gate, the fit) can open the file."""
    with contextlib.suppress(ImportError):
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
        from dbt.adapters.factory import reset_adapters

        reset_adapters()  # closes dbt's connections
        env = DuckDBConnectionManager._ENV
        if env is not None:
            with contextlib.suppress(Exception):
                env.close()
        DuckDBConnectionManager.close_all_connections()


@contextlib.contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    """dbt records ``sys.argv`` as the invocation command in its artifacts (run_results.json, kept
    with the reports): in this process that would be liucun's command line, which may hold a DSN."""
    before = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = before


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
