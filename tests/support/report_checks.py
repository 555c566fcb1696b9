"""What every published report must show, checked in a real headless Chromium with networking off.

The figures it is compared with are read from the publication's own marts here, by SQL written
for the test (not the report's queries), so a page that disagrees with its marts fails.
"""

from __future__ import annotations

import os
import re
from html import unescape
from pathlib import Path

import duckdb

from flows.report.page import LAST_PERIODS
from tests.support.browser import visit

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("LIUCUN_TEST_OUTPUT", REPO / "test-output"))

READY = "window.liucunReport.ready.then(c => ({charts: c, expected: window.liucunReport.expected}))"
# click the period selector's button of a grain (%s), then: the pressed buttons, the grains of the
# visible per-grain blocks and the visible figures' ids
SWITCH = """window.liucunReport.ready.then(() => {
  document.querySelector('[data-grain-choice="%s"]').click();
  const visible = [...document.querySelectorAll('.by-grain')].filter(el => el.offsetParent !== null);
  return {pressed: [...document.querySelectorAll('[data-grain-choice][aria-pressed="true"]')].map(b => b.dataset.grainChoice),
          body: document.body.dataset.grain,
          grains: [...new Set(visible.map(el => el.dataset.grain))],
          figures: visible.filter(el => el.id).map(el => el.id)};
})"""


def page_figures(html: str) -> dict[tuple[str, str], str]:
    """The headline table's cells as shown: (figure, period) -> text."""
    cells = re.findall(r'data-figure="([a-z_]+)" data-period="([a-z_]+)"[^>]*>\s*([^<]*)', html)
    return {(figure, period): unescape(text).strip() for figure, period, text in cells}


