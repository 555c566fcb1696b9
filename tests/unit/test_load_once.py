"""Loading semantics across runs: files load once by content hash, a changed file is a new version,
rows upsert by primary key, and every load is still fully accounted for."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from flows.config import load_config
from flows.ingest import ingest
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
