"""The report page: sections of charts and tables from one publication, rendered by one template.

:func:`render` queries the publication (flows/report/queries.py), builds the charts
(flows/report/charts.py) and fills ``templates/report.html.j2``. The page is self-contained: the
Vega, Vega-Lite and vega-embed JavaScript comes from vl-convert's bundle and is inlined, every
chart's data is in its specification, styles are inline. It opens with no network.

Each figure says which mart it reads and how the figure is defined, with a link to the mart's dbt
docs entry. A section whose marts have no rows (Online Retail has no tickets, no campaigns) says so
in words instead of drawing an empty frame.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from flows.publish.warehouse import write_atomically
from flows.report import charts
from flows.report.queries import GRAIN_ORDER, Headline, MartReader

TEMPLATES = Path(__file__).with_name("templates")
GATE_LAYERS = ("raw", "staging", "marts")


@dataclass
class Figure:
    """One chart or table: what it shows, which mart it reads, how the figure is defined."""

    id: str
    title: str
    mart: str
    definition: str
    spec: dict[str, Any] | None = None  # a Vega-Lite specification
    table: dict[str, Any] | None = None  # {"columns": [...], "rows": [[...]]}
    rows: int = 0  # rows of data behind the figure (the test compares the drawn marks with it)
    empty: str | None = None  # why there is nothing to draw
    grain: str | None = None  # the period grain it draws (the page's grain selector shows one grain)


@dataclass
class Section:
    id: str
    title: str
    intro: str
    figures: list[Figure] = field(default_factory=list)
    empty: str | None = None


@dataclass
class GateView:
    layer: str
    passed: bool | None  # None: its validation report is not available
    evaluated: int
    tables: int
    warnings: list[dict[str, Any]]
    failures: list[dict[str, Any]]


@dataclass
class ReportMeta:
    """Which publication the page is drawn from."""

    version: str
    run_id: str
    as_of: str
    engine: str
    published_at: str | None = None  # None while the run is publishing it
    gates: list[GateView] = field(default_factory=list)
    docs_url: str | None = None  # the dbt docs site; mart links point into it


def gate_views(report_dir: Path | None) -> list[GateView]:
    """Each layer's gate from the run's validation reports (``validation_<layer>.json``)."""
    views = []
    for layer in GATE_LAYERS:
        path = None if report_dir is None else report_dir / f"validation_{layer}.json"
        if path is None or not path.is_file():
            views.append(GateView(layer, None, 0, 0, [], []))
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        outcomes = data.get("outcomes", [])

        def brief(o: dict[str, Any]) -> dict[str, Any]:  # no failing-row samples: they may hold customer data
            return {"table": o["table"], "check": o.get("description") or o["expectation"],
                    "column": o.get("column") or "", "observed": o.get("observed"),
                    "unexpected": o.get("unexpected_count"), "total": o.get("element_count")}

        views.append(GateView(
            layer, bool(data.get("passed")), int(data.get("evaluated", 0)), len({o["table"] for o in outcomes}),
            [brief(o) for o in outcomes if o["severity"] == "warning" and not o["success"]],
            [brief(o) for o in outcomes if o["severity"] == "blocking" and not (o["success"] and o["evaluated"])]))
    return views


def _pct(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1%}"


def _int(x: int | None) -> str:
    return "—" if x is None else f"{int(x):,}"


def _table(df: pd.DataFrame, formats: dict[str, str]) -> dict[str, Any]:
    """A DataFrame as the template's table: column names and formatted cells."""
    def cell(column: str, value: Any) -> str:
        if value is None or pd.isna(value):  # None, NaN, and pandas' NA of nullable integer columns
            return "—"
        kind = formats.get(column)
        if kind == "pct":
            return f"{float(value):.1%}"
        if kind == "int":
            return f"{int(value):,}"
        if kind == "num":
            return f"{float(value):,.2f}"
        return str(value)
    return {"columns": list(df.columns), "numeric": [c in formats for c in df.columns], "rows": [[cell(c, v) for c, v in zip(df.columns, row, strict=True)]
                                                  for row in df.itertuples(index=False)]}


def _spec(chart: Any) -> dict[str, Any]:
    return chart.to_dict()


