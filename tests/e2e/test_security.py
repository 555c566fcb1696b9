"""No raw phone number, e-mail address, PII salt or database password leaves a real pipeline run.

The needles come from the generated source files themselves: every column the contracts mark as
PII (CRM phones and emails, order, ticket and campaign-contact phones) plus the generator's
truth/identity.csv. The haystacks are everything a run leaves behind or shows anyone:

- every text-ish column (varchar, json, lists/structs cast to text) and every integer column of
  every table in the published DuckDB (marts, audit incl. audit.quarantine), in state.duckdb (the
  raw layer must hold hashes only) and in a failed run's candidate (every layer);
- every Parquet file of the published version; every file under reports/ and, for a failed run,
  its leftover run folder (candidate warehouse, dbt logs and artifacts);
- the Prefect flow run's parameters and state, its task runs' names and states, its artifacts
  (tables and markdown) and its logs (at DEBUG), read back through the Prefect client;
- the CLI's captured stdout and stderr, and every log record emitted in the process.

Two independent detectors look for the needles: exact values (every 11-digit window of every run
of digits, so ``138-1234-5678``, ``+86 138 1234 5678``, ``+8613812345678`` and ``0086...`` are all
found; every known address, case-insensitively) and patterns (mainland mobiles in any of those
shapes, anything shaped like an e-mail address). The salt and the PostgreSQL password are searched
verbatim. ``test_the_scanner_finds_pii_where_it_is`` proves the scanner is not blind: it finds the
needles in the source files and in planted DuckDB and Parquet columns of every type it claims.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import duckdb
import pytest
import yaml

from flows.cli import main as liucun
from flows.config import load_config
from flows.generate import generate
from flows.generate.params import PLACEHOLDER_PHONES
from flows.ingest.contracts import CONTRACTS
from flows.ingest.pii import normalise_phone
from flows.ingest.readers import lit, q
from tests.support.pipeline import DEMO_CONFIG
from tests.support.postgres import throwaway_cluster

END = date(2025, 12, 31)
SALT = "e2e-security-salt-7Qv9kX2m"
PG_PASSWORD = "PgSecretPw4e2eSecurity"
PG_DSN_ENV = "LIUCUN_SECURITY_PG_DSN"

# Pattern detector. Not preceded by a letter, digit or '.', so decimals and ids are not phones.
PHONE_RE = re.compile(r"(?<![0-9A-Za-z.])(?:(?:\+|00)?86[\s-]?)?1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?![0-9A-Za-z])")
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
DIGIT_RUN_RE = re.compile(r"\d+(?:[ \-]\d+)*")  # digits joined by single spaces or dashes
NOT_TEXT = re.compile(r"^(FLOAT|DOUBLE|REAL|DECIMAL.*|DATE|TIME.*|TIMESTAMP.*|INTERVAL|BOOLEAN|UUID)$")
INTEGER = re.compile(r"^U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)$")


@dataclass(frozen=True)
class Needles:
    phones: frozenset[str]  # 11-digit national numbers
    emails: frozenset[str]  # trimmed, lower-cased
    secrets: dict[str, str] = field(default_factory=dict)  # label -> value searched verbatim


def _mask(value: str) -> str:
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:2]}***@{domain}"
    return f"{value[:3]}****{value[-2:]}" if len(value) > 5 else "***"


def find(text: str, needles: Needles, patterns: bool = True) -> list[tuple[str, str]]:
    """(detector, masked sample) for every needle or PII-shaped string in ``text``. The cashiers'
    placeholder numbers (13800000000, ...) are nobody's phone and are documented as such."""
    hits: list[tuple[str, str]] = []
    for run in DIGIT_RUN_RE.finditer(text):
        digits = re.sub(r"\D", "", run.group())
        for i in range(len(digits) - 10):
            if digits[i:i + 11] in needles.phones:
                hits.append(("exact phone", _mask(run.group())))
                break
    if "@" in text:
        low = text.lower()
        hits += [("exact email", _mask(e)) for e in needles.emails if e in low]
    if patterns:
        hits += [("phone pattern", _mask(m.group())) for m in PHONE_RE.finditer(text)
                 if re.sub(r"\D", "", m.group())[-11:] not in PLACEHOLDER_PHONES]
        hits += [("email pattern", _mask(m.group())) for m in EMAIL_RE.finditer(text)]
    hits += [(f"secret {label}", "***") for label, value in needles.secrets.items() if value and value in text]
    return hits


