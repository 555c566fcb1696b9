"""Where a ``liucun run`` reports to: a Prefect server that outlives one run.

Every Prefect flow run needs an API. Without ``PREFECT_API_URL``, Prefect starts a temporary server
for each process and stops it at exit: 10-20 s of every CLI run on this machine (minutes under
load), and the UI is gone with it. Instead, the first ``liucun run`` starts a local server in the
background — Prefect's own ``prefect server start``, bound to 127.0.0.1, its state in
``PREFECT_HOME`` like any Prefect server — and every later run reuses it, so a run's cost is its
data, and the runs' tasks, logs and artifacts stay browsable in the UI between runs.

- ``PREFECT_API_URL`` set (a team's server, ``liucun serve``, Prefect Cloud): used as it is; nothing
  is started.
- Otherwise the server recorded in ``$PREFECT_HOME/liucun-server.json`` is reused when it answers
  its health check; else one is started (a file lock keeps two runs from starting two).
- ``liucun server status`` / ``liucun server stop`` show and stop it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

STATE_FILE = "liucun-server.json"
LOG_FILE = "liucun-server.log"
START_TIMEOUT = 180.0  # first start on 2 cores creates the SQLite database: ~15-30 s, more under load
_HELD: list[object] = []  # settings contexts kept open until the process exits (use_for_this_process)


class ServerError(RuntimeError):
    pass


@dataclass(frozen=True)
class Api:
    url: str
    how: str  # "configured" (PREFECT_API_URL), "reused", "started"
    pid: int | None = None
    home: Path | None = None  # the server's PREFECT_HOME (its database), when liucun started it

    @property
    def ui(self) -> str:
        return self.url.removesuffix("/api")


def prefect_home() -> Path:
    from prefect.settings import PREFECT_HOME

    return Path(PREFECT_HOME.value()).expanduser()


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prefect_cmd() -> list[str]:
    """The ``prefect`` of this environment (a worker then runs flows with this Python)."""
    exe = Path(sys.executable).with_name("prefect")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "prefect"]


def recorded(home: Path) -> dict | None:
    """The server this Prefect home's state file records, if its process is alive."""
    try:
        state = json.loads((home / STATE_FILE).read_text())
        return state if alive(int(state["pid"])) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(home / "liucun-server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another run starting the server: wait for it
        yield
    finally:
        os.close(fd)


def start_server(home: Path, timeout: float = START_TIMEOUT) -> Api:
    """Start ``prefect server start`` on 127.0.0.1 in its own session, detached from this process
    (it keeps running after it exits), and wait until it answers."""
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
               PREFECT_SERVER_API_HOST="127.0.0.1", PREFECT_SERVER_API_PORT=str(port),
               PREFECT_UI_API_URL=url)
    log = open(home / LOG_FILE, "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen([*prefect_cmd(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=home)
    finally:
        log.close()
    deadline = time.monotonic() + timeout
    while not healthy(url, timeout=1.0):
        if proc.poll() is not None:
            raise ServerError(f"the local Prefect server exited at start (status {proc.returncode}); "
                              f"see {home / LOG_FILE}")
        if time.monotonic() > deadline:
            stop(proc.pid)
            raise ServerError(f"the local Prefect server did not answer within {timeout:.0f}s; "
                              f"see {home / LOG_FILE}")
        time.sleep(0.25)
    state = {"pid": proc.pid, "url": url, "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    tmp = home / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, home / STATE_FILE)
    return Api(url, "started", proc.pid, home)


def ensure_server(home: Path | None = None) -> Api:
    """The API a run reports to: PREFECT_API_URL, else this home's running server, else a new one."""
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        return Api(configured, "configured")
    home = home or prefect_home()
    with _home_lock(home):
        state = recorded(home)
        if state and healthy(state["url"]):
            return Api(state["url"], "reused", int(state["pid"]), home)
        if state:  # alive but not answering (hung, or another program took the pid): replace it
            stop(int(state["pid"]))
        return start_server(home)


@contextlib.contextmanager
def reporting_to(api: Api) -> Iterator[Api]:
    """Flows run inside the block report to ``api`` (and so does everything they start)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    before = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = api.url
    try:
        with temporary_settings(updates={PREFECT_API_URL: api.url}):
            yield api
    finally:
        if before is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = before


def use_for_this_process(api: Api) -> None:
    """Everything this process does with Prefect from now on reports to ``api``, up to and including
    its exit: Prefect sends the last logs and events from exit handlers, and with no API configured
    then it would start a temporary server just for them (seconds at the end of every run)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    os.environ["PREFECT_API_URL"] = api.url
    context = temporary_settings(updates={PREFECT_API_URL: api.url})
    context.__enter__()  # left open until the exit (held: a collected context would restore the settings)
    _HELD.append(context)


def stop(pid: int, grace: float = 15.0) -> bool:
    """Stop a server started by :func:`start_server` (its whole session); True if one was running."""
    if not alive(pid):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it when it is our child (a test, or a failed start)
        time.sleep(0.1)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return True


def stop_recorded(home: Path | None = None) -> str:
    """``liucun server stop``: stop this home's server; says what it did."""
    home = home or prefect_home()
    with _home_lock(home):
        state = recorded(home)
        (home / STATE_FILE).unlink(missing_ok=True)
        if not state:
            return f"no liucun Prefect server is running for {home}"
        stop(int(state["pid"]))
        return f"stopped the Prefect server at {state['url'].removesuffix('/api')} (pid {state['pid']})"


def status(home: Path | None = None) -> str:
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        return (f"PREFECT_API_URL is set: runs report to {configured} "
                f"({'answering' if healthy(configured) else 'NOT answering'}); liucun starts no server")
    home = home or prefect_home()
    state = recorded(home)
    if not state:
        return f"no liucun Prefect server is running for {home}; the next `liucun run` starts one"
    return (f"Prefect server at {state['url'].removesuffix('/api')} (pid {state['pid']}, started "
            f"{state['started_at']}, {'answering' if healthy(state['url']) else 'NOT answering'}); "
            f"state in {home}; stop it with `liucun server stop`")