class _Builder:
    def __init__(self, reader: MartReader) -> None:
        self.r = reader
        self.counts: dict[str, int] = {}

    def rows(self, mart: str) -> int:
        if mart not in self.counts:
            self.counts[mart] = self.r.count(f"marts.{mart}")
        return self.counts[mart]

    def missing(self, mart: str, what: str) -> str | None:
        """Why a figure on ``mart`` cannot be drawn, or None when it has rows."""
        if not self.r.has(f"marts.{mart}"):
            return f"This publication has no marts.{mart}."
        if self.rows(mart) == 0:
            return f"marts.{mart} has no rows in this publication: {what}"
        return None

    def section(self, sid: str, title: str, intro: str, mart: str, what: str) -> Section:
        """A section that needs ``mart``: it says why it is empty when the mart has no rows."""
        return Section(sid, title, intro, empty=self.missing(mart, what))

    # ---- sections --------------------------------------------------------------------------------

    def retention(self, grains: list[str]) -> Section:
        s = Section("retention", "Retention",
                    "Who stays from one period to the next, for all customers and by segment, and how "
                    "each acquisition cohort keeps its customers." + (
                        f" {', '.join(sorted(grains, key=GRAIN_ORDER.index, reverse=True)).capitalize()} are published side by "
                        "side: the period selector at the top switches between them." if len(grains) > 1 else ""))
        why = self.missing("rpt_retention_rate", "no complete period with customers yet (the sources "
                           "cover less than two complete periods).")
        if why or not grains:
            s.empty = why or "No retention figures in this publication."
            return s
        cohorts = self.missing("rpt_cohort_retention", "no acquisition cohort yet.")
        for grain in grains:
            s.figures += self._retention_figures(grain, grain_id(grain, grains), cohorts)
        return s

    def _retention_figures(self, grain: str, fid: Any, cohorts_missing: str | None) -> list[Figure]:
        recent = LAST_PERIODS.get(grain)
        df = self.r.retention_over_time(grain, recent)
        latest = "" if recent is None else f" The latest {recent} {grain}s; the mart has them all."
        figures = [Figure(
            fid("retention_over_time"), f"CRR and strict retention per {grain}, by segment", "rpt_retention_rate",
            "CRR = (E − N) / S: E customers active in the period, N of them new, S active in the period "
            f"before; strict retention = customers active in both periods / S. Complete periods only.{latest}",
            spec=_spec(charts.retention_over_time(df, grain)),
            rows=int((df["segment_type"] == charts.segmentations(df)[0]).sum()), grain=grain)]
        if cohorts_missing:
            return [*figures, Figure(fid("cohort_heatmap"), "Cohort retention", "rpt_cohort_retention", "",
                                     empty=cohorts_missing, grain=grain)]
        last = LAST_COHORTS.get(grain)
        cells = self.r.cohort_cells(grain, last)
        shown = "" if last is None else f" The latest {last} {ADJECTIVE[grain]} cohorts; the mart has them all."
        figures.append(Figure(
            fid("cohort_heatmap"), f"Acquisition-cohort retention by {grain}", "rpt_cohort_retention",
            f"Customers first active in a {grain} (the cohort) who are active again k {grain}s later, as a "
            "share of the cohort and as a count. Starred, pale cells: the period holding the as-of "
            f"date, not complete yet.{shown}",
            spec=_spec(charts.cohort_heatmap(cells, grain)), rows=len(cells), grain=grain))
        means = self.r.cohort_mean_curve(grain)
        figures.append(Figure(
            fid("cohort_curves"), f"Retention curves per {ADJECTIVE[grain]} cohort", "rpt_cohort_retention",
            "Each grey line is a cohort's share active k periods after acquisition (complete periods "
            "only). Bold: the mean weighted by cohort size (Σ active / Σ cohort size); dashed: the simple "
            f"mean of the cohorts' rates (every cohort).{shown}",
            spec=_spec(charts.cohort_curves(cells, means, grain)),
            rows=int(cells["is_complete"].sum()) + 2 * len(means), grain=grain))
        return figures

    def lifecycle(self, grains: list[str], lifecycle_grain: str | None) -> Section:
        s = Section("lifecycle", "Lifecycle",
                    "Activity lifecycle as PostHog draws it (at the selected period), and each customer's "
                    "business stage (introduction, growth, mature, dormant, churned) over time.")
        if not grains and lifecycle_grain is None:
            s.empty = "No period figures in this publication."
            return s
        why = self.missing("rpt_activity_lifecycle", "no complete period yet.")
        for grain in grains or [None]:
            fid = grain_id(grain, grains)
            if why or grain is None:
                s.figures.append(Figure(fid("activity_lifecycle"), "Activity lifecycle", "rpt_activity_lifecycle",
                                        "", empty=why or "No complete period yet.", grain=grain))
                continue
            recent = LAST_PERIODS.get(grain)
            df = self.r.activity_lifecycle(grain, recent)
            latest = "" if recent is None else f" The latest {recent} {grain}s; the mart has them all."
            s.figures.append(Figure(
                fid("activity_lifecycle"), f"Activity lifecycle per {grain}", "rpt_activity_lifecycle",
                "Active customers split into new (first activity), returning (active the period before) "
                "and resurrecting (inactive the period before, active earlier); dormant (active the period "
                f"before, not now) drawn below zero.{latest}",
                spec=_spec(charts.activity_lifecycle(df, grain)), rows=len(df), grain=grain))
        why = self.missing("rpt_lifecycle_kpis", "no complete period of the lifecycle grain (var period_grain) yet.")
        if why or lifecycle_grain is None:
            s.figures.append(Figure("stage_sizes", "Lifecycle stages", "rpt_lifecycle_kpis", "",
                                    empty=why or "No lifecycle stages yet."))
        else:
            df = self.r.stage_sizes(lifecycle_grain)
            s.figures.append(Figure(
                "stage_sizes", f"Customers per lifecycle stage, per {lifecycle_grain}", "rpt_lifecycle_kpis",
                "Customers in each stage at each period (metric = customers): introduction (new), growth, "
                "mature, dormant and churned, with prospects not yet buying. One grain (var period_grain).",
                spec=_spec(charts.stage_sizes(df, lifecycle_grain)), rows=len(df)))
        why = self.missing("rpt_lifecycle_transitions", "no stage transitions yet.")
        if why or lifecycle_grain is None:
            s.figures.append(Figure("transitions", "Stage transitions", "rpt_lifecycle_transitions", "",
                                    empty=why or "No stage transitions yet."))
        else:
            period, df = self.r.transitions(lifecycle_grain)
            s.figures.append(Figure(
                "transitions", f"Stage transitions into {period}", "rpt_lifecycle_transitions",
                "Customers by their stage the period before (rows) and this period (columns); colour: share "
                "of the row.", spec=_spec(charts.transition_matrix(df)), rows=len(df)))
        return s

    def churn(self) -> Section:
        s = Section("churn", "Churn", "Who was lost, how (type, voluntary or not), and which touchpoint "
                    "experiences come before churn more often than without them.")
        why = self.missing("fct_churn_events", "no churn event in the sources' history.")
        if why:
            s.figures.append(Figure("churn_types", "Churn events", "fct_churn_events", "", empty=why))
        else:
            df = self.r.churn_by_month()
            s.figures.append(Figure(
                "churn_types", "Churn events per month by type", "fct_churn_events",
                "Churn events by the month they were detected, by churn type (natural, soft, hard, "
                "experience, involuntary; unknown when no signal explains it).",
                spec=_spec(charts.churn_over_time(df, "churn_type")), rows=int(df.groupby(["month", "churn_type"]).ngroups)))
            s.figures.append(Figure(
                "churn_voluntariness", "Voluntary and involuntary churn per month", "fct_churn_events",
                "Involuntary: the customer's last payment failed and was never recovered; voluntary: all "
                "other churn.",
                spec=_spec(charts.churn_over_time(df, "voluntariness")),
                rows=int(df.groupby(["month", "voluntariness"]).ngroups)))
        why = self.missing("rpt_churn_drivers", "no touchpoint experience with churn outcomes to compare.")
        df = None if why else self.r.churn_drivers()
        if df is None or df.empty:
            s.figures.append(Figure("drivers", "Churn drivers", "rpt_churn_drivers", "",
                                    empty=why or "No driver has an odds ratio (no exposed customer churned or stayed)."))
        else:
            s.figures.append(Figure(
                "drivers", "Churn drivers: odds ratios with 95 % intervals", "rpt_churn_drivers",
                "Odds of churning within the horizon after an experience (exposed) against without it, "
                "with the Woolf 95 % interval; drivers with fewer exposed customers than the minimum "
                "support are drawn grey and not ranked.",
                spec=_spec(charts.driver_forest(df)), rows=2 * len(df) + 1))
        return s

    def survival(self) -> Section:
        s = self.section("survival", "Survival", "How long customers stay customers: the share not yet "
                         "churned each day after their first purchase (Kaplan–Meier), and the median.",
                         "rpt_survival_curves", "no customer with a qualifying purchase yet.")
        if s.empty:
            return s
        curves = self.r.survival_curves()
        default = charts.segmentations(curves, "group_type")[0]
        s.figures.append(Figure(
            "survival_curves", "Time to churn (Kaplan–Meier), by group", "rpt_survival_curves",
            "S(t) = Π (1 − churned / at risk) over the days up to t since the first purchase, with its "
            "95 % band (Greenwood, log–log); customers not churned by the as-of date count until then "
            "(censored). A customer with one purchase churns by inactivity the day the lifecycle's "
            "churn threshold is crossed, hence a step there. Drawn at the end of each week; the mart "
            "has every day.",
            spec=_spec(charts.survival_curves(curves)), rows=2 * int((curves["group_type"] == default).sum())))
        summary = self.r.survival_summary()

        def days(x: Any) -> str:
            return "∞" if pd.isna(x) else f"{int(x):,}"

        shown = pd.DataFrame({
            "group": summary["group_type"], "value": summary["group_value"], "customers": summary["customers"],
            "churned": summary["churned"], "median (days)": summary["median_survival_days"],
            "95 % interval": [f"{days(lo)} – {days(hi)}" if not pd.isna(lo) else "—"
                              for lo, hi in zip(summary["median_ci_low_days"], summary["median_ci_high_days"],
                                                strict=True)],
            "S(90)": summary["survival_90d"], "S(180)": summary["survival_180d"], "S(365)": summary["survival_365d"]})
        s.figures.append(Figure(
            "survival_medians", "Median survival and survival at 90 / 180 / 365 days", "rpt_survival_summary",
            "Median: the first day on which half the group has churned (— : not reached), with its 95 % "
            "interval (∞: unbounded); S(90), S(180), S(365): the share not churned by then (— : beyond the "
            "longest follow-up).",
            table=_table(shown, {"customers": "int", "churned": "int", "median (days)": "int",
                                 "S(90)": "pct", "S(180)": "pct", "S(365)": "pct"}),
            rows=len(summary)))
        return s

    def memberships(self) -> Section:
        s = self.section("memberships", "Membership renewals", "Paid members still paying after each renewal, "
                         "per plan: observed, and fitted and projected by the shifted-beta-geometric model.",
                         "rpt_membership_renewals", "the sources have no paid memberships.")
        if s.empty:
            return s
        df = self.r.membership_renewals()
        s.figures.append(Figure(
            "membership_renewals", "Members still paying after t renewals", "rpt_membership_renewals",
            "Dots: observed (Kaplan–Meier over the renewal decisions seen so far, so young cohorts count "
            "until their latest renewal). Line: the sBG fit with its 95 % band, dashed where it projects "
            "beyond the longest observed run. A plan without both a cancellation and a renewal has "
            "dots only.",
            spec=_spec(charts.membership_renewals(df)),
            rows=int(df["observed_survival"].notna().sum() + df["fitted_survival"].notna().sum())))
        fits = self.r.sbg_fits()
        if fits.empty:
            s.figures.append(Figure("sbg_fits", "sBG fits", "rpt_sbg_fit", "",
                                    empty="No plan has both a cancellation and a renewal yet: nothing to fit."))
        else:
            shown = pd.DataFrame({
                "plan": fits["plan"], "members": fits["n_memberships"], "cancelled": fits["cancellations"],
                "mean churn per period": fits["mean_churn_probability"],
                "spread between members (sd)": fits["churn_probability_sd"], "S(12) projected": fits["survival_12"]})
            s.figures.append(Figure(
                "sbg_fits", "The sBG fit per plan", "rpt_sbg_fit",
                "Each member cancels at a period's end with their own probability θ, θ ~ Beta(γ, δ) "
                "(γ, δ in marts.rpt_sbg_fit): its mean γ / (γ + δ) and its spread between members — near "
                "0 when members churn alike, so retention stays flat over renewals; the larger, the more "
                "retention rises as the likeliest to churn leave. S(12): the share projected to still pay "
                "after 12 renewals.",
                table=_table(shown, {"members": "int", "cancelled": "int", "mean churn per period": "pct",
                                     "spread between members (sd)": "pct", "S(12) projected": "pct"}),
                rows=len(fits)))
        return s

    def revenue(self) -> Section:
        s = self.section("revenue", "Membership revenue (MRR)", "Monthly recurring revenue of paid memberships "
                         "and how it moves — new, expansion, reactivation, contraction, churn — with logo and MRR "
                         "churn, the quick ratio, ARPA and LTV as ChartMogul defines them, and how much dunning "
                         "recovers of the payments that failed.",
                         "rpt_mrr_movements", "the sources have no paid memberships.")
        if s.empty:
            return s
        months = self.r.mrr_months()
        s.figures.append(Figure(
            "mrr_movements", "MRR and its movements by month", "rpt_mrr_movements",
            "Line: MRR at each month's end (the as-of date in the last month). Bars: the month's movements, "
            "gains above zero and losses below; they add up to the line's change: MRR end = MRR start + new "
            "+ expansion + reactivation − contraction − churn. An annual membership counts a twelfth of its "
            "invoice a month.",
            spec=_spec(charts.mrr_movements(months)),
            rows=len(months) + len(charts.mrr_movement_rows(months))))
        last = months.tail(12).iloc[::-1]
        shown = pd.DataFrame({
            "month": [str(m)[:7] + ("" if c else " (to date)") for m, c in zip(last["month_start"], last["is_complete"],
                                                                              strict=True)],
            "MRR": last["mrr_end"], "net new MRR": last["net_new_mrr"], "customers": last["customers_end"],
            "logo churn": last["logo_churn_rate"], "gross MRR churn": last["gross_mrr_churn_rate"],
            "net MRR churn": last["net_mrr_churn_rate"], "quick ratio": last["quick_ratio"], "ARPA": last["arpa"],
            "LTV": last["ltv"]})
        s.figures.append(Figure(
            "mrr_kpis", "Churn, growth quality and customer value, last 12 months", "rpt_mrr_movements",
            "Logo churn: customers who churned and were not back by the month's end / customers at its start "
            "(those who joined and left within the month are not counted: vars "
            "mrr_logo_churn_excludes_joined_in_period, mrr_logo_churn_net_of_reactivations). Gross MRR churn: "
            "(churn + contraction) / MRR at the start; net also subtracts expansion and reactivation. Quick "
            "ratio: gains / losses. ARPA: MRR per customer. LTV: ARPA / the mean logo churn of the six months "
            "before.",
            table=_table(shown, {"MRR": "num", "net new MRR": "num", "customers": "int", "logo churn": "pct",
                                 "gross MRR churn": "pct", "net MRR churn": "pct", "quick ratio": "num",
                                 "ARPA": "num", "LTV": "num"}),
            rows=len(shown)))
        dunning = self.r.dunning_months()
        if dunning.empty:
            s.figures.append(Figure("dunning", "Dunning recovery", "rpt_dunning_recovery", "",
                                    empty="No payment has failed: nothing to recover."))
        else:
            shown = pd.DataFrame({
                "month": [str(m)[:7] + ("" if ok else " (open)") for m, ok in zip(dunning["month_start"],
                                                                                 dunning["is_settled"], strict=True)],
                "failed payments": dunning["failed_invoices"], "failed amount": dunning["failed_amount"],
                "recovered": dunning["recovered_invoices"], "recovered amount": dunning["recovered_amount"],
                "recovery rate": dunning["recovery_rate"], "lost": dunning["lost_invoices"],
                "still retrying": dunning["open_invoices"]})
            s.figures.append(Figure(
                "dunning", "Dunning: failed payments recovered by retries, last 12 months", "rpt_dunning_recovery",
                "By the month of the failed first attempt. Recovered: a retry was paid; lost: the membership "
                "ended unpaid; still retrying: neither yet (the month's rates are not final: “open”). Recovery "
                "rate: recovered amount / failed amount. By retry: marts.rpt_dunning_attempts.",
                table=_table(shown, {"failed payments": "int", "failed amount": "num", "recovered": "int",
                                     "recovered amount": "num", "recovery rate": "pct", "lost": "int",
                                     "still retrying": "int"}),
                rows=len(shown)))
        return s

    def cancellation(self) -> Section:
        s = self.section("cancellation", "Cancellation flow", "Members who started to cancel: offers shown, "
                         "cancellations deflected, members saved, and the revenue they kept paying.",
                         "rpt_cancellation_flow", "the sources have no cancellation-flow sessions.")
        if s.empty:
            return s
        funnel = self.r.cancellation_funnel()
        s.figures.append(Figure(
            "cancel_funnel", "From cancellation sessions to saved members", "rpt_cancellation_flow",
            "Sessions started → an offer shown → deflected (accepted an offer, did not cancel) → saved "
            "(still a member after the matured window); shares of sessions.",
            spec=_spec(charts.cancellation_funnel(funnel)), rows=2 * len(funnel)))
        saved = self.r.saved_revenue_by_month()
        s.figures.append(Figure(
            "saved_revenue", "Saved revenue per month", "rpt_cancellation_flow",
            "Revenue paid by saved members after their session, by the month of the session.",
            spec=_spec(charts.saved_revenue(saved)), rows=len(saved)))
        return s

    def winback(self) -> Section:
        s = self.section("winback", "Win-back campaigns", "Recalls caused by each channel against its holdout, "
                         "what they returned per unit of cost, and which customers are worth recalling.",
                         "rpt_recall_roi", "the sources have no win-back campaigns.")
        if s.empty:
            return s
        ch = self.r.recall_by_channel()
        for fid, title, figure, label, fmt, definition in (
                ("recall_incremental", "Incremental recalls by channel", "incremental_recalls", "incremental recalls",
                 ",.0f", "(recall rate of treated − recall rate of the holdout) × treated, with its 95 % "
                         "interval: the recalls the campaign caused."),
                ("recall_roi", "ROI by channel", "roi", "ROI", ".2f",
                 "(incremental revenue − cost) / cost with its 95 % interval; cost = contact cost + incentives.")):
            chart = charts.interval_by_channel(ch, figure, f"{figure}_ci_low", f"{figure}_ci_high", label, fmt, 0.0)
            s.figures.append(Figure(fid, title, "rpt_recall_roi", definition, spec=_spec(chart), rows=2 * len(ch) + 1))
        worth = self.r.worth_recalling()
        s.figures.append(Figure(
            "worth_recalling", "Who is worth recalling", "rpt_recall_roi",
            "By value tier and service demand: uplift with its interval, ROI, and the rule's "
            "recommendation (level = value_tier_service).",
            table=_table(worth, {"targets": "int", "treated": "int", "holdout": "int", "uplift": "pct",
                                 "uplift_ci_low": "pct", "uplift_ci_high": "pct", "roi": "num"}),
            rows=len(worth)))
        return s

    def risk(self) -> Section:
        s = self.section("risk", "Churn risk", "How likely each active customer is to still be a customer "
                         "(BG/NBD P(alive)), the largest groups at high risk, and who is worth recalling.",
                         "fct_churn_risk", "no customer with a purchase history to score.")
        if s.empty:
            return s
        hist = self.r.p_alive_histogram()
        s.figures.append(Figure(
            "p_alive", "P(alive) distribution", "fct_churn_risk",
            "Customers by their BG/NBD probability of still being active at the as-of date, in bins of "
            "0.05, coloured by risk tier.", spec=_spec(charts.p_alive_histogram(hist)), rows=len(hist)))
        top = self.r.at_risk_segments()
        s.figures.append(Figure(
            "at_risk", "Largest high-risk groups", "fct_churn_risk",
            "High-risk customers grouped by lifecycle stage and the signals that put them there.",
            table=_table(top, {"customers": "int", "mean_p_alive": "pct", "revenue_last_period": "num"}),
            rows=len(top)))
        if not self.r.has_column("marts.fct_churn_risk", "recall_recommendation"):
            return s  # published before the per-customer rule existed: the next run's page has it
        worth = self.r.recall_worth()
        s.figures.append(Figure(
            "recall_worth", "Which customers are worth a win-back contact", "fct_churn_risk",
            "Margin at risk in 90 days = (1 − P(alive)) × Gamma–Gamma expected purchase value × expected "
            "purchase days if still active × the gross margin rate: what winning the customer back is "
            "worth. At-risk customers (tier medium or high) at or above recall_min_margin_at_risk are "
            "worth recalling; fct_churn_risk lists them, to sort by margin_at_risk_90d.",
            table=_table(worth, {"customers": "int", "margin_at_risk_90d": "num",
                                 "mean_expected_purchase_value": "num", "mean_p_alive": "pct"}),
            rows=len(worth)))
        return s

    def quality(self) -> Section:
        s = Section("quality", "Data quality", "The gates this publication passed, rows quarantined on "
                    "the way in, and how well customer identities were unified.")
        loads = self.r.loads_by_source()
        if not loads.empty:
            s.figures.append(Figure(
                "loads", "Rows per source", "audit.source_loads",
                "Every raw row read is loaded or quarantined with a reason (all loads of this publication's "
                "state).", table=_table(loads, {c: "int" for c in loads.columns if c != "source"}), rows=len(loads)))
        q = self.r.quarantine_by_reason()
        if q.empty:
            s.figures.append(Figure("quarantine", "Quarantine", "audit.quarantine", "",
                                    empty="No row was quarantined: every row read was loaded."))
        else:
            s.figures.append(Figure(
                "quarantine", "Rows quarantined by source and reason", "audit.quarantine",
                "Rows kept out of the warehouse, each with its reason (file, row and column are in "
                "audit.quarantine).", spec=_spec(charts.quarantine(q)), rows=len(q)))
        why = self.missing("rpt_identity_quality", "no identifiers to unify.")
        if why:
            s.figures.append(Figure("identity", "Identity", "rpt_identity_quality", "", empty=why))
            return s
        iq = self.r.identity_quality()
        mapped = iq[(iq["metric_group"] == "identifiers_mapped") & (iq["base"] > 0)]  # types the sources have
        sizes = iq[iq["metric_group"] == "customer_size"]
        if not mapped.empty:
            s.figures.append(Figure(
                "identity_mapped", "Identifiers unified into customers", "rpt_identity_quality",
                "Share of each identifier type's distinct values mapped to a customer (Super ID); the rest "
                "were excluded as noisy (shared devices, reused phones).",
                spec=_spec(charts.identity_mapped(mapped)), rows=len(mapped)))
        if not sizes.empty:
            s.figures.append(Figure(
                "identity_sizes", "Identifiers per customer", "rpt_identity_quality",
                "Customers by how many source identifiers were unified into them.",
                spec=_spec(charts.identity_sizes(sizes)), rows=len(sizes)))
        return s


