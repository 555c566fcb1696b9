"""What a person at a terminal sees while a run works: one line per step, a bar for long steps.

The flow announces its steps here (:func:`start`, :func:`advance`, :func:`done`, :func:`note`);
nothing is shown unless the CLI installed a display (:func:`show_in_terminal`), which it does only
when its output is a terminal and ``--quiet`` was not given. Without one every call is a no-op, so
cron, CI and Prefect workers see the plain log lines they always did, and the full logs still go
to Prefect and to the debug log (flows/runtime/clilog.py).

Calls may come from any thread (Prefect runs tasks in a thread pool, dbt reports from its own).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_display: TerminalProgress | None = None
_current: str | None = None  # the step dbt's node results advance


class TerminalProgress:
    """Steps as rich progress rows: a spinner and, once its size is known, a bar with done/total;
    a finished step leaves one line (a check mark, what it did, its seconds)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = Console(highlight=False)
        # a bar and "done/total" once the step's size is known (sources read, dbt nodes), else the spinner
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description:<28}"),
                                 BarColumn(bar_width=30, pulse_style="bar.back"), TextColumn("{task.fields[count]}"),
                                 TimeElapsedColumn(), console=self.console, transient=True)
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> TerminalProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, step: str, total: int | None) -> None:
        self.tasks[step] = self.progress.add_task(step, total=total, count=f"0/{total}" if total else "")

    def advance(self, step: str, done: int | None, total: int | None) -> None:
        task = self.tasks.get(step)
        if task is None:
            return
        if done is None:
            self.progress.advance(task)
            if total is not None:
                self.progress.update(task, total=total)
        else:
            self.progress.update(task, completed=done, total=total)
        state = next(t for t in self.progress.tasks if t.id == task)
        if state.total:
            self.progress.update(task, count=f"{int(state.completed)}/{int(state.total)}")

    def done(self, step: str, detail: str, seconds: float, ok: bool, lines: list[str]) -> None:
        task = self.tasks.pop(step, None)
        if task is not None:
            self.progress.remove_task(task)
        mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
        self.console.print(f"{mark} {step:<28} [dim]{seconds:>5.1f}s[/dim]  {detail}".rstrip())
        for line in lines:
            self.note(line)

    def note(self, text: str) -> None:
        self.console.print(f"  [dim]{text}[/dim]")


@contextmanager
def show_in_terminal() -> Iterator[TerminalProgress]:
    """Show the run's steps on this terminal for the duration of the block."""
    global _display
    with TerminalProgress() as display:
        _display = display
        try:
            yield display
        finally:
            _display = None


def start(step: str, total: int | None = None) -> None:
    global _current
    with _lock:
        _current = step
        if _display is not None:
            _display.start(step, total)


def advance(step: str | None = None, done: int | None = None, total: int | None = None) -> None:
    """One more unit of ``step`` (the current step when None), or ``done`` of ``total``."""
    with _lock:
        step = step or _current
        if _display is not None and step is not None:
            _display.advance(step, done, total)


def done(step: str, detail: str = "", seconds: float = 0.0, ok: bool = True, lines: list[str] | None = None) -> None:
    """The step ended: its line (and ``lines`` under it, e.g. one per source)."""
    global _current
    with _lock:
        if _current == step:
            _current = None
        if _display is not None:
            _display.done(step, detail, seconds, ok, lines or [])


def note(text: str) -> None:
    """An indented line under the current step (e.g. one source's rows)."""
    with _lock:
        if _display is not None:
            _display.note(text)


@contextmanager
def step(name: str, total: int | None = None) -> Iterator[dict[str, Any]]:
    """A step shown while it runs; set ``detail`` in the yielded dict to say what it did, and
    ``lines`` to list more under it."""
    info: dict[str, Any] = {"detail": "", "lines": []}
    started = time.perf_counter()
    start(name, total)
    ok = False
    try:
        yield info
        ok = True
    finally:
        done(name, info["detail"] if ok else "failed", time.perf_counter() - started, ok, info["lines"])
