"""The report's charts: Vega-Lite specifications built with Altair from the aggregated query results.

Each builder takes the DataFrame its query returned (flows/report/queries.py) and returns an Altair
chart; the page (flows/report/page.py) embeds their specifications, data included, and draws them
with the inlined Vega runtime. Colours are fixed per category (stages, statuses, churn types) so a
reader sees the same colour for the same thing in every chart.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

WIDTH = 620
PERCENT = ".1%"

STATUS_COLORS = {"new": "#2ca02c", "returning": "#1f77b4", "resurrecting": "#ff7f0e", "dormant": "#d62728"}
STAGE_ORDER = ["prospect", "new", "growth", "mature", "dormant", "churned", "none"]
STAGE_COLORS = ["#bcbddc", "#2ca02c", "#98df8a", "#1f77b4", "#ff7f0e", "#d62728", "#c7c7c7"]
RISK_COLORS = {"low": "#2ca02c", "medium": "#ff7f0e", "high": "#d62728"}


def period_label(values: pd.Series, grain: str) -> pd.Series:
    """Period starts as the labels a reader expects: 2026-10 for months, the date otherwise."""
    dates = pd.to_datetime(values)
    return dates.dt.strftime("%Y-%m") if grain == "month" else dates.dt.strftime("%Y-%m-%d")


def _period_x(grain: str, title: str = "period") -> alt.X:
    unit = {"month": "yearmonth", "week": "yearmonthdate", "day": "yearmonthdate"}[grain]
    return alt.X(f"{unit}(period_start):T", title=title)


def segmentations(df: pd.DataFrame, column: str = "segment_type") -> list[str]:
    """The groupings of a frame (its segment types, or a survival frame's group types), ``all``
    first (the chart's default view)."""
    return sorted(df[column].unique(), key=lambda t: (t != "all", t))


def retention_over_time(df: pd.DataFrame, grain: str) -> alt.TopLevelMixin:
    """CRR and strict retention per period, one line per segment value; a selector picks the
    segmentation (all customers, acquisition channel, region, ...)."""
    types = segmentations(df)
    segmentation = alt.param(name="segmentation", value=types[0],
                             bind=alt.binding_select(options=types, name="segment by "))
    base = alt.Chart(df).transform_filter(alt.datum.segment_type == segmentation).mark_line(point=True).encode(
        x=_period_x(grain),
        y=alt.Y("rate:Q", axis=alt.Axis(format="%"), title=None),
        color=alt.Color("segment_value:N", title="segment"),
        tooltip=[alt.Tooltip("period_start:T", title="period"), "segment_type:N", "segment_value:N",
                 "figure:N", alt.Tooltip("rate:Q", format=PERCENT), alt.Tooltip("customers_start:Q", title="S", format=",")],
    ).properties(width=WIDTH // 2 - 20, height=240)
    crr = base.transform_filter(alt.datum.figure == "CRR").properties(title="CRR = (E − N) / S")
    strict = base.transform_filter(alt.datum.figure == "strict retention").properties(
        title="strict retention = retained / S")
    return alt.hconcat(crr, strict).add_params(segmentation)


def cohort_heatmap(df: pd.DataFrame, grain: str) -> alt.TopLevelMixin:
    """Acquisition cohorts (rows) by periods since acquisition (columns); the cell shows the share
    or the number of the cohort active, the incomplete period (the one holding the as-of date)
    drawn pale and starred."""
    data = df.assign(cohort=period_label(df["cohort_period_start"], grain),
                     state=df["is_complete"].map({True: "complete", False: "incomplete (as-of period)"}))
    show = alt.param(name="show", value="percent",
                     bind=alt.binding_radio(options=["percent", "customers"], name="cells show "))
    base = alt.Chart(data).encode(
        x=alt.X("period_number:O", title=f"{grain}s since acquisition"),
        y=alt.Y("cohort:O", title="acquisition cohort", sort="ascending"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("retention_rate:Q", title="active", scale=alt.Scale(scheme="blues", domain=[0, 0.6], clamp=True),
                        legend=alt.Legend(format="%")),
        opacity=alt.Opacity("state:N", scale=alt.Scale(domain=["complete", "incomplete (as-of period)"],
                                                       range=[1.0, 0.35]), title=None),
        tooltip=["cohort:O", "period_number:O", alt.Tooltip("cohort_size:Q", format=","),
                 alt.Tooltip("active_customers:Q", format=","), alt.Tooltip("retention_rate:Q", format=PERCENT),
                 "state:N"],
    )
    text = base.mark_text(fontSize=8).transform_calculate(
        label=alt.expr.if_(show == "percent", alt.expr.format(alt.datum.retention_rate, ".0%"),
                           alt.expr.format(alt.datum.active_customers, ","))
        + alt.expr.if_(alt.datum.is_complete, "", "*"),
    ).encode(text="label:N", color=alt.condition(alt.datum.retention_rate > 0.4, alt.value("white"), alt.value("#222")))
    height = max(180, 16 * data["cohort"].nunique())
    return alt.layer(cells, text).add_params(show).properties(width=WIDTH + 120, height=height)


def cohort_curves(cells: pd.DataFrame, means: pd.DataFrame, grain: str) -> alt.TopLevelMixin:
    """One thin line per cohort (complete periods only) and the means across cohorts: weighted by
    cohort size (bold) and simple (dashed)."""
    data = cells[cells["is_complete"]].assign(cohort=period_label(cells["cohort_period_start"], grain))
    lines = alt.Chart(data).mark_line(strokeWidth=1, opacity=0.35, color="#7f7f7f").encode(
        x=alt.X("period_number:Q", title=f"{grain}s since acquisition", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("retention_rate:Q", axis=alt.Axis(format="%"), title="share of cohort active"),
        detail="cohort:N",
        tooltip=["cohort:N", "period_number:Q", alt.Tooltip("retention_rate:Q", format=PERCENT)],
    )
    long = means.melt(id_vars=["period_number", "cohorts"], value_vars=["weighted_mean", "simple_mean"],
                      var_name="mean", value_name="rate")
    long["mean"] = long["mean"].map({"weighted_mean": "weighted by cohort size", "simple_mean": "simple mean"})
    mean = alt.Chart(long).mark_line(point=True).encode(
        x="period_number:Q", y="rate:Q",
        color=alt.Color("mean:N", scale=alt.Scale(domain=["weighted by cohort size", "simple mean"],
                                                  range=["#08519c", "#e6550d"]), title="mean across cohorts"),
        strokeDash=alt.StrokeDash("mean:N", scale=alt.Scale(domain=["weighted by cohort size", "simple mean"],
                                                            range=[[1, 0], [5, 3]]), legend=None),
        tooltip=["mean:N", "period_number:Q", alt.Tooltip("rate:Q", format=PERCENT), "cohorts:Q"],
    )
    return alt.layer(lines, mean).properties(width=WIDTH, height=260)


def activity_lifecycle(df: pd.DataFrame, grain: str) -> alt.TopLevelMixin:
    """PostHog's lifecycle: new, returning and resurrecting customers up, dormant ones down."""
    return alt.Chart(df).mark_bar().encode(
        x=_period_x(grain),
        y=alt.Y("customers:Q", title="customers", stack="zero"),
        color=alt.Color("status:N", scale=alt.Scale(domain=list(STATUS_COLORS), range=list(STATUS_COLORS.values())),
                        title=None),
        order=alt.Order("status:N"),
        tooltip=[alt.Tooltip("period_start:T", title="period"), "status:N", alt.Tooltip("customers:Q", format=",")],
    ).properties(width=WIDTH, height=260)


def stage_sizes(df: pd.DataFrame, grain: str) -> alt.TopLevelMixin:
    stages = [s for s in STAGE_ORDER if s in set(df["stage"])] + sorted(set(df["stage"]) - set(STAGE_ORDER))
    colors = [STAGE_COLORS[STAGE_ORDER.index(s)] if s in STAGE_ORDER else "#8c564b" for s in stages]
    return alt.Chart(df).mark_area().encode(
        x=_period_x(grain),
        y=alt.Y("customers:Q", stack="zero", title="customers"),
        color=alt.Color("stage:N", scale=alt.Scale(domain=stages, range=colors), sort=stages, title="stage"),
        order=alt.Order("stage_order:Q"),
        tooltip=[alt.Tooltip("period_start:T", title="period"), "stage:N", alt.Tooltip("customers:Q", format=",")],
    ).transform_calculate(stage_order=f"indexof({stages!r}, datum.stage)").properties(width=WIDTH, height=260)


def transition_matrix(df: pd.DataFrame) -> alt.TopLevelMixin:
    stages = [s for s in STAGE_ORDER if s in set(df["from_stage"]) | set(df["to_stage"])]
    base = alt.Chart(df).encode(
        x=alt.X("to_stage:N", sort=stages, title="stage this period"),
        y=alt.Y("from_stage:N", sort=stages, title="stage the period before"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("share_of_from:Q", scale=alt.Scale(scheme="greens"), legend=alt.Legend(format="%"),
                        title="share of row"),
        tooltip=["from_stage:N", "to_stage:N", alt.Tooltip("customers:Q", format=","),
                 alt.Tooltip("share_of_from:Q", format=PERCENT)],
    )
    text = base.mark_text(fontSize=10).encode(
        text=alt.Text("customers:Q", format=","),
        color=alt.condition(alt.datum.share_of_from > 0.5, alt.value("white"), alt.value("#222")))
    return alt.layer(cells, text).properties(width=420, height=260)


def churn_over_time(df: pd.DataFrame, by: str) -> alt.TopLevelMixin:
    """Churn events per month, stacked by ``by`` (churn_type or voluntariness)."""
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("yearmonth(month):T", title="month of churn"),
        y=alt.Y("sum(churn_events):Q", title="churn events"),
        color=alt.Color(f"{by}:N", title=by.replace("_", " ")),
        tooltip=[alt.Tooltip("yearmonth(month):T", title="month"), f"{by}:N",
                 alt.Tooltip("sum(churn_events):Q", title="churn events", format=",")],
    ).properties(width=WIDTH // 2 - 20, height=240)


def survival_curves(df: pd.DataFrame) -> alt.TopLevelMixin:
    """Kaplan-Meier time-to-churn curves as steps with their 95 % band, one per group value; a
    selector picks the grouping (all customers, acquisition channel, region, ...)."""
    types = segmentations(df, "group_type")
    grouping = alt.param(name="survival_grouping", value=types[0],
                         bind=alt.binding_select(options=types, name="curves by "))
    base = alt.Chart(df).transform_filter(alt.datum.group_type == grouping).encode(
        x=alt.X("duration_days:Q", title="days since the first purchase"),
        # inside the plot, top right (curves start at the top left and come down): a legend beside
        # the plot would be cut when the selector brings longer group names than the first drawing's
        color=alt.Color("group_value:N", title=None,
                        legend=alt.Legend(orient="top-right", fillColor="white", padding=4, labelLimit=200,
                                          symbolType="stroke", symbolStrokeWidth=2, symbolOpacity=1)),
    )
    band = base.mark_area(interpolate="step-after", opacity=0.15).encode(
        y=alt.Y("survival_ci_low:Q", axis=alt.Axis(format="%"), title="share not churned",
                scale=alt.Scale(domain=[0, 1])),
        y2="survival_ci_high:Q")
    line = base.mark_line(interpolate="step-after").encode(
        y="survival:Q",
        tooltip=["group_type:N", "group_value:N", alt.Tooltip("duration_days:Q", title="days"),
                 alt.Tooltip("survival:Q", format=PERCENT), alt.Tooltip("survival_ci_low:Q", format=PERCENT),
                 alt.Tooltip("survival_ci_high:Q", format=PERCENT),
                 alt.Tooltip("customers_at_risk:Q", format=",", title="at risk")])
    return alt.layer(band, line).add_params(grouping).properties(width=WIDTH, height=280)


def membership_renewals(df: pd.DataFrame) -> alt.TopLevelMixin:
    """Share of paid members still paying after t renewals per plan: the sBG fit and projection as a
    line with its 95 % band (dashed where it is a projection), the Kaplan-Meier observation as dots."""
    base = alt.Chart(df).encode(
        x=alt.X("renewals:Q", title="renewals (contract periods of the plan: months or years)"),
        color=alt.Color("plan:N", title="plan",
                        legend=alt.Legend(orient="top-right", fillColor="white", padding=4,
                                          symbolType="stroke", symbolStrokeWidth=2, symbolOpacity=1)))
    fitted = base.transform_filter("isValid(datum.fitted_survival)")
    band = fitted.mark_area(opacity=0.15).encode(
        y=alt.Y("fitted_survival_ci_low:Q", axis=alt.Axis(format="%"), title="share of members still paying",
                scale=alt.Scale(domain=[0, 1])),
        y2="fitted_survival_ci_high:Q")
    tooltip = ["plan:N", "renewals:Q", alt.Tooltip("fitted_survival:Q", format=PERCENT, title="sBG S(t)"),
               alt.Tooltip("fitted_survival_ci_low:Q", format=PERCENT, title="95 % low"),
               alt.Tooltip("fitted_survival_ci_high:Q", format=PERCENT, title="95 % high"),
               alt.Tooltip("fitted_retention_rate:Q", format=PERCENT, title="renewal rate"), "is_projection:N"]
    solid = fitted.transform_filter("!datum.is_projection").mark_line().encode(y="fitted_survival:Q", tooltip=tooltip)
    # the projection starts where the observed renewals end, so the two lines join
    dashed = fitted.transform_calculate(observed_t="datum.is_projection ? null : datum.renewals").transform_joinaggregate(
        last_observed="max(observed_t)", groupby=["plan"]).transform_filter(
        "datum.renewals >= datum.last_observed").mark_line(strokeDash=[5, 3]).encode(y="fitted_survival:Q", tooltip=tooltip)
    dots = base.transform_filter("isValid(datum.observed_survival)").mark_point(filled=True, size=40).encode(
        y="observed_survival:Q",
        tooltip=["plan:N", "renewals:Q", alt.Tooltip("observed_survival:Q", format=PERCENT, title="observed"),
                 alt.Tooltip("members_at_risk:Q", format=",", title="at risk")])
    return alt.layer(band, solid, dashed, dots).properties(width=WIDTH, height=260)


MRR_MOVEMENTS = (("new", "new_mrr", 1), ("expansion", "expansion_mrr", 1), ("reactivation", "reactivation_mrr", 1),
                 ("contraction", "contraction_mrr", -1), ("churn", "churned_mrr", -1))


def mrr_movement_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The months' movements in long form, losses negative; movements of 0 are left out."""
    parts = [pd.DataFrame({"month_start": df["month_start"], "movement": name,
                           "mrr": sign * df[column].astype(float), "is_complete": df["is_complete"]})
             for name, column, sign in MRR_MOVEMENTS]
    rows = pd.concat(parts, ignore_index=True)
    return rows[rows["mrr"] != 0]


def mrr_movements(df: pd.DataFrame) -> alt.TopLevelMixin:
    """MRR at each month's end (a line), over the month's movements as bars above zero (new,
    expansion, reactivation) and below (contraction, churn)."""
    x = alt.X("yearmonth(month_start):T", title="month")
    line = alt.Chart(df.assign(mrr_end=df["mrr_end"].astype(float))).mark_line(point=False).encode(
        x=x, y=alt.Y("mrr_end:Q", title="MRR at month end (CNY)", axis=alt.Axis(format=",.0f")),
        tooltip=[alt.Tooltip("yearmonth(month_start):T", title="month"),
                 alt.Tooltip("mrr_end:Q", format=",.2f", title="MRR"),
                 alt.Tooltip("customers_end:Q", format=",", title="customers"), "is_complete:N"]
    ).properties(width=WIDTH, height=150)
    names = [m[0] for m in MRR_MOVEMENTS]
    bars = alt.Chart(mrr_movement_rows(df)).mark_bar().encode(
        x=x, y=alt.Y("sum(mrr):Q", title="MRR movements (CNY)", axis=alt.Axis(format=",.0f")),
        color=alt.Color("movement:N", sort=names, title="movement",
                        scale=alt.Scale(domain=names, range=["#2f7ed8", "#7cb5ec", "#90ed7d", "#f7a35c", "#d9534f"])),
        order=alt.Order("movement:N"),
        tooltip=[alt.Tooltip("yearmonth(month_start):T", title="month"), "movement:N",
                 alt.Tooltip("mrr:Q", format=",.2f", title="MRR")]
    ).properties(width=WIDTH, height=200)
    return alt.vconcat(line, bars).resolve_scale(x="shared")


def driver_forest(df: pd.DataFrame) -> alt.TopLevelMixin:
    """Odds ratio of churning after a touchpoint experience, with its 95 % interval, on a log scale;
    drivers under the minimum support in their own panel."""
    order = list(df["driver"])
    base = alt.Chart(df).encode(y=alt.Y("driver:N", sort=order, title=None))
    scale = alt.Scale(type="log")
    rules = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("odds_ratio_ci_lower:Q", scale=scale, title="odds ratio of churn (95 % interval, log scale)"),
        x2="odds_ratio_ci_upper:Q", color=alt.Color("support:N", title=None,
                                                    scale=alt.Scale(domain=["ranked (enough support)", "below minimum support"],
                                                                    range=["#1f77b4", "#bbbbbb"])))
    points = base.mark_point(filled=True, size=60).encode(
        x=alt.X("odds_ratio:Q", scale=scale), color="support:N",
        tooltip=["driver:N", "driver_source:N", alt.Tooltip("exposed:Q", format=","),
                 alt.Tooltip("odds_ratio:Q", format=".2f"), alt.Tooltip("odds_ratio_ci_lower:Q", format=".2f"),
                 alt.Tooltip("odds_ratio_ci_upper:Q", format=".2f"), "min_support:Q", "support:N"])
    one = alt.Chart(pd.DataFrame({"x": [1.0]})).mark_rule(strokeDash=[4, 3], color="#555").encode(x="x:Q")
    return alt.layer(rules, points, one).properties(width=WIDTH - 120, height=max(120, 22 * len(df)))


def cancellation_funnel(df: pd.DataFrame) -> alt.TopLevelMixin:
    total = float(df["sessions"].max() or 0) or 1.0
    data = df.assign(share=df["sessions"] / total)
    base = alt.Chart(data).encode(y=alt.Y("step:N", sort=list(data["step"]), title=None))
    bars = base.mark_bar(color="#6baed6").encode(
        x=alt.X("sessions:Q", title="cancellation sessions"),
        tooltip=["step:N", alt.Tooltip("sessions:Q", format=","), alt.Tooltip("share:Q", format=PERCENT)])
    labels = base.mark_text(align="left", dx=4).encode(
        x="sessions:Q", text=alt.Text("share:Q", format=".1%"))
    return alt.layer(bars, labels).properties(width=WIDTH // 2 - 20, height=160)


def saved_revenue(df: pd.DataFrame) -> alt.TopLevelMixin:
    return alt.Chart(df).mark_bar(color="#31a354").encode(
        x=alt.X("yearmonth(month_start):T", title="month of the cancellation session"),
        y=alt.Y("saved_revenue:Q", title="saved revenue"),
        tooltip=[alt.Tooltip("yearmonth(month_start):T", title="month"), alt.Tooltip("saved_revenue:Q", format=",.2f"),
                 alt.Tooltip("saved:Q", format=",", title="customers saved")],
    ).properties(width=WIDTH // 2 - 20, height=160)


def interval_by_channel(df: pd.DataFrame, value: str, low: str, high: str, title: str, fmt: str,
                        zero: float | None) -> alt.TopLevelMixin:
    """A point estimate per channel with its 95 % interval."""
    base = alt.Chart(df).encode(y=alt.Y("channel:N", title=None, sort=list(df["channel"])))
    rules = base.mark_rule(strokeWidth=2, color="#1f77b4").encode(
        x=alt.X(f"{low}:Q", title=title), x2=f"{high}:Q")
    points = base.mark_point(filled=True, size=60, color="#1f77b4").encode(
        x=f"{value}:Q",
        tooltip=["channel:N", alt.Tooltip(f"{value}:Q", format=fmt), alt.Tooltip(f"{low}:Q", format=fmt),
                 alt.Tooltip(f"{high}:Q", format=fmt), alt.Tooltip("treated:Q", format=","),
                 alt.Tooltip("holdout:Q", format=","), "recommendation:N"])
    layers = [rules, points]
    if zero is not None:
        layers.append(alt.Chart(pd.DataFrame({"x": [zero]})).mark_rule(strokeDash=[4, 3], color="#555").encode(x="x:Q"))
    return alt.layer(*layers).properties(width=WIDTH // 2 - 20, height=max(100, 26 * len(df)))


def p_alive_histogram(df: pd.DataFrame) -> alt.TopLevelMixin:
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("bin_start:Q", bin="binned", title="P(alive) (BG/NBD)", scale=alt.Scale(domain=[0, 1])),
        x2="bin_end:Q",
        y=alt.Y("sum(customers):Q", title="customers", stack="zero"),
        color=alt.Color("risk_tier:N", scale=alt.Scale(domain=list(RISK_COLORS), range=list(RISK_COLORS.values())),
                        title="risk tier"),
        tooltip=[alt.Tooltip("bin_start:Q", title="from"), alt.Tooltip("bin_end:Q", title="to"), "risk_tier:N",
                 alt.Tooltip("sum(customers):Q", title="customers", format=",")],
    ).properties(width=WIDTH, height=220)


def quarantine(df: pd.DataFrame) -> alt.TopLevelMixin:
    return alt.Chart(df).mark_bar().encode(
        y=alt.Y("source:N", title=None),
        x=alt.X("sum(rows_quarantined):Q", title="rows quarantined"),
        color=alt.Color("reason:N", title="reason"),
        tooltip=["source:N", "reason:N", alt.Tooltip("sum(rows_quarantined):Q", title="rows", format=",")],
    ).properties(width=WIDTH - 160, height=max(80, 24 * df["source"].nunique()))


def identity_mapped(df: pd.DataFrame) -> alt.TopLevelMixin:
    """Share of each identifier type's values mapped to a customer."""
    return alt.Chart(df).mark_bar(color="#756bb1").encode(
        y=alt.Y("metric:N", title="identifier type", sort="-x"),
        x=alt.X("share_of_base:Q", axis=alt.Axis(format="%"), title="identifiers mapped to a customer",
                scale=alt.Scale(domain=[0, 1])),
        tooltip=["metric:N", alt.Tooltip("value:Q", format=","), alt.Tooltip("base:Q", format=","),
                 alt.Tooltip("share_of_base:Q", format=PERCENT)],
    ).properties(width=WIDTH // 2 - 20, height=max(80, 22 * len(df)))


def identity_sizes(df: pd.DataFrame) -> alt.TopLevelMixin:
    """How many source identifiers each unified customer (Super ID) holds."""
    return alt.Chart(df).mark_bar(color="#9e9ac8").encode(
        x=alt.X("metric:N", sort=list(df["metric"]), title="identifiers per customer"),
        y=alt.Y("value:Q", title="customers"),
        tooltip=["metric:N", alt.Tooltip("value:Q", format=","), alt.Tooltip("share_of_base:Q", format=PERCENT)],
    ).properties(width=WIDTH // 2 - 20, height=180)
