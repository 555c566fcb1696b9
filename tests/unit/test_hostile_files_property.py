"""Property: whatever a hostile export holds, no planted phone or email reaches a message or a file,
and every row read is loaded or quarantined.

Hypothesis builds CSV and JSON-lines exports line by line from hostile pieces — oversized fields,
broken quoting, bytes invalid in the encoding, control characters, too many and too few fields,
wrong types (a phone where an amount or a time belongs), unmapped columns, invalid JSON — each
carrying phones (in the formats people write them) and emails. Each example is ingested for real
(DuckDB, the production reader); then stdout, stderr, every log record (DEBUG), the error if one
was raised, every text column of the warehouse and every file left under it are scanned with the
security test's detectors (exact planted values and phone/email patterns).
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.config import load_config
from flows.ingest.load import SourceError, ingest
from tests.e2e.test_security import Needles, Scan

SALT = "prop-salt"
AS_OF = date(2024, 6, 30)
HEADER = ["order_id", "ordered_at", "channel", "phone", "gross_amount", "net_amount", "note_extra"]

phones = st.builds(lambda p, n: p.format(n=n),
                   st.sampled_from(["{n}", "+86 {n}", "+86-{n}", "86{n}", "0086{n}"]),
                   st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
emails = st.builds(lambda a, b, t: f"{a}@{b}.{t}", st.from_regex(r"[a-z][a-z0-9._]{2,12}", fullmatch=True),
                   st.from_regex(r"[a-z]{3,10}", fullmatch=True), st.sampled_from(["com", "cn", "net", "org"]))
secret = st.one_of(phones, emails)


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())[-11:]


@st.composite
def csv_line(draw: st.DrawFn, i: int) -> tuple[bytes, list[str]]:
    """One hostile (or good) CSV line and the secrets it carries."""
    s1, s2 = draw(secret), draw(secret)
    good = [f"O{i}", "2024-01-05 10:00:00", "store", draw(phones), "10.00", "9.00", f"note {s1}"]
    kind = draw(st.sampled_from(["good", "oversized", "unbalanced_quote", "bad_bytes", "control", "too_many",
                                 "too_few", "phone_as_amount", "phone_as_time", "email_as_amount",
                                 "quoted_comma"]))
    fields = list(good)
    if kind == "oversized":
        fields[2] = "x" * draw(st.integers(1_001, 3_000)) + f" {s2} "  # over max_line_bytes (1000 here)
    elif kind == "unbalanced_quote":
        fields[2] = f'"{s2}, never closed'
    elif kind == "control":
        fields[2] = f"{s2}\x00\x07"
    elif kind == "too_many":
        fields += [s2, "more"]
    elif kind == "too_few":
        fields = fields[:3] + [s2]
    elif kind == "phone_as_amount":
        fields[4] = s2
    elif kind == "phone_as_time":
        fields[1] = s2
    elif kind == "email_as_amount":
        fields[5] = draw(emails)
    elif kind == "quoted_comma":
        fields[6] = f'"{s2}, with a comma"'
    line = ",".join(fields).encode()
    if kind == "bad_bytes":
        line = line.replace(b"store", b"st\xff\xfeore " + s2.encode())
    planted = [s1, s2, good[3]] + ([fields[5]] if kind == "email_as_amount" else [])
    return line, planted


@st.composite
def hostile_csv(draw: st.DrawFn) -> tuple[bytes, list[str], int]:
    n = draw(st.integers(1, 8))
    lines, planted = [",".join(HEADER).encode()], []
    for i in range(n):
        line, p = draw(csv_line(i))
        lines.append(line)
        planted += p
    crlf = draw(st.booleans())
    body = (b"\r\n" if crlf else b"\n").join(lines) + draw(st.sampled_from([b"\n", b""]))
    return body, planted, n


@st.composite
def hostile_jsonl(draw: st.DrawFn) -> tuple[bytes, list[str], int]:
    import json

    n = draw(st.integers(1, 6))
    lines, planted = [], []
    for i in range(n):
        s = draw(secret)
        planted.append(s)
        kind = draw(st.sampled_from(["good", "broken", "array", "bad_bytes", "wrong_type", "extra", "oversized"]))
        obj = {"event_id": f"e{i}", "event_ts": "2024-01-05T10:00:00Z", "device_id": "d1", "event_type": "view"}
        if kind == "oversized":
            obj["note"] = "y" * 1_200 + s
        if kind == "broken":
            lines.append(f'{{"event_id": "e{i}", "note": "{s}'.encode())
            continue
        if kind == "array":
            obj = [s]  # type: ignore[assignment]
        elif kind == "wrong_type":
            obj["event_ts"] = s
        elif kind == "extra":
            obj["free_text"] = f"call me {s}"
        line = json.dumps(obj, ensure_ascii=False).encode()
        if kind == "bad_bytes":
            line = line.replace(b"view", b"vi\xffew " + s.encode())
        lines.append(line)
    return b"\n".join(lines) + b"\n", planted, n


def _ingest_and_scan(tmp_path: Path, body: bytes, planted: list[str], fmt: str, capfd, caplog) -> None:
    import shutil

    import yaml

    root = tmp_path / "case"
    shutil.rmtree(root, ignore_errors=True)
    (root / "in").mkdir(parents=True)
    name = "x.csv" if fmt == "csv" else "x.jsonl"
    (root / "in" / name).write_bytes(body)
    kind = "orders" if fmt == "csv" else "events"
    (root / "liucun.yml").write_text(yaml.safe_dump({
        "data_dir": ".", "sources": {"s": {"kind": kind, "files": {"path": f"in/{name}", "format": fmt,
                                                           "max_line_bytes": 1_000}}}}))
    needles = Needles(frozenset(_digits(p) for p in planted if "@" not in p),
                      frozenset(p.lower() for p in planted if "@" in p))
    scan = Scan(needles)
    error = ""
    capfd.readouterr()
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        try:
            results = ingest(root / "w.duckdb", load_config(root / "liucun.yml"), "run", AS_OF, SALT)
        except SourceError as exc:  # a file that cannot be read at all: the message is scanned too
            results, error = [], str(exc)
    for r in results:
        assert r.rows_read == r.rows_loaded + r.rows_quarantined, r
    out, err = capfd.readouterr()
    for where, text in [("stdout", out), ("stderr", err), ("log records", caplog.text), ("error", error),
                        ("results", repr(results))]:
        scan.text(where, text, "output")
    if (root / "w.duckdb").exists():
        scan.duckdb_file(root / "w.duckdb", "warehouse")
    scan.files([p for p in root.rglob("*") if "in" not in p.relative_to(root).parts[:1]], "file", root)
    assert not scan.findings, scan.report()
    assert not error, error  # every hostile line is a row problem: the file itself always loads


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.large_base_example,
                                                                 HealthCheck.data_too_large])
@given(case=hostile_csv())
def test_hostile_csv_leaks_nothing_and_loses_nothing(tmp_path: Path, capfd, caplog, case):
    body, planted, _ = case
    _ingest_and_scan(tmp_path, body, planted, "csv", capfd, caplog)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=hostile_jsonl())
def test_hostile_jsonl_leaks_nothing_and_loses_nothing(tmp_path: Path, capfd, caplog, case):
    body, planted, _ = case
    _ingest_and_scan(tmp_path, body, planted, "jsonl", capfd, caplog)


def test_the_property_is_not_vacuous(tmp_path: Path, capfd, caplog):
    """The same scan fails when a planted value does reach a file: the detectors see through it."""
    (tmp_path / "case" / "leak.txt").parent.mkdir(parents=True)
    with pytest.raises(AssertionError, match="PII or secrets found"):
        body = b"order_id,ordered_at,channel,phone,gross_amount,net_amount\n"
        (tmp_path / "leak").mkdir()
        original = Scan.files

        def leaky(self, paths, label, root):  # noqa: ANN001 - plant the value in one scanned file
            (root / "leak.txt").write_text("contact 13912345678")
            return original(self, [*paths, root / "leak.txt"], label, root)

        Scan.files = leaky
        try:
            _ingest_and_scan(tmp_path, body, ["13912345678"], "csv", capfd, caplog)
        finally:
            Scan.files = original
