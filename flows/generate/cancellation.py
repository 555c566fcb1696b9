"""Cancellation flow of paid memberships: intent clocks, reasons, retention offers, outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import params as P
from .purchases import CAUSE_CANCELLATION
from .rand import categorical

REASONS: tuple[str, ...] = ("too_expensive", "not_using_enough", "found_alternative",
                            "moving_away", "service_problem", "product_quality",
                            "temporary_break", "other")
REASON_PROBS_ALIVE = np.array([0.30, 0.10, 0.15, 0.08, 0.10, 0.07, 0.15, 0.05])
REASON_PROBS_DEAD = np.array([0.15, 0.60, 0.08, 0.03, 0.03, 0.03, 0.03, 0.05])
OFFERS: tuple[str, ...] = ("none", "discount_50_3m", "pause_3m", "downgrade_annual")
#: P(offer) per reason for monthly plans (rows follow REASONS, columns OFFERS).
OFFER_PROBS_MONTHLY = np.array([
    [0.10, 0.65, 0.05, 0.20], [0.35, 0.10, 0.45, 0.10], [0.40, 0.50, 0.05, 0.05],
    [0.85, 0.05, 0.10, 0.00], [0.60, 0.35, 0.05, 0.00], [0.65, 0.30, 0.05, 0.00],
    [0.10, 0.00, 0.90, 0.00], [0.60, 0.30, 0.10, 0.00],
])
OFFER_PROBS_ANNUAL = np.array([0.6, 0.0, 0.4, 0.0])
ACCEPT = np.array([0.0, P.OFFER_ACCEPT["discount_50_3m"], P.OFFER_ACCEPT["pause_3m"],
                   P.OFFER_ACCEPT["downgrade_annual"]])
OUTCOMES: tuple[str, ...] = ("cancelled", "deflected", "abandoned")

REASON_TEXTS: tuple[tuple[str, ...], ...] = (
    ("太贵了，不值这个价", "会员费太高", "too expensive for what I get", ""),
    ("最近很少买东西", "用得太少了", "I don't shop here enough any more", ""),
    ("找到更便宜的平台了", "换了别家的会员", "switched to another brand", ""),
    ("要搬到外地了，附近没有门店", "moving abroad", ""),
    ("客服态度很差", "上次投诉一直没人处理", "customer service never answered", ""),
    ("衣服质量越来越差", "买到的东西质量有问题", "quality went down", ""),
    ("先暂停一段时间", "taking a break for a few months", "最近手头紧，先停一下", ""),
    ("其他原因", "no comment", ""),
)


@dataclass
class MemberState:
    """Vectorised state of all memberships during the billing simulation."""

    person: np.ndarray
    start_t: np.ndarray
    plan: np.ndarray  # int8 plan at sign-up: 0 monthly, 1 annual
    plan_now: np.ndarray  # current billing plan
    active: np.ndarray
    ended_t: np.ndarray
    end_reason: np.ndarray  # int8: 0 none, 1 cancelled, 2 non_payment
    cycle: np.ndarray  # months after start of the next billing date
    discount_left: np.ndarray  # invoices still at 50 %
    tc: np.ndarray  # time of the next cancellation intent


@dataclass
class SessionLog:
    """Accumulated cancellation-flow sessions."""

    chunks: list[dict[str, np.ndarray]] = field(default_factory=list)

    def columns(self) -> dict[str, np.ndarray]:
        keys = ("membership", "started_t", "ended_t", "reason", "text", "offer", "shown",
                "accepted", "outcome")
        if not self.chunks:
            return {k: np.zeros(0) for k in keys}
        return {k: np.concatenate([c[k] for c in self.chunks]) for k in keys}


def next_intent(rng: np.random.Generator, ts: np.ndarray, death_t: np.ndarray) -> np.ndarray:
    """Next cancellation intent: an alive member's small hazard, or soon after going dormant."""
    alive_clock = ts + rng.exponential(1.0 / P.ALIVE_CANCEL_HAZARD_PER_DAY, ts.size)
    dead_base = np.maximum(death_t, ts)
    dead_clock = dead_base + 15.0 + rng.exponential(P.DEAD_CANCEL_DELAY_MEAN_DAYS, ts.size)
    return np.minimum(alive_clock, np.where(np.isfinite(death_t), dead_clock, np.inf))


def _reason_text(rng: np.random.Generator, reason: np.ndarray) -> np.ndarray:
    out = np.full(reason.size, "", dtype="<U40")
    for r, texts in enumerate(REASON_TEXTS):
        idx = np.nonzero(reason == r)[0]
        out[idx] = np.array(texts)[rng.integers(0, len(texts), idx.size)]
    return out


def _one_round(rng: np.random.Generator, st: MemberState, sel: np.ndarray, death_t: np.ndarray,
               cause: np.ndarray, log: SessionLog) -> None:
    ts = st.tc[sel]
    who = st.person[sel]
    dead = death_t[who] <= ts
    k = sel.size
    reason = categorical(rng, np.where(dead[:, None], REASON_PROBS_DEAD, REASON_PROBS_ALIVE))
    monthly = st.plan_now[sel] == 0
    probs = np.where(monthly[:, None], OFFER_PROBS_MONTHLY[reason], OFFER_PROBS_ANNUAL)
    offer = categorical(rng, probs)
    shown = offer > 0
    abandoned = rng.random(k) < P.P_SESSION_ABANDON
    accept_p = ACCEPT[offer] * np.where(dead, 0.6, 1.0)
    accepted = shown & ~abandoned & (rng.random(k) < accept_p)
    outcome = np.where(abandoned, 2, np.where(accepted, 1, 0)).astype(np.int8)
    ended = ts + rng.uniform(0.5, 12.0, k) / 1440.0
    log.chunks.append({"membership": sel, "started_t": ts, "ended_t": ended, "reason": reason,
                       "text": _reason_text(rng, reason), "offer": offer, "shown": shown,
                       "accepted": accepted, "outcome": outcome})

    canc = sel[outcome == 0]
    st.active[canc] = False
    st.ended_t[canc] = ended[outcome == 0]
    st.end_reason[canc] = 1
    c_who, c_end = who[outcome == 0], ended[outcome == 0]
    churn = (death_t[c_who] > c_end) & (rng.random(c_who.size) < P.P_CHURN_ON_CANCEL)
    death_t[c_who[churn]] = c_end[churn]
    cause[c_who[churn]] = CAUSE_CANCELLATION

    defl = outcome == 1
    d_sel = sel[defl]
    off = offer[defl]
    st.discount_left[d_sel[off == 1]] = 3
    st.cycle[d_sel[off == 2]] += 3
    st.plan_now[d_sel[off == 3]] = 1
    lost = rng.random(d_sel.size) < P.P_LOST_DEFLECTION
    regular = next_intent(rng, ts[defl] + 30.0, death_t[who[defl]])
    st.tc[d_sel] = np.where(lost, ts[defl] + rng.uniform(20.0, 120.0, d_sel.size), regular)
    ab = outcome == 2
    st.tc[sel[ab]] = ts[ab] + 3.0 + rng.exponential(30.0, int(ab.sum()))


def run_sessions(rng: np.random.Generator, st: MemberState, candidates: np.ndarray,
                 horizon: np.ndarray, death_t: np.ndarray, cause: np.ndarray,
                 log: SessionLog) -> None:
    """Process every cancellation intent of ``candidates`` falling before their ``horizon``."""
    for _ in range(200):
        hit = st.active[candidates] & (st.tc[candidates] < horizon)
        if not hit.any():
            return
        _one_round(rng, st, candidates[hit], death_t, cause, log)
