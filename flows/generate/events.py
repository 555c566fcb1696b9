"""Tracked digital events: checkout sessions, browsing, official-account reads, shared devices.

Sessions are built per kind as count matrices (session x event type, in a canonical order) and
expanded with ``np.repeat``; every event of a person lies in that person's alive span (checkout
sessions end at the order they produce). App errors of orders with an ``app_error`` experience are
tracked as ``app_error`` events inside the checkout session.

Before expansion, logins that real systems require are planted (``_required_logins``): the first
session of every app device (apps require login), of the web device of a person who ever orders
online, and the first WeChat session of a WeChat user binding WeChat to the membership (会员绑定)
starts with a ``login`` event and is logged in throughout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from . import params as P
from .identity import Identity
from .orders import Orders
from .persons import Persons
from .purchases import Purchases
from .rand import ragged_arange
from .window import Window, hour_of_day

log = logging.getLogger(__name__)

EVENT_CHANNELS: tuple[str, ...] = ("app", "mini_program", "official_account", "web")
EVENT_TYPES: tuple[str, ...] = ("login", "search", "view", "add_to_cart", "share", "app_error",
                                "checkout")
#: Event channel of a digital order channel (store, online_shop, app, mini_program).
ORDER_TO_EVENT = np.array([-1, 3, 0, 1], dtype=np.int8)
DEV_NONE, DEV_APP1, DEV_APP2, DEV_WEB, DEV_SHARED = 0, 1, 2, 3, 4
N_SKUS = 4000
N_ARTICLES = 300
SECOND = 1.0 / 86400.0


@dataclass
class Events:
    """Numeric event columns (one entry per event), sorted by (file month, time, id)."""

    cols: dict[str, np.ndarray]

    @property
    def size(self) -> int:
        return int(self.cols["person"].size)

    def take(self, idx: np.ndarray) -> None:
        """Reorder / subset / duplicate rows in place."""
        self.cols = {k: v[idx] for k, v in self.cols.items()}


def sort_order(file_month: np.ndarray, ts_ms: np.ndarray) -> np.ndarray:
    """Stable order by (file month, time): one composite int64 key, portable across CPUs."""
    if ts_ms.size == 0:
        return np.zeros(0, dtype=np.int64)
    key = (file_month.astype(np.int64) + 1) << 42 | (ts_ms - ts_ms.min())
    return np.argsort(key, kind="stable")


def _sessions(counts: np.ndarray, start: np.ndarray, duration: np.ndarray,
              session_cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Session-level arrays: the (S, len(EVENT_TYPES)) counts, start, duration and columns."""
    return {"counts": counts, "start": start, "duration": duration, **session_cols}


