"""Canonical touchpoint contracts: the one place that says what each raw table holds.

Every source, whatever system it comes from, is mapped onto one of these *kinds*. Ingestion
types and checks each row against its kind's contract; rows that break it are quarantined with a
reason. The raw table for a kind is ``raw.<kind>`` and always exists (empty when no source of that
kind is configured), so downstream models and marts never fail for lack of a touchpoint.

Column types:
- ``varchar``, ``bigint``, ``double``, ``boolean``, ``date``: what they say.
- ``money``: ``decimal(18,2)``; ``unit_money``: ``decimal(18,4)`` (unit prices, per-contact costs).
- ``timestamp``: an instant, stored as a naive UTC ``timestamp``. Source strings with an offset
  (``+08:00``, ``Z``) are converted by it; strings without one are read in the source timezone.

PII columns (``pii='phone'|'email'``) are normalised and hashed with the secret salt at ingest and
stored as ``<name>_hash``; the raw value never reaches the warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TYPES = {
    "varchar": "varchar",
    "bigint": "bigint",
    "double": "double",
    "money": "decimal(18,2)",
    "unit_money": "decimal(18,4)",  # unit prices and per-contact costs below a fen
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "varchar"
    required: bool = False  # null/empty -> quarantined (missing_required:<col>)
    pii: str | None = None  # 'phone' | 'email' -> stored hashed as <name>_hash
    non_negative: bool = False  # < 0 -> quarantined (negative_value:<col>)
    not_future: bool = False  # later than as-of + 1 day -> quarantined (future_timestamp:<col>)
    description: str = ""

    @property
    def stored_name(self) -> str:
        return f"{self.name}_hash" if self.pii else self.name

    @property
    def sql_type(self) -> str:
        return "varchar" if self.pii else TYPES[self.type]


@dataclass(frozen=True)
class Contract:
    kind: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    # At least one of these must be present, else the row is quarantined (no_customer_identifier).
    identifier_any_of: tuple[str, ...] = field(default_factory=tuple)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.kind} has no column {name!r}")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _c(name: str, type_: str = "varchar", **kw: object) -> Column:
    return Column(name, type_, **kw)  # type: ignore[arg-type]


CONTRACTS: dict[str, Contract] = {
    c.kind: c
    for c in [
        Contract(
            "customers",
            "CRM customer records (a person may have several).",
            (
                _c("crm_id", required=True),
                _c("phone", pii="phone"),
                _c("email", pii="email"),
                _c("member_card"),
                _c("registration_channel"),
                _c("registered_at", "timestamp", required=True, not_future=True),
                _c("region"),
                _c("city_tier", "bigint"),
                _c("updated_at", "timestamp"),
            ),
            ("crm_id",),
        ),
        Contract(
            "orders",
            "Orders from every sales channel; identifiers are whatever the channel captured.",
            (
                _c("order_id", required=True),
                _c("ordered_at", "timestamp", required=True, not_future=True),
                _c("channel", required=True),
                _c("store_id"),
                _c("crm_id"),
                _c("member_card"),
                _c("phone", pii="phone"),
                _c("wechat_unionid"),
                _c("item_count", "bigint", non_negative=True),
                _c("gross_amount", "money", required=True, non_negative=True),
                _c("discount_amount", "money", non_negative=True),
                _c("net_amount", "money", required=True, non_negative=True),
                _c("refund_amount", "money", non_negative=True),
                _c("is_returned", "boolean"),
                _c("referral_code"),
                _c("coupon_code"),
                _c("promised_delivery_date", "date"),
                _c("delivered_at", "timestamp"),
            ),
            ("order_id",),
        ),
        Contract(
            "order_lines",
            "Order line items (for systems that export lines, not orders); rolled up to orders in "
            "dbt. A return/cancellation line has is_return = true and a negative quantity.",
            (
                _c("order_id", required=True),
                _c("line_number", "bigint", required=True),
                _c("ordered_at", "timestamp", required=True, not_future=True),
                _c("channel"),
                _c("crm_id"),
                _c("member_card"),
                _c("phone", pii="phone"),
                _c("wechat_unionid"),
                _c("sku"),
                _c("quantity", "bigint", required=True),
                _c("unit_price", "unit_money", required=True, non_negative=True),
                _c("line_amount", "money", required=True),
                _c("is_return", "boolean"),
                _c("region"),
            ),
            ("order_id", "line_number"),
            ("crm_id", "member_card", "phone", "wechat_unionid"),
        ),
        Contract(
            "events",
            "Tracked app / mini-program / official-account / web events.",
            (
                _c("event_id", required=True),
                _c("event_ts", "timestamp", required=True, not_future=True),
                _c("device_id"),
                _c("wechat_openid"),
                _c("wechat_unionid"),
                _c("crm_id"),
                _c("event_type", required=True),
                _c("channel"),
                _c("properties"),
            ),
            ("event_id",),
            ("device_id", "wechat_openid", "wechat_unionid", "crm_id"),
        ),
        Contract(
            "tickets",
            "Customer-service tickets.",
            (
                _c("ticket_id", required=True),
                _c("crm_id"),
                _c("phone", pii="phone"),
                _c("order_id"),
                _c("category", required=True),
                _c("contact_channel"),
                _c("opened_at", "timestamp", required=True, not_future=True),
                _c("resolved_at", "timestamp"),
                _c("resolution_hours", "double", non_negative=True),
                _c("satisfaction_score", "bigint"),
            ),
            ("ticket_id",),
            ("crm_id", "phone", "order_id"),
        ),
        Contract(
            "survey_responses",
            "NPS (0-10) and CSAT (1-5) survey responses.",
            (
                _c("response_id", required=True),
                _c("crm_id"),
                _c("survey_type", required=True),
                _c("score", "bigint", required=True),
                _c("responded_at", "timestamp", required=True, not_future=True),
                _c("order_id"),
                _c("ticket_id"),
                _c("comment"),
            ),
            ("response_id",),
            ("crm_id",),
        ),
        Contract(
            "memberships",
            "Paid-membership subscriptions.",
            (
                _c("membership_id", required=True),
                _c("crm_id", required=True),
                _c("plan"),
                _c("started_at", "timestamp", required=True),
                _c("ended_at", "timestamp"),
                _c("end_reason"),
            ),
            ("membership_id",),
        ),
        Contract(
            "invoices",
            "Billing attempts: renewals, payment failures and dunning retries.",
            (
                _c("invoice_id", required=True),
                _c("membership_id", required=True),
                _c("crm_id"),
                _c("billing_period_start", "date"),
                _c("attempted_at", "timestamp", required=True),
                _c("attempt_number", "bigint"),
                _c("amount", "money", non_negative=True),
                _c("plan", description="The plan this invoice bills (its contract period); empty: "
                                       "the membership's plan."),
                _c("status", required=True),
                _c("failure_reason"),
            ),
            ("invoice_id", "attempt_number"),
        ),
        Contract(
            "cancellation_sessions",
            "Cancellation-flow sessions: reason, save offer and outcome.",
            (
                _c("session_id", required=True),
                _c("membership_id"),
                _c("crm_id", required=True),
                _c("started_at", "timestamp", required=True),
                _c("ended_at", "timestamp"),
                _c("reason_category"),
                _c("reason_text"),
                _c("offer_type"),
                _c("offer_shown", "boolean"),
                _c("offer_accepted", "boolean"),
                _c("outcome"),
            ),
            ("session_id",),
        ),
        Contract(
            "campaigns",
            "Win-back campaigns.",
            (
                _c("campaign_id", required=True),
                _c("campaign_name"),
                _c("channel", required=True),
                _c("launched_at", "timestamp", required=True),
                _c("cost_per_contact", "unit_money", non_negative=True),
                _c("incentive_type"),
                _c("incentive_value", "money", non_negative=True),
                _c("attribution_window_days", "bigint"),
                _c("target_rule"),
                _c("holdout_share", "double"),
            ),
            ("campaign_id",),
        ),
        Contract(
            "campaign_contacts",
            "Campaign targets, treatment or holdout, with delivery, open and redemption.",
            (
                _c("contact_id", required=True),
                _c("campaign_id", required=True),
                _c("crm_id"),
                _c("phone", pii="phone"),
                _c("wechat_unionid"),
                _c("assigned_group", required=True),
                _c("sent_at", "timestamp"),
                _c("delivered", "boolean"),
                _c("opened_at", "timestamp"),
                _c("coupon_code"),
                _c("redeemed_at", "timestamp"),
                _c("redeemed_order_id"),
            ),
            ("contact_id",),
            ("crm_id", "phone", "wechat_unionid"),
        ),
        Contract(
            "acquisition_spend",
            "Acquisition spend per channel and month.",
            (
                _c("month", required=True),
                _c("channel", required=True),
                _c("spend_cny", "money", non_negative=True),
                _c("impressions", "bigint", non_negative=True),
                _c("clicks", "bigint", non_negative=True),
                _c("new_customers_reported", "bigint", non_negative=True),
            ),
            ("month", "channel"),
        ),
    ]
}