@dataclass
class Scan:
    """Findings by place, and how much was looked at (so a pass is never vacuous)."""

    needles: Needles
    findings: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    looked_at: dict[str, int] = field(default_factory=dict)

    def text(self, where: str, text: str, kind: str, patterns: bool = True) -> None:
        self.looked_at[kind] = self.looked_at.get(kind, 0) + 1
        hits = find(text, self.needles, patterns)
        if hits:
            self.findings.setdefault(where, []).extend(hits)

    def duckdb_file(self, path: Path, label: str) -> None:
        with duckdb.connect(str(path), read_only=True) as con:
            # base tables only: views merely re-select them (and state.duckdb's dbt views name the
            # candidate file it was renamed from)
            columns = con.execute(
                "select c.schema_name, c.table_name, c.column_name, c.data_type from duckdb_columns() c "
                "join duckdb_tables() t using (database_name, schema_name, table_name) "
                "where c.database_name = current_database() and not c.internal "
                "order by 1, 2, c.column_index").fetchall()
            for schema, table, column, dtype in columns:
                self._column(con, f"{q(schema)}.{q(table)}", f"{label}:{schema}.{table}.{column}",
                             column, dtype)

    def parquet_file(self, path: Path, label: str) -> None:
        with duckdb.connect() as con:
            rel = f"read_parquet({lit(str(path))})"
            for column, dtype, *_ in con.execute(f"describe select * from {rel}").fetchall():
                self._column(con, rel, f"{label}:{column}", column, dtype)

    def _column(self, con: duckdb.DuckDBPyConnection, relation: str, where: str, column: str,
                dtype: str) -> None:
        if NOT_TEXT.match(dtype):
            return
        (text,) = con.execute(
            f"select string_agg(cast({q(column)} as varchar), chr(10)) from {relation}").fetchone()
        # an integer column is searched for needles only: counts and ids are not "phone-shaped"
        self.text(where, text or "", "integer column" if INTEGER.match(dtype) else "text column",
                  patterns=not INTEGER.match(dtype))

    def files(self, paths: Iterable[Path], label: str, root: Path) -> None:
        for p in sorted(paths):
            if p.is_file() and not p.name.endswith((".duckdb", ".wal", ".parquet", ".lock")):
                self.text(f"{label}:{p.relative_to(root)}", p.read_bytes().decode("utf-8", "replace"), "file")

    def report(self) -> str:
        lines = [f"  {where}: {len(hits)} hit(s), e.g. {sorted(set(hits))[:4]}"
                 for where, hits in sorted(self.findings.items())]
        return f"PII or secrets found in {len(self.findings)} place(s):\n" + "\n".join(lines[:40])


def _csv_rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        yield from csv.DictReader(fh)


