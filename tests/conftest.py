"""Shared fixtures. Real DuckDB files, real dbt, real GX, real Prefect: nothing is mocked."""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path

import pytest

os.environ.setdefault("LIUCUN_PII_SALT", "test-salt-not-a-secret")
os.environ.setdefault("PREFECT_HOME", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "prefect_home"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import flows  # noqa: F401  (pins telemetry-off defaults)

# A pytest-xdist worker runs as `python -c`, so its __main__ has neither a file nor a spec; PySpark's
# connect utilities (pyspark/sql/connect/utils.py check_dependencies) then take the process for its
# own doctest run and may sys.exit(0) the worker. Name the worker's entry point as a script would.
_main = sys.modules["__main__"]
if not hasattr(_main, "__file__"):
    _main.__file__ = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c") else "pytest"

REPO = Path(__file__).resolve().parents[1]


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier from its folder, and with the group it runs in under `make test`'s
    two workers (`pytest -n 2 --dist loadgroup`): a test module is one group, so its module fixtures
    are built once; the Spark tests are one group, so the run has one SparkSession. The Spark group
    comes first: it is the longest (about a third of the suite), and the other worker takes the rest
    one module at a time meanwhile."""
    for item in items:
        relative = Path(str(item.fspath)).relative_to(REPO / "tests")
        if relative.parts[0] in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, relative.parts[0]))
        spark = item.get_closest_marker("spark") is not None
        item.add_marker(pytest.mark.xdist_group("spark" if spark else relative.as_posix()))
    items.sort(key=lambda item: item.get_closest_marker("spark") is None)  # stable: else unchanged


DEMO_END = date(2026, 10, 31)  # the demo sample's last day (liucun demo's default)


@pytest.fixture(scope="session")
def demo_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo-size sample (20,000 people, 24 months, seed 42), generated once for the test run:
    the generator's own tests and the integration tests that need its planted truths read it."""
    from flows.generate import generate

    out = tmp_path_factory.mktemp("demo_sources")
    generate(out, customers=20000, months=24, seed=42, end_date=DEMO_END)
    return out


@pytest.fixture(scope="session")
def demo_built(demo_sources: Path, tmp_path_factory: pytest.TempPathFactory):
    """(candidate db, dbt run summary): the demo sample ingested and built by dbt, once (tests only
    read it)."""
    from tests.support.pipeline import build_candidate

    return build_candidate(demo_sources, tmp_path_factory.mktemp("demo_candidate"), DEMO_END,
                           os.environ["LIUCUN_PII_SALT"])


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    """The test run's one SparkSession (local[2]); its warehouse and metastore are throwaway."""
    from tests.support.spark import local_session

    session = local_session(tmp_path_factory.mktemp("spark"))
    yield session
    session.stop()
