"""Marts gate: the published numbers are non-empty, in range, and reconcile with staging."""

from __future__ import annotations

import great_expectations as gx
from great_expectations import expectations as gxe

from expectations.suites import GateParams, TableSuite, suite

# the grains (of var period_grains) with at least one complete period: a grain's retention figures
# exist from its first complete period; a young source (three weeks of history) has day and week
# rows and no month rows yet, and that is no failure
COMPLETE_GRAINS = "(select distinct period_grain from intermediate.int_periods where is_complete)"
# the coarsest published grain, when it has a complete period (month contains complete weeks and
# days): then a mart of one grain (var period_grain: any of them) has rows
COARSEST_GRAIN_COMPLETE = (
    "(select count(*) from intermediate.int_periods where is_complete and period_grain = "
    "(select case when max(case period_grain when 'month' then 3 when 'week' then 2 else 1 end) = 3 "
    "then 'month' when max(case period_grain when 'month' then 3 when 'week' then 2 else 1 end) = 2 "
    "then 'week' else 'day' end from intermediate.int_periods)) > 0"
)


def _rows_for_every_complete_grain(what: str) -> gxe.UnexpectedRowsExpectation:
    """The mart has rows for exactly the grains with a complete period."""
    return gxe.UnexpectedRowsExpectation(
        unexpected_rows_query=(
            f"select * from (select distinct period_grain from {{batch}}) as m "
            f"full outer join {COMPLETE_GRAINS} as p on m.period_grain = p.period_grain "
            "where m.period_grain is null or p.period_grain is null"
        ),
        description=f"{what} has rows for every grain with a complete period, and only for those",
    )


def _not_empty_once_the_coarsest_grain_completes(what: str) -> gxe.UnexpectedRowsExpectation:
    """A mart of one grain is not empty once the coarsest published grain has a complete period."""
    return gxe.UnexpectedRowsExpectation(
        unexpected_rows_query=(
            f"select * from (select count(*) as n from {{batch}}) as m where m.n = 0 and {COARSEST_GRAIN_COMPLETE}"
        ),
        description=f"{what} is not empty once a period of the coarsest published grain is complete",
    )


def build_rpt_retention_rate_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "rpt_retention_rate",
        _rows_for_every_complete_grain("the retention mart"),
        gxe.ExpectColumnValuesToBeBetween(column="strict_retention_rate", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="churn_rate", min_value=0, max_value=1),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select period_grain, period_start, segment_type, segment_value, crr from {batch} "
                "where crr < 0 or (period_grain = 'month' and crr > 10)"
            ),
            # (E - N) / S counts the returning customers against the period before: a day or a week
            # with few customers at its start can have many times as many back (a quiet Sunday, a
            # busy Monday), a month hardly
            description="CRR is never negative, and a month's CRR is at most 10",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select r.period_grain, r.period_start, r.customers_end, a.active from {batch} as r "
                "join (select period_grain, period_start, count(*) as active "
                "      from intermediate.int_customer_activity_periods group by period_grain, period_start) as a "
                "on r.period_grain = a.period_grain and r.period_start = a.period_start "
                "where r.segment_type = 'all' and r.base_definition = 'active_in_period' "
                "and r.customers_end <> a.active"
            ),
            description="E per grain and period equals the customers active in that period",
        ),
    )


def build_fct_orders_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "fct_orders",
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select m.n, m.revenue, s.n as staging_n, s.revenue as staging_revenue from "
                "(select count(*) as n, coalesce(sum(net_amount), 0) as revenue from {batch}) as m, "
                "(select sum(n) as n, sum(revenue) as revenue from ("
                "  select count(*) as n, coalesce(sum(net_amount), 0) as revenue "
                "  from staging.stg_commerce__orders"
                "  union all"
                "  select count(distinct order_id), coalesce(sum(case when line_amount > 0 "
                "  then line_amount else 0 end), 0) from staging.stg_commerce__order_lines) as u) as s "
                "where m.n <> s.n or m.revenue <> s.revenue"
            ),
            description="mart orders and revenue equal staging orders (and order lines) and revenue",
        ),
    )


def build_dim_customers_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "dim_customers",
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select sum(orders) as n from {batch}) as d, "
                "(select count(*) as n from marts.fct_orders where customer_id is not null) as f "
                "where d.n <> f.n"
            ),
            description="customer order counts add up to the attributed orders",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select count(distinct customer_id) as n "
                " from intermediate.int_customer_activity_periods where orders > 0) as c, "
                "(select count(distinct customer_id) as n from marts.fct_orders "
                " where is_qualifying and customer_id is not null) as f where c.n <> f.n"
            ),
            description="customers with a purchase period are exactly the first-time buyers",
        ),
    )


def build_fct_customer_periods_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "fct_customer_periods",
        _not_empty_once_the_coarsest_grain_completes("customer periods"),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select count(distinct customer_id) as n, min(period_grain) as grain from {batch}) as f, "
                "(select a.period_grain, count(distinct a.customer_id) as n "
                " from intermediate.int_customer_activity_periods as a "
                " join intermediate.int_periods as p on a.period_grain = p.period_grain "
                " and a.period_start = p.period_start where p.is_complete group by a.period_grain) as c "
                "where f.grain = c.period_grain and f.n <> c.n"
            ),
            description="every customer active in a complete period (of the mart's grain) has customer periods",
        ),
    )