@cache
def vega_bundle() -> str:
    """vega, vega-lite and vega-embed as one script (vl-convert ships it; no network).

    vl-convert builds it in about 2 s of CPU; the result depends only on the installed versions,
    so it is kept in the user's cache folder (``$XDG_CACHE_HOME/liucun``, else ``~/.cache/liucun``)
    under a name that carries them, and later runs read it back."""
    import os
    from importlib.metadata import version

    from altair.utils._importers import vl_version_for_vl_convert

    vl_version = vl_version_for_vl_convert()
    cache_dir = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "liucun"
    path = cache_dir / f"vega-embed-bundle-vlc{version('vl-convert-python')}-vl{vl_version}.js"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    import vl_convert as vlc

    bundle = vlc.javascript_bundle(vl_version=vl_version)
    try:  # written whole, then renamed: a reader never sees part of it
        cache_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(path, bundle, str(os.getpid()))
    except OSError:  # a read-only home: build it each time
        pass
    return bundle


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(value, default=str).replace("</", "<\\/").replace("<!--", "<\\!--")


# the latest cohorts a grain's heatmap and curves draw (None: every cohort): a year of daily cohorts
# is no chart; the mart and its means have them all
LAST_COHORTS = {"day": 35, "week": 26}
ADJECTIVE = {"day": "daily", "week": "weekly", "month": "monthly"}
# the latest periods a grain's time series draw (None: every period): 13 weeks of days, a year of weeks
LAST_PERIODS = {"day": 91, "week": 52}


