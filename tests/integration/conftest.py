from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from flows.generate import generate
from tests.support.pipeline import build_candidate

END = date(2025, 12, 31)


@pytest.fixture(scope="session")
def small_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sources")
    generate(out, customers=3000, months=12, seed=7, end_date=END)
    return out


@pytest.fixture(scope="session")
def built(small_sources: Path, tmp_path_factory: pytest.TempPathFactory):
    """(candidate db, dbt run summary): the small sample ingested and fully built by dbt."""
    work = tmp_path_factory.mktemp("candidate")
    return build_candidate(small_sources, work, END, os.environ["LIUCUN_PII_SALT"])