def build_rpt_cohort_retention_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "rpt_cohort_retention",
        gxe.ExpectTableRowCountToBeBetween(min_value=1, description="a cohort mart is never empty"),
        gxe.ExpectColumnValuesToBeBetween(column="retention_rate", min_value=0, max_value=1),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select period_grain, sum(cohort_size) as n from {batch} "
                " where period_number = 0 and segment_type = 'all' and cohort_type = 'first_time' "
                " and start_activity = 'purchase' group by period_grain) as c, "
                "(select count(distinct customer_id) as n from marts.fct_orders "
                " where is_qualifying and customer_id is not null) as f where c.n <> f.n"
            ),
            description="each grain's first-time purchase cohorts' sizes in period 0 sum to the first-time buyers",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select c.* from {batch} as c join (select period_grain, max(period_start) as last_start "
                "from intermediate.int_periods group by period_grain) as p on c.period_grain = p.period_grain "
                "where not c.is_complete and c.period_start < p.last_start"
            ),
            description="only the current period is flagged incomplete (the as-of date is inside it)",
        ),
    )


def build_rpt_cohort_retention_means_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "rpt_cohort_retention_means",
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} as m full outer join (select period_grain, cohort_type, segment_type, "
                "segment_value, period_number, count(*) as cohorts, sum(cohort_size) as customers, "
                "sum(active_customers) as active from marts.rpt_cohort_retention "
                "where is_complete and cohort_size > 0 "
                "group by period_grain, cohort_type, segment_type, segment_value, period_number) as c "
                "on m.period_grain = c.period_grain and m.cohort_type = c.cohort_type "
                "and m.segment_type = c.segment_type and m.segment_value = c.segment_value "
                "and m.period_number = c.period_number "
                "where m.period_number is null or c.period_number is null or m.cohorts <> c.cohorts "
                "or m.customers <> c.customers or m.active_customers <> c.active"
            ),
            description="the means cover exactly the complete cells of rpt_cohort_retention",
        ),
    )


def build_rpt_activity_lifecycle_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "rpt_activity_lifecycle",
        _rows_for_every_complete_grain("the activity lifecycle"),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} where customers_resurrecting < 0 or customers_dormant < 0"
            ),
            description="no stage has a negative count",
        ),
        gxe.UnexpectedRowsExpectation(
            # counted again from the activity rows, apart from the retention counts the mart reads
            unexpected_rows_query=(
                "with a as (select ap.customer_id, p.period_grain, p.period_start, p.period_index "
                "  from intermediate.int_customer_activity_periods ap "
                "  join intermediate.int_periods p on ap.period_grain = p.period_grain "
                "  and ap.period_start = p.period_start), "
                "f as (select customer_id, period_grain, min(period_index) as first_index from a "
                "  group by customer_id, period_grain), "
                "per as (select a.period_grain, a.period_start, count(*) as active, "
                "  sum(case when f.first_index = a.period_index then 1 else 0 end) as new, "
                "  count(b.customer_id) as returning "
                "  from a join f on a.customer_id = f.customer_id and a.period_grain = f.period_grain "
                "  left join a as b on b.customer_id = a.customer_id and b.period_grain = a.period_grain "
                "  and b.period_index = a.period_index - 1 "
                "  group by a.period_grain, a.period_start) "
                "select l.period_grain, l.period_start, l.customers_active, l.customers_new, l.customers_returning "
                "from {batch} as l left join per on l.period_grain = per.period_grain "
                "and l.period_start = per.period_start "
                "where l.customers_active <> coalesce(per.active, 0) or l.customers_new <> coalesce(per.new, 0) "
                "or l.customers_returning <> coalesce(per.returning, 0)"
            ),
            description="active, new and returning equal the customers counted from the activity rows",
        ),
    )


def build_rpt_lifecycle_kpis_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "rpt_lifecycle_kpis",
        _not_empty_once_the_coarsest_grain_completes("the lifecycle KPIs"),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} where (metric like '%_rate' or metric = 'referral_share') "
                "and (value < 0 or value > 1)"
            ),
            description="lifecycle rates are between 0 and 1",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select k.period_start, k.n, l.n from (select period_start, sum(numerator) as n from {batch} "
                " where metric = 'customers' group by period_start) as k "
                "join (select period_start, count(*) as n from marts.fct_customer_lifecycle group by period_start) as l "
                "on k.period_start = l.period_start where k.n <> l.n"
            ),
            description="the stages partition the customers of each period",
        ),
    )


SUITES = [
    TableSuite("marts", "rpt_retention_rate", build_rpt_retention_rate_suite),
    TableSuite("marts", "fct_orders", build_fct_orders_suite),
    TableSuite("marts", "dim_customers", build_dim_customers_suite),
    TableSuite("marts", "fct_customer_periods", build_fct_customer_periods_suite),
    TableSuite("marts", "rpt_cohort_retention", build_rpt_cohort_retention_suite),
    TableSuite("marts", "rpt_cohort_retention_means", build_rpt_cohort_retention_means_suite),
    TableSuite("marts", "rpt_activity_lifecycle", build_rpt_activity_lifecycle_suite),
    TableSuite("marts", "rpt_lifecycle_kpis", build_rpt_lifecycle_kpis_suite),
]
