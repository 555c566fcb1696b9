"""Marts gate suites for the recall and cancellation marts (registered in the marts layer by
expectations.suites). The marts are empty on data without campaigns or billing (Online Retail), so
no suite requires rows; every check holds vacuously on an empty table."""

from __future__ import annotations

import great_expectations as gx
from great_expectations import expectations as gxe

from expectations.suites import GateParams, TableSuite, suite


def build_fct_recall_contacts_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "fct_recall_contacts",
        gxe.ExpectColumnValuesToBeUnique(column="contact_id"),
        gxe.ExpectColumnValuesToBeInSet(column="assigned_group", value_set=["treatment", "holdout"]),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select m.n, s.n from (select count(*) as n from {batch}) as m, "
                "(select count(*) as n from staging.stg_campaigns__contacts) as s where m.n <> s.n"
            ),
            description="one row per staged campaign contact",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select contact_id from {batch} where is_recalled and "
                "(first_recall_at < launched_at or first_recall_at >= window_end_at)"
            ),
            description="a recall falls in [launch, launch + attribution window) for both groups",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select contact_id from {batch} where not is_treatment "
                "and (is_reached or contact_cost <> 0 or is_coupon_redeemed)"
            ),
            description="holdout targets are never contacted, charged or redeem a coupon",
        ),
    )


def build_rpt_recall_roi_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "rpt_recall_roi",
        gxe.ExpectColumnValuesToBeBetween(column="recall_rate_treated", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="recall_rate_holdout", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="rechurn_rate", min_value=0, max_value=1),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query="select * from {batch} where treated + holdout <> targets or reached > treated",
            description="treated + holdout = targets; reached <= treated",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} where uplift is not null and uplift_se is not null "
                "and not (uplift_ci_low <= uplift and uplift <= uplift_ci_high)"
            ),
            description="the uplift interval contains the estimate",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select r.channel, r.targets, c.n from {batch} as r join "
                "(select channel, count(*) as n from marts.fct_recall_contacts group by channel) as c "
                "on r.channel = c.channel where r.level = 'channel' and r.targets <> c.n"
            ),
            description="channel rollups add up to the channel's contacts",
        ),
    )


def build_rpt_cancellation_flow_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "rpt_cancellation_flow",
        gxe.ExpectColumnValuesToBeBetween(column="deflect_rate", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="save_rate", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="offer_acceptance_rate", min_value=0, max_value=1),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} where sessions <> sessions_cancelled + sessions_abandoned + deflected "
                "or saved > deflected_matured or saved + lost_deflections > deflected"
            ),
            description="sessions = cancelled + abandoned + deflected; saved and lost deflections within deflected",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select m.n, s.n from (select coalesce(sum(sessions), 0) as n from {batch}) as m, "
                "(select count(*) as n from staging.stg_cancellation__sessions) as s where m.n <> s.n"
            ),
            description="every staged cancellation session is counted once",
        ),
    )


SUITES = [
    TableSuite("marts", "fct_recall_contacts", build_fct_recall_contacts_suite),
    TableSuite("marts", "rpt_recall_roi", build_rpt_recall_roi_suite),
    TableSuite("marts", "rpt_cancellation_flow", build_rpt_cancellation_flow_suite),
]
