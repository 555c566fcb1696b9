"""Export tables of the marketing tool: campaigns and campaign contacts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import params as P
from .campaigns import Campaigns
from .identity import Identity
from .orders import Orders
from .rand import base32_codes, prefixed, unique_ints
from .window import Window


def coupon_codes(rng: np.random.Generator, n_contacts: int) -> np.ndarray:
    """A unique coupon code per contact (only treated contacts are ever shown one)."""
    return np.char.add("WB", base32_codes(unique_ints(rng, n_contacts, 0, 32**8), 8))


def coupon_cents(camp: Campaigns) -> np.ndarray:
    """Coupon value (cents) of each contact's campaign."""
    value = np.array([P.INCENTIVE_VALUE[c] for c in P.CAMPAIGN_CHANNELS]) * 100
    ch = camp.campaign["channel"].astype(np.int64)
    return value[ch[camp.contacts["campaign"].astype(np.int64)]].astype(np.int64)


def build_campaign_tables(camp: Campaigns, ident: Identity, orders: Orders, codes: np.ndarray,
                          window: Window) -> tuple[pa.Table, pa.Table]:
    """(campaigns, contacts) arrow tables."""
    c = camp.campaign
    k = c["channel"].size
    ch = c["channel"].astype(np.int64)
    names = np.array(P.CAMPAIGN_CHANNELS)[ch] if k else np.zeros(0, dtype="<U16")
    ym = [window.month_keys[int(m)] for m in c["month"]]
    campaign_name = [f"winback_{y:04d}_{m:02d}_{nm}" for (y, m), nm in zip(ym, names.tolist(), strict=False)]
    campaigns = pa.table({
        "campaign_id": pa.array(prefixed("CMP", np.arange(k) + 1, 4)),
        "campaign_name": pa.array(campaign_name, pa.string()),
        "channel": pa.array(names),
        "launched_at": pa.array(window.local_seconds(c["launched_t"]), pa.int64()),
        "cost_per_contact": pa.array([P.COST_PER_CONTACT[x] for x in names.tolist()],
                                     pa.float64()),
        "incentive_type": pa.array(["coupon"] * k, pa.string()),
        "incentive_value": pa.array([P.INCENTIVE_VALUE[x] for x in names.tolist()], pa.float64()),
        "attribution_window_days": pa.array([P.ATTRIBUTION_WINDOW_DAYS] * k, pa.int32()),
        "target_rule": pa.array([f"last purchase {P.LAPSED_MIN_DAYS}-{P.LAPSED_MAX_DAYS} days "
                                 f"before launch; reachable by {x}" for x in names.tolist()],
                                pa.string()),
        "holdout_share": pa.array([P.HOLDOUT_SHARE] * k, pa.float64()),
    })

    ct = camp.contacts
    n = ct["person"].size
    cid = ct["campaign"].astype(np.int64)
    who = ct["person"].astype(np.int64)
    cch = ch[cid] if n else np.zeros(0, dtype=np.int64)
    treated = ct["treated"].astype(bool)
    phone = np.where(np.isin(cch, (0, 3)), ident.phone[who], "")
    union = np.where(cch == 2, ident.unionid[who], "")
    red_pos = ct["redeemed_order"].astype(np.int64)
    red_no = np.where(red_pos >= 0, orders.order_no[np.maximum(red_pos, 0)], -1) if n else red_pos
    red_id = np.where(red_no >= 0, orders.order_id[np.maximum(red_no, 0)], "") if n else \
        np.zeros(0, dtype="<U11")
    opened = ct["opened_t"].astype(np.float64)
    redeemed = ct["redeemed_t"].astype(np.float64)
    code = np.where(treated, codes[:n], "")
    contacts = pa.table({
        "contact_id": pa.array(prefixed("CT", 100_000_000 + np.arange(n), 9)),
        "campaign_id": pa.array(prefixed("CMP", cid + 1, 4)),
        "crm_id": pa.array(ident.crm_id[who]),
        "phone": pa.array(phone, pa.string(), mask=phone == ""),
        "wechat_unionid": pa.array(union, pa.string(), mask=union == ""),
        "assigned_group": pa.array(np.where(treated, "treatment", "holdout")),
        "sent_at": pa.array(window.local_seconds(ct["sent_t"].astype(np.float64)), pa.int64(),
                            mask=~treated),
        "delivered": pa.array(ct["delivered"].astype(bool), pa.bool_(), mask=~treated),
        "opened_at": pa.array(window.local_seconds(np.nan_to_num(opened)), pa.int64(),
                              mask=np.isnan(opened)),
        "coupon_code": pa.array(code, pa.string(), mask=code == ""),
        "redeemed_at": pa.array(window.local_seconds(np.nan_to_num(redeemed)), pa.int64(),
                                mask=np.isnan(redeemed)),
        "redeemed_order_id": pa.array(red_id, pa.string(), mask=red_id == ""),
    })
    return campaigns, contacts


_LOCAL = "strftime(make_timestamp({c} * 1000000), '%Y-%m-%d %H:%M:%S') AS {c}"

CAMPAIGNS_SELECT = f"""
SELECT campaign_id, campaign_name, channel, {_LOCAL.format(c='launched_at')},
       cost_per_contact::DECIMAL(10,3) AS cost_per_contact, incentive_type,
       incentive_value::DECIMAL(12,2) AS incentive_value, attribution_window_days, target_rule,
       holdout_share
FROM t
"""

CONTACTS_SELECT = f"""
SELECT contact_id, campaign_id, crm_id, phone, wechat_unionid, assigned_group,
       {_LOCAL.format(c='sent_at')}, delivered, {_LOCAL.format(c='opened_at')}, coupon_code,
       {_LOCAL.format(c='redeemed_at')}, redeemed_order_id
FROM t
"""
