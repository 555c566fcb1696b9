"""Real people: acquisition, geography, latent purchase parameters and channel preferences."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from . import params as P
from .rand import categorical
from .window import Season, Window, hour_of_day, make_season

log = logging.getLogger(__name__)

#: Order channel of the first purchase implied by the acquisition channel (-1: from preference).
FIRST_CHANNEL = np.array([0, 1, 2, 3, 3, -1], dtype=np.int8)


@dataclass
class Persons:
    """Person-level latent attributes (one entry per real person, index = person number)."""

    n: int
    acquired: np.ndarray  # float days since window start (negative: before the window)
    acq_channel: np.ndarray  # int8 index into params.ACQ_CHANNELS
    region: np.ndarray  # int8 index into params.REGIONS
    city_tier: np.ndarray  # int8 1..4
    lam: np.ndarray  # purchase rate per day (0 for prospects)
    p: np.ndarray  # dropout probability after each purchase
    mean_spend: np.ndarray  # CNY, person-level mean gross per order
    is_prospect: np.ndarray  # bool
    has_wechat: np.ndarray  # bool
    pref: np.ndarray  # (n, 4) order-channel preference, rows sum to 1
    first_channel: np.ndarray  # int8 order channel of the first purchase
    home_store: np.ndarray  # int16 store number within the region
    referrer: np.ndarray  # int64 person index of the referrer, -1 if none


def _acquisition_times(rng: np.random.Generator, n: int, window: Window,
                       is_store: np.ndarray) -> np.ndarray:
    """In-window or pre-window acquisition time with growth, festival bumps and the CNY dip."""
    season = make_season(window, amp_1111=1.6, amp_618=0.9, amp_cny=0.55)
    pre = rng.random(n) < P.PRE_WINDOW_SHARE
    day_grid = np.arange(-365, int(window.days), dtype=np.float64)
    growth = np.exp(P.ACQ_GROWTH_PER_YEAR * day_grid / 365.0)
    w = growth * season.at(day_grid)
    w_pre = np.where(day_grid < 0, w, 0.0)
    w_in = np.where(day_grid >= 0, w, 0.0)
    day = np.empty(n, dtype=np.float64)
    n_pre = int(pre.sum())
    day[pre] = rng.choice(day_grid, size=n_pre, p=w_pre / w_pre.sum())
    day[~pre] = rng.choice(day_grid, size=n - n_pre, p=w_in / w_in.sum())
    return day + hour_of_day(rng, n, store=is_store)


def _channel_preferences(rng: np.random.Generator, acq: np.ndarray, has_wechat: np.ndarray,
                         first: np.ndarray) -> np.ndarray:
    base = np.array([P.CHANNEL_PREF_BASE[c] for c in P.ACQ_CHANNELS])[acq]
    g = rng.gamma(shape=base * P.CHANNEL_PREF_CONCENTRATION)
    pref = g / g.sum(axis=1, keepdims=True)
    pref[pref < P.CHANNEL_PREF_MIN] = 0.0
    has_first = first >= 0
    rows = np.nonzero(has_first)[0]
    pref[rows, first[rows]] = np.maximum(pref[rows, first[rows]], 0.25)
    pref[~has_wechat, 3] = 0.0
    empty = pref.sum(axis=1) == 0
    pref[empty, 0] = 1.0
    return pref / pref.sum(axis=1, keepdims=True)


def _referrers(rng: np.random.Generator, acquired: np.ndarray, is_referral: np.ndarray,
               is_prospect: np.ndarray) -> np.ndarray:
    """Each referral acquisition gets a random earlier-acquired buying person as referrer."""
    buyers = np.nonzero(~is_prospect)[0]
    order = buyers[np.argsort(acquired[buyers], kind="stable")]
    times = acquired[order]
    ref = np.full(acquired.size, -1, dtype=np.int64)
    idx = np.nonzero(is_referral)[0]
    earlier = np.searchsorted(times, acquired[idx], side="left")
    ok = earlier > 0
    pick = np.floor(rng.random(idx.size) * earlier).astype(np.int64)
    ref[idx[ok]] = order[pick[ok]]
    return ref


def simulate_persons(rng: np.random.Generator, n: int, window: Window) -> Persons:
    """Draw ``n`` persons with their acquisition and latent BG/NBD / Gamma-Gamma parameters."""
    acq = rng.choice(len(P.ACQ_CHANNELS), size=n, p=np.array(P.ACQ_CHANNEL_PROBS)).astype(np.int8)
    acquired = _acquisition_times(rng, n, window, is_store=acq == 0)
    region = rng.choice(len(P.REGIONS), size=n, p=np.array(P.REGION_PROBS)).astype(np.int8)
    tier = (categorical(rng, np.array(P.TIER_PROBS)[region]) + 1).astype(np.int8)
    is_prospect = rng.random(n) < P.PROSPECT_SHARE
    lam = np.minimum(rng.gamma(P.LAMBDA_SHAPE, 1.0 / P.LAMBDA_RATE, size=n), P.LAMBDA_CAP)
    lam[is_prospect] = 0.0
    p = rng.beta(P.DROPOUT_A, P.DROPOUT_B, size=n)
    spend = rng.gamma(P.SPEND_SHAPE, P.SPEND_SCALE, size=n)
    spend *= np.array(P.TIER_SPEND_FACTOR)[tier - 1]
    wechat_acq = (acq == 3) | (acq == 4)
    has_wechat = wechat_acq | (rng.random(n) < P.P_WECHAT_OTHER)
    first = FIRST_CHANNEL[acq]
    pref = _channel_preferences(rng, acq, has_wechat, first)
    home_store = rng.integers(0, P.STORES_PER_REGION, size=n).astype(np.int16)
    referrer = _referrers(rng, acquired, acq == 5, is_prospect)
    log.debug("persons: %d (%d prospects, %d pre-window)", n, int(is_prospect.sum()),
              int((acquired < 0).sum()))
    return Persons(n=n, acquired=acquired, acq_channel=acq, region=region, city_tier=tier, lam=lam,
                   p=p, mean_spend=spend, is_prospect=is_prospect, has_wechat=has_wechat, pref=pref,
                   first_channel=first, home_store=home_store, referrer=referrer)


def purchase_season(window: Window) -> Season:
    """Seasonality of purchase intensity (milder than that of acquisitions)."""
    return make_season(window, amp_1111=1.0, amp_618=0.5, amp_cny=0.4)
