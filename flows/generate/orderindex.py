"""Per-person lookup of purchase times: last purchase before t, first purchase in [t0, t1)."""

from __future__ import annotations

import numpy as np

_OFFSET = 1000.0  # days added so that pre-window times stay positive
_SPAN = 16384.0  # days reserved per person in the composite key


class OrderIndex:
    """Sorted composite keys ``person * SPAN + t`` in chunks (new orders are appended as chunks)."""

    def __init__(self, person: np.ndarray, t: np.ndarray, order_no: np.ndarray) -> None:
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.add(person, t, order_no)

    def add(self, person: np.ndarray, t: np.ndarray, order_no: np.ndarray) -> None:
        """Index more orders (``order_no``: their positions in the purchase arrays)."""
        if person.size == 0:
            return
        if float(np.max(t)) + _OFFSET >= _SPAN or float(np.min(t)) + _OFFSET < 0:
            raise ValueError("order times outside the indexable span")
        key = person.astype(np.float64) * _SPAN + (t + _OFFSET)
        o = np.argsort(key, kind="stable")
        self._chunks.append((key[o], t[o], order_no[o]))

    @staticmethod
    def _key(who: np.ndarray, t: np.ndarray | float) -> np.ndarray:
        return who.astype(np.float64) * _SPAN + (np.asarray(t) + _OFFSET)

    def last_before(self, who: np.ndarray, t: np.ndarray | float) -> np.ndarray:
        """Time of each person's last order strictly before ``t`` (-inf if none)."""
        out = np.full(who.size, -np.inf)
        lo = self._key(who, -_OFFSET + 1e-9)
        hi = self._key(who, t)
        for key, tt, _ in self._chunks:
            i = np.searchsorted(key, hi, side="left") - 1
            ok = (i >= 0) & (key[np.maximum(i, 0)] >= lo)
            out = np.where(ok, np.maximum(out, tt[np.maximum(i, 0)]), out)
        return out

    def first_in(self, who: np.ndarray, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
        """Whether each person has an order in ``[t0, t1)``, and the earliest one's ``order_no``."""
        best_t = np.full(who.size, np.inf)
        best_no = np.full(who.size, -1, dtype=np.int64)
        k0, k1 = self._key(who, t0), self._key(who, t1)
        for key, tt, no in self._chunks:
            i = np.searchsorted(key, k0, side="left")
            j = np.minimum(i, key.size - 1)
            ok = (i < key.size) & (key[j] < k1)
            better = ok & (tt[j] < best_t)
            best_t = np.where(better, tt[j], best_t)
            best_no = np.where(better, no[j], best_no)
        return best_no >= 0, best_no
