"""Processes seen from outside, through Linux's /proc (what a kill or stop test checks)."""

from __future__ import annotations

from pathlib import Path


def session_processes(sid: int) -> dict[int, str]:
    """pid -> command line of the live (not zombie) processes of session ``sid``."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields[3]: the session id; Z: a zombie
            found[int(stat.parent.name)] = cmdline.strip()
    return found


def run_in_terminal(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float,
                    columns: int = 100) -> tuple[int, str]:
    """Run ``cmd`` with its output on a pseudo-terminal (as a person at a terminal sees it): its
    exit code and everything it wrote, escape sequences included."""
    import os
    import pty
    import select
    import subprocess
    import time

    master, slave = pty.openpty()
    env = {**env, "COLUMNS": str(columns), "LINES": "40", "TERM": "xterm-256color"}
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env, cwd=cwd)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the terminal closed: the process ended
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", errors="replace")


def as_seen(terminal_output: str) -> list[str]:
    """The lines a person reads at the end: escape sequences dropped and each carriage-return
    redraw reduced to what stayed (the last text written on the line)."""
    import re

    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07", "", terminal_output)
    return [line.split("\r")[-1].rstrip() for line in text.replace("\r\n", "\n").split("\n")
            if line.split("\r")[-1].strip()]
