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

# made here, once: two test workers importing Prefect at once raced to create it (a warning each)
Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)

# A pytest-xdist worker runs as `python -c`, so its __main__ has neither a file nor a spec; PySpark's
# connect utilities (pyspark/sql/connect/utils.py check_dependencies) then take the process for its
# own doctest run and may sys.exit(0) the worker. Name the worker's entry point as a script would.
_main = sys.modules["__main__"]
if not hasattr(_main, "__file__"):
    _main.__file__ = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c") else "pytest"

REPO = Path(__file__).resolve().parents[1]


def _worker_scope(nodeid: str) -> str:
    """The unit of work a test runs in under `make test`'s two workers: its module, so its module
    fixtures are built once; every Spark module (file name with "spark") together, so the run has one
    SparkSession."""
    module = nodeid.split("::", 1)[0]
    return "spark" if "spark" in Path(module).name else module


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier from its folder; the Spark group first: it is the longest (about a
    third of the suite), and the other worker takes the rest one module at a time meanwhile."""
    for item in items:
        tier = Path(str(item.fspath)).relative_to(REPO / "tests").parts[0]
        if tier in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, tier))
    items.sort(key=lambda item: _worker_scope(item.nodeid) != "spark")  # stable: else unchanged


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`--dist loadscope` by :func:`_worker_scope` (pytest-xdist's own loadgroup cannot be used:
    it renames node ids through an attribute pytest 9.2 no longer reads)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleOrSparkScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _worker_scope(nodeid)

    return ModuleOrSparkScheduling(config, log)


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
