"""Bring your own data: the public UCI Online Retail export through `liucun run`, as a user runs it.

Requires the dataset (ONLINE_RETAIL_CSV, default ../shared/datasets/online_retail.csv.gz); in CI
(CI=true) a missing dataset is a failure, never a skip.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.support.report_checks import check_report

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


def _purchase_lines() -> pd.DataFrame:
    """The purchase lines of the standard public analyses of this data set, in pandas over the raw
    CSV: customers without an ID and cancellations (invoices starting with "C") excluded, only lines
    with a positive quantity and price, with their month."""
    raw = pd.read_csv(DATASET, dtype={"InvoiceNo": str, "CustomerID": str}, parse_dates=["InvoiceDate"])
    lines = raw[raw.CustomerID.notna() & ~raw.InvoiceNo.str.startswith("C")
                & (raw.Quantity > 0) & (raw.UnitPrice > 0)].copy()
    lines["month"] = lines.InvoiceDate.dt.to_period("M")
    return lines


def _independent_cohorts() -> pd.DataFrame:
    """The standard public cohort analysis of this data set: cohort = month of first purchase; a
    customer is retained in month k when they bought in cohort month + k."""
    lines = _purchase_lines()
    lines["amount"] = (lines.Quantity * lines.UnitPrice).round(2)
    lines["cohort"] = lines.groupby("CustomerID").month.transform("min")
    lines["period_number"] = (lines.month - lines.cohort).apply(lambda d: d.n)
    grid = lines.groupby(["cohort", "period_number"]).agg(
        active_customers=("CustomerID", "nunique"), revenue=("amount", "sum")).reset_index()
    sizes = lines.groupby("cohort").CustomerID.nunique().rename("cohort_size")
    grid = grid.join(sizes, on="cohort")
    grid["cohort_period_start"] = grid.cohort.dt.start_time.dt.strftime("%Y-%m-%d")
    return grid


def test_cohort_retention_matches_an_independent_calculation(published: Path):
    expected = _independent_cohorts()
    with duckdb.connect(str(published), read_only=True) as con:
        marts = con.execute(
            "select cast(cohort_period_start as varchar) as cohort_period_start, period_number, "
            "cast(period_start as varchar) as period_start, cohort_size, active_customers, "
            "retention_rate, revenue, is_complete, period_grain "
            "from marts.rpt_cohort_retention where segment_type = 'all' and cohort_type = 'first_time'").df()
    # day, week and month cohorts side by side (var period_grains); the published figures are monthly
    assert set(marts.period_grain) == {"day", "week", "month"}
    marts = marts[marts.period_grain == "month"]
    # every cohort from Dec 2010 to Dec 2011; Dec 2011 (data to Dec 9) is flagged, never mixed in
    assert marts.cohort_period_start.nunique() == 13
    incomplete = marts[~marts.is_complete]
    assert set(incomplete.period_start) == {"2011-12-01"} and len(incomplete) == 13
    # cohort sizes: the well-known 4,338 customers with a purchase
    sizes = marts[marts.period_number == 0].set_index("cohort_period_start").cohort_size
    assert sizes.sum() == expected.drop_duplicates("cohort").cohort_size.sum() == 4_338
    got = marts[marts.active_customers > 0].set_index(["cohort_period_start", "period_number"]).sort_index()
    want = expected.set_index(["cohort_period_start", "period_number"]).sort_index()
    assert list(got.index) == list(want.index)
    assert (got.cohort_size == want.cohort_size).all()
    assert (got.active_customers == want.active_customers).all()
    assert ((got.retention_rate - want.active_customers / want.cohort_size).abs() < 1e-12).all()
    assert ((got.revenue.astype(float) - want.revenue).abs() < 0.01 * got.cohort_size).all()
    # the first cohort's month-1 retention, as published in every tutorial on this data set
    dec = got.loc["2010-12-01"]
    assert dec.loc[0, "cohort_size"] == 885 and dec.loc[1, "active_customers"] == 324  # 36.6%


def test_activity_lifecycle_matches_an_independent_calculation(published: Path):
    """Growth accounting by month from the purchase sets in pandas: new = first purchase this month,
    returning = bought this month and the month before, resurrecting = the other buyers, dormant =
    bought the month before and not this month."""
    lines = _purchase_lines()
    buyers = lines.groupby("month").CustomerID.agg(set)
    first = lines.groupby("CustomerID").month.min()
    want = {}
    for month in buyers.index:
        now, before = buyers[month], buyers.get(month - 1, set())
        new = {c for c in now if first[c] == month}
        want[str(month.start_time.date())] = (len(now), len(before), len(new), len(now & before),
                                              len(now - before - new), len(before - now))
    with duckdb.connect(str(published), read_only=True) as con:
        got = {str(r[0]): tuple(r[1:]) for r in con.execute(
            "select period_start, customers_active, customers_previous_active, customers_new, "
            "customers_returning, customers_resurrecting, customers_dormant "
            "from marts.rpt_activity_lifecycle where period_grain = 'month'").fetchall()}
    # complete months only: Dec 2010 to Nov 2011 (the data end on Dec 9, 2011)
    assert sorted(got) == [str(m.start_time.date()) for m in pd.period_range("2010-12", "2011-11", freq="M")]
    assert got == {m: want[m] for m in got}
    assert got["2011-11-01"][0] > 1_000  # November 2011, the busiest month, has its buyers


def test_retention_and_lifecycle_marts_publish_on_orders_only_data(published: Path):
    with duckdb.connect(str(published), read_only=True) as con:
        lifecycle = con.execute("select count(*) from marts.rpt_activity_lifecycle where period_grain = 'month'").fetchone()
        stages = dict(con.execute(
            "select stage, count(*) from marts.fct_customer_lifecycle "
            "where period_start = date '2011-11-01' group by stage").fetchall())
        segments = {r[0] for r in con.execute("select distinct segment_type from marts.rpt_retention_rate").fetchall()}
    assert lifecycle[0] >= 11
    assert sum(stages.values()) > 4000 and "churned" in stages and "mature" in stages
    assert {"all", "acquisition_channel", "first_order_channel", "region", "value_tier"} <= segments


def test_report_of_online_retail_draws_offline_and_says_what_it_lacks(published: Path):
    """Online Retail has orders only: the retention and lifecycle charts draw from its marts, and the
    sections whose marts are empty (no tickets, campaigns or cancellation flows) say so in words."""
    page = published.parent / "parquet" / "current" / "report.html"
    charts = check_report(page, published, "report-online-retail")
    html = page.read_text(encoding="utf-8")
    assert {"retention_over_time", "cohort_heatmap", "activity_lifecycle"} <= set(charts)
    empty = dict(re.findall(r'data-empty="(\w+)">([^<]+)<', html))
    assert "no rows in this publication" in empty["cancellation"]
    assert "no rows in this publication" in empty["winback"]
    for section in ("cancellation", "winback"):  # words, never an empty frame
        body = html.split(f'<section id="{section}">')[1].split("</section>")[0]
        assert 'class="chart"' not in body
    assert "quarantine" in charts  # 135,080 rows without a customer id, by reason
