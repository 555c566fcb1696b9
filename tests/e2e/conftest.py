from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from flows.generate import generate

END = date(2025, 12, 31)


@pytest.fixture(scope="session", autouse=True)
def prefect_server(tmp_path_factory: pytest.TempPathFactory):
    """One real Prefect server for the whole e2e session (starting one costs 10-20 s on this machine):
    flows run in this process and every `liucun` subprocess (through PREFECT_API_URL in the
    environment they inherit) report to it, as they would to a team's server. Tests of the server
    liucun starts by itself, or of `liucun serve`, remove PREFECT_API_URL from their environment."""
    from flows.runtime.prefect_api import reporting_to, start_server, stop

    api = start_server(tmp_path_factory.mktemp("prefect_server"))
    try:
        with reporting_to(api):  # PREFECT_API_URL in os.environ and in this process's settings
            yield api
    finally:
        stop(api.pid)


@pytest.fixture(scope="session")
def prefect_backend(prefect_server):
    """The session's Prefect server, for tests that run the flow in this process."""
    return prefect_server


@pytest.fixture(scope="session")
def clean_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    generate(out, customers=2000, months=12, seed=11, end_date=END)
    return out


@pytest.fixture(scope="session")
def faulty_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faulty")
    generate(out, customers=2000, months=12, seed=11, end_date=END, faults=True)
    return out
