"""The order system's export: amounts, returns, delivery and channel-typical identifiers."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from . import params as P
from .identity import Identity
from .persons import Persons
from .purchases import Purchases
from .rand import prefixed
from .window import UTC_OFFSET_S, Season, Window
from .writers import take_masked

log = logging.getLogger(__name__)

DISCOUNT_RATES = np.array([0.05, 0.10, 0.15, 0.20, 0.30])


@dataclass
class Orders:
    """Exported (in-window) orders, sorted by time, plus links back to the purchase arrays."""

    table: pa.Table  # raw typed columns (cents as int64, times as local/UTC seconds)
    pos: np.ndarray  # purchase position of each exported order
    order_no: np.ndarray  # per purchase position: exported order number, -1 if not exported
    order_id: np.ndarray  # order_id strings of exported orders
    person: np.ndarray
    t: np.ndarray  # float days
    channel: np.ndarray
    delivered_t: np.ndarray  # float days (nan: store order or not yet delivered)
    promised_day: np.ndarray  # day offset of the promised delivery date (-1 for store)
    has_crm: np.ndarray  # bool: the order carries a crm_id / card / phone linkable to a person
    phone_auth: np.ndarray  # bool: first mini-program order where the buyer authorised the phone


def build_orders(rng: np.random.Generator, persons: Persons, ident: Identity,
                 purchases: Purchases, window: Window, season: Season,
                 coupon_codes: np.ndarray, coupon_cents: np.ndarray) -> Orders:
    """Turn in-window purchases into the order system's rows (vectorised)."""
    inw = np.nonzero((purchases.t >= 0) & (purchases.t < window.days))[0]
    pos = inw[np.lexsort((purchases.person[inw], purchases.t[inw]))]
    n = pos.size
    person, t, ch = purchases.person[pos], purchases.t[pos], purchases.channel[pos]
    order_no = np.full(purchases.size, -1, dtype=np.int64)
    order_no[pos] = np.arange(n)
    order_num = 1_000_000_000 + np.cumsum(rng.integers(1, 8, n))
    order_id = prefixed("O", order_num, 10)

    # amounts (cents)
    mu = np.log(persons.mean_spend[person]) - P.SPEND_SIGMA**2 / 2
    gross = np.maximum(np.round(rng.lognormal(mu, P.SPEND_SIGMA) * 10) * 10, 990).astype(np.int64)
    items = (1 + rng.poisson(gross / 25000.0)).astype(np.int32)
    promo = rng.random(n) < np.where(season.at(t) > 1.3, 0.75, 0.30)
    rate = DISCOUNT_RATES[rng.integers(0, DISCOUNT_RATES.size, n)]
    discount = np.where(promo, np.round(gross * rate / 10) * 10, 0).astype(np.int64)
    contact = purchases.coupon_contact[pos]
    has_coupon = contact >= 0
    slot = np.where(has_coupon, contact, coupon_cents.size)  # last slot: no coupon
    discount = discount + np.append(coupon_cents, 0)[slot]
    discount = np.minimum(discount, gross - 100)
    net = gross - discount
    returned = purchases.returned[pos]
    full = rng.random(n) < 0.7
    partial = np.floor(net * rng.uniform(0.2, 0.9, n)).astype(np.int64)
    refund = np.where(returned, np.where(full, net, partial), 0).astype(np.int64)

    # delivery (online channels)
    online = ch != 0
    day = np.floor(t)
    promised = np.where(online, day + rng.integers(2, 5, n), -1).astype(np.int64)
    delayed = purchases.delay[pos]
    on_time = t + rng.uniform(0.6, 1.0, n) * (promised + 0.9 - t)
    late = promised + rng.integers(1, 7, n) + rng.uniform(0.35, 0.85, n)
    delivered = np.where(online, np.where(delayed, late, on_time), np.nan)
    delivered = np.where(delivered < window.days, delivered, np.nan)

    # identifiers (resolved with Arrow ``take``: no per-row Python strings)
    u = rng.random((n, 6))
    store, shop, app, mp = ch == 0, ch == 1, ch == 2, ch == 3
    n_p = persons.n
    d = np.where(ident.dup_index[person] >= 0, ident.dup_index[person], ident.dup_person.size)
    use_dup = (t > np.append(ident.dup_registered, np.inf)[d]) & (u[:, 0] < 0.5)
    crm_idx = np.where(use_dup, n_p + d, person)
    has_card = (ident.member_card != "")[person]
    has_phone = (ident.phone != "")[person]
    anon = store & (u[:, 1] < P.P_ANON_STORE)
    show_card = store & has_card & (u[:, 2] < 0.85) & ~anon
    # WeChat phone authorisation (binding the unionid to the membership) at the first mini-program
    # order of the export
    mp_no = np.nonzero(mp)[0]
    _, first_mp = np.unique(person[mp_no], return_index=True)
    phone_auth = np.zeros(n, dtype=bool)
    phone_auth[mp_no[first_mp]] = ident.wx_phone_auth[person[mp_no[first_mp]]]
    give_phone = has_phone & (
        (store & ~anon & (u[:, 3] < np.where(show_card, 0.3, 0.8))) | shop | (mp & (u[:, 3] < 0.3))
        | phone_auth)
    placeholder = store & ~anon & (u[:, 4] < P.P_PLACEHOLDER_PHONE)
    phone_idx = np.where(placeholder, n_p + (u[:, 5] >= 0.7), person)
    other = rng.integers(0, P.STORES_PER_REGION, n)
    store_no = np.where(rng.random(n) < 0.85, persons.home_store[person], other)
    has_crm = shop | app | show_card | (give_phone & ~placeholder) | mp

    # referral code on the first-ever order of referral acquisitions
    ref = persons.referrer[person]
    first_ever = np.zeros(n, dtype=bool)
    _, first_idx = np.unique(person, return_index=True)
    first_ever[first_idx] = True
    is_first = first_ever & (persons.acquired[person] >= 0) & (persons.acq_channel[person] == 5)
    with_ref = is_first & (ref >= 0) & (rng.random(n) < 0.85)

    local_s = window.local_seconds(t)
    deliv_s = window.local_seconds(np.nan_to_num(delivered)) - UTC_OFFSET_S
    table = pa.table({
        "order_id": pa.array(order_id),
        "ordered_at_utc": pa.array(local_s - UTC_OFFSET_S, pa.int64()),
        "channel": pa.array(np.array(P.ORDER_CHANNELS)[ch]),
        "region_no": pa.array(persons.region[person].astype(np.int16) + 1),
        "store_no": pa.array(np.where(store, store_no + 1, -1).astype(np.int16)),
        "crm_id": take_masked(pa.array(np.concatenate([ident.crm_id, ident.dup_crm_id])),
                              crm_idx, shop | app),
        "member_card": take_masked(pa.array(ident.member_card), person, show_card),
        "phone": take_masked(pa.array(np.append(ident.phone, P.PLACEHOLDER_PHONES)), phone_idx,
                             placeholder | give_phone),
        "wechat_unionid": take_masked(pa.array(ident.unionid), person, mp),
        "item_count": pa.array(items, pa.int32()),
        "gross_cents": pa.array(gross), "discount_cents": pa.array(discount),
        "net_cents": pa.array(net), "refund_cents": pa.array(refund),
        "is_returned": pa.array(returned),
        "referral_code": take_masked(pa.array(ident.referral_code), ref, with_ref),
        "coupon_code": take_masked(pa.array(coupon_codes), contact, has_coupon),
        "promised_day": pa.array(promised, pa.int64(), mask=promised < 0),
        "delivered_at_utc": pa.array(deliv_s, pa.int64(), mask=np.isnan(delivered)),
        "month": pa.array(window.month_index(t)),
    })
    log.debug("orders: %d exported", n)
    return Orders(table=table, pos=pos, order_no=order_no, order_id=order_id, person=person, t=t,
                  channel=ch, delivered_t=delivered, promised_day=promised, has_crm=has_crm,
                  phone_auth=phone_auth)


ORDERS_SELECT = """
SELECT order_id,
       make_timestamp(ordered_at_utc * 1000000)::TIMESTAMPTZ AS ordered_at,
       channel,
       CASE WHEN store_no > 0
            THEN 'S' || lpad(region_no::VARCHAR, 2, '0') || lpad(store_no::VARCHAR, 2, '0')
       END AS store_id,
       crm_id, member_card, phone, wechat_unionid, item_count,
       (gross_cents::DECIMAL(18,0) / 100)::DECIMAL(12,2) AS gross_amount,
       (discount_cents::DECIMAL(18,0) / 100)::DECIMAL(12,2) AS discount_amount,
       (net_cents::DECIMAL(18,0) / 100)::DECIMAL(12,2) AS net_amount,
       (refund_cents::DECIMAL(18,0) / 100)::DECIMAL(12,2) AS refund_amount,
       is_returned, referral_code, coupon_code,
       (DATE '{start}' + promised_day::INTEGER) AS promised_delivery_date,
       make_timestamp(delivered_at_utc * 1000000)::TIMESTAMPTZ AS delivered_at
FROM t
"""
