"""dbt in the run's process prints nothing on the console, even before an invocation has read its
flags (a stop landing then made dbt print its traceback of the interruption on a slow machine:
tests/e2e/test_failure_safety.py, sigterm-during-dbt)."""

from __future__ import annotations

import traceback

import pytest


def test_dbts_events_reach_no_console_once_liucun_has_quieted_it(capfd: pytest.CaptureFixture[str]):
    from dbt.events.types import MainEncounteredError, MainStackTrace
    from dbt_common.events.event_manager_client import get_event_manager
    from dbt_common.events.functions import fire_event

    from flows.models.dbt_runner import _quiet_console

    manager = get_event_manager()
    saved = list(manager.loggers)
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            stack = traceback.format_exc()
        fire_event(MainStackTrace(stack_trace=stack))  # what dbt does when interrupted early
        printed = capfd.readouterr().out
        default_prints = "Traceback" in printed
        _quiet_console()
        fire_event(MainEncounteredError(exc="interrupted"))
        fire_event(MainStackTrace(stack_trace=stack))
        assert "Traceback" not in capfd.readouterr().out
        # the check above can fail: with dbt's default console logger in place it prints (unless an
        # earlier test in this process already quieted it)
        assert default_prints or not any(getattr(lg, "name", "") == "stdout_log" for lg in saved)
    finally:
        manager.loggers[:] = saved