def check_report(page: Path, published: Path, screenshot: str) -> dict:
    """Open ``page`` offline and check it against the marts of ``published`` (a DuckDB file).
    Returns the charts' mark counts for the caller's own checks."""
    html = page.read_text(encoding="utf-8")
    assert "<script src=" not in html and 'rel="stylesheet"' not in html, "the page loads something"
    assert not re.search(r"""(src|href)=["']https?://""", html), "the page links a resource on the network"
    with duckdb.connect(str(published), read_only=True) as con:
        version, run_id = con.execute("select version, run_id from audit.publications "
                                      "order by published_at desc limit 1").fetchone()
        # the page opens on the coarsest grain with a headline figure (month; a young source's week)
        grain = con.execute(
            """select period_grain from marts.rpt_retention_rate where segment_type = 'all' and customers_start > 0
               order by case period_grain when 'month' then 0 when 'week' then 1 else 2 end limit 1""").fetchone()[0]
        grains = [g for (g,) in con.execute(
            "select distinct period_grain from marts.rpt_retention_rate").fetchall()]
        last = con.execute(
            """select period_start, customers_start, customers_end, customers_new, crr, strict_retention_rate
               from marts.rpt_retention_rate where segment_type = 'all' and customers_start > 0
               and base_definition = 'active_in_period' and period_grain = ?
               order by period_start desc limit 1""", [grain]).fetchone()
        cohort_cells = con.execute("select count(*) from marts.rpt_cohort_retention where segment_type = 'all' "
                                   "and cohort_type = 'first_time' and period_grain = ?", [grain]).fetchone()[0]
        lifecycle_periods = dict(con.execute(
            "select period_grain, count(*) from marts.rpt_activity_lifecycle group by period_grain").fetchall())
        # the curve of all customers, drawn at day 0 and at the end of each week since the first purchase
        survival_weeks = con.execute(
            "select count(distinct ceil(duration_days / 7.0)) from marts.rpt_survival_curves "
            "where group_type = 'all'").fetchone()[0]
        renewal_points = con.execute(
            "select count(observed_survival), count(fitted_survival), "
            "count(distinct case when fitted_survival is not null then plan end) "
            "from marts.rpt_membership_renewals").fetchone()
        # MRR: a line point per month, a bar per month and movement that is not 0
        mrr_marks = con.execute(
            "select count(*), count(nullif(new_mrr, 0)) + count(nullif(expansion_mrr, 0)) "
            "+ count(nullif(reactivation_mrr, 0)) + count(nullif(contraction_mrr, 0)) + count(nullif(churned_mrr, 0)) "
            "from marts.rpt_mrr_movements").fetchone()
        median_all = con.execute("select median_survival_days, median_ci_low_days, median_ci_high_days "
                                 "from marts.rpt_survival_summary where group_type = 'all'").fetchone()
    # the page is the one of this publication
    assert f'<meta name="liucun-version" content="{version}">' in html
    assert f'<meta name="liucun-run-id" content="{run_id}">' in html

    # the headline equals the marts: CRR recomputed as (E - N) / S from the mart's own S, E, N
    period, s, e, n, crr, strict = last
    shown = page_figures(html)
    assert shown[("crr", "last")] == f"{(e - n) / s:.1%}" == f"{crr:.1%}"
    assert shown[("customers_start", "last")] == f"{s:,}"
    assert shown[("customers_end", "last")] == f"{e:,}"
    assert shown[("customers_new", "last")] == f"{n:,}"
    assert shown[("strict_retention_rate", "last")] == f"{strict:.1%}"
    value = re.search(r'data-figure="crr" data-period="last"\s+data-value="([^"]+)"', html)
    assert value and abs(float(value.group(1)) - crr) < 1e-12
    assert f"Last complete {grain} ({str(period)[:7] if grain == 'month' else period})" in html

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{screenshot}.png"
    seen = visit(page, READY, screenshot=shot)
    assert seen.blocked == [], f"the page asked the network for {seen.blocked[:3]}"
    assert seen.console_errors == [] and seen.page_errors == [], (seen.console_errors, seen.page_errors)
    charts, expected = seen.result["charts"], seen.result["expected"]
    assert charts and set(charts) == set(expected)
    for chart, drawn in charts.items():
        assert drawn["error"] is None, (chart, drawn["error"])
        # every row of the chart's data is drawn (layers may draw more marks per row)
        assert drawn["marks"] >= expected[chart] > 0, (chart, drawn, expected[chart])
    assert charts["cohort_heatmap"]["marks"] == 2 * cohort_cells  # a cell and its label per row
    # new, returning, resurrecting, dormant per period, at every published grain (the others suffixed)
    for g in grains:
        chart = "activity_lifecycle" if g == grain else f"activity_lifecycle-{g}"
        # (a grain's time series draw its LAST_PERIODS latest periods: a display choice of the page)
        periods = min(lifecycle_periods[g], LAST_PERIODS.get(g, lifecycle_periods[g]))
        assert charts[chart]["marks"] == 4 * periods, (chart, charts[chart], lifecycle_periods)
    # a step line and its band over every weekly point of the curve of all customers
    assert charts["survival_curves"]["marks"] == 2 * survival_weeks > 2
    # the renewal curves: a dot per observed point, a line (solid, then dashed from the last observed
    # renewal on: that point twice per fitted plan) and a band over every fitted one
    observed_points, fitted_points, fitted_plans = renewal_points
    if observed_points:
        drawn = charts["membership_renewals"]["marks"]
        assert drawn == observed_points + 2 * fitted_points + fitted_plans > observed_points, (drawn, renewal_points)
    else:  # no paid memberships (Online Retail): the section says so instead of drawing
        assert "membership_renewals" not in charts
        assert "marts.rpt_membership_renewals has no rows in this publication: the sources have no paid memberships." in html
    months, bars = mrr_marks
    if months:
        assert charts["mrr_movements"]["marks"] == months + bars > months, (charts["mrr_movements"], mrr_marks)
    else:
        assert "mrr_movements" not in charts
        assert "marts.rpt_mrr_movements has no rows in this publication: the sources have no paid memberships." in html
    median, low, high = ("∞" if d is None else f"{d:,}" for d in median_all)
    row = re.search(r'<table id="table-survival_medians">.*?<tr><td class="text">all</td><td class="text">all</td>'
                    r'(.*?)</tr>', html, re.S)
    assert row, "the medians table has no row for all customers"
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row.group(1))
    interval = "—" if median_all[1] is None else f"{low} – {high}"
    assert cells[2] == ("—" if median_all[0] is None else median) and cells[3] == interval, cells
    assert shot.stat().st_size > 50_000  # a page of charts, not a blank one
    # the period selector: a click on another grain shows that grain's figures and headline, only them
    other = next((g for g in sorted(grains) if g != grain), None)
    if other is not None:
        switched = visit(page, SWITCH % other, screenshot=SCREENSHOTS / f"{screenshot}-{other}.png", clip_height=2400)
        assert switched.page_errors == [], switched.page_errors
        shown = switched.result
        assert shown["pressed"] == [other] and shown["body"] == other
        assert shown["grains"] == [other], shown  # every visible per-grain block is of the chosen grain
        assert f"figure-cohort_heatmap-{other}" in shown["figures"] and "figure-cohort_heatmap" not in shown["figures"]
    return charts
