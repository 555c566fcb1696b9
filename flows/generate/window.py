"""Simulation window, calendar seasonality and time conversions.

Simulation time is a float number of days since the window start (local midnight, Asia/Shanghai).
Negative values are before the window (persons acquired earlier). Output writers convert to
integer epoch seconds: *local* wall-clock seconds (``local_s``) for systems that export local time
and UTC seconds (``local_s - 8 h``) for systems that export UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

UTC_OFFSET_S = 8 * 3600
DAY_S = 86400

#: Chinese New Year (first day of the lunar year), used for the seasonal dip.
CNY_DATES: dict[int, date] = {
    2018: date(2018, 2, 16), 2019: date(2019, 2, 5), 2020: date(2020, 1, 25),
    2021: date(2021, 2, 12), 2022: date(2022, 2, 1), 2023: date(2023, 1, 22),
    2024: date(2024, 2, 10), 2025: date(2025, 1, 29), 2026: date(2026, 2, 17),
    2027: date(2027, 2, 6), 2028: date(2028, 1, 26), 2029: date(2029, 2, 13),
    2030: date(2030, 2, 3), 2031: date(2031, 1, 23), 2032: date(2032, 2, 11),
    2033: date(2033, 1, 31), 2034: date(2034, 2, 19), 2035: date(2035, 2, 8),
}

#: Margin (days) of the seasonal table before the window start and after its end.
PRE_DAYS = 420
POST_DAYS = 420


@dataclass(frozen=True)
class Window:
    """The exported window: ``months`` calendar months ending at ``end`` (inclusive)."""

    start: date
    end: date
    months: int
    days: float  # exclusive end, in days since start
    epoch_local_s: int  # local wall-clock epoch seconds of the start
    month_starts: np.ndarray  # day offsets of the start of each month, plus the exclusive end
    month_keys: tuple[tuple[int, int], ...]  # (year, month) of each window month

    def local_seconds(self, days: np.ndarray) -> np.ndarray:
        """Local wall-clock epoch seconds (int64) of simulation times."""
        return self.epoch_local_s + np.round(np.asarray(days) * DAY_S).astype(np.int64)

    def month_index(self, days: np.ndarray) -> np.ndarray:
        """Window month index (0-based) of simulation times; -1 before, ``months`` after."""
        return np.searchsorted(self.month_starts, days, side="right").astype(np.int32) - 1

    def day_offset(self, d: date) -> int:
        """Days from the window start to the date ``d``."""
        return (d - self.start).days


def _add_months(y: int, m: int, k: int) -> tuple[int, int]:
    idx = y * 12 + (m - 1) + k
    return idx // 12, idx % 12 + 1


def make_window(end_date: date, months: int) -> Window:
    """Build the window of ``months`` calendar months ending at ``end_date`` inclusive."""
    if months < 1:
        raise ValueError("months must be >= 1")
    y, m = _add_months(end_date.year, end_date.month, -(months - 1))
    start = date(y, m, 1)
    keys = tuple(_add_months(y, m, k) for k in range(months))
    starts = [(date(yy, mm, 1) - start).days for yy, mm in keys]
    days = float((end_date - start).days + 1)
    starts.append(days)
    epoch = (start - date(1970, 1, 1)).days * DAY_S
    return Window(start=start, end=end_date, months=months, days=days, epoch_local_s=epoch,
                  month_starts=np.array(starts, dtype=np.float64), month_keys=keys)


def _festival_offsets(window: Window) -> tuple[list[int], list[int], list[int]]:
    first = window.start.year - 2
    last = window.end.year + 2
    d11 = [window.day_offset(date(y, 11, 11)) for y in range(first, last + 1)]
    d618 = [window.day_offset(date(y, 6, 18)) for y in range(first, last + 1)]
    cny = [window.day_offset(CNY_DATES[y]) for y in range(first, last + 1) if y in CNY_DATES]
    return d11, d618, cny


@dataclass(frozen=True)
class Season:
    """Daily seasonal multiplier table covering the window plus margins."""

    first_day: int
    values: np.ndarray
    max_value: float

    def at(self, days: np.ndarray) -> np.ndarray:
        """Seasonal multiplier at the given simulation times."""
        idx = np.floor(days).astype(np.int64) - self.first_day
        return self.values[np.clip(idx, 0, self.values.size - 1)]


def make_season(window: Window, amp_1111: float, amp_618: float, amp_cny: float) -> Season:
    """Seasonality: Gaussian bumps around 11.11 and 6.18 and a dip around Chinese New Year."""
    first = -PRE_DAYS
    d = np.arange(first, int(window.days) + POST_DAYS, dtype=np.float64)
    v = np.ones_like(d)
    d11, d618, cny = _festival_offsets(window)
    for c in d11:
        v += amp_1111 * np.exp(-0.5 * ((d - c + 2.0) / 5.0) ** 2)  # pre-sales start before 11.11
    for c in d618:
        v += amp_618 * np.exp(-0.5 * ((d - c + 1.0) / 4.0) ** 2)
    for c in cny:
        v -= amp_cny * np.exp(-0.5 * ((d - c - 3.0) / 7.0) ** 2)
    v = np.clip(v, 0.1, None)
    return Season(first_day=first, values=v, max_value=float(v.max()))


def hour_of_day(rng: np.random.Generator, n: int, store: np.ndarray | None = None) -> np.ndarray:
    """Fraction of a day (0-1) following a shop-hours (store) or evening-peaked (online) profile."""
    online = np.array([1.0, 0.6, 0.3, 0.2, 0.2, 0.3, 0.8, 1.5, 2.5, 3.2, 3.6, 3.8, 4.2, 3.8, 3.5,
                       3.6, 3.8, 4.0, 4.2, 5.0, 6.0, 6.5, 5.5, 2.5])
    shop = np.array([0.0] * 10 + [2.0, 3.0, 4.0, 3.5, 3.8, 4.2, 4.5, 4.8, 5.0, 5.5, 5.0, 3.0]
                    + [0.0, 0.0])
    frac = rng.random(n)
    h_on = rng.choice(24, size=n, p=online / online.sum())
    if store is None:
        return (h_on + frac) / 24.0
    h_st = rng.choice(24, size=n, p=shop / shop.sum())
    return (np.where(store, h_st, h_on) + frac) / 24.0