def collect_needles(sources: Path, monkeypatch: pytest.MonkeyPatch, **secrets: str) -> Needles:
    """Every phone and e-mail in the generated files: the PII columns of each demo source, read
    as the files hold them (also the rows ingestion will reject), plus truth/identity.csv."""
    monkeypatch.setenv("LIUCUN_DATA_DIR", str(sources))
    written: list[tuple[str, str]] = []  # (pii kind, value as written)
    for src in load_config(DEMO_CONFIG).sources:
        cols = {src.source_column(c.name): c.pii for c in CONTRACTS[src.kind].columns if c.pii}
        for f in map(Path, sorted(glob.glob(str(sources / src.path)))):
            if not cols:
                continue
            if src.format == "csv":
                rows: Iterable[dict[str, Any]] = _csv_rows(f)
            elif src.format == "parquet":
                with duckdb.connect() as con:
                    rel = con.execute(f"select {', '.join(q(c) for c in cols)} from read_parquet({lit(str(f))})")
                    names = [d[0] for d in rel.description]
                    rows = [dict(zip(names, r, strict=True)) for r in rel.fetchall()]
            else:
                rows = [json.loads(line) for line in f.read_text(errors="replace").splitlines()
                        if line.startswith("{") and line.endswith("}")]
            written += [(kind, str(row[c])) for row in rows for c, kind in cols.items()
                        if isinstance(row, dict) and row.get(c)]
    written += [(r["identifier_type"], r["identifier_value"]) for r in _csv_rows(sources / "truth" / "identity.csv")
                if r["identifier_type"] in ("phone", "email")]
    phones = {e164[3:] for kind, v in written if kind == "phone"
              if (e164 := normalise_phone(v)) and e164.startswith("+86")} - set(PLACEHOLDER_PHONES)
    emails = {v.strip().lower() for kind, v in written if kind == "email" and "@" in v}
    return Needles(frozenset(phones), frozenset(emails), dict(secrets))


