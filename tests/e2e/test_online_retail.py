"""Bring your own data: the public UCI Online Retail export through `liucun run`, as a user runs it.

Requires the dataset (ONLINE_RETAIL_CSV, default ../shared/datasets/online_retail.csv.gz); in CI
(CI=true) a missing dataset is a failure, never a skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
DATASET = Path(os.environ.get("ONLINE_RETAIL_CSV", REPO.parent / "shared" / "datasets" / "online_retail.csv.gz"))


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not DATASET.exists():
        if os.environ.get("CI"):
            pytest.fail(f"the Online Retail dataset is required in CI: {DATASET} not found")
        pytest.skip(f"{DATASET} not found (set ONLINE_RETAIL_CSV)")
    wh = tmp_path_factory.mktemp("online_retail")
    env = {**os.environ, "ONLINE_RETAIL_CSV": str(DATASET), "PREFECT_HOME": str(wh / "prefect")}
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("liucun")), "run", "--config",
         str(REPO / "examples" / "online_retail" / "liucun.yml"), "--warehouse", str(wh / "wh"),
         "--as-of", "2011-12-09"], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return wh / "wh" / "liucun.duckdb"


def test_every_row_is_accounted_for(published: Path):
    raw = pd.read_csv(DATASET, dtype=str, keep_default_na=False)
    assert len(raw) == 541_909
    unidentified = int((raw.CustomerID == "").sum())
    with duckdb.connect(str(published), read_only=True) as con:
        read, loaded, quarantined = con.execute(
            "select sum(rows_read), sum(rows_loaded), sum(rows_quarantined) from audit.source_loads").fetchone()
        reasons = dict(con.execute("select reason, count(*) from audit.quarantine group by 1").fetchall())
    assert read == 541_909 == loaded + quarantined
    assert reasons == {"no_customer_identifier": unidentified} and unidentified == 135_080


def test_order_marts_match_the_published_facts(published: Path):
    raw = pd.read_csv(DATASET, dtype=str, keep_default_na=False)
    identified = raw[raw.CustomerID != ""]
    with duckdb.connect(str(published), read_only=True) as con:
        n_orders, n_customers = con.execute(
            "select count(*), count(distinct customer_id) from marts.fct_orders").fetchone()
        dim = con.execute("select count(*) from marts.dim_customers where orders > 0").fetchone()[0]
        retention = con.execute("select count(*) from marts.rpt_retention_rate").fetchone()[0]
        cancelled = con.execute(
            "select count(*) from marts.fct_orders where order_id like 'C%' and not is_qualifying").fetchone()[0]
    assert n_orders == identified.InvoiceNo.nunique()
    assert n_customers == dim == 4_372  # the dataset's well-known count of customers
    assert cancelled == identified[identified.InvoiceNo.str.startswith("C")].InvoiceNo.nunique()
    assert retention >= 11  # Jan..Nov 2011 are complete months with a previous month


def test_touchpoint_marts_are_published_empty_not_failing(published: Path):
    with duckdb.connect(str(published), read_only=True) as con:
        tables = {r[0] for r in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'marts'").fetchall()}
    assert {"fct_orders", "dim_customers", "rpt_retention_rate"} <= tables
