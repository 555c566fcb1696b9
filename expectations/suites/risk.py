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
        gxe.ExpectColumnValuesToBeBetween(column="margin_at_risk_90d", min_value=0,
                                          description="the margin at risk is never negative"),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} where recall_recommendation is null "
                "or (recall_recommendation = 'worth_recalling' and (risk_tier = 'low' or margin_at_risk_90d is null)) "
                "or (recall_recommendation = 'insufficient_data' and (risk_tier = 'low' or margin_at_risk_90d is not null)) "
                "or (risk_tier = 'low' and recall_recommendation <> 'not_worth_recalling')"
            ),
            description="only an at-risk customer with a margin at risk is worth recalling; "
                        "insufficient data means no value model",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select min(case when recall_recommendation = 'worth_recalling' "
                "then margin_at_risk_90d end) as worth_min, "
                "max(case when recall_recommendation = 'not_worth_recalling' and risk_tier <> 'low' "
                "then margin_at_risk_90d end) as not_worth_max from {batch}) as m "
                "where worth_min <= not_worth_max"
            ),
            description="one threshold separates them: every at-risk customer worth recalling has a larger "
                        "margin at risk than every at-risk customer who is not",
        ),
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
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} as s "
                "cross join (select count(*) as fits from marts.rpt_gamma_gamma_fit) as g "
                "left join marts.rpt_gamma_gamma_fit as f on true "
                "where g.fits > 1 "
                "or (g.fits = 0 and s.expected_purchase_value is not null) "
                "or (g.fits = 1 and (s.expected_purchase_value is null "
                "    or abs(s.expected_purchase_value * (s.repeat_purchase_days * f.p + f.q - 1) "
                "           - f.p * (f.gamma + s.repeat_purchase_days * coalesce(s.mean_repeat_purchase_value, 0))) "
                "       > 1e-9 * (1 + f.p * (f.gamma + s.repeat_purchase_days "
                "                               * coalesce(s.mean_repeat_purchase_value, 0)))))"
            ),
            description="every expected purchase value is the published Gamma-Gamma fit's "
                        "p (gamma + x m_x) / (p x + q - 1), and there is one exactly when a fit is published",
        ),
    )


def build_rpt_gamma_gamma_fit_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "rpt_gamma_gamma_fit",
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} as f "
                "join (select count(*) as repeaters from intermediate.int_customer_rfm where frequency > 0) as c "
                "on f.n_customers <> c.repeaters or f.q <= 1 "
                "or abs(f.population_mean_purchase_value - f.p * f.gamma / (f.q - 1)) > 1e-9 * f.population_mean_purchase_value"
            ),
            description="the fit covers every customer with a repeat purchase day and its population mean "
                        "is p gamma / (q - 1), finite",
        ),
    )


SUITES = [
    TableSuite("marts", "fct_churn_risk", build_fct_churn_risk_suite),
    TableSuite("marts", "fct_customer_bgnbd_scores", build_fct_customer_bgnbd_scores_suite),
    TableSuite("marts", "rpt_gamma_gamma_fit", build_rpt_gamma_gamma_fit_suite),
]
