"""Loading semantics across runs: files load once by content hash, a changed file is a new version,
rows upsert by primary key, and every load is still fully accounted for."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from flows.config import load_config
from flows.ingest.load import ingest
from tests.unit.test_ingest import write_config

HEADER = "crm_id,registered_at,region\n"


def test_files_load_once_and_changed_files_replace_their_rows(tmp_path: Path):
    d = tmp_path / "crm"
    d.mkdir()
    (d / "day1.csv").write_text(HEADER + "C1,2024-01-01 10:00:00,Guangdong\nC2,2024-01-02 10:00:00,Beijing\n")
    cfg = load_config(write_config(tmp_path, {"crm": {"kind": "customers", "files": {"path": "crm/*.csv"}}}))
    db = tmp_path / "w.duckdb"

    (r1,) = ingest(db, cfg, "run1", date(2024, 6, 1), "s")
    assert (r1.rows_read, r1.rows_loaded, r1.files_skipped) == (2, 2, 0)

    (r2,) = ingest(db, cfg, "run2", date(2024, 6, 1), "s")  # nothing new
    assert (r2.rows_read, r2.rows_loaded, r2.files_skipped) == (0, 0, 1)

    # a new daily file updates C2 and adds C3; day1 is untouched
    (d / "day2.csv").write_text(HEADER + "C2,2024-01-02 10:00:00,Tianjin\nC3,2024-01-03 10:00:00,Hebei\n")
    (r3,) = ingest(db, cfg, "run3", date(2024, 6, 1), "s")
    assert (r3.rows_read, r3.rows_loaded, r3.files_skipped, r3.rows_replaced) == (2, 2, 1, 1)

    # day1 is re-exported with a correction: a new version of that file
    (d / "day1.csv").write_text(HEADER + "C1,2024-01-01 10:00:00,Guangxi\n")
    (r4,) = ingest(db, cfg, "run4", date(2024, 6, 1), "s")
    assert (r4.rows_read, r4.rows_loaded, r4.files_skipped) == (1, 1, 1)

    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("select crm_id, region from raw.customers order by crm_id").fetchall()
        assert rows == [("C1", "Guangxi"), ("C2", "Tianjin"), ("C3", "Hebei")]
        loads = con.execute("select load_id, rows_read, rows_loaded + rows_quarantined from raw._loads").fetchall()
        assert len(loads) == 4 and all(read == acc for _, read, acc in loads)
        assert con.execute("select count(distinct sha256) from raw._files").fetchone()[0] == 3


def test_models_absorb_a_load_only_when_it_added_rows(tmp_path: Path):
    """flows/publish/fingerprint.py models_rebuild_reason: the identity models may absorb a run's loads
    only when those loads added rows; a replaced row, a new line of an order loaded before, or a
    changed model rebuilds them in full, saying why."""
    from flows.publish.fingerprint import models_rebuild_reason

    crm, lines = tmp_path / "crm", tmp_path / "lines"
    crm.mkdir()
    lines.mkdir()
    (crm / "day1.csv").write_text(HEADER + "C1,2024-01-01 10:00:00,Guangdong\n")
    lines_header = "order_id,line_number,ordered_at,crm_id,sku,quantity,unit_price,line_amount\n"
    (lines / "day1.csv").write_text(lines_header + "O1,1,2024-01-01 10:00:00,C1,S1,1,10.00,10.00\n")
    cfg = load_config(write_config(tmp_path, {
        "crm": {"kind": "customers", "files": {"path": "crm/*.csv"}},
        "lines": {"kind": "order_lines", "files": {"path": "lines/*.csv"}}}))
    db = tmp_path / "w.duckdb"
    inputs = {"as_of": "2024-06-01", "dbt_project": "p1", "liucun_code": "c1", "config": "x"}
    last = ("v1", "f1", inputs)

    loads = ingest(db, cfg, "run1", date(2024, 6, 1), "s")
    assert sum(r.rows_loaded for r in loads) == 2
    assert models_rebuild_reason(False, None, inputs, loads, db) == "first build of this warehouse"
    assert models_rebuild_reason(True, last, inputs, loads, db) == "--full-refresh"

    # the next day: new customers and new orders only; a new as-of date and source location are fine
    (crm / "day2.csv").write_text(HEADER + "C2,2024-01-02 10:00:00,Beijing\n")
    (lines / "day2.csv").write_text(lines_header + "O2,1,2024-01-02 10:00:00,C2,S1,2,10.00,20.00\n")
    loads = ingest(db, cfg, "run2", date(2024, 6, 2), "s")
    tomorrow = {**inputs, "as_of": "2024-06-02", "config": "y"}
    assert models_rebuild_reason(False, last, tomorrow, loads, db) is None
    assert models_rebuild_reason(False, last, {**tomorrow, "dbt_project": "p2"}, loads, db) == \
        "dbt_project changed since the last build"

    # a second line of an order loaded yesterday changes that order
    (lines / "day3.csv").write_text(lines_header + "O2,2,2024-01-02 10:00:00,C2,S2,1,5.00,5.00\n")
    loads = ingest(db, cfg, "run3", date(2024, 6, 3), "s")
    assert models_rebuild_reason(False, last, tomorrow, loads, db) == \
        "new lines of 1 orders loaded before: those orders rebuild in full"

    # a corrected customer replaces a row
    (crm / "day4.csv").write_text(HEADER + "C1,2024-01-01 10:00:00,Guangxi\n")
    loads = ingest(db, cfg, "run4", date(2024, 6, 4), "s")
    assert models_rebuild_reason(False, last, tomorrow, loads, db) == \
        "1 rows were replaced by key or by a new version of their file (crm): corrections rebuild in full"
