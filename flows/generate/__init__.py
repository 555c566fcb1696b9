"""Synthetic source exports of a Chinese consumer brand, with planted truths.

``generate(out_dir, ...)`` simulates persons, their purchases (BG/NBD spirit), bad experiences that
raise churn, memberships with billing and cancellations, identities across channels, win-back
campaigns with holdouts and acquisition spend, and writes every source system's export as
documented in ``flows/generate/SOURCES.md`` plus ``truth/`` files. Deterministic per seed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

from . import truth as T
from .acquisition import SPEND_SELECT, build_spend
from .billing import simulate_billing
from .billing_tables import (
    INVOICES_SELECT,
    MEMBERSHIPS_SELECT,
    SESSIONS_SELECT,
    build_billing_tables,
)
from .campaign_tables import (
    CAMPAIGNS_SELECT,
    CONTACTS_SELECT,
    build_campaign_tables,
    coupon_cents,
    coupon_codes,
)
from .campaigns import simulate_campaigns
from .crm import CRM_SELECT, build_crm
from .events import simulate_events
from .events_out import write_events
from .faults import FaultLog, fault_events, fault_files, fault_orders, fault_surveys, fault_tickets
from .identity import identity_truth, simulate_identity
from .orders import ORDERS_SELECT, build_orders
from .persons import purchase_season, simulate_persons
from .purchases import simulate_purchases, truncate_after_churn
from .rand import make_streams
from .surveys import SURVEYS_SELECT, build_surveys
from .tickets import TICKETS_SELECT, build_tickets
from .window import Window, make_window
from .writers import Writer

__all__ = ["GenerateSummary", "generate"]

log = logging.getLogger(__name__)


@dataclass
class GenerateSummary:
    """What ``generate`` wrote."""

    out_dir: Path
    files: dict[str, int] = field(default_factory=dict)  # relative path -> data rows
    seconds: float = 0.0
    persons: int = 0
    crm_records: int = 0
    orders: int = 0
    events: int = 0
    faults: int = 0
    start: date | None = None
    end: date | None = None


def generate(out_dir: Path, customers: int = 20000, months: int = 24, seed: int = 42,
             faults: bool = False, end_date: date = date(2026, 10, 31)) -> GenerateSummary:
    """Simulate ``customers`` real persons over ``months`` months ending at ``end_date`` and write
    the source exports (and ``truth/``) under ``out_dir``."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if customers < 100:
        raise ValueError("customers must be at least 100")
    rng = make_streams(seed)
    window = make_window(end_date, months)
    season = purchase_season(window)

    persons = simulate_persons(rng["persons"], customers, window)
    ident = simulate_identity(rng["identity"], persons, window, rng["binding"])
    purchases = simulate_purchases(rng["purchases"], persons, window, season)
    billing = simulate_billing(rng["billing"], persons, purchases, window)
    dropped = truncate_after_churn(purchases, purchases.death_t)
    log.info("billing churn truncated %d later orders", dropped)
    camp = simulate_campaigns(rng["campaigns"], persons, ident, purchases, window)
    n_contacts = int(camp.contacts["person"].size)
    codes = coupon_codes(rng["campaigns"], n_contacts)
    orders = build_orders(rng["orders"], persons, ident, purchases, window, season, codes,
                          coupon_cents(camp))
    tickets = build_tickets(rng["tickets"], persons, ident, purchases, orders, billing, window)
    surveys = build_surveys(rng["surveys"], ident, purchases, orders, tickets, window)
    events = simulate_events(rng["events"], persons, ident, purchases, orders, window)
    memberships, invoices, sessions = build_billing_tables(ident, billing, window)
    campaigns, contacts = build_campaign_tables(camp, ident, orders, codes, window)
    crm = build_crm(rng["identity"], persons, ident, window)
    spend = build_spend(rng["acquisition"], persons, window)
    is_member = np.zeros(persons.n, dtype=bool)
    is_member[billing.state.person] = True
    log.info("simulated %d persons, %d orders, %d events in %.1fs", persons.n,
             orders.table.num_rows, events.size, time.perf_counter() - t0)

    flog = FaultLog()
    order_table, ticket_table, survey_table = orders.table, tickets.table, surveys
    if faults:
        frng = rng["faults"]
        order_table = fault_orders(frng, order_table, window, flog)
        fault_events(frng, events, window, flog)
        ticket_table = fault_tickets(frng, ticket_table, window, flog)
        survey_table = fault_surveys(frng, survey_table, flog)

    w = Writer(out_dir)
    try:
        start = window.start.isoformat()
        w.write("crm/customers.csv", crm, CRM_SELECT, "csv", "crm_id")
        _write_orders(w, order_table, window, start)
        write_events(w, events, ident, orders, window)
        w.write("service/tickets.csv", ticket_table, TICKETS_SELECT, "csv", "ticket_id")
        w.write("surveys/responses.csv", survey_table, SURVEYS_SELECT, "csv", "response_id")
        w.write("billing/memberships.csv", memberships, MEMBERSHIPS_SELECT, "csv",
                "membership_id")
        w.write("billing/invoices.csv", invoices, INVOICES_SELECT.format(start=start), "csv",
                "invoice_id", exclude=("status",) if faults else ())
        w.write("cancellation/sessions.jsonl", sessions, SESSIONS_SELECT, "json", "session_id")
        w.write("campaigns/campaigns.csv", campaigns, CAMPAIGNS_SELECT, "csv", "campaign_id")
        w.write("campaigns/contacts.csv", contacts, CONTACTS_SELECT, "csv", "contact_id")
        w.write("acquisition/spend.csv", spend, SPEND_SELECT, "csv", "month, channel")
        w.write("truth/persons.csv", T.persons_truth(persons, purchases, is_member, window),
                T.PERSONS_SELECT, "csv", "person_id")
        w.write("truth/identity.csv", identity_truth(ident), T.IDENTITY_SELECT, "csv",
                "identifier_type, identifier_value")
        w.write("truth/driver_effects.csv", T.driver_truth(), "SELECT * FROM t", "csv")
        w.write("truth/channel_uplift.csv", T.uplift_truth(camp), "SELECT * FROM t", "csv")
        if faults:
            fault_files(rng["faults"], out_dir, window, flog)
        w.write("truth/faults.csv", flog.table(), "SELECT * FROM t", "csv")
    finally:
        w.close()
    (out_dir / "truth" / "README.md").write_text(T.readme(), encoding="utf-8")

    summary = GenerateSummary(out_dir=out_dir, files=dict(w.files),
                              seconds=time.perf_counter() - t0, persons=persons.n,
                              crm_records=crm.num_rows, orders=orders.table.num_rows,
                              events=events.size, faults=w.files.get("truth/faults.csv", 0),
                              start=window.start, end=window.end)
    log.info("generated %s in %.1fs", out_dir, summary.seconds)
    return summary


def _write_orders(w: Writer, table: pa.Table, window: Window, start: str) -> None:
    """One Parquet file per order month (local time)."""
    months = table.column("month").to_numpy()
    sql = ORDERS_SELECT.format(start=start)
    for mi, (y, m) in enumerate(window.month_keys):
        part = table.filter(months == mi).drop_columns(["month"])
        w.write(f"orders/orders_{y:04d}_{m:02d}.parquet", part, sql, "parquet", "order_id")
