"""Export tables of the billing system and of the cancellation flow."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .billing import FAILURE_REASONS, PLANS, Billing
from .cancellation import OFFERS, OUTCOMES, REASONS
from .identity import Identity
from .rand import prefixed
from .window import Window


def membership_ids(billing: Billing) -> np.ndarray:
    """Membership ids, numbered in order of sign-up."""
    o = np.argsort(billing.state.start_t, kind="stable")
    num = np.empty(o.size, dtype=np.int64)
    num[o] = 10_000_000 + np.arange(o.size) * 3 + 1
    return prefixed("MS", num, 8)


def build_billing_tables(ident: Identity, billing: Billing,
                         window: Window) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(memberships, invoices, cancellation sessions) arrow tables."""
    st = billing.state
    ms_id = membership_ids(billing)
    crm = ident.crm_id[st.person]
    ended = ~np.isnan(st.ended_t)
    memberships = pa.table({
        "membership_id": pa.array(ms_id),
        "crm_id": pa.array(crm),
        "plan": pa.array(np.array(PLANS)[st.plan]),
        "started_at": pa.array(window.local_seconds(st.start_t), pa.int64()),
        "ended_at": pa.array(window.local_seconds(np.nan_to_num(st.ended_t)), pa.int64(),
                             mask=~ended),
        "end_reason": pa.array(np.array(["", "cancelled", "non_payment"])[st.end_reason],
                               pa.string(), mask=st.end_reason == 0),
    })

    inv = billing.invoices
    o = np.lexsort((inv["attempt"], inv["membership"], inv["t"]))
    ms = inv["membership"][o]
    k = o.size
    reason = inv["reason"][o]
    invoices = pa.table({
        "invoice_id": pa.array(prefixed("INV", 100_000_000 + np.arange(k) * 7 + 3, 9)),
        "membership_id": pa.array(ms_id[ms]),
        "crm_id": pa.array(crm[ms]),
        "period_day": pa.array(inv["period_start"][o], pa.int64()),
        "attempted_at": pa.array(window.local_seconds(inv["t"][o]), pa.int64()),
        "attempt_number": pa.array(inv["attempt"][o], pa.int8()),
        "amount_cents": pa.array(inv["cents"][o], pa.int64()),
        "status": pa.array(np.where(inv["paid"][o], "paid", "failed")),
        "plan": pa.array(np.array(PLANS)[inv["plan"][o].astype(np.int64)]),
        "failure_reason": pa.array(np.array(FAILURE_REASONS)[np.maximum(reason, 0)], pa.string(),
                                   mask=reason < 0),
    })

    s = billing.sessions
    so = np.lexsort((s["membership"], s["started_t"])) if s["membership"].size else np.zeros(0,
                                                                                            int)
    sm = s["membership"][so].astype(np.int64)
    text = s["text"][so].astype(str)
    sessions = pa.table({
        "session_id": pa.array(prefixed("CXL", 1_000_000 + np.arange(so.size) * 11 + 5, 8)),
        "membership_id": pa.array(ms_id[sm] if sm.size else np.zeros(0, "<U10")),
        "crm_id": pa.array(crm[sm] if sm.size else np.zeros(0, "<U9")),
        "started_at": pa.array(window.local_seconds(s["started_t"][so]), pa.int64()),
        "ended_at": pa.array(window.local_seconds(s["ended_t"][so]), pa.int64()),
        "reason_category": pa.array(np.array(REASONS)[s["reason"][so].astype(np.int64)]),
        "reason_text": pa.array(text, pa.string(), mask=text == ""),
        "offer_type": pa.array(np.array(OFFERS)[s["offer"][so].astype(np.int64)]),
        "offer_shown": pa.array(s["shown"][so].astype(bool)),
        "offer_accepted": pa.array(s["accepted"][so].astype(bool)),
        "outcome": pa.array(np.array(OUTCOMES)[s["outcome"][so].astype(np.int64)]),
    })
    return memberships, invoices, sessions


_LOCAL = "strftime(make_timestamp({c} * 1000000), '%Y-%m-%d %H:%M:%S') AS {c}"
_ISO = "strftime(make_timestamp({c} * 1000000), '%Y-%m-%dT%H:%M:%S') || '+08:00' AS {c}"

MEMBERSHIPS_SELECT = f"""
SELECT membership_id, crm_id, plan, {_LOCAL.format(c='started_at')},
       {_LOCAL.format(c='ended_at')}, end_reason
FROM t
"""

INVOICES_SELECT = """
SELECT invoice_id, membership_id, crm_id,
       (DATE '{start}' + period_day::INTEGER) AS billing_period_start,
       """ + _LOCAL.format(c="attempted_at") + """, attempt_number,
       (amount_cents::DECIMAL(18,0) / 100)::DECIMAL(12,2) AS amount, plan, status, failure_reason
FROM t
"""

SESSIONS_SELECT = f"""
SELECT session_id, membership_id, crm_id, {_ISO.format(c='started_at')},
       {_ISO.format(c='ended_at')}, reason_category, reason_text, offer_type, offer_shown,
       offer_accepted, outcome
FROM t
"""
