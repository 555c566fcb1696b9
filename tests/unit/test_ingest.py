"""Ingestion on small hand-written exports: every row loaded or quarantined, with a reason and place."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from flows.config import ConfigError, load_config
from flows.ingest.load import SourceError, ingest

SALT = "unit-salt"

CUSTOMERS_CSV = """crm_id,phone,email,member_card,registration_channel,registered_at,region,city_tier,updated_at,wechat_nickname
C1,138-1234-5678, Li.Wei@Example.com ,M1,store,2024-01-01 08:00:00,Guangdong,1,2024-01-01 08:00:00,小李 13812345678 li@qq.com
C2,13900001111,,,app,2024-02-30 10:00:00,Beijing,1,,
C3,13700002222,wang@qq.com
C4,+86 136 0000 3333,,,mini_program,2024-03-01 00:30:00,Shanghai,1,,阿王
C4,+86 136 0000 3333,,,mini_program,2024-03-01 00:30:00,Shanghai,1,,阿王
C5,13500004444,,,store,2024-03-02 09:00:00,Zhejiang,2,,old
C5,13500004444,,,store,2024-03-02 09:00:00,Zhejiang,2,,new
,13400005555,,,store,2024-03-03 09:00:00,Zhejiang,2,,
C6,13300006666,,,store,2031-01-01 00:00:00,Zhejiang,2,,
"""

EVENTS_JSONL = "\n".join([
    json.dumps({"event_id": "e1", "event_ts": "2024-01-31T23:30:00+08:00", "device_id": "d1", "event_type": "view"}),
    "{not json",
    json.dumps({"event_id": "e2", "event_ts": "2024-01-31T15:30:00Z", "crm_id": "C1", "event_type": "login",
                "properties": {"sku": "A1"}}),
    json.dumps({"event_id": "e3", "event_ts": "2024-02-01T10:00:00+08:00", "event_type": "view"}),
    json.dumps(["an", "array"]),
]) + "\n"


def write_config(root: Path, sources: dict) -> Path:
    import yaml

    cfg = root / "liucun.yml"
    cfg.write_text(yaml.safe_dump({"data_dir": ".", "business_timezone": "Asia/Shanghai", "sources": sources}))
    return cfg


@pytest.fixture()
def loaded(tmp_path: Path):
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "customers.csv").write_text(CUSTOMERS_CSV, encoding="utf-8")
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "e.jsonl").write_text(EVENTS_JSONL, encoding="utf-8")
    cfg = write_config(tmp_path, {
        "crm": {"kind": "customers", "files": {"path": "crm/*.csv", "format": "csv"}},
        "ev": {"kind": "events", "files": {"path": "ev/*.jsonl", "format": "jsonl"}},
    })
    db = tmp_path / "w.duckdb"
    results = ingest(db, load_config(cfg), "run1", date(2024, 6, 30), SALT)
    con = duckdb.connect(str(db), read_only=True)
    yield {r.source: r for r in results}, con, tmp_path
    con.close()


def test_every_row_is_loaded_or_quarantined(loaded):
    results, con, root = loaded
    crm = results["crm"]
    data_lines = len(CUSTOMERS_CSV.strip().splitlines()) - 1
    assert crm.rows_read == data_lines == 9
    assert crm.rows_loaded + crm.rows_quarantined == crm.rows_read
    assert con.execute("select count(*) from raw.customers").fetchone()[0] == crm.rows_loaded
    assert crm.reasons == {
        "invalid_timestamp:registered_at": 1,   # C2: Feb 30
        "malformed_row": 1,                     # C3: too few columns
        "duplicate_row": 1,                     # C4 twice, identical
        "duplicate_key": 1,                     # C5 twice, different nickname: the later wins
        "missing_required:crm_id": 1,
        "future_timestamp:registered_at": 1,    # C6: 2031
    }
    assert crm.rows_loaded == 3
    ev = results["ev"]
    assert (ev.rows_read, ev.rows_loaded) == (5, 2)
    assert ev.reasons == {"invalid_json": 2, "no_customer_identifier": 1}


def test_quarantine_names_file_and_line_or_key(loaded):
    _, con, root = loaded
    rows = con.execute(
        "select reason, file, line, record_key from raw._quarantine order by reason, line").fetchall()
    by_reason = {r[0]: r for r in rows}
    assert by_reason["malformed_row"][1].endswith("crm/customers.csv")
    assert by_reason["malformed_row"][2] == 4  # header is line 1; C3 is on line 4
    assert by_reason["invalid_timestamp:registered_at"][3] == "C2"
    json_lines = sorted(r[2] for r in rows if r[0] == "invalid_json")
    assert json_lines == [2, 5]


def test_duplicate_key_keeps_the_last_row_and_extra_columns_are_kept(loaded):
    results, con, _ = loaded
    extra = con.execute("select _extra from raw.customers where crm_id = 'C5'").fetchone()[0]
    assert json.loads(extra) == {"wechat_nickname": "new"}
    assert results["crm"].schema_drift == ["wechat_nickname"]
    # an unmapped column may carry personal data: phones and emails in it are masked
    extra = con.execute("select _extra from raw.customers where crm_id = 'C1'").fetchone()[0]
    assert json.loads(extra) == {"wechat_nickname": "小李 <phone> <email>"}


def test_timestamps_become_utc(loaded):
    _, con, _ = loaded
    # CRM writes Shanghai wall-clock time without offset: 08:00 local = 00:00 UTC
    assert con.execute("select registered_at from raw.customers where crm_id = 'C1'").fetchone()[0] == datetime(2024, 1, 1, 0, 0)
    got = dict(con.execute("select event_id, event_ts from raw.events").fetchall())
    assert got == {"e1": datetime(2024, 1, 31, 15, 30), "e2": datetime(2024, 1, 31, 15, 30)}


def test_no_raw_pii_anywhere_in_the_warehouse(loaded):
    _, con, _ = loaded
    needles = ["13812345678", "1234-5678", "Li.Wei", "li.wei@example.com", "13700002222", "wang@qq.com"]
    tables = con.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where data_type in ('VARCHAR', 'JSON')").fetchall()
    assert tables
    for schema, table, column in tables:
        for needle in needles:
            n = con.execute(
                f'select count(*) from "{schema}"."{table}" where lower("{column}"::varchar) like ?',
                [f"%{needle.lower()}%"]).fetchone()[0]
            assert n == 0, f"{needle!r} found in {schema}.{table}.{column}"
    assert con.execute("select count(*) from raw.customers where phone_hash is not null").fetchone()[0] == 3


def test_missing_required_column_fails_naming_file_and_column(tmp_path: Path):
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "a.csv").write_text("crm_id,registered_at\nC1,2024-01-01\n")
    (tmp_path / "crm" / "b.csv").write_text("crm_id,phone\nC2,13812345678\n")
    cfg = write_config(tmp_path, {"crm": {"kind": "customers", "files": {"path": "crm/*.csv"}}})
    with pytest.raises(SourceError) as err:
        ingest(tmp_path / "w.duckdb", load_config(cfg), "r", date(2024, 6, 1), SALT)
    msg = str(err.value)
    assert "b.csv" in msg and "'registered_at'" in msg and "a.csv" not in msg


def test_wrong_encoding_rows_are_quarantined_with_a_hint(tmp_path: Path):
    (tmp_path / "s").mkdir()
    text = ("response_id,crm_id,survey_type,score,responded_at,comment\n"
            "R1,C1,nps,9,2024-01-01 10:00:00,ok\nR2,C2,nps,3,2024-01-02 10:00:00,物流太慢了\n")
    (tmp_path / "s" / "r.csv").write_bytes(text.encode("gbk"))
    cfg = write_config(tmp_path, {"s": {"kind": "survey_responses", "files": {"path": "s/*.csv"}}})
    (r,) = ingest(tmp_path / "w.duckdb", load_config(cfg), "r", date(2024, 6, 1), SALT)
    assert (r.rows_read, r.rows_loaded, r.reasons) == (2, 1, {"invalid_encoding": 1})
    assert any("decode as gb18030" in w and "encoding: gb18030" in w for w in r.warnings), r.warnings
    # as the hint says: the same file with `encoding: gb18030` loads every row, text intact
    cfg = write_config(tmp_path, {"s": {"kind": "survey_responses",
                                        "files": {"path": "s/*.csv", "encoding": "gb18030"}}})
    (r,) = ingest(tmp_path / "w2.duckdb", load_config(cfg), "r", date(2024, 6, 1), SALT)
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (2, 2, 0)
    with duckdb.connect(str(tmp_path / "w2.duckdb"), read_only=True) as con:
        rows = con.execute("select response_id, comment, _line from raw.survey_responses order by 1").fetchall()
    assert rows == [("R1", "ok", 2), ("R2", "物流太慢了", 3)]


def test_config_errors_name_the_key(tmp_path: Path):
    cfg = write_config(tmp_path, {"crm": {"kind": "clients", "files": {"path": "x.csv"}}})
    with pytest.raises(ConfigError, match="sources.crm.kind"):
        load_config(cfg)
    cfg = write_config(tmp_path, {"crm": {"kind": "customers", "files": {"path": "x.csv"},
                                          "columns": {"crm_idx": "id"}}})
    with pytest.raises(ConfigError, match="crm_idx"):
        load_config(cfg)


@pytest.mark.parametrize("expr", [
    "1); drop table raw.orders; select (1",
    "(select max(net_amount) from raw.orders)",
    "getenv('LIUCUN_PII_SALT')",
    "InvoiceNo || (select 'x')",
])
def test_column_expressions_cannot_inject_sql(tmp_path: Path, expr: str):
    cfg = write_config(tmp_path, {"o": {"kind": "orders", "files": {"path": "o.csv"},
                                        "columns": {"order_id": {"sql": expr}}}})
    with pytest.raises(ConfigError, match="sources.o.columns.order_id"):
        load_config(cfg)


def test_column_expressions_map_source_columns(tmp_path: Path):
    (tmp_path / "lines.csv").write_text(
        "InvoiceNo,InvoiceDate,Quantity,UnitPrice,CustomerID\n"
        "536365,12/1/2010 8:26,6,2.55,17850\nC536379,12/1/2010 9:41,-1,27.50,14527\n")
    cfg = write_config(tmp_path, {"o": {"kind": "orders", "files": {"path": "lines.csv"}, "timezone": "Europe/London",
        "columns": {"order_id": "InvoiceNo", "crm_id": "CustomerID", "channel": {"sql": "'online_shop'"},
                    "ordered_at": {"sql": "strptime(InvoiceDate, '%m/%d/%Y %H:%M')"},
                    "gross_amount": {"sql": "abs(Quantity::double * UnitPrice::double)"},
                    "net_amount": {"sql": "abs(Quantity::double * UnitPrice::double)"},
                    "is_returned": {"sql": "starts_with(InvoiceNo, 'C')"}}}})
    (r,) = ingest(tmp_path / "w.duckdb", load_config(cfg), "r", date(2011, 12, 31), SALT)
    assert (r.rows_read, r.rows_loaded) == (2, 2)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        rows = con.execute("select order_id, ordered_at, net_amount, is_returned, channel from raw.orders order by 1").fetchall()
    from decimal import Decimal
    assert rows == [("536365", datetime(2010, 12, 1, 8, 26), Decimal("15.30"), False, "online_shop"),
                    ("C536379", datetime(2010, 12, 1, 9, 41), Decimal("27.50"), True, "online_shop")]


def test_excel_workbooks_load_with_their_rows_accounted(tmp_path: Path):
    from flows.ingest.readers import load_extension

    (tmp_path / "x").mkdir()
    with duckdb.connect() as con:
        load_extension(con, "excel")
        con.execute(f"""copy (select * from (values ('C1', '2024-01-01 08:00:00', '13812345678'),
                                               ('C2', 'not a date', null)) t(crm_id, registered_at, phone))
                        to '{tmp_path / "x" / "crm.xlsx"}' (format xlsx, header true)""")
    cfg = write_config(tmp_path, {"crm": {"kind": "customers", "files": {"path": "x/*.xlsx"}}})
    (r,) = ingest(tmp_path / "w.duckdb", load_config(cfg), "r", date(2024, 6, 1), SALT)
    assert (r.rows_read, r.rows_loaded, r.reasons) == (2, 1, {"invalid_timestamp:registered_at": 1})
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("select crm_id, registered_at from raw.customers").fetchall() == [
            ("C1", datetime(2024, 1, 1, 0, 0))]


@pytest.mark.parametrize(("machine_gib", "cap_mb"), [(2, 512), (4, 1024), (8, 1536), (64, 1536)])
def test_the_default_ingest_memory_cap_fits_the_machine(monkeypatch, machine_gib: int, cap_mb: int):
    """Ingest's DuckDB takes 1.5 GB by default, and at most a quarter of a smaller machine's memory
    (this machine's size stands in for others'); LIUCUN_INGEST_MEMORY_MB always wins."""
    import os

    from flows.settings import Settings

    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": machine_gib * (1 << 30) // 4096}
    monkeypatch.setattr(os, "sysconf", lambda name: pages[name])
    monkeypatch.delenv("LIUCUN_INGEST_MEMORY_MB", raising=False)
    assert Settings().ingest_memory_mb == cap_mb
    monkeypatch.setenv("LIUCUN_INGEST_MEMORY_MB", "6144")  # a setting always wins
    assert Settings().ingest_memory_mb == 6144
