"""Marts gate, survival: every customer is on each group's curve once, the curves only come down,
their intervals hold them, and the summaries add up to the curves."""

from __future__ import annotations

import great_expectations as gx
from great_expectations import expectations as gxe

from expectations.suites import GateParams, TableSuite, suite


def build_rpt_survival_curves_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "rpt_survival_curves",
        gxe.ExpectColumnValuesToBeBetween(column="survival", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToNotBeNull(column="survival"),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select group_type, group_value, duration_days, survival, "
                "lag(survival) over (partition by group_type, group_value order by duration_days) as previous "
                "from {batch}) as c where survival > previous + 1e-12"
            ),
            description="a Kaplan-Meier curve never goes up",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} where survival_ci_low > survival + 1e-12 "
                "or survival_ci_high < survival - 1e-12"
            ),
            description="each interval holds its estimate",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select group_type, group_value, "
                "max(case when duration_days = 0 then customers_at_risk end) as at_risk_day_0, "
                "sum(churned + censored) as observed from {batch} group by group_type, group_value) as g "
                "where at_risk_day_0 is null or at_risk_day_0 <> observed"
            ),
            description="each group's curve starts at day 0 with every customer of the group, each leaving it once",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select max(customers_at_risk) as on_curve from {batch} "
                "where group_type = 'all' and duration_days = 0) as c, "
                "(select count(*) as buyers from intermediate.int_customer_rfm) as r "
                "where coalesce(c.on_curve, 0) <> r.buyers"
            ),
            description="the curve of all customers starts with every customer who made a qualifying purchase",
        ),
    )


def build_rpt_survival_summary_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "rpt_survival_summary",
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query="select * from {batch} where customers <> churned + censored",
            description="customers are churned or censored",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select group_type, sum(customers) as customers from {batch} "
                "group by group_type) as t, (select customers as all_customers from {batch} "
                "where group_type = 'all') as a where t.customers <> a.all_customers"
            ),
            description="the groups of each group type partition all customers",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select group_type, group_value, median_survival_days from {batch}) as s "
                "where median_survival_days is not null and not exists ("
                "select 1 from marts.rpt_survival_curves as c where c.group_type = s.group_type "
                "and c.group_value = s.group_value and c.duration_days = s.median_survival_days "
                "and c.survival <= 0.5 + 1e-9)"
            ),
            description="the median is a duration of the curve at which it is at or below one half",
        ),
    )


SUITES = [
    TableSuite("marts", "rpt_survival_curves", build_rpt_survival_curves_suite),
    TableSuite("marts", "rpt_survival_summary", build_rpt_survival_summary_suite),
]
