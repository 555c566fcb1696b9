"""Checks dbt tests cannot make: they compare this run with the outside world and with the last
publication, so they are computed at gate time from the parameters.

- ``raw.source_freshness``: per configured source, the newest record against the as-of date
  (``freshness: {warn_after_days, error_after_days}`` per source in liucun.yml).
- ``marts.row_count_bands``: every mart's row count against the last publication's
  (``quality.row_count_bands``: outside ``warn`` is reported, outside ``block`` stops publishing;
  marts that had fewer than ``min_rows`` rows, default 50, are too small for a factor band).
- Distributions: daily order counts of the last week against the four weeks before, the latest
  complete month's revenue against the three before, and null shares of key columns.
- Reconciliation across layers for the same window: mart order revenue per retention period, and
  mart orders and revenue against staging over the last 28 days.

Every value interpolated into SQL is a validated source name, a contract kind or column, a number
or an ISO date: never free text from the config.
"""

from __future__ import annotations

from datetime import timedelta

import great_expectations as gx
from great_expectations import expectations as gxe

from expectations.suites import WARNING, GateParams, TableSuite, suite
from flows.config import FRESHNESS_COLUMN


def _num(value: float | None) -> str:
    return "cast(null as double)" if value is None else repr(float(value))


def freshness_query(params: GateParams, existing: set[str]) -> str | None:
    """One row per configured source with a timestamp: its newest record and its age in days."""
    parts = []
    for source, kind, warn, error in params.freshness:
        column = FRESHNESS_COLUMN.get(kind)
        if column is None or f"raw.{kind}" not in existing or (warn is None and error is None):
            continue
        parts.append(
            f"select '{source}' as source, '{kind}' as kind, '{column}' as time_column, "
            f"{_num(warn)} as warn_after_days, {_num(error)} as error_after_days, "
            f"(select max({column}) from raw.{kind} where _source = '{source}') as latest_record_at"
        )
    if not parts:
        return None
    age = params.sql.days_between("cast(latest_record_at as date)", f"date '{params.as_of.isoformat()}'")
    return (f"select *, {age} as age_days "
            f"from ({' union all '.join(parts)}) as f")


def build_source_freshness_suite(params: GateParams) -> gx.ExpectationSuite:
    return suite(
        "source_freshness",
        gxe.ExpectTableRowCountToBeBetween(min_value=1, description="every source's freshness is measured"),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select source, kind, time_column, latest_record_at, age_days, error_after_days from {batch} "
                "where error_after_days is not null and (latest_record_at is null or age_days > error_after_days)"
            ),
            description="no source is older than its freshness.error_after_days (blocking)",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select source, kind, time_column, latest_record_at, age_days, warn_after_days from {batch} "
                "where warn_after_days is not null and (latest_record_at is null or age_days > warn_after_days)"
            ),
            description="sources older than their freshness.warn_after_days",
            meta=WARNING,
        ),
    )


def row_count_query(params: GateParams, existing: set[str]) -> str | None:
    """One row per mart that the last publication also had: its row count now and then."""
    parts = [
        f"select '{table}' as mart, (select count(*) from marts.{table}) as row_count, "
        f"{int(previous)} as previous_row_count"
        for table, previous in sorted(params.previous_row_counts.items())
        if f"marts.{table}" in existing and table.isidentifier() and previous >= params.row_count_band_min_rows
    ]
    return " union all ".join(parts) if parts else None


def _band_rows(band: tuple[float, float]) -> str:
    low, high = band
    # floor / ceil of the band, so tiny marts are not failed by a single row
    return (f"select mart, row_count, previous_row_count from {{batch}} where "
            f"row_count < floor({low!r} * previous_row_count) or row_count > ceil({high!r} * previous_row_count)")


def build_row_count_bands_suite(params: GateParams) -> gx.ExpectationSuite:
    (wlo, whi), (blo, bhi) = params.row_count_band_warn, params.row_count_band_block
    return suite(
        "row_count_bands",
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=_band_rows(params.row_count_band_block),
            description=f"each mart has {blo:g}x to {bhi:g}x the rows of the last publication (blocking)",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=_band_rows(params.row_count_band_warn),
            description=f"each mart has {wlo:g}x to {whi:g}x the rows of the last publication",
            meta=WARNING,
        ),
    )