def _expand(sess: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Expand session counts into events spread evenly over each session."""
    counts, start, duration = sess["counts"], sess["start"], sess["duration"]
    session_cols = {k: v for k, v in sess.items() if k not in ("counts", "start", "duration")}
    per = counts.sum(axis=1)
    types = np.repeat(np.tile(np.arange(len(EVENT_TYPES), dtype=np.int8), per.size),
                      counts.ravel())
    sess = np.repeat(np.arange(per.size), per)
    pos = ragged_arange(per)
    frac = pos / np.maximum(per[sess] - 1, 1)
    t = start[sess] + frac * duration[sess]
    out = {k: v[sess] for k, v in session_cols.items()}
    out.update({"etype": types, "t": t, "session_pos": pos})
    return out


def _counts(rng: np.random.Generator, s: int, login: np.ndarray, search_p: float, views: float,
            cart_p: float, share_p: float, errors: np.ndarray, checkout: bool) -> np.ndarray:
    c = np.zeros((s, len(EVENT_TYPES)), dtype=np.int64)
    c[:, 0] = login
    c[:, 1] = rng.random(s) < search_p
    c[:, 2] = 1 + rng.poisson(views, s)
    c[:, 3] = (rng.random(s) < cart_p).astype(np.int64) + (1 if checkout else 0)
    c[:, 4] = rng.random(s) < share_p
    c[:, 5] = errors
    c[:, 6] = 1 if checkout else 0
    return c


def _device(rng: np.random.Generator, ident: Identity, who: np.ndarray,
            channel: np.ndarray) -> np.ndarray:
    dev = np.full(who.size, DEV_NONE, dtype=np.int8)
    app = channel == 0
    second = app & (ident.app_dev2[who] != "") & (rng.random(who.size) < 0.4)
    dev[app] = DEV_APP1
    dev[second] = DEV_APP2
    dev[channel == 3] = DEV_WEB
    return dev


def _checkout_sessions(rng: np.random.Generator, persons: Persons, ident: Identity,
                       purchases: Purchases, orders: Orders) -> dict[str, np.ndarray]:
    digital = np.nonzero(orders.channel != 0)[0]
    ch = ORDER_TO_EVENT[orders.channel[digital]]
    who = orders.person[digital]
    s = digital.size
    logged = rng.random(s) < np.array([0.35, 0.30, 0.0, 0.35])[ch]
    login = logged & (rng.random(s) < 0.6)
    err = purchases.app_error[orders.pos[digital]]
    errors = err * (1 + (rng.random(s) < 0.5))
    c = _counts(rng, s, login, 0.5, 2.0, 0.3, 0.0, errors, checkout=True)
    end = orders.t[digital] - SECOND  # the checkout event precedes the order record
    start = np.maximum(end - rng.uniform(2.0, 20.0, s) / 1440.0, persons.acquired[who] + SECOND)
    duration = np.maximum(end - start, 0.0)
    return _sessions(c, start, duration, {
        "person": who, "channel": ch, "logged": logged, "device": _device(rng, ident, who, ch),
        "order_no": digital.astype(np.int64)})


def _alive_span(persons: Persons, purchases: Purchases, window: Window) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    begin = np.maximum(persons.acquired, 0.0)
    end = np.minimum(purchases.death_t, window.days)
    end = np.where(persons.is_prospect, begin, end)
    return begin, np.maximum(end, begin)


def _browse_sessions(rng: np.random.Generator, persons: Persons, ident: Identity,
                     purchases: Purchases, window: Window) -> dict[str, np.ndarray]:
    begin, end = _alive_span(persons, purchases, window)
    span = end - begin
    parts: dict[str, list[np.ndarray]] = {"who": [], "ch": []}
    for pref_col, ch, rate_mult in ((2, 0, 1.0), (1, 3, 1.0), (3, 1, 1.0)):
        rate = P.BROWSE_SESSIONS_PER_ORDER * rate_mult * persons.lam * persons.pref[:, pref_col]
        k = rng.poisson(rate * span)
        parts["who"].append(np.repeat(np.arange(persons.n), k))
        parts["ch"].append(np.full(int(k.sum()), ch, dtype=np.int8))
    oa = (ident.openid_oa != "") & ~persons.is_prospect
    k = rng.poisson(P.OA_READS_PER_MONTH * span / 30.4 * oa)
    parts["who"].append(np.repeat(np.arange(persons.n), k))
    parts["ch"].append(np.full(int(k.sum()), 2, dtype=np.int8))
    who, ch = np.concatenate(parts["who"]), np.concatenate(parts["ch"])
    s = who.size
    day = begin[who] + rng.random(s) * (end[who] - begin[who])
    start = np.maximum(np.floor(day) + hour_of_day(rng, s), begin[who])
    duration = rng.uniform(1.0, 15.0, s) / 1440.0
    start = np.minimum(start, np.maximum(end[who] - duration - 2 * SECOND, begin[who]))
    duration = np.clip(np.minimum(duration, end[who] - 2 * SECOND - start), 0.0, None)
    is_oa = ch == 2
    logged = rng.random(s) < np.array([0.22, 0.15, 0.03, 0.12])[ch]
    login = logged & (ch != 2) & (rng.random(s) < 0.3)
    c = _counts(rng, s, login, 0.4, 2.0, 0.25, 0.0, np.zeros(s, np.int64), checkout=False)
    c[is_oa, 1] = 0
    c[is_oa, 2] = 1
    c[is_oa, 3] = 0
    c[:, 4] = rng.random(s) < np.where(is_oa, 0.12, np.where(ch == 1, 0.05, 0.0))
    return _sessions(c, start, duration, {
        "person": who, "channel": ch, "logged": logged, "device": _device(rng, ident, who, ch),
        "order_no": np.full(s, -1, dtype=np.int64)})


def _shared_sessions(rng: np.random.Generator, persons: Persons, ident: Identity,
                     purchases: Purchases, window: Window) -> dict[str, np.ndarray]:
    begin, end = _alive_span(persons, purchases, window)
    eligible = np.nonzero(end - begin > 1.0)[0]
    who_l, dev_l, ch_l = [], [], []
    for d in range(ident.shared_devices.size):
        m = min(int(rng.integers(P.SHARED_DEVICE_MIN_PERSONS, 81)), eligible.size)
        who = rng.choice(eligible, size=m, replace=False)
        who = np.repeat(who, 1 + (rng.random(m) < 0.5))
        who_l.append(who)
        dev_l.append(np.full(who.size, d, dtype=np.int64))
        ch_l.append(np.full(who.size, 0 if d % 2 == 0 else 3, dtype=np.int8))
    who, dev, ch = np.concatenate(who_l), np.concatenate(dev_l), np.concatenate(ch_l)
    s = who.size
    start = begin[who] + rng.random(s) * (end[who] - begin[who] - 0.02)
    duration = rng.uniform(1.0, 8.0, s) / 1440.0
    c = _counts(rng, s, np.ones(s, np.int64), 0.2, 1.0, 0.1, 0.0, np.zeros(s, np.int64),
                checkout=False)
    return _sessions(c, start, duration, {
        "person": who, "channel": ch, "logged": np.ones(s, dtype=bool),
        "device": np.full(s, DEV_SHARED, dtype=np.int8), "order_no": np.full(s, -1, np.int64),
        "shared": dev})


def _required_logins(sess: dict[str, np.ndarray], persons: Persons, ident: Identity,
                     purchases: Purchases, orders: Orders, window: Window) -> None:
    """Plant the logins real systems require, in place: the first in-window session of each
    group below gets a ``login`` event at its start and is logged in throughout (a session
    straddling the window start is moved to begin at it).

    Groups: every app device of its owner (apps require login to order); the web device of a
    person who ever orders online (online shop, app or mini-program); the WeChat sessions
    (mini-program and official account) of a WeChat user binding WeChat to the membership, i.e.
    every mini-program buyer who did not authorise the phone on a mini-program order, and every
    other WeChat user except the ``P_WECHAT_UNBOUND`` share who never bind."""
    n = persons.n
    who, ch, dev = sess["person"], sess["channel"], sess["device"]
    online = np.zeros(n, dtype=bool)
    online[purchases.person[(purchases.channel != 0) & (purchases.t < window.days)]] = True
    mp_buyer = np.zeros(n, dtype=bool)
    mp_buyer[orders.person[orders.channel == 3]] = True
    phone_bound = np.zeros(n, dtype=bool)
    phone_bound[orders.person[orders.phone_auth]] = True
    login_bind = (ident.unionid != "") & ~phone_bound & (mp_buyer | ~ident.wx_unbound)
    wechat = (ch == 1) | (ch == 2)
    slot = np.select([(ch == 0) & (dev == DEV_APP1), (ch == 0) & (dev == DEV_APP2),
                      (ch == 3) & (dev == DEV_WEB) & online[who], wechat & login_bind[who]],
                     [0, 1, 2, 3], -1)
    start, end = sess["start"], sess["start"] + sess["duration"]
    cand = np.nonzero((slot >= 0) & (end >= 0) & (start < window.days))[0]
    group = who[cand].astype(np.int64) * 4 + slot[cand]
    order = np.lexsort((start[cand], group))
    g = group[order]
    first = cand[order[np.r_[True, g[1:] != g[:-1]] if g.size else np.zeros(0, dtype=bool)]]
    # a first session straddling the window start begins at the start (its login stays in)
    early = first[start[first] < 0]
    sess["duration"][early] = end[early]
    sess["start"][early] = 0.0
    sess["logged"][first] = True
    sess["counts"][first, 0] = np.maximum(sess["counts"][first, 0], 1)


def simulate_events(rng: np.random.Generator, persons: Persons, ident: Identity,
                    purchases: Purchases, orders: Orders, window: Window) -> Events:
    """All tracked events of the window, with their numeric property payloads."""
    kinds = [_checkout_sessions(rng, persons, ident, purchases, orders),
             _browse_sessions(rng, persons, ident, purchases, window),
             _shared_sessions(rng, persons, ident, purchases, window)]
    for k in kinds:
        k.setdefault("shared", np.full(k["person"].size, -1, dtype=np.int64))
    sess = {key: np.concatenate([k[key] for k in kinds]) for key in kinds[0]}
    _required_logins(sess, persons, ident, purchases, orders, window)
    expanded = _expand(sess)
    t = expanded["t"]
    inside = np.nonzero((t >= 0) & (t < window.days))[0]  # drop sessions straddling the start
    ms = np.floor(t[inside] * 86_400_000.0).astype(np.int64) + window.epoch_local_s * 1000
    month = window.month_index(t[inside])
    within = sort_order(month, ms)
    order = inside[within]
    cols = {k: v[order] for k, v in expanded.items() if k not in ("session_pos", "t")}
    cols["ts_ms"], cols["file_month"] = ms[within], month[within]
    n = order.size
    et = cols["etype"]
    cols["sku"] = np.where(np.isin(et, (2, 3, 4, 6)) & (cols["channel"] != 2),
                           np.floor(N_SKUS * rng.random(n) ** 3), -1).astype(np.int32)
    cols["article"] = np.where(cols["channel"] == 2, rng.integers(0, N_ARTICLES, n),
                               -1).astype(np.int32)
    cols["query"] = np.where(et == 1, rng.integers(0, 40, n), -1).astype(np.int16)
    cols["error"] = np.where(et == 5, rng.integers(0, 6, n), -1).astype(np.int16)
    cols["method"] = np.where(et == 0, rng.integers(0, 3, n), -1).astype(np.int8)
    cols["share_target"] = np.where(et == 4, rng.integers(0, 2, n), -1).astype(np.int8)
    cols["event_num"] = rng.integers(0, 2**60, n, dtype=np.int64)
    cols["qty"] = np.where(et == 3, 1 + rng.poisson(0.3, n), 0).astype(np.int16)
    cols["order_no"] = np.where(et == 6, cols["order_no"], -1)
    ev = Events(cols)
    log.debug("events: %d", n)
    return ev
