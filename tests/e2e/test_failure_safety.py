"""Failure safety with real processes: a run killed mid-build leaves the last publication intact and
the next run recovers on its own; a second concurrent run is refused and changes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from flows.publish.warehouse import Warehouse
from tests.support.processes import session_processes

LIUCUN = str(Path(sys.executable).with_name("liucun"))


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_LOGGING_LEVEL": "INFO"}


def _demo(tmp_path: Path, wh: Path, seed: int) -> list[str]:
    return [LIUCUN, "demo", "--warehouse", str(wh), "--sources", str(tmp_path / f"src{seed}"),
            "--customers", "1500", "--months", "12", "--seed", str(seed)]


def _fingerprint(wh: Path) -> tuple[str, str]:
    return (hashlib.sha256((wh / "liucun.duckdb").read_bytes()).hexdigest(),
            (wh / "parquet" / "CURRENT").read_text())


def test_killed_during_dbt_build_keeps_the_publication_and_recovers(published_once: Path, clean_second_run: Path,
                                                                    tmp_path: Path):
    wh = tmp_path / "wh"
    shutil.copytree(published_once / "wh", wh, symlinks=True)  # one publication (demo, seed 1)
    before = _fingerprint(wh)

    # the next export, not another seed: a second seed doubles the customers, which the marts
    # gate's row-count bands (0.5x to 2x of the last publication) rightly refuse
    second = published_once / "src_second"
    proc = subprocess.Popen(_demo_from(second, wh), env=_env(published_once), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    saw_dbt = False
    deadline = time.time() + 300
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until the dbt build is under way, then kill the whole run
        if "dbt build" in line:
            saw_dbt = True
            time.sleep(1.0)
            os.killpg(proc.pid, signal.SIGKILL)
            break
        assert time.time() < deadline, "the run never reached the dbt build"
    proc.wait(timeout=60)
    assert saw_dbt and proc.returncode == -signal.SIGKILL

    assert _fingerprint(wh) == before  # untouched, byte for byte
    with duckdb.connect(str(wh / "liucun.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from audit.publications").fetchone()[0] == 1
    assert any((wh / ".runs").iterdir()), "the killed run left its candidate behind"

    again = _liucun(_demo_from(second, wh), _env(published_once))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "leftover candidate" in again.stdout + again.stderr
    assert _fingerprint(wh) != before
    with duckdb.connect(str(wh / "liucun.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from audit.publications").fetchone()[0] == 2
    assert _marts_differ(wh, clean_second_run) == []  # what an uninterrupted run publishes


def test_a_second_run_while_one_holds_the_warehouse_is_refused(tmp_path: Path):
    wh = Warehouse(tmp_path / "wh")
    with wh.lock():  # a real flock held by this process, as a running pipeline holds it
        proc = subprocess.run(_demo(tmp_path, wh.root, 3), env=_env(tmp_path), capture_output=True,
                              text=True, timeout=600)
    # refused by the checks `liucun run` makes before anything starts (exit 2: nothing was run)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "another liucun run" in proc.stderr and f"pid {os.getpid()}" in proc.stderr
    assert "nothing was run" in proc.stderr and "Traceback" not in proc.stderr
    assert not (wh.root / "liucun.duckdb").exists() and not (wh.root / "state.duckdb").exists()


# --- killed while publishing -------------------------------------------------------------------
# flows/publish/duckdb_file.py writes, in order: the new file `.liucun.duckdb.<run>.tmp` and the hidden Parquet
# folder `parquet/.<version>` (both while the marts gate still runs), then — every gate passed —
# renames the folder to `parquet/<version>/` and the file over `liucun.duckdb`, and switches the
# Parquet pointers; flows/publish/warehouse.py then commits the candidate as `state.duckdb`. Each kill point
# below is one of those steps as seen from outside (nothing in the product waits for the test).

REPO = Path(__file__).resolve().parents[2]
KILL_POINTS = {
    "tmp-file": "the new DuckDB file .liucun.duckdb.<run>.tmp appears",
    "parquet-folder": "the new hidden folder parquet/.<version> appears (its Parquet being written)",
    "after-rename": "liucun.duckdb has been replaced, before state.duckdb is committed",
}


def _liucun(cmd: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Run liucun in its own process group; on a timeout kill the group (its Prefect server and dbt
    too), so a hung run cannot keep a tmpfs busy or outlive the test."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"{cmd[1]} did not finish in {timeout}s:\n{out[-2000:]}\n{err[-2000:]}") from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _publications(wh: Path) -> dict[str, dict[str, int]]:
    """version -> row count per mart, as recorded by each publication in the published file."""
    with duckdb.connect(str(wh / "liucun.duckdb"), read_only=True) as con:
        return {v: json.loads(rc) for v, rc in con.execute(
            "select version, row_counts from audit.publications").fetchall()}


def _assert_complete_publication(wh: Path) -> dict[str, dict[str, int]]:
    """The published file opens, every mart its last publication lists is there with that many rows,
    and parquet/current and parquet/CURRENT each name a complete version folder whose files open."""
    pubs = _publications(wh)
    with duckdb.connect(str(wh / "liucun.duckdb"), read_only=True) as con:
        last = con.execute("select row_counts from audit.publications order by published_at desc "
                           "limit 1").fetchone()[0]
        for mart, n in json.loads(last).items():
            assert con.execute(f'select count(*) from marts."{mart}"').fetchone()[0] == n, mart
        pointed = {os.readlink(wh / "parquet" / "current"), (wh / "parquet" / "CURRENT").read_text().strip()}
        for version in pointed:
            assert version in pubs, f"parquet points at {version}, which no publication lists"
            folder = wh / "parquet" / version
            assert sorted(p.stem for p in folder.glob("*.parquet")) == sorted(pubs[version])
            for mart, n in pubs[version].items():
                pq = str(folder / f"{mart}.parquet")
                assert con.execute("select count(*) from read_parquet(?)", [pq]).fetchone()[0] == n, pq
    return pubs


def _marts_differ(a: Path, b: Path) -> list[str]:
    """Marts whose rows differ (as multisets) between the published files of warehouses a and b."""
    with duckdb.connect() as con:
        con.execute(f"attach '{a / 'liucun.duckdb'}' as a (read_only)")
        con.execute(f"attach '{b / 'liucun.duckdb'}' as b (read_only)")
        names = {db: {r[0] for r in con.execute(
            "select table_name from duckdb_tables() where database_name = ? and schema_name = 'marts'",
            [db]).fetchall()} for db in ("a", "b")}
        differ = sorted(names["a"] ^ names["b"])
        for t in sorted(names["a"] & names["b"]):
            n = con.execute(f"""select count(*) from (
                (select * from a.marts."{t}" except all select * from b.marts."{t}") union all
                (select * from b.marts."{t}" except all select * from a.marts."{t}"))""").fetchone()[0]
            if n:
                differ.append(t)
    return differ


def _second_export(home: Path) -> Path:
    """The seed-1 export again, with October's orders file re-issued: 20 more orders returned and
    refunded. Only that file is new (by content hash), so a second run loads a realistic increment
    and every mart stays within the marts gate's row-count bands against the first publication."""
    second = home / "src_second"
    if not second.exists():
        shutil.copytree(home / "src1", second)
        orders = second / "orders" / "orders_2026_10.parquet"
        reissued = orders.with_suffix(".tmp")
        with duckdb.connect() as con:
            con.execute(f"""copy (
                with o as (select *, row_number() over (partition by is_returned order by order_id) as k
                           from read_parquet('{orders}'))
                select * exclude (k) replace (
                    case when not is_returned and k <= 20 then net_amount else refund_amount end as refund_amount,
                    is_returned or k <= 20 as is_returned)
                from o order by order_id) to '{reissued}' (format parquet)""")
        os.replace(reissued, orders)
    return second


