"""Random-number streams and vectorised random identifiers.

Each simulation module gets its own child generator spawned from one ``SeedSequence(seed)``, so a
change in how many numbers one module draws never shifts another module's stream. The fault
injector has its own stream: ``--faults`` never changes the clean data.
"""

from __future__ import annotations

import numpy as np

#: Append new streams at the end: ``SeedSequence.spawn`` numbers its children in order, so the
#: existing streams stay exactly what they were.
STREAMS: tuple[str, ...] = ("persons", "identity", "purchases", "billing", "campaigns", "orders",
                            "tickets", "surveys", "events", "acquisition", "faults", "binding")

ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
OPENID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
HEX = "0123456789abcdef"


def make_streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent PCG64 generator per module, all derived from ``seed``."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.Generator(np.random.PCG64(ss)) for name, ss in zip(STREAMS, children, strict=False)}


def random_strings(rng: np.random.Generator, n: int, length: int, alphabet: str) -> np.ndarray:
    """``n`` random strings of ``length`` characters from ``alphabet`` (numpy unicode array)."""
    if n == 0:
        return np.array([], dtype=f"<U{length}")
    table = np.frombuffer(alphabet.encode("ascii"), dtype=np.uint8)
    codes = table[rng.integers(0, table.size, size=(n, length))]
    return np.ascontiguousarray(codes).view(f"S{length}").ravel().astype(f"<U{length}")


def uuids(rng: np.random.Generator, n: int, upper: bool = False) -> np.ndarray:
    """``n`` random UUID-formatted strings (8-4-4-4-12 hex)."""
    if n == 0:
        return np.array([], dtype="<U36")
    alphabet = HEX.upper() if upper else HEX
    table = np.frombuffer(alphabet.encode("ascii"), dtype=np.uint8)
    hexes = table[rng.integers(0, 16, size=(n, 32))]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    cols = [c for c in range(36) if c not in (8, 13, 18, 23)]
    out[:, cols] = hexes
    return np.ascontiguousarray(out).view("S36").ravel().astype("<U36")


def unique_ints(rng: np.random.Generator, n: int, low: int, high: int,
                exclude: np.ndarray | None = None) -> np.ndarray:
    """``n`` distinct random integers in ``[low, high)`` (redrawing collisions), int64."""
    if n > (high - low) // 2:
        raise ValueError("range too small for unique draws")
    out = rng.integers(low, high, size=n, dtype=np.int64)
    while True:
        bad = np.zeros(n, dtype=bool)
        _, first = np.unique(out, return_index=True)
        dup = np.ones(n, dtype=bool)
        dup[first] = False
        bad |= dup
        if exclude is not None and exclude.size:
            bad |= np.isin(out, exclude)
        k = int(bad.sum())
        if k == 0:
            return out
        out[bad] = rng.integers(low, high, size=k, dtype=np.int64)


def zfill(numbers: np.ndarray, width: int) -> np.ndarray:
    """Integers rendered as zero-padded strings (safe for empty input)."""
    text = np.asarray(numbers, dtype=np.int64).astype(str)
    if text.size == 0:
        return np.zeros(0, dtype=f"<U{width}")
    return np.char.zfill(text, width)


def prefixed(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded identifiers such as ``C00012345`` from integer numbers."""
    return np.char.add(prefix, zfill(numbers, width))


def categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Row-wise categorical draw from a (n, k) probability matrix (rows need not be normalised)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(probs.shape[0]) * cum[:, -1]
    idx = (cum <= u[:, None]).sum(axis=1)
    return np.minimum(idx, probs.shape[1] - 1).astype(np.int8)


def ragged_arange(counts: np.ndarray) -> np.ndarray:
    """Position within group for groups of the given sizes: [0..c0-1, 0..c1-1, ...]."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total, dtype=np.int64) - starts


def base32_codes(nums: np.ndarray, length: int) -> np.ndarray:
    """Fixed-length codes over ``ALNUM`` (32 symbols) encoding non-negative integers."""
    table = np.frombuffer(ALNUM.encode("ascii"), dtype=np.uint8)
    digits = np.empty((nums.size, length), dtype=np.uint8)
    x = np.asarray(nums, dtype=np.int64).copy()
    for i in range(length - 1, -1, -1):
        digits[:, i] = table[x % 32]
        x //= 32
    if nums.size == 0:
        return np.array([], dtype=f"<U{length}")
    return np.ascontiguousarray(digits).view(f"S{length}").ravel().astype(f"<U{length}")
