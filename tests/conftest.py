"""Shared fixtures. Real DuckDB files, real dbt, real GX, real Prefect: nothing is mocked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("LIUCUN_PII_SALT", "test-salt-not-a-secret")
os.environ.setdefault("PREFECT_HOME", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "prefect_home"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import flows  # noqa: F401  (pins telemetry-off defaults)

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier from its folder."""
    for item in items:
        tier = Path(str(item.fspath)).relative_to(REPO / "tests").parts[0]
        if tier in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    """The test run's one SparkSession (local[2]); its warehouse and metastore are throwaway."""
    from tests.support.spark import local_session

    session = local_session(tmp_path_factory.mktemp("spark"))
    yield session
    session.stop()
