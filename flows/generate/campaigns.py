"""Win-back campaigns with random holdouts and planted per-channel uplift.

Every ``CAMPAIGN_EVERY_MONTHS`` months each lapsed customer (last purchase 90-365 days ago) who can
be reached by at least one channel is allocated to exactly one channel's campaign of that cycle
(channels launch three days apart). Within a campaign a random ``HOLDOUT_SHARE`` is held out.

Potential outcomes are simulated for every target: ``Y0`` = a purchase in the attribution window in
the world without the campaign (the purchase simulation), ``Y1 = Y0 or induced`` where ``induced``
requires the message to be delivered and happens with probability ``UPLIFT[c] / REACH[c]``. Only
treated targets realise ``Y1``: their induced recall is an extra order that redeems the coupon, and
a dormant (dropped-out) person is revived for a few more purchases.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from . import params as P
from .identity import DOMAIN_TYPOS, Identity
from .orderindex import OrderIndex
from .persons import Persons
from .purchases import CAUSE_NATURAL, KIND_INDUCED, KIND_REVIVAL, Purchases
from .rand import categorical
from .window import Window

log = logging.getLogger(__name__)


@dataclass
class Campaigns:
    """Campaign rows, contact rows (numeric) and the per-channel truth."""

    campaign: dict[str, np.ndarray]  # channel, launched_t, month_key
    contacts: dict[str, np.ndarray]
    uplift: dict[str, np.ndarray]  # per channel: n_targets, n_treatment, n_holdout, ate_sum


def _reachable(ident: Identity) -> np.ndarray:
    """(n, 5) mask of campaign channels able to address each person."""
    has_phone = ident.phone != ""
    domain = np.char.rpartition(ident.email, "@")[:, 2]
    has_email = ident.email != ""
    return np.column_stack([has_phone, has_email, ident.openid_oa != "", has_phone,
                            ident.app_dev1 != ""]), has_email & ~np.isin(domain, DOMAIN_TYPOS)


def _schedule(window: Window) -> list[tuple[int, float]]:
    """(month index, cycle start day) of every campaign cycle that fits in the window."""
    out = []
    for mi in range(1, window.months, P.CAMPAIGN_EVERY_MONTHS):
        start = float(window.month_starts[mi])
        last_launch = start + 4 + 3 * (len(P.CAMPAIGN_CHANNELS) - 1) + 10 / 24
        if last_launch + P.ATTRIBUTION_WINDOW_DAYS + 5 <= window.days:
            out.append((mi, start))
    return out


def _revive(rng: np.random.Generator, persons: Persons, who: np.ndarray, t0: np.ndarray,
            purchases: Purchases, end: float) -> tuple[np.ndarray, np.ndarray]:
    """Further purchases of revived persons; sets their new churn time. Returns (person, t)."""
    rate = np.maximum(persons.lam[who], P.RECALL_MIN_RATE)
    out_p, out_t = [], []
    active, t, r = who, t0, rate
    while active.size:
        cont = rng.random(active.size) < P.RECALL_CONTINUE_P
        stop = active[~cont]
        purchases.death_t[stop] = t[~cont]
        purchases.cause[stop] = CAUSE_NATURAL
        active, t, r = active[cont], t[cont], r[cont]
        t = t + 0.01 + rng.exponential(1.0, active.size) / r
        beyond = t >= end
        purchases.death_t[active[beyond]] = np.inf
        purchases.cause[active[beyond]] = 0
        active, t, r = active[~beyond], t[~beyond], r[~beyond]
        out_p.append(active)
        out_t.append(t)
    if not out_p:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return np.concatenate(out_p).astype(np.int64), np.concatenate(out_t)


def _new_orders(rng: np.random.Generator, persons: Persons, who: np.ndarray, t: np.ndarray,
                kind: int, contact: np.ndarray | None) -> Purchases:
    ch = categorical(rng, persons.pref[who])
    z = np.zeros(who.size, dtype=bool)
    pur = Purchases(person=who, t=t, channel=ch, delay=z, quality=z.copy(), app_error=z.copy(),
                    returned=z.copy(), kind=np.full(who.size, kind, dtype=np.int8),
                    death_t=np.zeros(0), cause=np.zeros(0, dtype=np.int8))
    if contact is not None:
        pur.coupon_contact = contact.astype(np.int64)
    return pur


def simulate_campaigns(rng: np.random.Generator, persons: Persons, ident: Identity,
                       purchases: Purchases, window: Window) -> Campaigns:
    """Run all campaign cycles; appends recall orders to ``purchases`` in place."""
    reach_mask, email_ok = _reachable(ident)
    alloc = np.array([P.CHANNEL_ALLOCATION[c] for c in P.CAMPAIGN_CHANNELS])
    index = OrderIndex(purchases.person, purchases.t, np.arange(purchases.size))
    everyone = np.arange(persons.n)
    W = float(P.ATTRIBUTION_WINDOW_DAYS)
    camp: dict[str, list] = {"channel": [], "launched_t": [], "month": []}
    cols: dict[str, list[np.ndarray]] = {k: [] for k in (
        "campaign", "person", "treated", "sent_t", "delivered", "opened_t", "redeemed_t",
        "redeemed_order", "y0", "y1")}
    n_contacts = 0
    for mi, start in _schedule(window):
        last = index.last_before(everyone, start + 4)
        lapsed = (last >= start + 4 - P.LAPSED_MAX_DAYS) & (last <= start + 4 - P.LAPSED_MIN_DAYS)
        w = reach_mask[lapsed] * alloc
        cand = everyone[lapsed][w.sum(axis=1) > 0]
        chosen = categorical(rng, w[w.sum(axis=1) > 0]) if cand.size else np.zeros(0, np.int8)
        new_orders: list[Purchases] = []
        for c, name in enumerate(P.CAMPAIGN_CHANNELS):
            launch = start + 4 + 3 * c + 10 / 24
            cid = len(camp["channel"])
            camp["channel"].append(c)
            camp["launched_t"].append(launch)
            camp["month"].append(mi)
            tg = cand[chosen == c]
            k = tg.size
            treated = rng.random(k) >= P.HOLDOUT_SHARE
            spread = 5.0 if name == "outbound_call" else 2.0 / 24
            sent = launch + rng.uniform(0.0, spread, k)
            delivered = rng.random(k) < P.REACH[name]
            if name == "email":
                delivered &= email_ok[tg]
            y0, first_no = index.first_in(tg, launch, launch + W)
            induced = delivered & (rng.random(k) < min(1.0, P.UPLIFT[name] / P.REACH[name]))
            y1 = y0 | induced
            contact_no = n_contacts + np.arange(k)
            # induced recall orders of treated targets
            rec = treated & induced & ~y0
            t_rec = sent[rec] + rng.beta(1.2, 3.0, int(rec.sum())) * (launch + W - 0.05 - sent[rec])
            new_orders.append(_new_orders(rng, persons, tg[rec], t_rec, KIND_INDUCED,
                                          contact_no[rec]))
            dormant = rec.copy()
            dormant[rec] = purchases.death_t[tg[rec]] < t_rec
            rv_p, rv_t = _revive(rng, persons, tg[dormant], t_rec[dormant[rec]], purchases,
                                 window.days)
            new_orders.append(_new_orders(rng, persons, rv_p, rv_t, KIND_REVIVAL, None))
            # natural buyers who use the coupon anyway
            nat = treated & delivered & y0 & (rng.random(k) < P.P_NATURAL_REDEEM)
            nat &= purchases.coupon_contact[np.maximum(first_no, 0)] < 0
            nat &= purchases.t[np.maximum(first_no, 0)] > sent
            purchases.coupon_contact[first_no[nat]] = contact_no[nat]
            redeemed_t = np.full(k, np.nan)
            redeemed_t[rec] = t_rec
            redeemed_t[nat] = purchases.t[first_no[nat]]
            redeemed_order = np.full(k, -1, dtype=np.int64)
            redeemed_order[nat] = first_no[nat]
            rec_no = purchases.size + sum(o.size for o in new_orders[:-2]) + np.arange(rec.sum())
            redeemed_order[rec] = rec_no
            has_open = P.OPEN_RATE[name] > 0
            opened = treated & delivered & has_open & (
                (rng.random(k) < P.OPEN_RATE[name]) | (rec & (rng.random(k) < 0.8)))
            open_t = np.where(rec, sent + (np.where(np.isnan(redeemed_t), sent, redeemed_t) - sent)
                              * rng.uniform(0.05, 0.5, k), sent + rng.exponential(0.4, k))
            for key, val in (("campaign", np.full(k, cid)), ("person", tg), ("treated", treated),
                             ("sent_t", sent), ("delivered", delivered),
                             ("opened_t", np.where(opened, open_t, np.nan)),
                             ("redeemed_t", redeemed_t), ("redeemed_order", redeemed_order),
                             ("y0", y0), ("y1", y1)):
                cols[key].append(val)
            n_contacts += k
        for o in new_orders:
            index.add(o.person, o.t, purchases.size + np.arange(o.size))
            purchases.append(o)
    contacts = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in cols.items()}
    campaign = {k: np.array(v) for k, v in camp.items()}
    uplift = _uplift(campaign, contacts)
    log.debug("campaigns: %d campaigns, %d contacts", campaign["channel"].size, n_contacts)
    return Campaigns(campaign=campaign, contacts=contacts, uplift=uplift)


def _uplift(campaign: dict[str, np.ndarray],
            contacts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-channel counts and the sum of Y1 - Y0 over all targets."""
    nch = len(P.CAMPAIGN_CHANNELS)
    if contacts["campaign"].size == 0:
        z = np.zeros(nch)
        return {"n_targets": z, "n_treatment": z, "n_holdout": z, "ate_sum": z}
    ch = campaign["channel"][contacts["campaign"].astype(np.int64)]
    treated = contacts["treated"].astype(bool)
    diff = contacts["y1"].astype(np.int64) - contacts["y0"].astype(np.int64)
    return {"n_targets": np.bincount(ch, minlength=nch),
            "n_treatment": np.bincount(ch[treated], minlength=nch),
            "n_holdout": np.bincount(ch[~treated], minlength=nch),
            "ate_sum": np.bincount(ch, weights=diff, minlength=nch)}
