"""What the report reads: small, aggregated SQL over one publication's marts and audit tables.

Every query runs on a DuckDB connection in which ``marts.<mart>`` and ``audit.<table>`` are the
publication's own tables (see ``Engine.open_publication``), so the report is drawn from exactly the
figures it is published with. Nothing here loads a whole fact table: each query aggregates in SQL
and returns at most a few thousand rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

GRAIN_ORDER = ("month", "week", "day")  # the report shows the coarsest grain a publication has
YEAR_BACK = {"month": "interval 12 month", "week": "interval 364 day", "day": "interval 1 year"}


@dataclass(frozen=True)
class Headline:
    """CRR and its neighbours for one period of segment ``all``."""

    period_start: str
    customers_start: int
    customers_end: int
    customers_new: int
    crr: float | None
    strict_retention_rate: float | None
    churn_rate: float | None
    gross_revenue_retention: float | None
    net_revenue_retention: float | None


class MartReader:
    """The report's queries on one publication (``con``: marts.* and audit.* of that publication)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._tables = {f"{s}.{t}" for s, t in con.execute(
            "select schema_name, table_name from duckdb_tables() union all "
            "select schema_name, view_name from duckdb_views() where not internal").fetchall()}

    def has(self, table: str) -> bool:
        return table in self._tables

    def df(self, sql: str, params: list | None = None) -> pd.DataFrame:
        return self.con.execute(sql, params or []).df()

    def has_column(self, table: str, column: str) -> bool:
        """Whether ``table`` (schema.table) has ``column``: a publication made before the column
        existed (the report redrawn by a newer liucun) does not."""
        if not self.has(table):
            return False
        return column in self.con.execute(f"select * from {table} limit 0").df().columns

    def count(self, table: str) -> int:
        if not self.has(table):
            return 0
        return int(self.con.execute(f"select count(*) from {table}").fetchone()[0])  # type: ignore[index]

    # ---- retention -------------------------------------------------------------------------------

    def grains(self) -> list[str]:
        """The period grains published side by side, coarsest first (the report opens on the first)."""
        if not self.has("marts.rpt_retention_rate"):
            return []
        grains = {r[0] for r in self.con.execute(
            "select distinct period_grain from marts.rpt_retention_rate").fetchall()}
        return [g for g in GRAIN_ORDER if g in grains] + sorted(grains - set(GRAIN_ORDER))

    def grain(self) -> str | None:
        """The period grain the report opens on (the coarsest one published), None without retention rows."""
        return next(iter(self.grains()), None)

    def lifecycle_grain(self) -> str | None:
        """The one grain of the business-lifecycle marts (var period_grain)."""
        if not self.has("marts.rpt_lifecycle_kpis"):
            return None
        row = self.con.execute("select min(period_grain) from marts.rpt_lifecycle_kpis").fetchone()
        return None if row is None else row[0]

    def headline(self, grain: str) -> tuple[Headline | None, Headline | None, Headline | None]:
        """(last complete period, the one before, the same period a year earlier) of segment all."""
        cols = ("period_start, customers_start, customers_end, customers_new, crr, strict_retention_rate, "
                "churn_rate, gross_revenue_retention, net_revenue_retention")
        base = ("from marts.rpt_retention_rate where segment_type = 'all' and period_grain = ? "
                "and base_definition = 'active_in_period'")
        last = self.con.execute(f"select {cols} {base} and customers_start > 0 order by period_start desc limit 1",
                                [grain]).fetchone()
        if last is None:
            return None, None, None

        # the period before: the latest one earlier than the last (same grain and segment)
        prev = self.con.execute(f"select {cols} {base} and period_start < ? order by period_start desc limit 1",
                                [grain, last[0]]).fetchone()
        previous = None if prev is None else Headline(str(prev[0]), *prev[1:])
        year = self.con.execute(f"select {cols} {base} and period_start = cast(? as date) - {YEAR_BACK[grain]}",
                                [grain, last[0]]).fetchone()
        year_earlier = None if year is None else Headline(str(year[0]), *year[1:])
        return Headline(str(last[0]), *last[1:]), previous, year_earlier

    def _recent(self, table: str, grain: str, last: int | None, column: str = "period_start") -> str:
        """A filter on ``column``: its ``last`` latest values in ``table`` at ``grain``."""
        if last is None:
            return ""
        return (f" and {column} in (select distinct {column} from {table} where period_grain = "
                f"'{grain}' order by {column} desc limit {int(last)})")

    def retention_over_time(self, grain: str, last_periods: int | None = None) -> pd.DataFrame:
        """CRR and strict retention per period and segment, long (one row per figure); the
        ``last_periods`` latest periods only when given."""
        recent = self._recent("marts.rpt_retention_rate", grain, last_periods)
        return self.df(
            f"""select period_start, segment_type, segment_value, customers_start,
                      unnest(['CRR', 'strict retention']) as figure,
                      unnest([crr, strict_retention_rate]) as rate
               from marts.rpt_retention_rate
               where period_grain = ? and base_definition = 'active_in_period' and customers_start > 0{recent}
               order by segment_type, segment_value, period_start""", [grain])

    def cohort_cells(self, grain: str, last_cohorts: int | None = None) -> pd.DataFrame:
        """The first-time cohorts' cells of segment all; the ``last_cohorts`` latest cohorts only
        when given (a year of daily cohorts is no chart)."""
        # first-time cohorts (a publication made before cohort types has only those)
        first_time = (" and cohort_type = 'first_time'"
                      if self.has_column("marts.rpt_cohort_retention", "cohort_type") else "")
        latest = self._recent("marts.rpt_cohort_retention", grain, last_cohorts, "cohort_period_start")
        return self.df(
            f"""select cohort_period_start, period_number, period_start, is_complete, cohort_size,
                      active_customers, retention_rate
               from marts.rpt_cohort_retention
               where period_grain = ? and segment_type = 'all'{first_time}{latest}
               order by cohort_period_start, period_number""", [grain])

    def cohort_mean_curve(self, grain: str) -> pd.DataFrame:
        """Per period number over complete cells of the first-time cohorts: the cohort-size-weighted
        mean retention (sum of active over sum of cohort sizes) and the simple mean of the cohorts'
        rates (rpt_cohort_retention_means; computed here for a publication made before it)."""
        if not self.has("marts.rpt_cohort_retention_means"):
            return self.df(
                """select period_number, count(*) as cohorts,
                          sum(active_customers) / sum(cohort_size) as weighted_mean,
                          avg(retention_rate) as simple_mean
                   from marts.rpt_cohort_retention
                   where period_grain = ? and segment_type = 'all' and is_complete and cohort_size > 0
                   group by period_number order by period_number""", [grain])
        return self.df(
            """select period_number, cohorts, retention_rate_weighted_mean as weighted_mean,
                      retention_rate_simple_mean as simple_mean
               from marts.rpt_cohort_retention_means
               where period_grain = ? and segment_type = 'all' and cohort_type = 'first_time'
               order by period_number""", [grain])

    def activity_lifecycle(self, grain: str, last_periods: int | None = None) -> pd.DataFrame:
        recent = self._recent("marts.rpt_activity_lifecycle", grain, last_periods)
        return self.df(
            f"""select period_start, status, customers from (
                   select period_start,
                          unnest(['new', 'returning', 'resurrecting', 'dormant']) as status,
                          unnest([customers_new, customers_returning, customers_resurrecting,
                                  -customers_dormant]) as customers
                   from marts.rpt_activity_lifecycle where period_grain = ?{recent})
               order by period_start, status""", [grain])

    # ---- lifecycle -------------------------------------------------------------------------------

    def stage_sizes(self, grain: str) -> pd.DataFrame:
        return self.df(
            """select period_start, stage, value as customers from marts.rpt_lifecycle_kpis
               where period_grain = ? and metric = 'customers' order by period_start, stage""", [grain])

    def transitions(self, grain: str) -> tuple[str | None, pd.DataFrame]:
        last = self.con.execute("select max(period_start) from marts.rpt_lifecycle_transitions where period_grain = ?",
                                [grain]).fetchone()[0]  # type: ignore[index]
        if last is None:
            return None, pd.DataFrame()
        return str(last), self.df(
            """select from_stage, to_stage, customers,
                      customers / sum(customers) over (partition by from_stage) as share_of_from
               from marts.rpt_lifecycle_transitions where period_grain = ? and period_start = ?
               order by from_stage, to_stage""", [grain, last])

    # ---- survival --------------------------------------------------------------------------------

    def survival_curves(self) -> pd.DataFrame:
        """The Kaplan-Meier curves of every group but the acquisition cohorts, at day 0 and at the
        last duration of each week since the first purchase (the estimate a week ends with: the
        curve is flat between durations, so a weekly step curve shows it without thousands of
        points per group)."""
        return self.df(
            """select group_type, group_value, duration_days, customers_at_risk, survival,
                      survival_ci_low, survival_ci_high
               from marts.rpt_survival_curves
               where group_type <> 'acquisition_cohort'
               qualify duration_days = 0 or row_number() over (
                   partition by group_type, group_value, (duration_days + 6) // 7
                   order by duration_days desc) = 1
               order by group_type, group_value, duration_days""")

    def survival_summary(self) -> pd.DataFrame:
        return self.df(
            """select group_type, group_value, customers, churned, median_survival_days,
                      median_ci_low_days, median_ci_high_days, survival_90d, survival_180d, survival_365d
               from marts.rpt_survival_summary
               where group_type <> 'acquisition_cohort'
               order by group_type <> 'all', group_type, customers desc""")

    # ---- membership renewals ---------------------------------------------------------------------

    def membership_renewals(self) -> pd.DataFrame:
        return self.df(
            """select plan, renewals, members_at_risk, observed_survival, fitted_survival,
                      fitted_survival_ci_low, fitted_survival_ci_high, fitted_retention_rate, is_projection
               from marts.rpt_membership_renewals order by plan, renewals""")

    def sbg_fits(self) -> pd.DataFrame:
        return self.df(
            """select f.plan, f.n_memberships, f.cancellations, f.mean_churn_probability, f.churn_probability_sd,
                      r.fitted_survival as survival_12
               from marts.rpt_sbg_fit as f
               left join marts.rpt_membership_renewals as r on r.plan = f.plan and r.renewals = 12
               order by f.plan""")

    # ---- membership revenue ----------------------------------------------------------------------

    def mrr_months(self) -> pd.DataFrame:
        return self.df(
            """select month_start, mrr_start, new_mrr, expansion_mrr, reactivation_mrr, contraction_mrr,
                      churned_mrr, mrr_end, net_new_mrr, customers_end, logo_churn_rate, gross_mrr_churn_rate,
                      net_mrr_churn_rate, quick_ratio, arpa, ltv, is_complete
               from marts.rpt_mrr_movements order by month_start""")

    def dunning_months(self) -> pd.DataFrame:
        return self.df(
            """select month_start, failed_invoices, failed_amount, recovered_invoices, recovered_amount,
                      lost_invoices, open_invoices, recovery_rate, is_settled
               from marts.rpt_dunning_recovery order by month_start desc limit 12""")

    # ---- churn -----------------------------------------------------------------------------------

    def churn_by_month(self) -> pd.DataFrame:
        return self.df(
            """select date_trunc('month', churn_date)::date as month, churn_type, voluntariness,
                      count(*) as churn_events
               from marts.fct_churn_events group by all order by all""")

    def churn_drivers(self) -> pd.DataFrame:
        return self.df(
            """select driver, driver_source, exposed, exposed_churned, odds_ratio,
                      odds_ratio_ci_lower, odds_ratio_ci_upper, is_ranked, min_support,
                      case when is_ranked then 'ranked (enough support)'
                           else 'below minimum support' end as support
               from marts.rpt_churn_drivers where odds_ratio is not null
               order by is_ranked desc, odds_ratio desc""")

    # ---- cancellation flow -----------------------------------------------------------------------

    def cancellation_funnel(self) -> pd.DataFrame:
        return self.df(
            """select unnest(['1 sessions', '2 offers shown', '3 deflected', '4 saved']) as step,
                      unnest([sum(sessions), sum(offers_shown), sum(deflected), sum(saved)])::bigint as sessions
               from marts.rpt_cancellation_flow""")

    def saved_revenue_by_month(self) -> pd.DataFrame:
        return self.df(
            """select month_start, sum(saved_revenue)::double as saved_revenue, sum(saved)::bigint as saved
               from marts.rpt_cancellation_flow group by month_start order by month_start""")

    # ---- win-back --------------------------------------------------------------------------------

    def recall_by_channel(self) -> pd.DataFrame:
        return self.df(
            """select channel, treated, holdout, incremental_recalls, incremental_recalls_ci_low,
                      incremental_recalls_ci_high, roi, roi_ci_low, roi_ci_high, total_cost,
                      incremental_revenue, recommendation
               from marts.rpt_recall_roi where level = 'channel' order by channel""")

    def worth_recalling(self) -> pd.DataFrame:
        return self.df(
            """select value_tier, service_demand, targets, treated, holdout, uplift, uplift_ci_low,
                      uplift_ci_high, roi, recommendation, recommendation_reason
               from marts.rpt_recall_roi where level = 'value_tier_service'
               order by case value_tier when 'high' then 1 when 'medium' then 2 else 3 end,
                        service_demand""")

    # ---- churn risk ------------------------------------------------------------------------------

    def p_alive_histogram(self) -> pd.DataFrame:
        return self.df(
            """select least(floor(p_alive * 20), 19) / 20 as bin_start,
                      least(floor(p_alive * 20), 19) / 20 + 0.05 as bin_end, risk_tier,
                      count(*) as customers
               from marts.fct_churn_risk where p_alive is not null group by all order by all""")

    def at_risk_segments(self, limit: int = 10) -> pd.DataFrame:
        return self.df(
            f"""select lifecycle_stage, coalesce(risk_reasons, '(none)') as risk_reasons,
                       count(*) as customers, avg(p_alive) as mean_p_alive,
                       sum(revenue_last_period)::double as revenue_last_period
                from marts.fct_churn_risk where risk_tier = 'high'
                group by all order by customers desc, lifecycle_stage limit {int(limit)}""")

    def recall_worth(self) -> pd.DataFrame:
        """Customers by the per-customer worth-recalling rule, with their margin at risk."""
        return self.df(
            """select recall_recommendation, recall_recommendation_reason, count(*) as customers,
                      sum(margin_at_risk_90d)::double as margin_at_risk_90d,
                      avg(expected_purchase_value) as mean_expected_purchase_value, avg(p_alive) as mean_p_alive
               from marts.fct_churn_risk group by recall_recommendation, recall_recommendation_reason
               order by min(case when recall_recommendation = 'worth_recalling' then 0 else 1 end), customers desc""")

    # ---- data quality ----------------------------------------------------------------------------

    def loads_by_source(self) -> pd.DataFrame:
        if not self.has("audit.source_loads"):
            return pd.DataFrame()
        return self.df(
            """select source, sum(rows_read)::bigint as rows_read, sum(rows_loaded)::bigint as rows_loaded,
                      sum(rows_quarantined)::bigint as rows_quarantined, count(*) as loads
               from audit.source_loads group by source order by source""")

    def quarantine_by_reason(self) -> pd.DataFrame:
        if not self.has("audit.quarantine"):
            return pd.DataFrame()
        return self.df(
            """select source, reason, count(*) as rows_quarantined
               from audit.quarantine group by all order by rows_quarantined desc, source, reason""")

    def identity_quality(self) -> pd.DataFrame:
        return self.df(
            """select metric_group, metric, sort_order, value, base, share_of_base, description
               from marts.rpt_identity_quality order by metric_group, sort_order""")
