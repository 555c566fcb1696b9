from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from flows.generate import generate

END = date(2025, 12, 31)


@pytest.fixture(scope="session")
def prefect_backend():
    """One temporary Prefect server for the session (starting one costs ~10-15 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


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
