"""Marts gate: the published numbers are non-empty, in range, and reconcile with staging."""

from __future__ import annotations

import great_expectations as gx
from great_expectations import expectations as gxe

from expectations.suites import GateParams, TableSuite, suite


def build_rpt_retention_rate_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "rpt_retention_rate",
        gxe.ExpectTableRowCountToBeBetween(min_value=1, description="a retention mart is never empty"),
        gxe.ExpectColumnValuesToBeBetween(column="strict_retention_rate", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="churn_rate", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="crr", min_value=0, max_value=10),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select r.period_start, r.customers_end, a.active from {batch} as r "
                "join (select period_start, count(*) as active "
                "      from intermediate.int_customer_activity_periods group by period_start) as a "
                "on r.period_start = a.period_start "
                "where r.segment_type = 'all' and r.base_definition = 'active_in_period' "
                "and r.customers_end <> a.active"
            ),
            description="E per period equals the customers active in that period",
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
        gxe.ExpectTableRowCountToBeBetween(min_value=1, description="customer periods are never empty"),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select count(distinct customer_id) as n from {batch}) as f, "
                "(select count(distinct a.customer_id) as n from intermediate.int_customer_activity_periods as a "
                " join intermediate.int_periods as p on a.period_start = p.period_start where p.is_complete) as c "
                "where f.n <> c.n"
            ),
            description="every customer active in a complete period has customer periods",
        ),
    )


def build_rpt_cohort_retention_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "rpt_cohort_retention",
        gxe.ExpectTableRowCountToBeBetween(min_value=1, description="a cohort mart is never empty"),
        gxe.ExpectColumnValuesToBeBetween(column="retention_rate", min_value=0, max_value=1),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select coalesce(sum(cohort_size), 0) as n, count(*) as cohorts from {batch} "
                " where period_number = 0 and segment_type = 'all' and cohort_type = 'first_time' "
                " and start_activity = 'purchase') as c, "
                "(select count(distinct customer_id) as n from marts.fct_orders "
                " where is_qualifying and customer_id is not null) as f where c.cohorts > 0 and c.n <> f.n"
            ),
            description="first-time purchase cohorts' sizes in period 0 sum to the first-time buyers",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} where not is_complete "
                "and period_start < (select max(period_start) from {batch})"
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
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} where customers_resurrecting < 0 or customers_dormant < 0"
            ),
            description="no stage has a negative count",
        ),
        gxe.UnexpectedRowsExpectation(
            # counted again from the activity rows, apart from the retention counts the mart reads
            unexpected_rows_query=(
                "with a as (select ap.customer_id, p.period_start, p.period_index "
                "  from intermediate.int_customer_activity_periods ap "
                "  join intermediate.int_periods p on ap.period_start = p.period_start), "
                "f as (select customer_id, min(period_index) as first_index from a group by customer_id), "
                "per as (select a.period_start, count(*) as active, "
                "  sum(case when f.first_index = a.period_index then 1 else 0 end) as new, "
                "  count(b.customer_id) as returning "
                "  from a join f on a.customer_id = f.customer_id "
                "  left join a as b on b.customer_id = a.customer_id and b.period_index = a.period_index - 1 "
                "  group by a.period_start) "
                "select l.period_start, l.customers_active, l.customers_new, l.customers_returning "
                "from {batch} as l left join per on l.period_start = per.period_start "
                "where l.customers_active <> coalesce(per.active, 0) or l.customers_new <> coalesce(per.new, 0) "
                "or l.customers_returning <> coalesce(per.returning, 0)"
            ),
            description="active, new and returning equal the customers counted from the activity rows",
        ),
    )


def build_rpt_lifecycle_kpis_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "rpt_lifecycle_kpis",
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
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
