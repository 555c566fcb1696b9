"""Service tickets: follow-ups of bad experiences, no-effect inquiries and billing problems.

Tickets of ``product_inquiry`` and ``address_change`` arrive as a Poisson process in calendar time
for every person from acquisition (or the window start) to the window end, independently of
purchases and of churn: they are the planted *no-effect* drivers. Experience tickets follow an order
with a bad experience with probability ``P_EXPERIENCE_TICKET``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from . import params as P
from .billing import Billing
from .identity import Identity
from .orders import Orders
from .persons import Persons
from .purchases import Purchases
from .rand import categorical, prefixed
from .window import Window, hour_of_day

log = logging.getLogger(__name__)

CATEGORIES: tuple[str, ...] = ("product_quality", "delivery_delay", "billing", "app_error",
                               "product_inquiry", "address_change", "return_request")
CONTACT_CHANNELS: tuple[str, ...] = ("hotline", "wechat", "app", "store")
#: P(contact channel) per order channel (store, online_shop, app, mini_program).
CONTACT_BY_ORDER = np.array([[0.4, 0.0, 0.0, 0.6], [0.6, 0.4, 0.0, 0.0], [0.3, 0.1, 0.6, 0.0],
                             [0.2, 0.8, 0.0, 0.0]])
#: Median resolution hours per category.
RESOLUTION_MEDIAN_H = np.array([30.0, 20.0, 12.0, 10.0, 4.0, 2.0, 40.0])
SAT_BAD = np.array([0.30, 0.28, 0.22, 0.13, 0.07])
SAT_MID = np.array([0.15, 0.20, 0.30, 0.20, 0.15])
SAT_GOOD = np.array([0.03, 0.05, 0.17, 0.35, 0.40])


@dataclass
class Tickets:
    """Ticket rows (numeric) kept for surveys, plus the arrow table for the export."""

    table: pa.Table
    person: np.ndarray
    category: np.ndarray
    resolved_t: np.ndarray  # nan while unresolved
    satisfaction: np.ndarray  # 0 = not given
    ticket_id: np.ndarray


def _experience_tickets(rng: np.random.Generator, purchases: Purchases,
                        o: Orders) -> dict[str, np.ndarray]:
    pos = o.pos
    base = np.where(np.isnan(o.delivered_t), o.t, o.delivered_t)
    specs = (
        (1, purchases.delay[pos], o.promised_day + 0.9 + rng.uniform(0.1, 2.0, pos.size)),
        (0, purchases.quality[pos], base + rng.uniform(1.0, 10.0, pos.size)),
        (3, purchases.app_error[pos], o.t + rng.uniform(5 / 1440, 3 / 24, pos.size)),
        (6, purchases.returned[pos], base + rng.uniform(1.0, 7.0, pos.size)),
    )
    cat, idx, t = [], [], []
    for code, flag, when in specs:
        hit = np.nonzero(flag & (rng.random(pos.size) < P.P_EXPERIENCE_TICKET))[0]
        cat.append(np.full(hit.size, code, dtype=np.int8))
        idx.append(hit)
        t.append(when[hit])
    idx_all = np.concatenate(idx)
    ch = categorical(rng, CONTACT_BY_ORDER[o.channel[idx_all]])
    with_order = rng.random(idx_all.size) < 0.85
    return {"person": o.person[idx_all], "category": np.concatenate(cat), "t": np.concatenate(t),
            "channel": ch, "order": np.where(with_order, idx_all, -1)}


def _no_effect_tickets(rng: np.random.Generator, persons: Persons, ident: Identity,
                       window: Window) -> dict[str, np.ndarray]:
    begin = np.maximum(persons.acquired, 0.0)
    exposure = np.maximum(window.days - begin, 0.0) / 365.0
    out: dict[str, list[np.ndarray]] = {"person": [], "category": [], "t": []}
    for code, name in ((4, "product_inquiry"), (5, "address_change")):
        k = rng.poisson(P.NO_EFFECT_TICKET_RATES[name] * exposure)
        who = np.repeat(np.arange(persons.n), k)
        out["person"].append(who)
        out["category"].append(np.full(who.size, code, dtype=np.int8))
        day = begin[who] + rng.random(who.size) * (window.days - begin[who])
        out["t"].append(np.maximum(np.floor(day) + hour_of_day(rng, who.size), begin[who]))
    who = np.concatenate(out["person"])
    probs = np.tile(np.array([0.40, 0.35, 0.15, 0.10]), (who.size, 1))
    probs[:, 1] *= persons.has_wechat[who]
    probs[:, 2] *= ident.app_dev1[who] != ""
    return {"person": who, "category": np.concatenate(out["category"]),
            "t": np.concatenate(out["t"]), "channel": categorical(rng, probs),
            "order": np.full(who.size, -1)}


def _billing_tickets(rng: np.random.Generator, billing: Billing) -> dict[str, np.ndarray]:
    inv = billing.invoices
    failed = np.nonzero(~inv["paid"] & (inv["attempt"] == 1))[0]
    pick = failed[rng.random(failed.size) < 0.2]
    who = billing.state.person[inv["membership"][pick]]
    return {"person": who, "category": np.full(pick.size, 2, dtype=np.int8),
            "t": np.floor(inv["t"][pick]) + rng.integers(1, 3, pick.size)
            + hour_of_day(rng, pick.size),
            "channel": rng.choice(3, size=pick.size, p=[0.5, 0.2, 0.3]).astype(np.int8),
            "order": np.full(pick.size, -1)}


def build_tickets(rng: np.random.Generator, persons: Persons, ident: Identity,
                  purchases: Purchases, orders: Orders, billing: Billing,
                  window: Window) -> Tickets:
    """All tickets opened inside the window, sorted by opening time."""
    parts = [_experience_tickets(rng, purchases, orders),
             _no_effect_tickets(rng, persons, ident, window), _billing_tickets(rng, billing)]
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    keep = (cols["t"] >= 0) & (cols["t"] < window.days)
    cols = {k: v[keep] for k, v in cols.items()}
    o = np.lexsort((cols["person"], cols["t"]))
    cols = {k: v[o] for k, v in cols.items()}
    n = o.size
    who, cat, t = cols["person"], cols["category"], cols["t"]

    hours = np.round(RESOLUTION_MEDIAN_H[cat] * rng.lognormal(0.0, 0.9, n), 1) + 0.1
    resolved = t + hours / 24.0
    unresolved = (rng.random(n) < 0.03) | (resolved >= window.days)
    resolved = np.where(unresolved, np.nan, resolved)
    bad = np.isin(cat, (0, 1, 3, 6))
    sat_probs = np.where(bad[:, None], SAT_BAD, np.where((cat == 2)[:, None], SAT_MID, SAT_GOOD))
    sat = (categorical(rng, sat_probs) + 1).astype(np.int8)
    sat = np.where(unresolved | (rng.random(n) < 0.25), 0, sat).astype(np.int8)

    phone = ident.phone[who]
    known_crm = (rng.random(n) < 0.85) | (phone == "")
    hotline = cols["channel"] == 0
    give_phone = (phone != "") & (hotline | ~known_crm | (rng.random(n) < 0.4))
    ticket_num = 100_000_000 + np.cumsum(rng.integers(1, 5, n))
    ticket_id = prefixed("T", ticket_num, 9)
    order_ref = cols["order"]
    order_id = np.where(order_ref >= 0, orders.order_id[np.maximum(order_ref, 0)]
                        if orders.order_id.size else "", "")
    crm = np.where(known_crm, ident.crm_id[who], "")
    ph = np.where(give_phone, phone, "")
    table = pa.table({
        "ticket_id": pa.array(ticket_id),
        "crm_id": pa.array(crm, pa.string(), mask=crm == ""),
        "phone": pa.array(ph, pa.string(), mask=ph == ""),
        "order_id": pa.array(order_id, pa.string(), mask=order_id == ""),
        "category": pa.array(np.array(CATEGORIES)[cat]),
        "contact_channel": pa.array(np.array(CONTACT_CHANNELS)[cols["channel"]]),
        "opened_at": pa.array(window.local_seconds(t), pa.int64()),
        "resolved_at": pa.array(window.local_seconds(np.nan_to_num(resolved)), pa.int64(),
                                mask=unresolved),
        "resolution_hours": pa.array(hours, pa.float64(), mask=unresolved),
        "satisfaction_score": pa.array(sat, pa.int8(), mask=sat == 0),
    })
    log.debug("tickets: %d", n)
    return Tickets(table=table, person=who, category=cat, resolved_t=resolved, satisfaction=sat,
                   ticket_id=ticket_id)


TICKETS_SELECT = """
SELECT ticket_id, crm_id, phone, order_id, category, contact_channel,
       strftime(make_timestamp(opened_at * 1000000), '%Y-%m-%d %H:%M:%S') AS opened_at,
       strftime(make_timestamp(resolved_at * 1000000), '%Y-%m-%d %H:%M:%S') AS resolved_at,
       round(resolution_hours, 1) AS resolution_hours, satisfaction_score
FROM t
"""
