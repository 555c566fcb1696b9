"""Paid memberships, monthly/annual billing with dunning, and the churn they cause.

About a quarter of buyers start a membership at one of their in-window purchases. Renewals are
billed on the same day of the month; a failed first attempt enters dunning (two retries), and an
unrecovered invoice ends the membership with ``non_payment`` and, with a planted probability, makes
the person churn on the spot (involuntary churn). Cancellation intents are handled by
:mod:`.cancellation`; a cancellation opened during dunning is voluntary.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from . import params as P
from .cancellation import MemberState, SessionLog, next_intent, run_sessions
from .persons import Persons
from .purchases import CAUSE_INVOLUNTARY, Purchases
from .window import Window

log = logging.getLogger(__name__)

FAILURE_REASONS: tuple[str, ...] = ("insufficient_funds", "card_expired", "bank_declined")
FAILURE_PROBS = np.array([0.5, 0.3, 0.2])
PLANS: tuple[str, ...] = ("monthly", "annual")
PRICE = np.array([P.PLAN_PRICE_CENTS["monthly"], P.PLAN_PRICE_CENTS["annual"]], dtype=np.int64)
PERIOD = np.array([1, 12], dtype=np.int64)


@dataclass
class Billing:
    """Simulated memberships, invoices and cancellation sessions."""

    state: MemberState
    invoices: dict[str, np.ndarray]  # membership, period_start (day offset), t, attempt, cents,
    #                                   paid, reason, plan (billed: 0 monthly, 1 annual)
    sessions: dict[str, np.ndarray]


class _Invoices:
    def __init__(self) -> None:
        self.chunks: list[dict[str, np.ndarray]] = []

    def add(self, ms: np.ndarray, period: np.ndarray, t: np.ndarray, attempt: int,
            cents: np.ndarray, paid: np.ndarray, reason: np.ndarray, plan: np.ndarray) -> None:
        self.chunks.append({"membership": ms, "period_start": period, "t": t,
                            "attempt": np.full(ms.size, attempt, dtype=np.int8), "cents": cents,
                            "paid": paid, "reason": reason.astype(np.int8),
                            "plan": plan.astype(np.int8)})

    def columns(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate([c[k] for c in self.chunks]) for k in self.chunks[0]}


def _bill_dates(start_day: np.ndarray, window: Window, cycle: np.ndarray) -> np.ndarray:
    """Day offset of the billing date ``cycle`` months after the start (day clipped to month)."""
    base = np.datetime64(window.start, "D") + start_day.astype("timedelta64[D]")
    start_m = base.astype("datetime64[M]")
    dom = (base - start_m.astype("datetime64[D]")).astype(np.int64)
    target = start_m + cycle.astype("timedelta64[M]")
    dim = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    day = target.astype("datetime64[D]") + np.minimum(dom, dim - 1).astype("timedelta64[D]")
    return (day - np.datetime64(window.start, "D")).astype(np.int64)


def _pick_members(rng: np.random.Generator, persons: Persons, purchases: Purchases,
                  window: Window) -> tuple[np.ndarray, np.ndarray]:
    """Persons who join, and the time they join (just after one of their in-window orders)."""
    inw = np.nonzero(purchases.t >= 0)[0]
    order = inw[np.lexsort((purchases.t[inw], purchases.person[inw]))]
    pers = purchases.person[order]
    uniq, first, counts = np.unique(pers, return_index=True, return_counts=True)
    join = rng.random(uniq.size) < P.P_MEMBER
    pick = first[join] + np.floor(rng.random(int(join.sum())) * counts[join]).astype(np.int64)
    start = purchases.t[order[pick]] + rng.uniform(1.0, 10.0, pick.size) / 1440.0
    ok = start < window.days
    return uniq[join][ok], start[ok]


def simulate_billing(rng: np.random.Generator, persons: Persons, purchases: Purchases,
                     window: Window) -> Billing:
    """Simulate memberships; updates ``purchases.death_t`` / ``cause`` for churn they cause."""
    death_t, cause = purchases.death_t, purchases.cause
    person, start = _pick_members(rng, persons, purchases, window)
    m = person.size
    plan = np.where(rng.random(m) < P.P_MONTHLY, 0, 1).astype(np.int8)
    st = MemberState(person=person, start_t=start, plan=plan, plan_now=plan.copy(),
                     active=np.ones(m, dtype=bool), ended_t=np.full(m, np.nan),
                     end_reason=np.zeros(m, dtype=np.int8), cycle=PERIOD[plan].copy(),
                     discount_left=np.zeros(m, dtype=np.int64),
                     tc=next_intent(rng, start, death_t[person]))
    start_day = np.floor(start).astype(np.int64)
    inv = _Invoices()
    inv.add(np.arange(m), start_day, start, 1, PRICE[plan], np.ones(m, dtype=bool),
            np.full(m, -1), plan)
    slog = SessionLog()
    end = window.days
    # renewals are attempted by a nightly batch at 03:00 plus a per-membership queue offset
    at = 0.125 + rng.uniform(0.0, 2.0 / 24.0, m)
    for _ in range(window.months * 2 + 40):
        alive_idx = np.nonzero(st.active)[0]
        if alive_idx.size == 0:
            break
        while True:  # a pause accepted in a session moves the next bill: re-run until stable
            cycle = st.cycle[alive_idx].copy()
            bill_t = _bill_dates(start_day[alive_idx], window, cycle) + at[alive_idx]
            run_sessions(rng, st, alive_idx, np.minimum(bill_t, end), death_t, cause, slog)
            keep = st.active[alive_idx]
            alive_idx, cycle, bill_t = alive_idx[keep], cycle[keep], bill_t[keep]
            if np.array_equal(cycle, st.cycle[alive_idx]):
                break
        due = alive_idx[bill_t < end]
        if due.size == 0:
            break
        day = _bill_dates(start_day[due], window, st.cycle[due])
        _bill(rng, st, due, day, day + at[due], inv, slog, death_t, cause, end)
    log.debug("billing: %d memberships, %d sessions", m, len(slog.chunks))
    return Billing(state=st, invoices=inv.columns(), sessions=slog.columns())


def _bill(rng: np.random.Generator, st: MemberState, due: np.ndarray, day: np.ndarray,
          t1: np.ndarray, inv: _Invoices, slog: SessionLog, death_t: np.ndarray,
          cause: np.ndarray, end: float) -> None:
    """First attempt (at ``t1``) and dunning retries of one billing cycle for ``due``."""
    billed = st.plan_now[due].copy()  # the plan this cycle bills (a downgrade moves monthly to annual)
    cents = PRICE[billed]
    cents = np.where((billed == 0) & (st.discount_left[due] > 0), cents // 2, cents)
    fail = rng.random(due.size) < P.P_FIRST_ATTEMPT_FAIL
    reason = np.where(fail, np.searchsorted(np.cumsum(FAILURE_PROBS), rng.random(due.size)), -1)
    inv.add(due, day, t1, 1, cents, ~fail, reason, billed)
    paid = [due[~fail]]
    carry = [np.zeros(0, dtype=np.int64)]  # retries would fall after the window end
    pending = np.nonzero(fail)[0]
    last_t = t1[pending]
    for attempt, offset in enumerate(P.DUNNING_RETRY_DAYS, start=2):
        if pending.size == 0:
            break
        ms = due[pending]
        ta = t1[pending] + offset + rng.uniform(-0.1, 0.1, pending.size)
        run_sessions(rng, st, ms, np.minimum(ta, end), death_t, cause, slog)
        act = st.active[ms]
        carry.append(ms[act & (ta >= end)])
        go = act & (ta < end)
        pending, ms, ta = pending[go], ms[go], ta[go]
        ok = rng.random(ms.size) < P.P_RETRY_RECOVER
        inv.add(ms, day[pending], ta, attempt, cents[pending], ok,
                np.where(ok, -1, reason[pending]), billed[pending])
        paid.append(ms[ok])
        pending, last_t = pending[~ok], ta[~ok]
    if pending.size:
        lost = due[pending]
        st.active[lost] = False
        st.ended_t[lost] = last_t
        st.end_reason[lost] = 2
        who = st.person[lost]
        churn = (death_t[who] > last_t) & (rng.random(lost.size) < P.P_CHURN_ON_NON_PAYMENT)
        death_t[who[churn]] = last_t[churn]
        cause[who[churn]] = CAUSE_INVOLUNTARY
    ok_ms = np.concatenate(paid)
    st.discount_left[ok_ms] = np.maximum(st.discount_left[ok_ms] - 1, 0)
    adv = np.concatenate([ok_ms] + carry)
    st.cycle[adv] += PERIOD[st.plan_now[adv]]