def _prefect(flow_run_id: str, scan: Scan) -> None:
    """Everything Prefect keeps about the run: parameters, states, task runs, artifacts, logs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.client.schemas.sorting import LogSort
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # logs are shipped in batches: send what is queued before reading
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
        scan.text(f"prefect flow run {run.name}: parameters/state",
                  json.dumps(run.parameters, default=str) + "\n" + str(run.state and run.state.message), "prefect run")
        for tr in client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))):
            scan.text(f"prefect task run {tr.name}: state", f"{tr.name}\n{tr.state and tr.state.message}",
                      "prefect task run")
        for art in client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))):
            scan.text(f"prefect artifact {art.key} ({art.type})",
                      json.dumps(art.data, default=str, ensure_ascii=False) + "\n" + str(art.description),
                      "prefect artifact")
        offset = 0
        while True:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])),
                                    limit=200, offset=offset, sort=LogSort.TIMESTAMP_ASC)
            for log in logs:
                scan.text(f"prefect log {log.name} {log.timestamp:%H:%M:%S.%f}", log.message, "prefect log")
            if len(logs) < 200:
                break
            offset += 200


def _flow_run_id(warehouse: Path) -> str:
    """The newest retention_pipeline run on ``warehouse`` (the CLI does not print a failed run's id)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=50)
    mine = [r for r in runs if r.parameters.get("warehouse_dir") == str(warehouse.resolve())]
    assert mine, f"no Prefect flow run found for {warehouse}"
    return str(mine[0].id)


@pytest.fixture()
def run_logs_at_debug() -> Iterator[None]:
    """Ship the flow's and tasks' logs to the Prefect API down to DEBUG (the suite runs at WARNING)."""
    import flows.retention_pipeline  # noqa: F401 - Prefect configures its loggers when first imported

    loggers = [logging.getLogger(n) for n in ("prefect.flow_runs", "prefect.task_runs")]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    yield
    for lg, level in zip(loggers, before, strict=True):
        lg.setLevel(level)


def _run(config: Path, warehouse: Path) -> int:
    return liucun(["run", "--config", str(config), "--warehouse", str(warehouse), "--as-of", END.isoformat()])


def _config(tmp: Path, name: str, edit: Any) -> Path:
    """The demo config, edited (the demo's mechanism, whatever sources it lists today)."""
    cfg = yaml.safe_load(DEMO_CONFIG.read_text())
    edit(cfg["sources"])
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def _scan_published(scan: Scan, wh: Path, label: str) -> None:
    scan.duckdb_file(wh / "liucun.duckdb", f"{label} liucun.duckdb")
    scan.duckdb_file(wh / "state.duckdb", f"{label} state.duckdb")
    version = (wh / "parquet" / "CURRENT").read_text().strip()
    parquet = sorted((wh / "parquet" / version).glob("*.parquet"))
    assert parquet, "the published version has Parquet files"
    for p in parquet:
        scan.parquet_file(p, f"{label} parquet/{version}/{p.name}")
    scan.files((wh / "reports").rglob("*"), f"{label} reports", wh / "reports")


def test_the_scanner_finds_pii_where_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The detectors are not blind: they find the needles in the raw exports and in planted columns
    of every type the scan covers, and report where, masked."""
    src = tmp_path / "src"
    generate(src, customers=300, months=6, seed=3, end_date=END)
    needles = collect_needles(src, monkeypatch, salt=SALT)
    assert len(needles.phones) > 200 and len(needles.emails) > 100
    scan = Scan(needles)
    scan.files([src / "crm" / "customers.csv", src / "service" / "tickets.csv",
                src / "campaigns" / "contacts.csv"], "source", src)
    kinds = {d for hits in scan.findings.values() for d, _ in hits}
    assert {"exact phone", "exact email", "phone pattern", "email pattern"} <= kinds, kinds
    crm = scan.findings["source:crm/customers.csv"]
    assert sum(d == "exact phone" for d, _ in crm) > 200  # one per line with a phone
    assert all(not re.search(r"\d{6}", s) for _, s in crm), "samples are masked"
    # every written shape of a phone, found by both detectors without the other's help
    phone = sorted(needles.phones)[0]
    e164 = normalise_phone(phone)
    shapes = [phone, f"{phone[:3]}-{phone[3:7]}-{phone[7:]}", f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}",
              e164, f"00{e164[1:]}", f"电话{phone}。"]
    for shape in shapes:
        assert [d for d, _ in find(shape, needles, patterns=False)] == ["exact phone"], shape
        assert [d for d, _ in find(shape, Needles(frozenset(), frozenset()))] == ["phone pattern"], shape
    email = sorted(needles.emails)[0]
    assert [d for d, _ in find(f" {email.upper()} ", needles, patterns=False)] == ["exact email"]
    assert find(f"x{SALT}y", needles, patterns=False) == [("secret salt", "***")]
    assert find(f"placeholder {PLACEHOLDER_PHONES[0]}", needles) == []
    # nothing in ids, hashes, decimals or timestamps looks like a phone
    assert find("O1000013482 0.13912345678 2025-12-31 13:45:00 C10053255 "
                "940edbfc6b15cb4b30968499cb4122d73f2ac70ad7b5e6688f4e8eb4e369367c", needles) == []
    # planted in each column type of a DuckDB table and of its Parquet copy
    db = tmp_path / "planted.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.t (id bigint, v varchar, j json, l varchar[], s struct(a varchar), "
                    "n bigint, amount double)")
        con.execute("insert into marts.t values (1, ?, ?, ?, ?, ?, 0.5), (2, 'ok', '{}', [], {'a': 'ok'}, 7, 1.5)",
                    [f"{phone[:3]}-{phone[3:7]}-{phone[7:]}", json.dumps({"contact": e164}),
                     ["x", email.upper()], {"a": f"salt={SALT}"}, int(phone)])
        con.execute(f"copy marts.t to {lit(str(tmp_path / 't.parquet'))} (format parquet)")
    planted = Scan(needles)
    planted.duckdb_file(db, "planted")
    planted.parquet_file(tmp_path / "t.parquet", "planted.parquet")
    for where in ("planted:marts.t", "planted.parquet:"):
        assert {w.split(where)[-1].lstrip(".") for w in planted.findings if where in w} == {"v", "j", "l", "s", "n"}
    assert planted.looked_at == {"text column": 8, "integer column": 4}


@pytest.mark.postgres
def test_a_clean_run_leaks_no_pii_salt_or_password(prefect_backend, run_logs_at_debug, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch, capfd, caplog):
    """The demo, with the CRM pulled from PostgreSQL through a DSN that carries a password."""
    from flows.generate.pg_export import export_to_postgres

    src, wh = tmp_path / "src", tmp_path / "wh"
    generate(src, customers=1500, months=12, seed=23, end_date=END)
    monkeypatch.setenv("LIUCUN_PII_SALT", SALT)
    needles = collect_needles(src, monkeypatch, salt=SALT, postgres_password=PG_PASSWORD)
    with throwaway_cluster() as pg:  # trust auth: the password is accepted and must stay secret
        dsn = f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{pg['port']}/{pg['dbname']}"
        export_to_postgres(src, dsn)
        monkeypatch.setenv(PG_DSN_ENV, dsn)
        cfg = _config(tmp_path, "liucun.yml", lambda s: s.update(crm_customers={
            "kind": "customers", "timezone": "Asia/Shanghai",
            "postgres": {"dsn_env": PG_DSN_ENV, "table": "crm.customers", "cursor": "updated_at"}}))
        capfd.readouterr()
        code = _run(cfg, wh)
        out, err = capfd.readouterr()
    assert code == 0, err[-3000:]
    scan = Scan(needles)
    scan.text("stdout", out, "output")
    scan.text("stderr", err, "output")
    scan.text("captured log records", caplog.text, "output")
    _scan_published(scan, wh, "clean")
    _prefect(_flow_run_id(wh), scan)
    assert not scan.findings, scan.report()
    # not vacuous: everything listed was really looked at
    with duckdb.connect(str(wh / "liucun.duckdb"), read_only=True) as con:
        loads = dict(con.execute("select source, rows_loaded from audit.source_loads").fetchall())
    assert loads["crm_customers"] > 1000  # the phones and emails did flow through the run
    assert scan.looked_at["text column"] > 100 and scan.looked_at["file"] >= 6
    assert scan.looked_at["prefect artifact"] >= 6 and scan.looked_at["prefect log"] > 30
    assert scan.looked_at["prefect task run"] > 10 and "loaded crm_customers" in caplog.text


def _scan_failed_run(scan: Scan, wh: Path, label: str, capfd: Any, caplog: Any) -> Path:
    """A failed run's output, leftover run folder (candidate warehouse, dbt logs and artifacts),
    reports and Prefect record; returns the run folder."""
    out, err = capfd.readouterr()
    assert "PIPELINE FAILED" in err, err[-3000:]
    scan.text(f"{label} stdout", out, "output")
    scan.text(f"{label} stderr", err, "output")
    scan.text(f"{label} log records", caplog.text, "output")
    caplog.clear()
    (run_dir,) = (wh / ".runs").iterdir()  # kept until the next run: the evidence of the failure
    scan.duckdb_file(run_dir / "candidate.duckdb", f"{label} candidate")
    scan.files(run_dir.rglob("*"), f"{label} run folder", run_dir)
    scan.files((wh / "reports").rglob("*"), f"{label} reports", wh / "reports")
    _prefect(_flow_run_id(wh), scan)
    assert not scan.findings, scan.report()
    return run_dir


def _plant_hostile_lines(path: Path) -> list[str]:
    """Append lines that once aborted a whole file with DuckDB's own error quoting the line: an
    oversized line, a quote that never closes, bytes invalid in UTF-8 and a NUL byte, each carrying
    a phone or an email. Returns the planted values."""
    planted = ["13911112222", "13922223333", "hostile.person@example.org", "13933334444"]
    lines = [
        f"T900000001,C1,{planted[0]},,complaint,hotline,2026-10-01 10:00:00,," + "x" * 2_100_000 + f" {planted[0]},,",
        f'T900000002,C1,13800000000,,"complaint {planted[1]},hotline,2026-10-01 10:00:00,,,',
        b"T900000003,C1,,,complaint,hotline,2026-10-01 10:00:00,,," + b"\xff\xfe " + planted[2].encode(),
        f"T900000004,C1,{planted[3]},,comp\x00laint,hotline,2026-10-01 10:00:00,,,",
    ]
    with path.open("ab") as fh:
        for line in lines:
            fh.write((line if isinstance(line, bytes) else line.encode()) + b"\n")
    return planted


def test_a_faulty_run_leaks_no_pii_in_quarantine_reports_or_logs(prefect_backend, run_logs_at_debug,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capfd, caplog):
    """``generate --faults`` plants malformed rows carrying phones and emails. Without the invoices
    source (its export lacks a required column, so nothing would be loaded at all):

    1. the run loads and quarantines, then fails the raw gate (the GBK survey export);
    2. tolerating the survey rejects, it builds and gates every layer, then cannot publish (the
       Parquet folder is blocked): its run folder keeps the candidate of every layer and dbt's logs;
    3. unblocked, it publishes, and audit.quarantine is scanned with everything else.
    """
    src, wh = tmp_path / "src", tmp_path / "wh"
    generate(src, customers=1500, months=12, seed=23, end_date=END, faults=True)
    monkeypatch.setenv("LIUCUN_PII_SALT", SALT)
    found = collect_needles(src, monkeypatch, salt=SALT)
    planted = _plant_hostile_lines(src / "service" / "tickets.csv")
    scan = Scan(Needles(found.phones | {p for p in planted if "@" not in p},
                        found.emails | {p for p in planted if "@" in p}, found.secrets))
    capfd.readouterr()

    assert _run(_config(tmp_path, "failing.yml", lambda s: s.pop("invoices")), wh) == 1
    run_dir = _scan_failed_run(scan, wh, "gate-failed run", capfd, caplog)
    assert list((wh / "reports").rglob("validation_raw.md"))
    with duckdb.connect(str(run_dir / "candidate.duckdb"), read_only=True) as con:
        masked = con.execute("select count(*) from raw._quarantine where record like '%<phone>%' "
                             "or record like '%<email>%'").fetchone()[0]
    assert masked > 0, "malformed rows with phones or emails were quarantined (masked)"

    tolerant = _config(tmp_path, "tolerant.yml",
                       lambda s: (s.pop("invoices"), s["surveys"].update(max_quarantine_share=1.0)))
    (wh / "parquet").write_text("a file where the Parquet folder belongs: publishing fails\n")
    assert _run(tolerant, wh) == 1
    run_dir = _scan_failed_run(scan, wh, "publish-failed run", capfd, caplog)
    assert (run_dir / "dbt_logs" / "dbt.log").stat().st_size > 10_000
    with duckdb.connect(str(run_dir / "candidate.duckdb"), read_only=True) as con:
        schemas = {r[0] for r in con.execute("select distinct schema_name from duckdb_tables()").fetchall()}
    assert {"raw", "intermediate", "marts"} <= schemas

    (wh / "parquet").unlink()
    assert _run(tolerant, wh) == 0, capfd.readouterr().err[-3000:]
    out, err = capfd.readouterr()
    scan.text("published run stdout", out, "output")
    scan.text("published run stderr", err, "output")
    scan.text("published run log records", caplog.text, "output")
    _scan_published(scan, wh, "faulty")
    _prefect(_flow_run_id(wh), scan)
    assert not scan.findings, scan.report()
    with duckdb.connect(str(wh / "liucun.duckdb"), read_only=True) as con:
        reasons = dict(con.execute("select reason, count(*) from audit.quarantine group by 1").fetchall())
        masked = con.execute("select count(*) from audit.quarantine where record like '%<phone>%' "
                             "or record like '%<email>%'").fetchone()[0]
    assert reasons.get("malformed_row", 0) >= 3 and masked > 0 and sum(reasons.values()) > 100
    for reason in ("oversized_line", "unbalanced_quote", "control_character"):  # the planted lines, each
        assert reasons.get(reason, 0) >= 1, reasons
    assert scan.looked_at["prefect log"] > 60 and scan.looked_at["file"] >= 10
