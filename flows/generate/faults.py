"""``--faults``: realistic bad input injected on top of the clean exports.

Row-level faults are applied to the Arrow / numeric tables before writing (duplicates, negative
values, future timestamps, missing identifiers, late events); file-level faults rewrite written
files (malformed CSV rows, unparseable timestamps, malformed JSON lines, GBK encoding). Every fault
is recorded in ``truth/faults.csv``. The fault stream is separate: the clean data do not change.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .events import Events, sort_order
from .window import DAY_S, Window

log = logging.getLogger(__name__)

BAD_TIMESTAMPS = np.array(["2025-13-45 25:61:00", "yesterday", "0000-00-00 00:00:00",
                           "31/02/2025 10:00", "N/A"])


class FaultLog:
    """Accumulates fault records (vectorised per batch)."""

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, file: str | np.ndarray, kind: str, keys: np.ndarray, description: str,
            lines: np.ndarray | None = None) -> None:
        k = keys.size
        self.parts.append({
            "file": np.broadcast_to(np.asarray(file, dtype=object), (k,)).astype(object),
            "kind": np.full(k, kind, dtype=object),
            "line": np.full(k, -1, dtype=np.int64) if lines is None else lines.astype(np.int64),
            "key": keys.astype(str).astype(object),
            "description": np.full(k, description, dtype=object)})

    def keys(self, file: str) -> set[str]:
        """Keys of the faults already recorded for ``file``."""
        out: set[str] = set()
        for p in self.parts:
            out.update(p["key"][p["file"] == file].tolist())
        return out

    def table(self) -> pa.Table:
        if not self.parts:
            return pa.table({"file": pa.array([], pa.string()), "kind": pa.array([], pa.string()),
                             "line": pa.array([], pa.int64()), "key": pa.array([], pa.string()),
                             "description": pa.array([], pa.string())})
        cols = {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}
        return pa.table({
            "file": pa.array(cols["file"], pa.string()), "kind": pa.array(cols["kind"], pa.string()),
            "line": pa.array(cols["line"], pa.int64(), mask=cols["line"] < 0),
            "key": pa.array(cols["key"], pa.string(), mask=cols["key"] == ""),
            "description": pa.array(cols["description"], pa.string())})


def _count(n: int, share: float, minimum: int) -> int:
    return int(min(n, max(minimum, round(n * share))))


def _month_files(window: Window, month: np.ndarray, stem: str, ext: str) -> np.ndarray:
    names = np.array([f"{stem}_{y:04d}_{m:02d}.{ext}" for y, m in window.month_keys])
    return names[np.clip(month, 0, window.months - 1)]


def fault_orders(rng: np.random.Generator, table: pa.Table, window: Window,
                 flog: FaultLog) -> pa.Table:
    """Negative quantities / amounts on a few orders and ~0.5 % exact duplicate rows."""
    n = table.num_rows
    pick = rng.permutation(n)
    k_neg = _count(n, 0.0005, 4)
    neg = np.sort(pick[:k_neg])
    dup = np.sort(pick[k_neg:k_neg + _count(n, 0.005, 3)])
    ids = table.column("order_id").to_numpy(zero_copy_only=False)
    months = table.column("month").to_numpy()
    qty_rows, amt_rows = neg[::2], neg[1::2]
    items = table.column("item_count").to_numpy().copy()
    items[qty_rows] = -np.abs(items[qty_rows])
    table = table.set_column(table.schema.get_field_index("item_count"), "item_count",
                             pa.array(items, pa.int32()))
    for col in ("gross_cents", "discount_cents", "net_cents", "refund_cents"):
        v = table.column(col).to_numpy().copy()
        v[amt_rows] = -v[amt_rows]
        table = table.set_column(table.schema.get_field_index(col), col, pa.array(v))
    files = _month_files(window, months, "orders/orders", "parquet")
    flog.add(files[qty_rows], "negative_value", ids[qty_rows], "item_count negated")
    flog.add(files[amt_rows], "negative_value", ids[amt_rows],
             "gross/discount/net/refund amounts negated")
    flog.add(files[dup], "duplicate_row", ids[dup], "exact duplicate of the order row")
    return pa.concat_tables([table, table.take(pa.array(dup))])


def fault_events(rng: np.random.Generator, events: Events, window: Window, flog: FaultLog) -> None:
    """Duplicate events, late events (written two file-months later), future timestamps."""
    c = events.cols
    n = events.size
    pick = rng.permutation(n)
    k_fut, k_late, k_dup = _count(n, 0.0001, 5), _count(n, 0.002, 5), _count(n, 0.002, 5)
    fut = pick[:k_fut]
    late_cand = pick[k_fut:k_fut + 3 * k_late]
    late = late_cand[c["file_month"][late_cand] <= window.months - 3][:k_late]
    dup = pick[k_fut + 3 * k_late:k_fut + 3 * k_late + k_dup]
    end_ms = (window.epoch_local_s + int(window.days * DAY_S)) * 1000
    shift = rng.uniform(31.0, 300.0, fut.size) * DAY_S * 1000
    c["ts_ms"][fut] = end_ms + shift.astype(np.int64)
    c["file_month"][late] += 2
    ids = np.char.mod("%015x", c["event_num"])
    fm = c["file_month"]
    flog.add(_month_files(window, fm[fut], "events/events", "jsonl"), "future_timestamp",
             ids[fut], "event_ts moved beyond end_date + 30 days")
    flog.add(_month_files(window, fm[late], "events/events", "jsonl"), "late_event", ids[late],
             "event of month m written into the file of month m+2")
    flog.add(_month_files(window, fm[dup], "events/events", "jsonl"), "duplicate_row", ids[dup],
             "exact duplicate event line")
    idx = np.concatenate([np.arange(n), dup])
    events.take(idx[sort_order(c["file_month"][idx], c["ts_ms"][idx])])


def fault_tickets(rng: np.random.Generator, table: pa.Table, window: Window,
                  flog: FaultLog) -> pa.Table:
    """Future-dated tickets and tickets without any customer identifier."""
    n = table.num_rows
    pick = rng.permutation(n)
    fut = np.sort(pick[:_count(n, 0.001, 3)])
    anon = np.sort(pick[fut.size:fut.size + _count(n, 0.003, 3)])
    ids = table.column("ticket_id").to_numpy(zero_copy_only=False)
    opened = table.column("opened_at").to_numpy().copy()
    end_s = window.epoch_local_s + int(window.days * DAY_S)
    opened[fut] = end_s + (rng.uniform(31.0, 200.0, fut.size) * DAY_S).astype(np.int64)
    table = table.set_column(table.schema.get_field_index("opened_at"), "opened_at",
                             pa.array(opened))
    for col in ("resolved_at", "resolution_hours", "satisfaction_score", "crm_id", "phone",
                "order_id"):
        rows = fut if col in ("resolved_at", "resolution_hours", "satisfaction_score") else anon
        mask = np.zeros(n, dtype=bool)
        mask[rows] = True
        arr = table.column(col)
        nulled = pc.if_else(pa.array(mask), pa.nulls(n, arr.type), arr)
        table = table.set_column(table.schema.get_field_index(col), col, nulled)
    flog.add("service/tickets.csv", "future_timestamp", ids[fut],
             "opened_at after end_date + 30 days")
    flog.add("service/tickets.csv", "missing_identifier", ids[anon],
             "crm_id, phone and order_id all empty")
    return table


def fault_surveys(rng: np.random.Generator, table: pa.Table, flog: FaultLog) -> pa.Table:
    """Survey responses with an empty crm_id."""
    n = table.num_rows
    rows = np.sort(rng.permutation(n)[:_count(n, 0.003, 3)])
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    arr = table.column("crm_id")
    table = table.set_column(table.schema.get_field_index("crm_id"), "crm_id",
                             pc.if_else(pa.array(mask), pa.nulls(n, pa.string()), arr))
    ids = table.column("response_id").to_numpy(zero_copy_only=False)
    flog.add("surveys/responses.csv", "missing_identifier", ids[rows], "crm_id empty")
    return table


def _pick_lines(rng: np.random.Generator, lines: list[str], first: int, k: int,
                exclude: set[str], key_of: Callable[[str], str]) -> np.ndarray:
    """``k`` random line indices (from ``first`` on) whose key is not already faulted."""
    body = len(lines) - (1 if lines[-1] == "" else 0)
    cand = first + rng.permutation(body - first)
    out = [i for i in cand[: 4 * k + 10].tolist() if key_of(lines[i]) not in exclude]
    return np.array(out[:k], dtype=np.int64)


def _rewrite_csv(rng: np.random.Generator, path: Path, rel: str, ts_col: int,
                 flog: FaultLog) -> None:
    """Malformed rows (wrong column count, ~0.2 %) and unparseable timestamps in a CSV file."""
    lines = path.read_text(encoding="utf-8").split("\n")
    body = len(lines) - 2 if lines[-1] == "" else len(lines) - 1  # data lines
    k_rows, k_ts = _count(body, 0.002, 2), _count(body, 0.0005, 2)
    picked = _pick_lines(rng, lines, 1, k_rows + k_ts, flog.keys(rel),
                         lambda line: line.split(",", 1)[0])
    bad_rows, bad_ts = np.sort(picked[:k_rows]), np.sort(picked[k_rows:])
    keys_rows, keys_ts = [], []
    variants = rng.integers(0, 2, bad_rows.size)
    values = BAD_TIMESTAMPS[rng.integers(0, BAD_TIMESTAMPS.size, bad_ts.size)]
    for i, v in zip(bad_rows.tolist(), variants.tolist(), strict=True):  # injected faults only
        fields = next(csv.reader([lines[i]]))
        keys_rows.append(fields[0])
        if v == 0:  # truncated row: the last two columns are missing
            lines[i] = _join(fields[:-2], quote_comma=True)
        else:  # an unquoted comma inside an inserted value: two columns too many
            lines[i] = _join(fields[:3] + ["unit 5, bldg 2"] + fields[3:], quote_comma=False)
    for i, value in zip(bad_ts.tolist(), values.tolist(), strict=True):
        fields = next(csv.reader([lines[i]]))
        keys_ts.append(fields[0])
        fields[ts_col] = value
        lines[i] = _join(fields, quote_comma=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    flog.add(rel, "malformed_row", np.array(keys_rows), "wrong column count", lines=bad_rows + 1)
    flog.add(rel, "unparseable_timestamp", np.array(keys_ts),
             "timestamp column holds an unparseable value", lines=bad_ts + 1)


def _join(fields: list[str], quote_comma: bool) -> str:
    if not quote_comma:  # an unquoted comma inside a value: one column too many
        return ",".join(fields)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(fields)
    return buf.getvalue()


def _break_json(rng: np.random.Generator, path: Path, rel: str, flog: FaultLog) -> None:
    """Truncated or single-quoted JSON lines (never on events already faulted otherwise)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    body = len(lines) - 1 if lines[-1] == "" else len(lines)
    rows = np.sort(_pick_lines(rng, lines, 0, _count(body, 0.0005, 3), flog.keys(rel),
                               lambda line: line[13:28]))
    keys = []
    for i in rows.tolist():  # loop over injected faults only
        line = lines[i]
        keys.append(line[13:28])
        lines[i] = line[: len(line) // 2] if i % 2 == 0 else line.replace('"', "'", 4)
    path.write_text("\n".join(lines), encoding="utf-8")
    flog.add(rel, "malformed_json", np.array(keys, dtype=str),
             "truncated or single-quoted JSON", lines=rows + 1)


def fault_files(rng: np.random.Generator, out_dir: Path, window: Window, flog: FaultLog) -> None:
    """File-level faults on already written exports."""
    _rewrite_csv(rng, out_dir / "crm/customers.csv", "crm/customers.csv", 5, flog)
    _rewrite_csv(rng, out_dir / "service/tickets.csv", "service/tickets.csv", 6, flog)
    y, m = window.month_keys[window.months // 2]
    rel = f"events/events_{y:04d}_{m:02d}.jsonl"
    _break_json(rng, out_dir / rel, rel, flog)
    surveys = out_dir / "surveys/responses.csv"
    surveys.write_bytes(surveys.read_bytes().decode("utf-8").encode("gbk"))
    flog.add("surveys/responses.csv", "wrong_encoding", np.array([""]),
             "file encoded in GBK instead of UTF-8")
    flog.add("billing/invoices.csv", "missing_column", np.array(["status"]),
             "required column status missing")
    log.debug("file-level faults injected")
