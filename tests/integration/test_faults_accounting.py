"""Every planted fault of `liucun generate --faults` is caught where it was planted, and nothing else is lost.

The generator records each fault in truth/faults.csv (file, kind, line or key). Ingestion must
quarantine each one with a matching reason (late events are valid and must be loaded), refuse the
source with the missing column by naming file and column, and account for every row read.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from flows.config import load_config
from flows.generate import generate
from flows.ingest.load import SourceError, ingest
from tests.support.pipeline import DEMO_CONFIG

END = date(2025, 12, 31)
REASON_OF_KIND = {
    "malformed_row": "malformed_row",
    "unparseable_timestamp": "invalid_timestamp",
    "duplicate_row": "duplicate_row",
    "future_timestamp": "future_timestamp",
    "negative_value": "negative_value",
    "malformed_json": "invalid_json",
    "missing_identifier": "no_customer_identifier",
}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("faulty")
    generate(out, customers=3000, months=12, seed=5, end_date=END, faults=True)
    os.environ["LIUCUN_DATA_DIR"] = str(out)
    return out


def test_missing_column_refuses_the_source_naming_file_and_column(faulty: Path, tmp_path: Path):
    with pytest.raises(SourceError) as err:
        ingest(tmp_path / "w.duckdb", load_config(DEMO_CONFIG), "r", END, "salt")
    assert "billing/invoices.csv" in str(err.value) and "'status'" in str(err.value)
    assert "1 source(s)" in str(err.value)  # only that source; the others loaded fine


def test_every_planted_fault_is_quarantined_where_it_was_planted(faulty: Path, tmp_path: Path):
    cfg = load_config(DEMO_CONFIG)
    cfg.sources[:] = [s for s in cfg.sources if s.name != "invoices"]
    results = ingest(tmp_path / "w.duckdb", cfg, "r", END, "salt")
    for r in results:
        assert r.rows_read == r.rows_loaded + r.rows_quarantined, r.source
    truth = pd.read_csv(faulty / "truth" / "faults.csv", dtype=str)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        q = con.execute("select file, line, record_key, reason from raw._quarantine").df()
        q["file"] = q.file.str.replace(str(faulty) + "/", "", regex=False)
        q["family"] = q.reason.str.split(":").str[0]
        loaded_events = {r[0] for r in con.execute("select event_id from raw.events").fetchall()}
        loaded_orders = {r[0] for r in con.execute("select order_id from raw.orders").fetchall()}
    encoding_broken = set(truth[truth.kind == "wrong_encoding"].file)
    assert encoding_broken == {"surveys/responses.csv"}
    assert (q[q.file.isin(encoding_broken)].family == "invalid_encoding").sum() > 0
    checked = 0
    for fault in truth.itertuples():
        if fault.kind in ("missing_column", "wrong_encoding"):
            continue
        if fault.kind == "late_event":
            assert fault.key in loaded_events, f"late event {fault.key} must be loaded, not dropped"
            continue
        if fault.file in encoding_broken:  # the row may already be rejected for its encoding
            hits = q[(q.file == fault.file) & (q.record_key.eq(fault.key) | q.family.eq("invalid_encoding"))]
            assert len(hits), fault
            continue
        family = REASON_OF_KIND[fault.kind]
        at = q[(q.file == fault.file) & (q.family == family)]
        if isinstance(fault.line, str) and fault.line:
            assert int(fault.line) in set(at.line), f"{fault.file}:{fault.line} not quarantined as {family}"
        else:
            assert fault.key in set(at.record_key), f"{fault.key} in {fault.file} not quarantined as {family}"
            if fault.kind == "duplicate_row":  # one copy quarantined, the other loaded
                assert fault.key in loaded_events | loaded_orders
        checked += 1
    assert checked > 100
    # and nothing beyond the planted faults was quarantined (outside the GBK file)
    planted = truth[~truth.kind.isin(["late_event", "missing_column", "wrong_encoding"])]
    planted = planted[~planted.file.isin(encoding_broken)]
    assert len(q[~q.file.isin(encoding_broken)]) == len(planted)
