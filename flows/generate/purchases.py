"""Purchase process in the BG/NBD spirit, with experiences that raise the dropout probability.

Each buying person purchases as a Poisson process of rate ``lam`` (thinned by a seasonal factor)
from acquisition on. After every purchase (including the first) the person drops out with
probability ``p``, multiplied by the planted hazard multipliers of the bad experiences at that
purchase (capped at ``params.DROPOUT_CAP``). The simulation loops over candidate purchase events of
the still-alive persons, never over persons.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from . import params as P
from .persons import Persons
from .rand import categorical
from .window import Season, Window, hour_of_day

log = logging.getLogger(__name__)

CAUSES: tuple[str, ...] = ("", "natural_dropout", "experience:delivery_delay",
                           "experience:product_quality", "experience:app_error",
                           "experience:return_refund", "involuntary_non_payment", "cancellation")
CAUSE_NATURAL = 1
CAUSE_INVOLUNTARY = 6
CAUSE_CANCELLATION = 7

KIND_NATURAL = 0
KIND_INDUCED = 1  # win-back recall order
KIND_REVIVAL = 2  # further purchases of a revived person

MINUTE = 1.0 / 1440.0


@dataclass
class Purchases:
    """All simulated purchases (including pre-window ones, which are never exported)."""

    person: np.ndarray  # int64
    t: np.ndarray  # float days
    channel: np.ndarray  # int8 index into params.ORDER_CHANNELS
    delay: np.ndarray  # bool, delivery delay experience
    quality: np.ndarray  # bool, product quality problem
    app_error: np.ndarray  # bool, app error during the order
    returned: np.ndarray  # bool, return/refund
    kind: np.ndarray  # int8, KIND_*
    death_t: np.ndarray  # per person: churn time (inf if alive at the window end / never bought)
    cause: np.ndarray  # per person: int8 index into CAUSES
    coupon_contact: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        if self.coupon_contact.size != self.person.size:
            self.coupon_contact = np.full(self.person.size, -1, dtype=np.int64)

    @property
    def size(self) -> int:
        return int(self.person.size)

    def select(self, mask: np.ndarray) -> None:
        """Keep only the orders where ``mask`` is true (in place)."""
        for name in ("person", "t", "channel", "delay", "quality", "app_error", "returned", "kind",
                     "coupon_contact"):
            setattr(self, name, getattr(self, name)[mask])

    def append(self, other: Purchases) -> None:
        """Append the orders of ``other`` (person-level arrays are left untouched)."""
        for name in ("person", "t", "channel", "delay", "quality", "app_error", "returned", "kind",
                     "coupon_contact"):
            setattr(self, name, np.concatenate([getattr(self, name), getattr(other, name)]))


def draw_experiences(rng: np.random.Generator, channel: np.ndarray) -> dict[str, np.ndarray]:
    """Bad experiences of orders placed through ``channel``."""
    n = channel.size
    online = channel != 0
    return {
        "delay": online & (rng.random(n) < P.P_DELIVERY_DELAY),
        "quality": rng.random(n) < P.P_QUALITY,
        "app_error": (channel == 2) & (rng.random(n) < P.P_APP_ERROR),
        "returned": rng.random(n) < np.where(online, P.P_RETURN_ONLINE, P.P_RETURN_STORE),
    }


def _dropout(rng: np.random.Generator, p: np.ndarray,
             exp: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Dropout decision and cause code at a purchase, given the person's p and the experiences."""
    m = P.DRIVER_MULTIPLIERS
    mult = (np.where(exp["delay"], m["delivery_delay"], 1.0)
            * np.where(exp["quality"], m["product_quality"], 1.0)
            * np.where(exp["app_error"], m["app_error"], 1.0)
            * np.where(exp["returned"], m["return_refund"], 1.0))
    q = np.where(mult > 1.0, np.maximum(p, np.minimum(P.DROPOUT_CAP, p * mult)), p)
    u = rng.random(p.size)
    drop = u < q
    # attribute the excess probability to the strongest experience present
    cause = np.full(p.size, CAUSE_NATURAL, dtype=np.int8)
    for code, key in ((5, "returned"), (4, "app_error"), (2, "delay"), (3, "quality")):
        cause = np.where(exp[key] & (u >= p), np.int8(code), cause)
    return drop, np.where(drop, cause, np.int8(0)).astype(np.int8)


