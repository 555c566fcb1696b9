"""No personal data in any message: one redaction applied where messages are made.

Personal data (phones, emails) and secrets (passwords in DSNs) can reach a message through a
reader's error (DuckDB quotes the line it failed on), a conversion error, a database error, a
traceback or a log line that formats a value. Instead of masking at each call site, messages are
redacted at the three places every message passes through:

1. **Log records** — :func:`install` puts a log-record factory in place (for every logger: liucun's,
   Prefect's — whose API handler stores logs in Prefect's database — dbt's and GX's): the formatted
   message and any traceback text are redacted when the record is created, before any handler
   (terminal, file, Prefect API) sees it.
2. **Exceptions leaving a task or the flow** — :func:`redacting` wraps each Prefect task and the CLI;
   an exception whose text would change under redaction is replaced by :class:`RedactedError`
   with the redacted text (no cause chain), so Prefect's stored state message and the terminal
   show only that. liucun's own errors are redacted when made (:class:`LiucunError`).
3. **What the CLI prints** — through :func:`redact`.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import types
from collections.abc import Callable
from typing import Any, TypeVar

from flows.ingest.pii import mask_text

_DSN_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
# password=... in a DSN; token=... / secret=... in a Spark Connect URL (sc://host:15002/;token=...)
_KV_PASSWORD = re.compile(r"((?:password|token|secret)\s*=\s*)('[^']*'|[^;\s]+)", re.I)


_secrets: set[str] = set()  # credentials this process was given (e.g. a Spark Thrift password)


def register_secret(value: str) -> None:
    """Mask ``value`` wherever it appears in any later message (a password read from the
    environment or a Prefect Secret block, which no pattern would recognise)."""
    if value and len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    """Mask phones, emails, DSN passwords, connection tokens and registered secrets in a message."""
    for secret in _secrets:
        text = text.replace(secret, "***")
    return _KV_PASSWORD.sub(r"\1***", _DSN_PASSWORD.sub(r"\1***@", mask_text(text)))


class LiucunError(RuntimeError):
    """Base of liucun's user-facing errors: the message is redacted when the error is made."""

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(redact(str(message)), *args)


class RedactedError(LiucunError):
    """Stands in for an exception whose message held personal data or a secret."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(f"{type(exc).__name__}: {exc}")
        self.original_type = type(exc).__name__


def redacted_exception(exc: BaseException) -> BaseException:
    """``exc`` itself when its message is clean, else a :class:`RedactedError` with the clean text."""
    if isinstance(exc, LiucunError) or not isinstance(exc, Exception):
        return exc
    text = str(exc)
    return exc if redact(text) == text and _chain_clean(exc) else RedactedError(exc)


def _chain_clean(exc: BaseException) -> bool:
    seen, e = set(), exc.__cause__ or exc.__context__
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if redact(str(e)) != str(e):
            return False
        e = e.__cause__ or e.__context__
    return True


F = TypeVar("F", bound=Callable[..., Any])


def redacting(fn: F) -> F:
    """Re-raise whatever ``fn`` raises with personal data and secrets masked.

    The wrapper is given ``fn``'s module globals, so Prefect (which validates flow and task
    parameters from their annotations, written as strings under ``from __future__ import
    annotations``) resolves them where ``fn`` was defined."""
    clean_of = redacted_exception

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            clean = clean_of(exc)
            if clean is exc:
                raise
            raise clean from None

    rebound = types.FunctionType(wrapper.__code__, fn.__globals__, fn.__name__, None, wrapper.__closure__)
    return functools.update_wrapper(rebound, fn)  # type: ignore[return-value]


_installed = threading.Lock()
_factory_installed = False


def install() -> None:
    """Redact every log record at creation (idempotent)."""
    global _factory_installed
    with _installed:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a broken format string: keep the template
                message = str(record.msg)
            clean = redact(message)
            if clean != message or record.args:
                record.msg, record.args = clean, ()
            if record.exc_info and record.exc_info[1] is not None:
                text = logging.Formatter().formatException(record.exc_info)
                record.exc_text = redact(text)
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True
