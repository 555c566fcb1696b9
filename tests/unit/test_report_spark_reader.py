"""The report reads a Spark publication in place (no Spark needed): its version folder's Parquet on a
local folder or an object store, through Arrow datasets in DuckDB. A hand-made publication with
hand-worked figures: the headline shows them, the marts it lacks are said to be missing in words,
and `liucun report`'s path (render_current) draws the current version, never a prepared one."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from flows.config import SparkConfig
from flows.engines.spark_publish import PUBLICATIONS_SCHEMA

V1, V2 = "20261101T000000-aaaaaaaa", "20261102T000000-bbbbbbbb"


def _retention(rows: list[tuple[str, int, int, int]]) -> pa.Table:
    """rpt_retention_rate rows (period, S, E, N) of segment all, with CRR = (E - N) / S worked out."""
    return pa.Table.from_pylist([
        {"period_grain": "month", "period_start": date.fromisoformat(p), "segment_type": "all",
         "segment_value": "all", "base_definition": "active_in_period", "customers_start": s,
         "customers_end": e, "customers_new": n, "crr": (e - n) / s, "strict_retention_rate": 0.25,
         "churn_rate": 0.75, "gross_revenue_retention": 0.5, "net_revenue_retention": 0.6}
        for p, s, e, n in rows])


def _publication(loc, version: str, run_id: str, rows: list[tuple[str, int, int, int]]) -> None:
    loc.write_table(_retention(rows), "published", version, "marts", "rpt_retention_rate", "part-00000.parquet")
    loc.write_text(("published", version, "marts", "rpt_retention_rate", "_SUCCESS"), "", "t")  # Spark's marker
    schema = pa.schema([(n, pa.type_for_alias(t)) for n, t in PUBLICATIONS_SCHEMA])
    loc.write_table(pa.Table.from_pylist([{
        "run_id": run_id, "version": version, "published_at": datetime(2026, 11, 2, 8, 0), "as_of_date": date(2026, 10, 31),
        "gates": "{}", "row_counts": json.dumps({"rpt_retention_rate": len(rows)})}], schema=schema),
        "published", version, "audit", "publications", "part-00000.parquet")


@pytest.mark.parametrize("store", [False, True], ids=["local-folder", "object-store"])
def test_the_report_reads_a_spark_publication_in_place(tmp_path: Path, store: bool):
    import pyarrow.fs as pafs

    from flows.engines.spark_engine import SparkEngine
    from flows.publish.warehouse import Warehouse
    from flows.report.build import render_current
    from flows.report.queries import MartReader

    config = SparkConfig(location="s3a://bucket/liucun") if store else SparkConfig()
    engine = SparkEngine(Warehouse(tmp_path), config, filesystem=pafs._MockFileSystem() if store else None)
    with pytest.raises(LookupError, match="no publication yet"), engine.open_publication():
        pass
    # S=1000, E=1100, N=200: CRR = 90 % (the worked example); the month before: (900 - 100) / 1000 = 80 %
    _publication(engine.loc, V1, "run-a", [("2026-09-01", 1000, 900, 100), ("2026-10-01", 1000, 1100, 200)])
    engine.loc.write_text(("published", "CURRENT"), V1 + "\n", "t")
    _publication(engine.loc, V2, "run-b", [("2026-10-01", 50, 40, 10)])  # written, not current

    with engine.open_publication() as con:
        reader = MartReader(con)
        assert reader.has("marts.rpt_retention_rate") and reader.count("marts.rpt_retention_rate") == 2
        assert not reader.has("marts.rpt_cohort_retention")
        last, previous, year = reader.headline("month")
    assert (last.customers_start, last.customers_end, last.customers_new) == (1000, 1100, 200)
    assert last.crr == pytest.approx(0.9) and previous.crr == pytest.approx(0.8) and year is None

    class Prepared:  # what prepare_publication returns: the folder the run writes into
        staged, version, run_id = V2, V2, "run-b"
    with engine.open_publication(Prepared()) as con:
        assert MartReader(con).count("marts.rpt_retention_rate") == 1

    out = tmp_path / "again.html"
    meta = render_current(engine, out)
    html = out.read_text(encoding="utf-8")
    assert (meta.version, meta.run_id) == (V1, "run-a")
    assert re.search(r'data-figure="crr" data-period="last"[^>]*>\s*90\.0%', html)
    assert re.search(r'data-figure="crr" data-period="previous">\s*80\.0%', html)
    assert "This publication has no marts.rpt_cohort_retention." in html  # said in words, no empty frame
    assert 'id="chart-cohort_heatmap"' not in html and 'id="chart-retention_over_time"' in html

    engine.write_report(Prepared(), "<html>page</html>")
    assert engine.loc.read_text("published", V2, "report.html") == "<html>page</html>"
    assert str(engine.report_page(V2)).endswith(f"published/{V2}/report.html")
