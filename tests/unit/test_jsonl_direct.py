"""JSON-lines files DuckDB reads whole load exactly what the line-by-line reader loads, row for row.

The usual clean export is read by DuckDB's own parallel reader (flows/ingest/readers.py, ``_jsonl_direct``);
any file it would read differently goes line by line. Here one set of files, clean and messy, is
ingested both ways (the direct reader switched off in the second run) and every raw row, line
number, quarantine row and count must be the same.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from flows.config import load_config
from flows.ingest import readers
from flows.ingest.load import ingest
from tests.unit.test_ingest import write_config

SALT = "unit-salt"
DIRECT_READER = readers._jsonl_direct
AS_OF = date(2024, 6, 30)


def ev(i: int, **extra: object) -> str:
    return json.dumps({"event_id": f"e{i}", "event_ts": f"2024-01-{1 + i % 28:02d}T10:00:00+08:00",
                       "device_id": f"d{i % 7}", "event_type": "view", **extra}, ensure_ascii=False)


FILES = {
    # clean: values of every JSON type, escapes, nested values, a repeated key inside an object,
    # an unmapped key (schema drift), a later duplicate of an event id; no newline at the end
    "a_clean.jsonl": "\n".join([
        ev(1, properties={"sku": "A1", "n": [1, 2.50, 1e5]}),
        '{"event_id":"e2","event_ts":"2024-01-02T02:00:00Z","crm_id":"C1","event_type":"login",'
        '"channel":"app","device_id":null,"properties":"\\u00e9\\t\\"q\\""}',
        '{"event_id":"e3","event_id":"e3b","event_ts":"2024-01-03T10:00:00+08:00","device_id":"d3",'
        '"event_type":"view","utm":"朋友圈"}',
        ev(4, channel=12345678901234567890123),
        ev(1, properties={"sku": "A1-again"}),
        '{"event_id":"e5","event_ts":"not a time","device_id":"d5","event_type":"view"}',
    ]),
    # clean JSON, but some lines are not objects: quarantined as invalid_json either way
    "b_not_objects.jsonl": "\n".join([ev(10), "[1, 2]", ev(11), "5", '"text"', ev(12)]) + "\n",
    # blank and space-padded lines: DuckDB would skip and trim them, so the file goes line by line
    "c_blanks.jsonl": "\n".join([ev(20), "", "   ", "  " + ev(21) + "  ", ev(22)]) + "\n",
    "d_invalid.jsonl": "\n".join([ev(30), "{not json", ev(31), '{"event_id": "e32"} trailing']) + "\n",
    "e_del.jsonl": "\n".join([ev(40), ev(41, properties="a\x7fb"), ev(42)]) + "\n",
    "f_crlf.jsonl": "\r\n".join([ev(50), ev(51)]) + "\r\n",
    "g_long_line.jsonl": "\n".join([ev(60), ev(61, properties="x" * 1200), ev(62)]) + "\n",
    "h_bom.jsonl": "\ufeff" + "\n".join([ev(70), ev(71)]) + "\n",
}
DIRECT = {"a_clean.jsonl", "b_not_objects.jsonl"}


def _load(root: Path, direct: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, list[set[str]]]:
    taken: list[set[str]] = []

    def spy(con: duckdb.DuckDBPyConnection, files: list[str], src: object) -> dict:
        got = DIRECT_READER(con, files if direct else [], src)  # type: ignore[arg-type]
        taken.append({Path(f).name for f in got})
        return got

    monkeypatch.setattr(readers, "_jsonl_direct", spy)
    db = root / f"w_{direct}.duckdb"
    (result,) = ingest(db, load_config(root / "liucun.yml"), "run", AS_OF, SALT)
    with duckdb.connect(str(db), read_only=True) as con:
        out = {
            "events": con.execute("select * exclude (_load_id) from raw.events order by _file, _line").fetchall(),
            "quarantine": con.execute("select * exclude (load_id) from raw._quarantine "
                                      "order by file, line, reason").fetchall(),
            "counts": (result.rows_read, result.rows_loaded, result.rows_quarantined, result.reasons,
                       result.schema_drift, sorted(result.warnings)),
        }
    return out, taken


@pytest.mark.parametrize("messy", [True, False], ids=["with messy files", "clean files only"])
def test_direct_reading_loads_and_quarantines_exactly_what_line_by_line_reading_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, messy: bool) -> None:
    """With messy files among them DuckDB fails on the batch and takes the files one by one; with
    clean files only it reads them all in one pass."""
    (tmp_path / "ev").mkdir()
    for name, text in FILES.items():
        if messy or name in DIRECT:
            (tmp_path / "ev" / name).write_bytes(text.encode("utf-8"))
    write_config(tmp_path, {"ev": {"kind": "events",
                                   "files": {"path": "ev/*.jsonl", "format": "jsonl", "max_line_bytes": 1000}}})
    direct, taken_direct = _load(tmp_path, True, monkeypatch)
    by_line, taken_by_line = _load(tmp_path, False, monkeypatch)
    assert taken_direct == [DIRECT], "the clean files were not read directly: the test compares nothing"
    assert taken_by_line == [set()]
    assert direct["counts"] == by_line["counts"]
    assert direct["quarantine"] == by_line["quarantine"]
    assert direct["events"] == by_line["events"]
    # what both must hold, from the files themselves
    rows_read, loaded, quarantined, reasons, drift, _ = direct["counts"]
    assert rows_read == loaded + quarantined
    assert drift == ["utm"]
    assert reasons["invalid_json"] == 3 + (2 if messy else 0)  # b: three lines that are not objects; d: two
    assert reasons["duplicate_key"] == 1  # e1 again, later in a_clean
    lines = {(Path(r[-3]).name, r[-2]): r for r in direct["events"]}  # (_file, _line)
    assert ("b_not_objects.jsonl", 6) in lines and ("b_not_objects.jsonl", 2) not in lines
    assert lines[("a_clean.jsonl", 2)][0] == "e2" and ("a_clean.jsonl", 1) not in lines