def _demo_from(sources: Path, wh: Path) -> list[str]:
    return [LIUCUN, "demo", "--warehouse", str(wh), "--sources", str(sources),
            "--customers", "1500", "--months", "12", "--seed", "1"]


@pytest.fixture(scope="module")
def published_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse with one publication (demo, seed 1) and the next export beside it; tests copy the
    warehouse. Sources and the Prefect home are shared by the tests that use it."""
    home = tmp_path_factory.mktemp("published_once")
    run = _liucun(_demo(home, home / "wh", 1), _env(home))
    assert run.returncode == 0, run.stderr[-3000:]
    _second_export(home)
    return home


@pytest.fixture(scope="module")
def clean_second_run(published_once: Path) -> Path:
    """The same warehouse after an uninterrupted second run on the next export: what a recovery
    must equal."""
    wh = published_once / "clean_second_run"
    shutil.copytree(published_once / "wh", wh, symlinks=True)
    run = _liucun(_demo_from(published_once / "src_second", wh), _env(published_once))
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(_publications(wh)) == 2
    assert "fct_orders" in _marts_differ(wh, published_once / "wh"), "the next export changes the marts"
    return wh


def _watch_and_kill(proc: subprocess.Popen, wh: Path, point: str) -> bool:
    """Poll the warehouse from outside and SIGKILL the run's process group at ``point``.

    Every 5 ms until the publish step starts; for the rename, which is followed by the state
    commit within a few milliseconds, the published file's inode is then polled without pause.
    """
    old_inode = (wh / "liucun.duckdb").stat().st_ino
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        publishing = any(wh.glob(".liucun.duckdb.*.tmp"))
        if point == "tmp-file":
            hit = publishing
        elif point == "parquet-folder":
            hit = any(n.startswith(".") and n[1:2].isdigit() for n in os.listdir(wh / "parquet"))
        else:
            hit = (wh / "liucun.duckdb").stat().st_ino != old_inode
            if publishing and not hit:
                continue  # busy-poll: the window after the rename is a few ms long
        if hit:
            os.killpg(proc.pid, signal.SIGKILL)
            return True
        time.sleep(0.005)
    return False


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_while_publishing_leaves_a_complete_publication_and_recovers(
        point: str, published_once: Path, clean_second_run: Path, tmp_path: Path):
    wh = tmp_path / "wh"
    shutil.copytree(published_once / "wh", wh, symlinks=True)
    before = _fingerprint(wh)
    state_inode = (wh / "state.duckdb").stat().st_ino

    proc = subprocess.Popen(_demo_from(published_once / "src_second", wh), env=_env(published_once),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        fired = _watch_and_kill(proc, wh, point)
    finally:
        if proc.poll() is None and not fired:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert fired, f"the run ended before {KILL_POINTS[point]} was seen (exit {proc.returncode})"
    assert proc.returncode == -signal.SIGKILL, "the kill must land while the run is alive"

    pubs = _assert_complete_publication(wh)
    if point == "after-rename":
        # the new file is published, the state is still the old one: the case the next run must absorb
        assert len(pubs) == 2 and _fingerprint(wh)[0] != before[0]
        assert (wh / "state.duckdb").stat().st_ino == state_inode, (
            "the kill landed after the state commit: the window was missed, nothing was shown")
    else:  # killed before the rename: the old publication, byte for byte
        assert _fingerprint(wh) == before and len(pubs) == 1
    assert (wh / "state.duckdb").stat().st_ino == state_inode
    assert any((wh / ".runs").iterdir()), "the killed run left its candidate behind"

    with duckdb.connect(str(wh / "liucun.duckdb"), read_only=True) as con:
        published_version = con.execute(
            "select version from audit.publications order by published_at desc limit 1").fetchone()[0]
    pointer_behind = (wh / "parquet" / "CURRENT").read_text().strip() != published_version

    again = _liucun(_demo_from(published_once / "src_second", wh), _env(published_once))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "leftover candidate" in again.stdout + again.stderr
    # DuckDB already had the new marts while Parquet still pointed at the old: realigned first
    assert ("parquet/current pointed at an older version" in again.stdout + again.stderr) == pointer_behind
    pubs_after = _assert_complete_publication(wh)
    assert len(pubs_after) == len(pubs) + 1
    assert not list(wh.glob(".liucun.duckdb.*")) and not list(wh.glob(".state.*"))
    assert not any((wh / ".runs").iterdir())
    folders = {d.name for d in (wh / "parquet").iterdir() if d.is_dir() and not d.is_symlink()}
    assert folders <= set(pubs_after), f"parquet folders no publication lists: {folders - set(pubs_after)}"
    assert not [n for n in os.listdir(wh / "parquet") if n.startswith(".")]
    # started again from the last committed state, so it loads the same files a clean run loaded
    assert _marts_differ(wh, clean_second_run) == []


# --- disk full ---------------------------------------------------------------------------------

def _leave_free(mount: Path, filler: Path, free_bytes: int) -> None:
    """(Re)allocate ``filler`` so that about ``free_bytes`` stay free on ``mount``."""
    filler.unlink(missing_ok=True)
    st = os.statvfs(mount)
    size = st.f_bavail * st.f_frsize - free_bytes
    assert size > 0, f"{mount} has less than {free_bytes} bytes free already"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)


def test_a_full_disk_fails_the_run_clearly_publishes_nothing_and_the_next_run_recovers(
        published_once: Path, tmp_path: Path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(mount)], check=True)
    try:
        wh = mount / "wh"  # only the warehouse is on the small disk; sources and Prefect are not
        shutil.copytree(published_once / "wh", wh, symlinks=True)  # a publication, room to spare
        before = _fingerprint(wh)
        second = published_once / "src_second"
        filler = mount / "filler"
        state_size = (wh / "state.duckdb").stat().st_size
        # 5 MB: the copy of state.duckdb into the candidate fails (Python's OSError); the state's
        # size + 4 MB: the copy succeeds and DuckDB runs out of space later, inside the build
        for free in (5 << 20, state_size + (4 << 20)):
            _leave_free(mount, filler, free)
            run = _liucun(_demo_from(second, wh), _env(published_once))
            assert run.returncode == 1, run.stderr[-3000:]
            tail = run.stderr.split("PIPELINE FAILED — nothing was published.\n", 1)[1]
            message = tail.splitlines()[0]
            assert message.startswith(f"No space left on device while writing {wh}"), tail
            assert f"free space on {mount} (" in message and "run again" in message, message
            written = message.removeprefix("No space left on device while writing ").split(": free space")[0]
            # which step ran out: the candidate copy first, a DuckDB write within the run next
            assert written.endswith("/candidate.duckdb") == (free == 5 << 20), message
            assert "is unchanged" in tail
            assert _fingerprint(wh) == before  # nothing published, byte for byte
            assert len(_publications(wh)) == 1
        filler.unlink()
        again = _liucun(_demo_from(second, wh), _env(published_once))  # no manual clean-up before
        assert again.returncode == 0, again.stderr[-3000:]
        assert "leftover candidate" in again.stdout + again.stderr
        assert len(_assert_complete_publication(wh)) == 2 and _fingerprint(wh) != before
        assert not any((wh / ".runs").iterdir()) and not list(wh.glob(".liucun.duckdb.*"))
    finally:
        if subprocess.run(["umount", str(mount)]).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True)  # busy: detach it anyway


# --- an unreachable database source ------------------------------------------------------------

def test_an_unreachable_database_source_fails_the_run_names_it_and_never_shows_the_password(
        published_once: Path, tmp_path: Path):
    import yaml

    wh = tmp_path / "wh"
    shutil.copytree(published_once / "wh", wh, symlinks=True)
    before = _fingerprint(wh)
    config = yaml.safe_load((REPO / "flows" / "demo" / "liucun.yml").read_text())
    config["data_dir"] = str(published_once / "src_second")
    config["sources"]["crm_customers"] = {
        "kind": "customers", "timezone": "Asia/Shanghai",
        "postgres": {"dsn_env": "LIUCUN_TEST_CRM_DSN", "table": "crm.customers", "cursor": "updated_at"}}
    (tmp_path / "liucun.yml").write_text(yaml.safe_dump(config))
    password = "pw-" + secrets.token_hex(12)
    with socket.socket() as closed:  # bound, never listening: connections to it are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        env = {**_env(published_once),
               "LIUCUN_TEST_CRM_DSN": f"postgresql://liucun:{password}@127.0.0.1:{port}/shop"}
        started = time.perf_counter()
        run = _liucun([LIUCUN, "run", "--config", str(tmp_path / "liucun.yml"), "--warehouse", str(wh),
                       "--as-of", "2026-10-31"], env)
        seconds = time.perf_counter() - started
    assert run.returncode == 1, run.stderr[-3000:]
    tail = run.stderr.split("PIPELINE FAILED — nothing was published.\n", 1)[1]
    assert "source 'crm_customers'" in tail and "unreachable" in tail, tail
    assert "LIUCUN_TEST_CRM_DSN" in tail, "the message says which setting to check"
    assert password not in run.stdout + run.stderr
    assert not any(password.encode() in p.read_bytes() for p in wh.rglob("*") if p.is_file())
    assert _fingerprint(wh) == before and len(_publications(wh)) == 1
    assert seconds < 60, f"giving up on the source took {seconds:.0f}s"


# --- stopped by a signal -------------------------------------------------------------------------

STOPS = {
    # `kill PID` or a service manager: SIGTERM to liucun alone, while dbt builds the marts
    "sigterm-during-dbt": (signal.SIGTERM, False, "dbt build"),
    # Ctrl-C in a terminal: SIGINT to the whole foreground group (liucun, its Prefect server, and
    # dbt when one runs), while the sources are being extracted
    "ctrl-c-during-ingest": (signal.SIGINT, True, "extract-"),
}


@pytest.mark.parametrize("case", list(STOPS))
def test_a_signal_stops_the_run_cleanly_and_the_next_run_starts_cleanly(
        case: str, published_once: Path, clean_second_run: Path, tmp_path: Path):
    signum, to_group, when = STOPS[case]
    wh = tmp_path / "wh"
    shutil.copytree(published_once / "wh", wh, symlinks=True)
    before = _fingerprint(wh)
    proc = subprocess.Popen(_demo_from(published_once / "src_second", wh), env=_env(published_once),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen, out = False, []
    try:
        assert proc.stdout is not None
        deadline = time.time() + 300
        for line in proc.stdout:
            out.append(line)
            if when in line:
                seen = True
                time.sleep(0.5)  # well inside the step
                if to_group:
                    os.killpg(proc.pid, signum)
                else:
                    os.kill(proc.pid, signum)
                sent = time.perf_counter()
                break
            assert time.time() < deadline, "the run never reached " + when
        assert seen, "".join(out)[-3000:]
        rest, _ = proc.communicate(timeout=120)
        stopped_after = time.perf_counter() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = "".join(out) + rest
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, output[-3000:]  # exited, as shells report a stop by signal
    assert f"STOPPED by {name} — nothing was published" in output, output[-3000:]
    assert "is unchanged" in output and "Traceback" not in output, output[-3000:]
    # "within a few seconds": a generous bound on a shared 2-core machine, far below a build's length
    assert stopped_after < 30, f"the run took {stopped_after:.1f}s to stop"
    assert session_processes(proc.pid) == {}, "a child of the run outlived it"
    assert _fingerprint(wh) == before and len(_publications(wh)) == 1
    with Warehouse(wh).lock():  # released: taken at once, no waiting
        pass
    if case == "sigterm-during-dbt":  # the next run clears the leftovers and publishes what a clean run does
        again = _liucun(_demo_from(published_once / "src_second", wh), _env(published_once))
        assert again.returncode == 0, again.stderr[-3000:]
        assert "leftover candidate" in again.stdout + again.stderr
        assert len(_assert_complete_publication(wh)) == 2
        assert _marts_differ(wh, clean_second_run) == []
