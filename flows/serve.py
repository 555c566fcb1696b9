"""``liucun serve``: run the scheduled deployments locally — a Prefect server on 127.0.0.1, the work
pool, ``prefect deploy --all`` from ``flows/prefect.yaml`` and a process worker — until Ctrl-C.

Everything goes through Prefect's own CLI, the commands an operator would type, so what this
starts is what the README documents. Server state (SQLite database, profiles, logs) lives in one
folder, by default ``warehouse/.prefect`` beside the demo warehouse, so ``make clean`` removes both.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import yaml

from flows.runtime.prefect_api import alive, healthy, prefect_cmd
from flows.settings import REPO_ROOT

DEFAULT_PREFECT_FILE = Path("flows/prefect.yaml")
DEFAULT_PREFECT_HOME = REPO_ROOT / "warehouse" / ".prefect"
SERVER_START_TIMEOUT = 180.0  # first start on 2 cores: SQLite migrations + UI assets, ~15-30 s
STOP_GRACE_SECONDS = 30.0
READY_MARKER = "liucun serve: ready"


class ServeError(RuntimeError):
    pass


def work_pool_of(prefect_file: Path) -> str:
    """The one work pool every deployment in the project file uses (one worker serves it)."""
    try:
        project = yaml.safe_load(prefect_file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ServeError(f"cannot read the Prefect project file {prefect_file}: {exc}") from None
    deployments = project.get("deployments") or []
    pools = {(d.get("work_pool") or {}).get("name") for d in deployments}
    if not deployments or len(pools) != 1 or None in pools:
        raise ServeError(
            f"{prefect_file}: every deployment must name the same work pool (work_pool.name); "
            f"found {sorted(str(p) for p in pools) or 'no deployments'}"
        )
    pool = str(pools.pop())
    if "{{" in pool:
        raise ServeError(f"{prefect_file}: write the work pool name out, not as a template ({pool!r})")
    return pool


def _port_free(host: str, port: int) -> bool:
    """Nobody listens there (connections of a just-stopped server in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def descendants(pid: int) -> list[int]:
    """Descendant pids of ``pid`` (Linux /proc). The process worker starts each flow run in its own
    session, so stopping the worker's process group alone could leave a run behind."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def _stop(name: str, proc: subprocess.Popen[Any], grace: float = STOP_GRACE_SECONDS) -> None:
    """Ctrl-C the process group as a terminal would; kill what is still there after ``grace``."""
    if proc.poll() is not None:
        return
    leftovers = descendants(proc.pid)
    print(f"liucun serve: stopping the {name} (pid {proc.pid})", flush=True)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        print(f"liucun serve: the {name} did not stop within {grace:.0f}s; killing it", flush=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    for pid in [p for p in leftovers if alive(p)]:  # e.g. a flow run in its own session
        print(f"liucun serve: stopping leftover process {pid} of the {name}", flush=True)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(alive(p) for p in leftovers) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in [p for p in leftovers if alive(p)]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Stop on SIGTERM/SIGHUP exactly as on Ctrl-C, so the children never outlive this process.

    SIGINT gets a handler too: a shell that starts us in the background sets it to "ignore", the
    children would inherit that, and then neither we nor the Prefect worker would stop on Ctrl-C.
    """
    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, _raise) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _prefect(args: list[str], env: dict[str, str], what: str) -> None:
    """Run one ``prefect`` CLI command from the repository root; its output goes to the console."""
    print(f"liucun serve: {what}: prefect {' '.join(args)}", flush=True)
    done = subprocess.run([*prefect_cmd(), *args], env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise ServeError(f"{what} failed (exit {done.returncode}); its output is above")


def serve(port: int = 4200, host: str = "127.0.0.1", prefect_home: Path | None = None,
          prefect_file: Path = DEFAULT_PREFECT_FILE) -> int:
    """Start server, pool, deployments and worker; block until Ctrl-C; stop everything cleanly."""
    prefect_file = prefect_file if prefect_file.is_absolute() else REPO_ROOT / prefect_file
    pool = work_pool_of(prefect_file)
    home = (prefect_home or Path(os.environ.get("PREFECT_HOME") or DEFAULT_PREFECT_HOME)).resolve()
    home.mkdir(parents=True, exist_ok=True)
    url = f"http://{host}:{port}"
    api_url = f"{url}/api"
    if not _port_free(host, port):
        raise ServeError(f"port {port} on {host} is in use (another Prefect server?): stop it or "
                         f"pass --port with a free port")
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api_url,
        "PREFECT_CLI_PROMPT": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    env.setdefault("LIUCUN_HOME", str(REPO_ROOT))  # templated into prefect.yaml's pull step
    prefect = prefect_cmd()
    procs: list[tuple[str, subprocess.Popen[Any]]] = []
    log: IO[bytes] | None = None
    with _sigterm_as_interrupt():
        try:
            server_log = home / "server.log"
            log = server_log.open("ab")
            print(f"liucun serve: starting the Prefect server on {url} (state in {home}, "
                  f"log {server_log})", flush=True)
            server = subprocess.Popen([*prefect, "server", "start", "--host", host, "--port", str(port),
                                       "--analytics-off"], env=env, cwd=home, stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            procs.append(("Prefect server", server))
            deadline = time.monotonic() + SERVER_START_TIMEOUT
            while not healthy(api_url):
                if server.poll() is not None:
                    raise ServeError(f"the Prefect server exited with {server.returncode}; see {server_log}")
                if time.monotonic() > deadline:
                    raise ServeError(f"the Prefect server was not healthy after {SERVER_START_TIMEOUT:.0f}s; "
                                     f"see {server_log}")
                time.sleep(0.5)
            inspect = subprocess.run([*prefect, "work-pool", "inspect", pool], env=env,
                                     capture_output=True, stdin=subprocess.DEVNULL)
            if inspect.returncode != 0:
                _prefect(["work-pool", "create", pool, "--type", "process"], env,
                         f"creating work pool {pool}")
            _prefect(["deploy", "--all", "--prefect-file", str(prefect_file), "--no-prompt"], env,
                     "deploying")
            worker = subprocess.Popen([*prefect, "worker", "start", "--pool", pool, "--limit", "1",
                                       "--name", f"{pool}-worker", "--install-policy", "never"],
                                      env=env, cwd=home, stdin=subprocess.DEVNULL,
                                      start_new_session=True)  # any cwd: the pull step finds the code
            procs.append(("worker", worker))
            print(f"{READY_MARKER}: UI {url} — worker on pool {pool!r} (one run at a time). "
                  f"Trigger a run from another shell with PREFECT_API_URL={api_url}:\n"
                  f"  prefect deployment run 'retention_pipeline/daily-incremental' --watch\n"
                  f"Ctrl-C stops the worker and the server.", flush=True)
            while True:
                for name, proc in procs:
                    if proc.poll() is not None:
                        raise ServeError(f"the {name} exited unexpectedly with {proc.returncode}")
                time.sleep(1)
        except KeyboardInterrupt:
            print("\nliucun serve: shutting down", flush=True)
            return 0
        finally:
            interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a 2nd Ctrl-C must not orphan
            for name, proc in reversed(procs):  # the worker first, then the server it talks to
                _stop(name, proc)
            if log is not None:
                log.close()
            signal.signal(signal.SIGINT, interrupt)
