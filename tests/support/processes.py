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