def grain_id(grain: str | None, grains: list[str]) -> Any:
    """Figure ids of a grain: the page's first grain keeps the plain id, the others are suffixed."""
    def fid(base: str) -> str:
        return base if not grains or grain == grains[0] else f"{base}-{grain}"
    return fid


def _period(start: str, grain: str | None) -> str:
    """A period as readers name it: 2026-10 for a month, the first day otherwise."""
    return start[:7] if grain == "month" else start


def headline_rows(last: Headline, previous: Headline | None, year: Headline | None) -> list[dict[str, Any]]:
    def figures(h: Headline | None) -> dict[str, Any]:
        if h is None:
            return {}
        return {"customers_start": h.customers_start, "customers_end": h.customers_end,
                "customers_new": h.customers_new, "crr": h.crr, "strict_retention_rate": h.strict_retention_rate,
                "churn_rate": h.churn_rate, "gross_revenue_retention": h.gross_revenue_retention,
                "net_revenue_retention": h.net_revenue_retention}
    names = [("crr", "CRR = (E − N) / S", "pct"), ("customers_start", "S: customers at start", "int"),
             ("customers_end", "E: customers at end", "int"), ("customers_new", "N: new customers", "int"),
             ("strict_retention_rate", "strict retention", "pct"), ("churn_rate", "churn rate", "pct"),
             ("gross_revenue_retention", "gross revenue retention (GRR)", "pct"),
             ("net_revenue_retention", "net revenue retention (NRR)", "pct")]
    cols = [figures(last), figures(previous), figures(year)]
    rows = []
    for key, label, kind in names:
        fmt = _pct if kind == "pct" else _int
        values = [c.get(key) for c in cols]
        deltas = []
        for v in values[1:]:
            if values[0] is None or v is None:
                deltas.append("")
            elif kind == "pct":
                deltas.append(f"change {(values[0] - v) * 100:+.1f} pts")
            else:
                deltas.append(f"change {int(values[0]) - int(v):+,}")
        rows.append({"key": key, "label": label, "values": [fmt(v) for v in values],
                     "raw": [None if v is None else float(v) for v in values], "deltas": deltas})
    return rows


