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
                "      from intermediate.int_customer_activity_months group by period_start) as a "
                "on r.period_start = a.period_start "
                "where r.segment_type = 'all' and r.customers_end <> a.active"
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
                "select * from (select sum(customers_new) as n "
                " from intermediate.int_retention_period_counts) as c, "
                "(select count(distinct customer_id) as n from marts.fct_orders "
                " where is_qualifying and customer_id is not null) as f where c.n <> f.n"
            ),
            description="cohort sizes (new customers per period) sum to the first-time buyers",
        ),
    )


SUITES = [
    TableSuite("marts", "rpt_retention_rate", build_rpt_retention_rate_suite),
    TableSuite("marts", "fct_orders", build_fct_orders_suite),
    TableSuite("marts", "dim_customers", build_dim_customers_suite),
]
