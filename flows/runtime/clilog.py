"""Terminal vs debug log: the terminal shows messages, the debug log keeps the tracebacks.

``liucun run`` / ``demo`` / ``check`` write everything at DEBUG (liucun, Prefect, dbt's lines, GX)
to ``<warehouse>/logs/liucun-debug.log``; the console handlers Prefect installs keep their
messages but lose their tracebacks, so a user error reads as one paragraph. Records are already
redacted when they are made (flows/runtime/redact.py), so neither place holds personal data.
"""

from __future__ import annotations

import logging
from pathlib import Path

_MARK = "_liucun_debug_log"


class _NoTraceback(logging.Formatter):
    """Formats like the wrapped formatter, without the exception text."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def _loggers() -> list[logging.Logger]:
    manager = logging.Logger.manager
    return [logging.getLogger()] + [lg for lg in manager.loggerDict.values() if isinstance(lg, logging.Logger)]


def setup(warehouse: Path, console_level: int | None = None) -> Path:
    """Send DEBUG to the debug log and strip tracebacks from console handlers; returns the log path.
    ``console_level``: the console handlers show records from that level up only (a terminal
    showing the run's steps instead, or ``--quiet``); everything still reaches the debug log and
    Prefect. None: as Prefect configured them.

    Call after Prefect's logging is configured (``import prefect.main`` does it)."""
    path = warehouse / "logs" / "liucun-debug.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    file_handler = None
    for lg in _loggers():
        for h in lg.handlers:
            if getattr(h, _MARK, False):
                file_handler = h
    if file_handler is None:
        file_handler = logging.FileHandler(path, encoding="utf-8")
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        setattr(file_handler, _MARK, True)
    root = logging.getLogger()
    for lg in _loggers():
        for h in lg.handlers:
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) \
                    and not isinstance(h.formatter, _NoTraceback):
                h.setFormatter(_NoTraceback(h.formatter))
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                if not hasattr(h, "_liucun_level"):
                    h._liucun_level = h.level  # type: ignore[attr-defined]
                h.setLevel(h._liucun_level if console_level is None  # type: ignore[attr-defined]
                           else max(h._liucun_level, console_level))  # type: ignore[attr-defined]
        if (lg is root or not lg.propagate) and file_handler not in lg.handlers:
            lg.addHandler(file_handler)
    own = logging.getLogger("liucun")  # the CLI's own debug records: the file only, never the terminal
    own.setLevel(logging.DEBUG)
    own.propagate = False
    if file_handler not in own.handlers:
        own.addHandler(file_handler)
    return path


def log_exception(exc: BaseException, what: str) -> None:
    """Put a failure's traceback into the debug log only."""
    logging.getLogger("liucun.cli").debug("%s", what, exc_info=(type(exc), exc, exc.__traceback__))