def render(reader: MartReader, meta: ReportMeta) -> str:
    """The report page of the publication ``reader`` reads, as one HTML string."""
    b = _Builder(reader)
    grains = reader.grains()
    grain = grains[0] if grains else None
    headlines = []  # per grain: (grain, rows, period names)
    for g in grains:
        last, previous, year = reader.headline(g)
        if last is not None:
            headlines.append({"grain": g, "rows": headline_rows(last, previous, year),
                              "periods": [_period(h.period_start, g) if h else None for h in (last, previous, year)]})
    if headlines and headlines[0]["grain"] != grain:  # the coarsest grain has no figure yet (a young source)
        grain = headlines[0]["grain"]
        grains = [grain] + [g for g in grains if g != grain]
    sections = [b.retention(grains), b.lifecycle(grains, reader.lifecycle_grain()), b.survival(), b.memberships(), b.revenue(), b.churn(), b.cancellation(), b.winback(),
                b.risk(), b.quality()]
    specs = {f.id: f.spec for s in sections for f in s.figures if f.spec is not None}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    docs = meta.docs_url

    def docs_link(mart: str) -> str | None:
        if not docs or not mart.startswith(("rpt_", "fct_", "dim_")):
            return None
        return f"{docs}#!/model/model.liucun.{mart}"

    return env.get_template("report.html.j2").render(
        meta=meta, grain=grain, grains=grains, sections=sections, docs_link=docs_link, headlines=headlines,
        rendered_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        specs_json=_script_json(specs),
        expected_json=_script_json({f.id: f.rows for s in sections for f in s.figures if f.spec is not None}),
        vega_bundle=vega_bundle().replace("</script", "<\\/script"),
    )