class _Recorder:
    """Accumulates purchase chunks produced inside the simulation loop."""

    def __init__(self) -> None:
        self.chunks: list[dict[str, np.ndarray]] = []

    def add(self, person: np.ndarray, t: np.ndarray, channel: np.ndarray,
            exp: dict[str, np.ndarray], kind: int) -> None:
        self.chunks.append({"person": person, "t": t, "channel": channel,
                            "kind": np.full(person.size, kind, dtype=np.int8), **exp})

    def build(self, death_t: np.ndarray, cause: np.ndarray) -> Purchases:
        cols = {k: np.concatenate([c[k] for c in self.chunks]) for k in self.chunks[0]}
        return Purchases(person=cols["person"].astype(np.int64), t=cols["t"],
                         channel=cols["channel"].astype(np.int8), delay=cols["delay"],
                         quality=cols["quality"], app_error=cols["app_error"],
                         returned=cols["returned"], kind=cols["kind"], death_t=death_t,
                         cause=cause)


def simulate_purchases(rng: np.random.Generator, persons: Persons, window: Window,
                       season: Season) -> Purchases:
    """Simulate every buying person's purchases from acquisition to the window end."""
    end = window.days
    death_t = np.full(persons.n, np.inf)
    cause = np.zeros(persons.n, dtype=np.int8)
    rec = _Recorder()

    buyers = np.nonzero(~persons.is_prospect)[0]
    first = persons.first_channel[buyers]
    from_pref = first < 0
    first = first.copy()
    first[from_pref] = categorical(rng, persons.pref[buyers[from_pref]])
    offset = np.where(first == 0, rng.uniform(2.0, 20.0, buyers.size) * MINUTE,
                      rng.exponential(1.5, buyers.size) + 5 * MINUTE)
    t = persons.acquired[buyers] + offset
    ok = t < end
    active, t, ch = buyers[ok], t[ok], first[ok]

    exp = draw_experiences(rng, ch)
    drop, c = _dropout(rng, persons.p[active], exp)
    rec.add(active, t, ch, exp, KIND_NATURAL)
    death_t[active[drop]] = t[drop]
    cause[active[drop]] = c[drop]
    active, clock, last = active[~drop], t[~drop], t[~drop]

    smax = season.max_value
    iterations = 0
    while active.size:
        iterations += 1
        clock = clock + rng.exponential(1.0, active.size) / (persons.lam[active] * smax)
        inside = clock < end
        active, clock, last = active[inside], clock[inside], last[inside]
        accept = rng.random(active.size) < season.at(clock) / smax
        idx = np.nonzero(accept)[0]
        who = active[idx]
        ch = categorical(rng, persons.pref[who])
        tt = np.floor(clock[idx]) + hour_of_day(rng, idx.size, store=ch == 0)
        tt = np.maximum(tt, last[idx] + 5 * MINUTE)
        in_window = tt < end
        exp = draw_experiences(rng, ch)
        drop, c = _dropout(rng, persons.p[who], exp)
        keep = in_window
        rec.add(who[keep], tt[keep], ch[keep], {k: v[keep] for k, v in exp.items()},
                KIND_NATURAL)
        last[idx] = tt
        gone = np.zeros(active.size, dtype=bool)
        dead = keep & drop
        death_t[who[dead]] = tt[dead]
        cause[who[dead]] = c[dead]
        gone[idx[dead | ~in_window]] = True
        active, clock, last = active[~gone], clock[~gone], last[~gone]
    out = rec.build(death_t, cause)
    log.debug("purchases: %d orders in %d iterations", out.size, iterations)
    return out


def truncate_after_churn(purchases: Purchases, churn_t: np.ndarray) -> int:
    """Drop orders placed after each person's (new) churn time; returns how many were dropped."""
    keep = purchases.t <= churn_t[purchases.person]
    dropped = int((~keep).sum())
    purchases.select(keep)
    return dropped