def build_daily_orders_suite(params: GateParams) -> gx.ExpectationSuite:
    last = params.as_of.isoformat()
    week = (params.as_of - timedelta(days=6)).isoformat()
    before = (params.as_of - timedelta(days=34)).isoformat()
    days = " union all ".join(f"select date '{(params.as_of - timedelta(days=k)).isoformat()}' as day"
                              for k in range(6, -1, -1))  # the last 7 days
    return suite(
        "stg_commerce__orders_daily",
        gxe.ExpectColumnValuesToNotBeNull(column="ordered_at", description="every order has a time"),
        gxe.ExpectColumnValuesToNotBeNull(column="net_amount", description="every order has an amount"),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "with daily as (select cast(ordered_at as date) as day, count(*) as orders from {batch} "
                f"where cast(ordered_at as date) between date '{before}' and date '{last}' group by 1), "
                "baseline as (select median(orders) as median_orders from daily "
                f"where day < date '{week}') "
                "select cast(w.day as date) as day, coalesce(d.orders, 0) as orders, b.median_orders "
                "from baseline as b "
                f"cross join ({days}) as w left join daily as d on cast(w.day as date) = d.day "
                "where b.median_orders >= 20 and (coalesce(d.orders, 0) < 0.25 * b.median_orders "
                "or coalesce(d.orders, 0) > 4 * b.median_orders)"
            ),
            description="daily order counts of the last 7 days are within 0.25x-4x the median day of the 4 weeks before",
            meta=WARNING,
        ),
    )


def build_revenue_distribution_suite(params: GateParams) -> gx.ExpectationSuite:
    """On fct_orders: revenue totals by month and the share of orders without a customer."""
    month = params.as_of.replace(day=1).isoformat()
    return suite(
        "fct_orders_distribution",
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "with monthly as (select date_trunc('month', order_date) as month, sum(net_amount) as revenue "
                f"from {{batch}} where is_qualifying and order_date < date '{month}' group by 1), "
                "ranked as (select month, revenue, row_number() over (order by month desc) as n from monthly) "
                "select l.month, l.revenue, avg(p.revenue) as mean_previous_3 from ranked as l "
                "join ranked as p on p.n between 2 and 4 where l.n = 1 group by l.month, l.revenue "
                "having count(*) = 3 and (l.revenue < 0.5 * avg(p.revenue) or l.revenue > 2 * avg(p.revenue))"
            ),
            description="the last complete month's revenue is within 0.5x-2x the mean of the 3 months before",
            meta=WARNING,
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="customer_id", mostly=0.5, meta=WARNING,
            description="at least half of all orders are attributed to a customer (null share of customer_id)"),
        gxe.ExpectColumnValuesToNotBeNull(column="order_date", description="every order has a business date"),
    )


def build_revenue_reconciliation_suite(params: GateParams) -> gx.ExpectationSuite:
    """On rpt_retention_rate: per period, E customers' revenue = attributed qualifying order revenue."""
    start = (params.as_of - timedelta(days=27)).isoformat()
    end = (params.as_of + timedelta(days=1)).isoformat()
    return suite(
        "rpt_retention_rate_reconciliation",
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select r.period_grain, r.period_start, r.revenue_end, coalesce(sum(o.net_amount), 0) as order_revenue "
                "from {batch} as r left join marts.fct_orders as o on o.is_qualifying and o.customer_id is not null "
                "and o.order_date >= r.period_start and o.order_date < r.period_end "
                "where r.segment_type = 'all' and r.base_definition = 'active_in_period' "
                "group by r.period_grain, r.period_start, r.revenue_end "
                "having coalesce(r.revenue_end, 0) <> coalesce(sum(o.net_amount), 0)"
            ),
            description="each period's revenue in the retention mart (every grain) equals the attributed "
                        "qualifying order revenue of that period (fct_orders)",
        ),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select m.n, m.revenue, s.n as staging_n, s.revenue as staging_revenue from "
                "(select count(*) as n, coalesce(sum(net_amount), 0) as revenue from marts.fct_orders "
                f"where ordered_at >= timestamp '{start}' and ordered_at < timestamp '{end}') as m, "
                "(select count(*) as n, coalesce(sum(net_amount), 0) as revenue from staging.stg_commerce__orders "
                f"where ordered_at >= timestamp '{start}' and ordered_at < timestamp '{end}') as s, "
                "(select count(*) as n from staging.stg_commerce__order_lines) as l "
                "where l.n = 0 and (m.n <> s.n or m.revenue <> s.revenue) limit 1"
            ),
            description="mart orders and revenue equal staging's over the last 28 days (UTC)",
        ),
    )


RAW_SUITES = [TableSuite("raw", "source_freshness", build_source_freshness_suite, freshness_query)]
STAGING_SUITES = [
    TableSuite("staging", "stg_commerce__orders_daily", build_daily_orders_suite,
               reads="staging.stg_commerce__orders"),
]
MARTS_SUITES = [
    TableSuite("marts", "row_count_bands", build_row_count_bands_suite, row_count_query),
    TableSuite("marts", "fct_orders_distribution", build_revenue_distribution_suite, reads="marts.fct_orders"),
    TableSuite("marts", "rpt_retention_rate_reconciliation", build_revenue_reconciliation_suite,
               reads="marts.rpt_retention_rate"),
]
