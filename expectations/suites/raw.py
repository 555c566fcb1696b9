"""Raw-layer gate: what ingestion must guarantee before anything is built on it."""

from __future__ import annotations

import great_expectations as gx
from great_expectations import expectations as gxe

from expectations.suites import WARNING, GateParams, TableSuite, suite


def build_loads_suite(params: GateParams) -> gx.ExpectationSuite:
    shares = " ".join(
        f"when '{source.replace(chr(39), '')}' then {float(share)}"
        for source, share in sorted(params.max_quarantine_share.items())
    )
    limit = (f"case source {shares} else {params.default_max_quarantine_share} end" if shares
             else str(params.default_max_quarantine_share))
    return suite(
        "_loads",
        gxe.ExpectTableRowCountToBeBetween(min_value=1, description="at least one source loaded"),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                f"select source, rows_read, rows_quarantined, reasons from {{batch}} "
                f"where rows_quarantined > ({limit}) * rows_read"
            ),
            description="no load quarantines more than its source's max_quarantine_share "
                        f"(default {params.default_max_quarantine_share:.0%})",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select source, rows_read, rows_quarantined, reasons from {batch} "
                "where rows_quarantined > 0"
            ),
            description="sources with quarantined rows (see audit.quarantine)",
            meta=WARNING,
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select source, rows_read, rows_loaded, rows_quarantined from {batch} "
                "where rows_read <> rows_loaded + rows_quarantined"
            ),
            description="every row read is loaded or quarantined",
        ),
    )


def build_customers_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "customers",
        gxe.ExpectTableRowCountToBeBetween(min_value=1 if params.expects_rows("customers") else 0,
                                           description="a configured CRM source delivered rows"),
        gxe.ExpectColumnValuesToBeUnique(column="crm_id"),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                f"select crm_id from {{batch}} where not {params.sql.full_match('phone_hash', '[0-9a-f]{{64}}')} "
                f"or not {params.sql.full_match('email_hash', '[0-9a-f]{{64}}')}"
            ),
            description="phones and emails are stored only as salted SHA-256 hashes",
        ),
    )


def build_orders_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "orders",
        gxe.ExpectTableRowCountToBeBetween(
            min_value=1 if params.expects_rows("orders") else 0,
            description="a configured orders source delivered rows"),
        gxe.ExpectColumnValuesToBeUnique(column="order_id"),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="gross_amount", column_B="net_amount", or_equal=True,
            description="net = gross - discount never exceeds gross",
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="net_amount", column_B="refund_amount", or_equal=True, ignore_row_if="either_value_is_missing",
            description="a refund never exceeds what was paid",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select avg(case when crm_id is null and member_card is null "
                "and phone_hash is null and wechat_unionid is null then 1.0 else 0.0 end) as "
                "anonymous_share from {batch}) as s where anonymous_share > 0.5"
            ),
            description="at most half of all orders are anonymous (no customer identifier)",
            meta=WARNING,
        ),
    )


def build_tickets_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "tickets",
        gxe.ExpectColumnValuesToBeBetween(column="satisfaction_score", min_value=1, max_value=5),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="resolved_at", column_B="opened_at", or_equal=True,
            ignore_row_if="either_value_is_missing",
            description="a ticket is resolved after it is opened",
        ),
    )


def build_survey_responses_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "survey_responses",
        gxe.ExpectColumnValuesToBeInSet(column="survey_type", value_set=["nps", "csat"]),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select response_id, survey_type, score from {batch} where "
                "(survey_type = 'nps' and score not between 0 and 10) or "
                "(survey_type = 'csat' and score not between 1 and 5)"
            ),
            description="NPS scores are 0-10 and CSAT scores 1-5",
        ),
    )


def build_memberships_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "memberships",
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="ended_at", column_B="started_at", or_equal=True,
            ignore_row_if="either_value_is_missing",
        ),
        gxe.ExpectColumnValuesToBeInSet(column="end_reason", value_set=["cancelled", "non_payment"]),
    )


def build_invoices_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "invoices",
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=["paid", "failed"]),
        gxe.ExpectColumnValuesToBeBetween(column="attempt_number", min_value=1),
    )


def build_campaign_contacts_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "campaign_contacts",
        gxe.ExpectColumnValuesToBeInSet(column="assigned_group", value_set=["treatment", "holdout"]),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select contact_id from {batch} where assigned_group = 'holdout' and sent_at is not null"
            ),
            description="the holdout group is never contacted",
        ),
    )


def build_campaigns_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "campaigns",
        gxe.ExpectColumnValuesToBeBetween(column="holdout_share", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeInSet(
            column="channel", value_set=["sms", "email", "wechat_template", "outbound_call", "app_push"],
            meta=WARNING,
        ),
    )


def build_order_lines_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "order_lines",
        gxe.ExpectTableRowCountToBeBetween(
            min_value=1 if params.expects_rows("order_lines") else 0,
            description="a configured order-lines source delivered rows"),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select order_id, line_number, quantity, is_return from {batch} "
                "where coalesce(is_return, false) <> (quantity < 0)"
            ),
            description="return lines, and only they, have negative quantities",
            meta=WARNING,
        ),
    )


SUITES = [
    TableSuite("raw", "_loads", build_loads_suite),
    TableSuite("raw", "order_lines", build_order_lines_suite),
    TableSuite("raw", "customers", build_customers_suite),
    TableSuite("raw", "orders", build_orders_suite),
    TableSuite("raw", "tickets", build_tickets_suite),
    TableSuite("raw", "survey_responses", build_survey_responses_suite),
    TableSuite("raw", "memberships", build_memberships_suite),
    TableSuite("raw", "invoices", build_invoices_suite),
    TableSuite("raw", "campaigns", build_campaigns_suite),
    TableSuite("raw", "campaign_contacts", build_campaign_contacts_suite),
]
