"""Staging gate: plausibility of the typed sources the marts are built from."""

from __future__ import annotations

from datetime import timedelta

import great_expectations as gx
from great_expectations import expectations as gxe

from expectations.suites import WARNING, GateParams, TableSuite, suite


class GateSettingError(ValueError):
    """A gate cannot be evaluated with these settings; the message names the setting to change."""


def build_stg_commerce__orders_suite(params: GateParams) -> gx.ExpectationSuite:
    latest = params.as_of + timedelta(days=2)
    if params.earliest_date > latest:
        raise GateSettingError(
            f"the orders date check cannot be evaluated: quality.earliest_date ({params.earliest_date}) is after "
            f"the as-of date {params.as_of}. Set quality.earliest_date in liucun.yml to a date before your "
            "oldest order, or check --as-of")
    return suite(
        "stg_commerce__orders",
        gxe.ExpectColumnValuesToNotBeNull(column="channel"),
        gxe.ExpectColumnValuesToBeBetween(
            column="ordered_at", min_value=f"{params.earliest_date.isoformat()} 00:00:00",
            max_value=f"{latest.isoformat()} 00:00:00",
            description=f"orders are dated between quality.earliest_date ({params.earliest_date}) and the "
                        "as-of date + 2 days",
        ),
        gxe.ExpectColumnMeanToBeBetween(
            column="net_amount", min_value=1, max_value=100_000,
            description="average order value is plausible (CNY)", meta=WARNING,
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from (select count(distinct cast(ordered_at as date)) as active_days, "
                f"{params.sql.days_between('cast(min(ordered_at) as date)', 'cast(max(ordered_at) as date)')} "
                "+ 1 as span_days from {batch}) as s where active_days < 0.5 * span_days"
            ),
            description="orders arrive on most days of the covered span (no missing export days)",
            meta=WARNING,
        ),
    )


def build_stg_crm__customers_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "stg_crm__customers",
        gxe.ExpectColumnValuesToNotBeNull(column="registered_at"),
        gxe.ExpectColumnProportionOfUniqueValuesToBeBetween(
            column="phone_hash", min_value=0.8,
            description="phones are mostly personal (few shared or placeholder numbers)", meta=WARNING,
        ),
    )


def build_stg_tracking__events_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "stg_tracking__events",
        gxe.ExpectColumnValuesToNotBeNull(column="event_at"),
        gxe.ExpectColumnValuesToNotBeNull(column="event_type"),
    )


SUITES = [
    TableSuite("staging", "stg_commerce__orders", build_stg_commerce__orders_suite),
    TableSuite("staging", "stg_crm__customers", build_stg_crm__customers_suite),
    TableSuite("staging", "stg_tracking__events", build_stg_tracking__events_suite),
]
