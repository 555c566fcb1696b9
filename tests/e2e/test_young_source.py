"""A young source: three weeks of orders, less than one complete month. Every grain is published side
by side (var period_grains), so its day and week figures are published and the report opens on the
week; the month has no complete period and no figures yet, and that is no gate failure (it once
blocked the whole run: "a retention mart is never empty")."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.support.report_checks import check_report

REPO = Path(__file__).resolve().parents[2]
FIRST, AS_OF = date(2026, 11, 9), date(2026, 11, 29)  # Monday to Sunday: three full weeks of November


def _young_orders(path: Path) -> pd.DataFrame:
    """Line items in the Online Retail export's layout: 300 customers over the three weeks."""
    rng = np.random.default_rng(5)
    days = (AS_OF - FIRST).days + 1
    rows, invoice = [], 600_000
    for c in range(300):
        first = int(rng.integers(0, days))
        later = rng.integers(first, days, size=int(rng.integers(0, 5)))
        for d in sorted({first, *map(int, later)}):
            invoice += 1
            day = FIRST + timedelta(days=d)
            for line in range(int(rng.integers(1, 3))):
                rows.append({"InvoiceNo": str(invoice), "StockCode": "85123A", "Description": "MUG",
                             "Quantity": int(rng.integers(1, 5)), "InvoiceDate": f"{day} 1{line}:15:00",
                             "UnitPrice": "2.55", "CustomerID": str(13_000 + c), "Country": "United Kingdom"})
    df = pd.DataFrame(rows)
    df.to_csv(path, index=False)
    return df


@pytest.fixture(scope="module")
def young(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, str]:
    root = tmp_path_factory.mktemp("young")
    orders = _young_orders(root / "orders.csv")
    env = {**os.environ, "ONLINE_RETAIL_CSV": str(root / "orders.csv")}
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("liucun")), "run", "--config",
         str(REPO / "examples" / "online_retail" / "liucun.yml"), "--warehouse", str(root / "wh"),
         "--as-of", AS_OF.isoformat()], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return root / "wh", orders, proc.stdout


def test_day_and_week_figures_are_published_before_the_first_month_completes(young):
    wh, orders, _ = young
    with duckdb.connect(str(wh / "liucun.duckdb"), read_only=True) as con:
        rates = con.execute("select period_grain, period_start, customers_start, customers_end, customers_new, "
                            "customers_retained from marts.rpt_retention_rate where segment_type = 'all' "
                            "order by period_grain, period_start").df()
        lifecycle = {g for (g,) in con.execute("select distinct period_grain from marts.rpt_activity_lifecycle").fetchall()}
        cohorts = con.execute("select period_grain, count(*) filter (where not is_complete), count(*) "
                              "from marts.rpt_cohort_retention group by period_grain").fetchall()
    assert set(rates.period_grain) == lifecycle == {"day", "week"}  # November is not complete: no month figure
    # November's cohort is in the cohort mart, every row of it flagged incomplete (the as-of month)
    incomplete, n = {g: (i, total) for g, i, total in cohorts}["month"]
    assert incomplete == n > 0
    # each grain recounted from the export with pandas sets
    lines = orders.assign(day=pd.to_datetime(orders.InvoiceDate).dt.normalize())
    for grain, freq in (("day", "D"), ("week", "W-SUN")):
        lines["period"] = lines.day.dt.to_period(freq)
        active = lines.groupby("period").CustomerID.agg(set)
        first = lines.groupby("CustomerID").period.min()
        got = rates[rates.period_grain == grain]
        periods = pd.period_range(FIRST, AS_OF, freq=freq)
        assert [pd.Timestamp(p).date() for p in got.period_start] == [p.start_time.date() for p in periods]
        for row, p in zip(got.itertuples(), periods, strict=True):
            s, e = active.get(p - 1, set()), active.get(p, set())
            assert (row.customers_start, row.customers_end, row.customers_new, row.customers_retained) == (
                len(s), len(e), int((first == p).sum()), len(s & e)), (grain, p)


def test_the_run_and_its_report_lead_with_the_week(young):
    wh, _, stdout = young
    # the headline of the run: the last complete week (the coarsest grain with a figure)
    assert re.search(r"headline: week of 2026-11-23 customer retention rate CRR", stdout), stdout[-2000:]
    page = wh / "parquet" / "current" / "report.html"
    html = page.read_text(encoding="utf-8")
    assert "Last complete week (2026-11-23)" in html
    assert 'data-grain-choice="week" aria-pressed="true"' in html and 'data-grain-choice="month"' not in html
    check_report(page, wh / "liucun.duckdb", "young-source")
