"""Marts gate suites for the risk marts (registered in the marts layer by expectations.suites)."""

from __future__ import annotations

import great_expectations as gx
from great_expectations import expectations as gxe

from expectations.suites import GateParams, TableSuite, suite


def build_fct_churn_risk_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "fct_churn_risk",
        gxe.ExpectColumnValuesToBeBetween(column="p_alive", min_value=0, max_value=1,
                                          description="P(alive) is a probability"),
        gxe.ExpectColumnValuesToBeBetween(column="expected_purchases_90d", min_value=0,
                                          description="expected purchases are never negative"),
        gxe.ExpectColumnValuesToBeInSet(column="risk_tier", value_set=["high", "medium", "low"]),
        gxe.ExpectColumnValuesToNotBeNull(column="risk_tier"),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select count(*) as n, count(distinct customer_id) as d from {batch}) as r, "
                "(select count(*) as n from marts.fct_customer_lifecycle "
                " where period_start = (select max(period_start) from marts.fct_customer_lifecycle) "
                " and stage in ('new', 'growth', 'mature', 'dormant')) as l "
                "where r.n <> l.n or r.d <> r.n"
            ),
            description="one row per customer active or dormant in the last complete lifecycle period",
        ),
    )


def build_fct_customer_bgnbd_scores_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "fct_customer_bgnbd_scores",
        gxe.ExpectColumnValuesToBeBetween(column="p_alive", min_value=0, max_value=1,
                                          description="P(alive) is a probability"),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select count(*) as n, count(distinct customer_id) as d from {batch}) as s, "
                "(select count(*) as customers from intermediate.int_customer_rfm) as c, "
                "(select count(*) as fits, max(n_customers) as fitted from marts.rpt_bgnbd_fit) as f "
                "where s.d <> s.n or f.fits > 1 or (f.fits = 0 and s.n > 0) "
                "or (f.fits = 1 and (s.n <> c.customers or f.fitted <> c.customers))"
            ),
            description="the published model is complete: at most one fit (rpt_bgnbd_fit), and with a fit "
                        "one score per customer it was fitted on (every customer of int_customer_rfm)",
        ),
    )


SUITES = [
    TableSuite("marts", "fct_churn_risk", build_fct_churn_risk_suite),
    TableSuite("marts", "fct_customer_bgnbd_scores", build_fct_customer_bgnbd_scores_suite),
]
