"""Invariants of the synthetic source generator (flows.generate).

Small samples (2,000 persons, 12 months) check formats, determinism, ids and faults; one larger
sample (20,000 persons, 24 months) checks that the planted effects are visible in the raw exports.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from flows.generate import GenerateSummary, generate

pytestmark = pytest.mark.unit

END = date(2026, 10, 31)
SMALL = {"customers": 2000, "months": 12, "seed": 7, "end_date": END}
SOURCES_MD = Path(__file__).resolve().parents[2] / "flows" / "generate" / "SOURCES.md"

COLUMNS = {
    "crm/customers.csv": ["crm_id", "phone", "email", "member_card", "registration_channel",
                          "registered_at", "region", "city_tier", "updated_at"],
    "orders": ["order_id", "ordered_at", "channel", "store_id", "crm_id", "member_card", "phone",
               "wechat_unionid", "item_count", "gross_amount", "discount_amount", "net_amount",
               "refund_amount", "is_returned", "referral_code", "coupon_code",
               "promised_delivery_date", "delivered_at"],
    "events": ["event_id", "event_ts", "device_id", "wechat_openid", "wechat_unionid", "crm_id",
               "event_type", "channel", "properties"],
    "service/tickets.csv": ["ticket_id", "crm_id", "phone", "order_id", "category",
                            "contact_channel", "opened_at", "resolved_at", "resolution_hours",
                            "satisfaction_score"],
    "surveys/responses.csv": ["response_id", "crm_id", "survey_type", "score", "responded_at",
                              "order_id", "ticket_id", "comment"],
    "billing/memberships.csv": ["membership_id", "crm_id", "plan", "started_at", "ended_at",
                                "end_reason"],
    "billing/invoices.csv": ["invoice_id", "membership_id", "crm_id", "billing_period_start",
                             "attempted_at", "attempt_number", "amount", "plan", "status",
                             "failure_reason"],
    "cancellation/sessions.jsonl": ["session_id", "membership_id", "crm_id", "started_at",
                                    "ended_at", "reason_category", "reason_text", "offer_type",
                                    "offer_shown", "offer_accepted", "outcome"],
    "campaigns/campaigns.csv": ["campaign_id", "campaign_name", "channel", "launched_at",
                                "cost_per_contact", "incentive_type", "incentive_value",
                                "attribution_window_days", "target_rule", "holdout_share"],
    "campaigns/contacts.csv": ["contact_id", "campaign_id", "crm_id", "phone", "wechat_unionid",
                               "assigned_group", "sent_at", "delivered", "opened_at",
                               "coupon_code", "redeemed_at", "redeemed_order_id"],
    "acquisition/spend.csv": ["month", "channel", "spend_cny", "impressions", "clicks",
                              "new_customers_reported"],
    "truth/persons.csv": ["person_id", "acquired_at", "acquisition_channel", "region",
                          "city_tier", "lam", "p", "mean_spend", "is_prospect", "is_member",
                          "churned_at", "churn_cause"],
    "truth/identity.csv": ["identifier_type", "identifier_value", "person_id", "is_shared"],
    "truth/driver_effects.csv": ["driver", "hazard_multiplier", "has_effect", "description"],
    "truth/channel_uplift.csv": ["channel", "planted_uplift", "n_targets", "n_treatment",
                                 "n_holdout", "realized_ate"],
    "truth/faults.csv": ["file", "kind", "line", "key", "description"],
}
FAULT_KINDS = {"malformed_row", "unparseable_timestamp", "malformed_json", "duplicate_row",
               "late_event", "future_timestamp", "negative_value", "missing_identifier",
               "wrong_encoding", "missing_column"}
SHANGHAI = timezone(timedelta(hours=8))
LOCAL_TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


# --- fixtures -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateSummary]:
    out = tmp_path_factory.mktemp("small")
    return out, generate(out, **SMALL)


@pytest.fixture(scope="module")
def small_again(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small_again")
    generate(out, **SMALL)
    return out


@pytest.fixture(scope="module")
def other_seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("other_seed")
    generate(out, **{**SMALL, "seed": 8})
    return out


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faulty")
    generate(out, **SMALL, faults=True)
    return out


@pytest.fixture(scope="module")
def big(demo_sources: Path) -> Path:
    """The demo-size sample (20,000 people, 24 months, seed 42), shared with the integration tests."""
    return demo_sources


def _con(d: Path) -> duckdb.DuckDBPyConnection:
    """Views over a generated directory, with orders/tickets/contacts mapped to true persons."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    con.execute(f"CREATE VIEW o AS SELECT * FROM read_parquet('{d}/orders/*.parquet')")
    con.execute(f"CREATE VIEW p AS SELECT * FROM read_csv('{d}/truth/persons.csv')")
    con.execute(f"CREATE VIEW idt AS SELECT * FROM read_csv('{d}/truth/identity.csv', "
                "all_varchar = true) WHERE is_shared = 'false'")
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_csv('{d}/service/tickets.csv', "
                "types = {'crm_id': 'VARCHAR', 'phone': 'VARCHAR', 'order_id': 'VARCHAR'})")
    con.execute("""
        CREATE TABLE op AS
        SELECT o.*, o.ordered_at::TIMESTAMP AS local_ts,
               coalesce(i1.person_id, i2.person_id, i3.person_id, i4.person_id) AS person_id
        FROM o
        LEFT JOIN idt i1 ON i1.identifier_type = 'crm_id' AND i1.identifier_value = o.crm_id
        LEFT JOIN idt i2 ON i2.identifier_type = 'member_card' AND i2.identifier_value = o.member_card
        LEFT JOIN idt i3 ON i3.identifier_type = 'wechat_unionid'
                        AND i3.identifier_value = o.wechat_unionid
        LEFT JOIN idt i4 ON i4.identifier_type = 'phone' AND i4.identifier_value = o.phone""")
    con.execute("""
        CREATE TABLE tp AS
        SELECT t.*, coalesce(i1.person_id, i2.person_id) AS person_id FROM t
        LEFT JOIN idt i1 ON i1.identifier_type = 'crm_id' AND i1.identifier_value = t.crm_id
        LEFT JOIN idt i2 ON i2.identifier_type = 'phone' AND i2.identifier_value = t.phone""")
    return con


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return next(csv.reader(f))


def _rows(path: Path, encoding: str = "utf-8") -> list[list[str]]:
    with path.open(encoding=encoding, newline="") as f:
        return list(csv.reader(f))


def _months(n: int) -> list[str]:
    y, m = END.year, END.month
    out = []
    for _ in range(n):
        out.append(f"{y:04d}_{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return sorted(out)


# --- files and columns --------------------------------------------------------------------------

def test_every_source_file_is_written_with_row_counts(small: tuple[Path, GenerateSummary]) -> None:
    d, summary = small
    months = _months(12)
    expected = set(COLUMNS) - {"orders", "events"}
    expected |= {f"orders/orders_{m}.parquet" for m in months}
    expected |= {f"events/events_{m}.jsonl" for m in months}
    assert set(summary.files) == expected
    assert (d / "truth" / "README.md").is_file()
    for rel, rows in summary.files.items():
        path = d / rel
        assert path.is_file(), rel
        if rel.endswith(".csv"):
            assert len(_rows(path)) - 1 == rows, rel
        elif rel.endswith(".jsonl"):
            assert sum(1 for _ in path.open(encoding="utf-8")) == rows, rel
        else:
            assert pq.read_metadata(path).num_rows == rows, rel
    assert summary.persons == 2000 and summary.seconds > 0


def test_columns_match_the_documented_contract(small: tuple[Path, GenerateSummary]) -> None:
    d, _ = small
    doc = SOURCES_MD.read_text(encoding="utf-8")
    for rel, cols in COLUMNS.items():
        if rel == "orders":
            got = [f.name for f in pq.read_schema(next((d / "orders").glob("*.parquet")))]
        elif rel in ("events", "cancellation/sessions.jsonl"):
            path = next((d / "events").glob("*.jsonl")) if rel == "events" else d / rel
            got = list(json.loads(path.open(encoding="utf-8").readline()))
        else:
            got = _header(d / rel)
        assert got == cols, rel
        if not rel.startswith("truth/"):
            missing = [c for c in cols if f"`{c}`" not in doc]
            assert not missing, (rel, missing)
    schema = pq.read_schema(next((d / "orders").glob("*.parquet")))
    assert str(schema.field("ordered_at").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("net_amount").type) == "decimal128(12, 2)"


def test_vocabularies(small: tuple[Path, GenerateSummary]) -> None:
    con = _con(small[0])
    d = small[0]
    vocab = {
        ("o", "channel"): {"store", "online_shop", "app", "mini_program"},
        ("t", "category"): {"product_quality", "delivery_delay", "billing", "app_error",
                            "product_inquiry", "address_change", "return_request"},
        ("t", "contact_channel"): {"hotline", "wechat", "app", "store"},
    }
    for (view, col), allowed in vocab.items():
        got = {r[0] for r in con.sql(f"SELECT DISTINCT {col} FROM {view}").fetchall()}
        assert got == allowed, col
    reg = {r[0] for r in con.sql(f"SELECT DISTINCT registration_channel FROM "
                                 f"read_csv('{d}/crm/customers.csv')").fetchall()}
    assert reg == {"store", "online_shop", "app", "mini_program", "official_account"}
    phones = [r[1] for r in _rows(d / "crm/customers.csv")[1:] if r[1]]
    assert any(re.fullmatch(r"1\d{10}", x) for x in phones)
    assert any(re.fullmatch(r"1\d{2}-\d{4}-\d{4}", x) for x in phones)
    assert any(re.fullmatch(r"\+86 1\d{2} \d{4} \d{4}", x) for x in phones)
    assert all(re.fullmatch(r"1\d{10}|1\d{2}-\d{4}-\d{4}|\+86 1\d{2} \d{4} \d{4}", x)
               for x in phones)


# --- determinism --------------------------------------------------------------------------------

def test_same_seed_is_identical(small: tuple[Path, GenerateSummary], small_again: Path) -> None:
    d = small[0]
    for path in sorted(d.rglob("*")):
        if path.is_dir():
            continue
        twin = small_again / path.relative_to(d)
        if path.suffix == ".parquet":
            assert pq.read_table(path).equals(pq.read_table(twin)), path.name
        else:
            assert _md5(path) == _md5(twin), path.name


def test_different_seed_differs(small: tuple[Path, GenerateSummary], other_seed: Path) -> None:
    d = small[0]
    for rel in ("crm/customers.csv", "service/tickets.csv", "truth/persons.csv",
                "events/events_2026_06.jsonl"):
        assert _md5(d / rel) != _md5(other_seed / rel), rel
    a = pq.read_table(d / "orders/orders_2026_06.parquet")
    b = pq.read_table(other_seed / "orders/orders_2026_06.parquet")
    assert not a.equals(b)


# --- orders, ids, identity ----------------------------------------------------------------------

def test_order_amounts(small: tuple[Path, GenerateSummary]) -> None:
    con = _con(small[0])
    bad = con.sql("""
        SELECT count(*) FILTER (WHERE net_amount <> gross_amount - discount_amount),
               count(*) FILTER (WHERE refund_amount > net_amount OR refund_amount < 0),
               count(*) FILTER (WHERE (refund_amount > 0) <> is_returned),
               count(*) FILTER (WHERE gross_amount <= 0 OR discount_amount < 0 OR item_count < 1),
               count(*) FILTER (WHERE (channel = 'store') <> (promised_delivery_date IS NULL)),
               count(*) FILTER (WHERE (channel = 'store') <> (store_id IS NOT NULL)),
               count(*) FILTER (WHERE delivered_at <= ordered_at),
               count(*) FILTER (WHERE coupon_code IS NOT NULL AND discount_amount < 15)
        FROM o""").fetchone()
    assert bad == (0, 0, 0, 0, 0, 0, 0, 0)
    online_returns = con.sql("SELECT avg(is_returned::INT) FROM o WHERE channel <> 'store'")
    assert 0.03 < online_returns.fetchone()[0] < 0.10


def test_ids_unique(small: tuple[Path, GenerateSummary]) -> None:
    d = small[0]
    con = duckdb.connect()
    checks = {
        "order_id": f"read_parquet('{d}/orders/*.parquet')",
        "crm_id": f"read_csv('{d}/crm/customers.csv')",
        "ticket_id": f"read_csv('{d}/service/tickets.csv')",
        "response_id": f"read_csv('{d}/surveys/responses.csv')",
        "membership_id": f"read_csv('{d}/billing/memberships.csv')",
        "invoice_id": f"read_csv('{d}/billing/invoices.csv')",
        "session_id": f"read_json('{d}/cancellation/sessions.jsonl')",
        "campaign_id": f"read_csv('{d}/campaigns/campaigns.csv')",
        "contact_id": f"read_csv('{d}/campaigns/contacts.csv')",
        "event_id": f"read_json('{d}/events/*.jsonl', columns = {{'event_id': 'VARCHAR'}})",
        "person_id": f"read_csv('{d}/truth/persons.csv')",
    }
    for col, src in checks.items():
        n, distinct = con.sql(f"SELECT count(*), count(DISTINCT {col}) FROM {src}").fetchone()
        assert n == distinct and n > 0, col


def test_every_identifier_maps_to_one_person(small: tuple[Path, GenerateSummary]) -> None:
    d = small[0]
    rows = _rows(d / "truth/identity.csv")[1:]
    owner: dict[tuple[str, str], str] = {}
    for kind, value, person, shared in rows:
        key = (kind, value)
        assert key not in owner, key
        owner[key] = person
        assert (shared == "true") == (person == ""), key
    shared = {k for k, v in owner.items() if v == ""}
    assert {("phone", "13800000000"), ("phone", "13900000000")} <= shared
    assert sum(1 for k in shared if k[0] == "device_id") >= 3
    crm_ids = {r[0] for r in _rows(d / "crm/customers.csv")[1:]}
    assert crm_ids == {v for k, v in owner if k == "crm_id"}
    con = _con(d)
    unmapped = con.sql("""
        SELECT count(*) FROM op WHERE person_id IS NULL
          AND coalesce(crm_id, member_card, wechat_unionid) IS NOT NULL""").fetchone()[0]
    assert unmapped == 0
    anonymous = con.sql("SELECT count(*) FROM o WHERE coalesce(crm_id, member_card, phone, "
                        "wechat_unionid) IS NULL").fetchone()[0]
    assert anonymous > 0
    both = con.sql("""SELECT count(DISTINCT person_id) FROM idt WHERE identifier_type = 'crm_id'
                      GROUP BY person_id HAVING count(*) > 1""").fetchall()
    assert len(both) > 0  # duplicate CRM records exist
    dup_phones = con.sql(f"""
        SELECT count(*) FROM (SELECT regexp_replace(phone, '[^0-9]', '', 'g') AS ph, count(*) n
        FROM read_csv('{d}/crm/customers.csv', all_varchar = true) WHERE phone IS NOT NULL
        GROUP BY 1 HAVING n > 1)""").fetchone()[0]
    assert dup_phones > 0


def test_shared_devices_and_placeholder_phones(small: tuple[Path, GenerateSummary]) -> None:
    d = small[0]
    con = duckdb.connect()
    shared = [r[1] for r in _rows(d / "truth/identity.csv")[1:]
              if r[3] == "true" and r[0] == "device_id"]
    users = con.sql(f"""
        SELECT device_id, count(DISTINCT crm_id) FROM read_json('{d}/events/*.jsonl',
            columns = {{'device_id': 'VARCHAR', 'crm_id': 'VARCHAR'}})
        WHERE device_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1""", params=[shared]).fetchall()
    assert len(users) == len(shared) and all(n >= 30 for _, n in users)
    share = con.sql(f"""SELECT avg(coalesce(phone IN ('13800000000', '13900000000'), false)::INT)
                        FROM read_parquet('{d}/orders/*.parquet') WHERE channel = 'store'""")
    assert 0.005 < share.fetchone()[0] < 0.05


# --- identifiers evidenced together (what an identity graph can link) ---------------------------

EVENT_COLUMNS = ("{'event_id': 'VARCHAR', 'event_ts': 'VARCHAR', 'device_id': 'VARCHAR', "
                 "'wechat_openid': 'VARCHAR', 'wechat_unionid': 'VARCHAR', 'crm_id': 'VARCHAR', "
                 "'event_type': 'VARCHAR', 'channel': 'VARCHAR', 'properties': 'JSON'}")
PHONE_SQL = r"nullif(regexp_replace(regexp_replace({c}, '[^0-9]', '', 'g'), '^86(1\d{{10}})$', '\1'), '')"


def _linking_con(d: Path) -> duckdb.DuckDBPyConnection:
    """_con plus the events, the CRM with normalised phone/email, and the campaign contacts."""
    con = _con(d)
    con.execute(f"CREATE VIEW ev AS SELECT * FROM read_json('{d}/events/*.jsonl', "
                f"format = 'newline_delimited', columns = {EVENT_COLUMNS})")
    con.execute(f"""CREATE VIEW crm AS SELECT crm_id, {PHONE_SQL.format(c='phone')} AS phone,
                    nullif(lower(trim(email)), '') AS email
                    FROM read_csv('{d}/crm/customers.csv', all_varchar = true)""")
    con.execute(f"CREATE VIEW ct AS SELECT * FROM read_csv('{d}/campaigns/contacts.csv', "
                "all_varchar = true)")
    return con


def test_wechat_identities_are_bound_to_the_membership(small: tuple[Path, GenerateSummary]) -> None:
    """会员绑定: the unionid of every mini-program buyer is seen with the buyer's own crm_id (a bind
    login) or phone (phone authorisation on an order); few other WeChat users stay unbound."""
    con = _linking_con(small[0])
    con.execute("""
        CREATE TABLE bound AS
        SELECT DISTINCT u.person_id
        FROM (SELECT wechat_unionid AS unionid, crm_id, NULL AS phone FROM ev
              UNION ALL SELECT wechat_unionid, crm_id, phone FROM o
              UNION ALL SELECT wechat_unionid, crm_id, phone FROM ct) r
        JOIN idt u ON u.identifier_type = 'wechat_unionid' AND u.identifier_value = r.unionid
        JOIN idt k ON k.person_id = u.person_id
                  AND ((k.identifier_type = 'crm_id' AND k.identifier_value = r.crm_id)
                       OR (k.identifier_type = 'phone' AND k.identifier_value = r.phone))""")
    buyers, unbound = con.sql("""
        SELECT count(DISTINCT person_id), count(DISTINCT person_id) FILTER (
            WHERE person_id NOT IN (SELECT person_id FROM bound))
        FROM op WHERE channel = 'mini_program'""").fetchone()
    assert buyers > 100 and unbound == 0
    # phone authorisation and bind logins both occur
    phone_first = con.sql("""
        SELECT avg((phone IS NOT NULL)::INT) FROM (
            SELECT phone, row_number() OVER (PARTITION BY person_id ORDER BY ordered_at) AS k
            FROM op WHERE channel = 'mini_program') WHERE k = 1""").fetchone()[0]
    later = con.sql("""
        SELECT avg((phone IS NOT NULL)::INT) FROM (
            SELECT phone, row_number() OVER (PARTITION BY person_id ORDER BY ordered_at) AS k
            FROM op WHERE channel = 'mini_program') WHERE k > 1""").fetchone()[0]
    assert phone_first > later + 0.2
    binds = con.sql("""SELECT count(*) FROM ev WHERE event_type = 'login' AND crm_id IS NOT NULL
                       AND channel IN ('mini_program', 'official_account')""").fetchone()[0]
    assert binds > 100
    # WeChat users seen in the events: only a small share never shows a crm_id or phone
    seen, never = con.sql("""
        SELECT count(DISTINCT i.person_id), count(DISTINCT i.person_id) FILTER (
            WHERE i.person_id NOT IN (SELECT person_id FROM bound))
        FROM ev JOIN idt i ON i.identifier_type = 'wechat_unionid'
                          AND i.identifier_value = ev.wechat_unionid""").fetchone()
    assert seen > 300 and never / seen < 0.05


def test_duplicate_crm_records_repeat_phone_or_email(small: tuple[Path, GenerateSummary]) -> None:
    con = _linking_con(small[0])
    rows = con.sql("""
        SELECT i.person_id, count(*) AS records,
               count(DISTINCT crm.phone) = 1 AND count(crm.phone) = count(*) AS same_phone,
               count(DISTINCT crm.email) = 1 AND count(crm.email) = count(*) AS same_email,
               count(crm.phone) AS with_phone
        FROM idt i JOIN crm ON i.identifier_type = 'crm_id' AND crm.crm_id = i.identifier_value
        GROUP BY 1 HAVING count(*) > 1""").fetchall()
    assert len(rows) > 20
    assert all(r[1] == 2 for r in rows)
    broken = [r for r in rows if not (r[2] or (r[4] == 0 and r[3]))]
    assert not broken, broken[:5]  # same phone; same email when the person has no phone


def test_devices_log_in(small: tuple[Path, GenerateSummary]) -> None:
    """Every app device, and the web device of everyone who orders online, has a login event with
    its owner's crm_id; anonymous devices are rare."""
    con = _linking_con(small[0])
    con.execute("""
        CREATE TABLE dev AS
        SELECT ev.channel, d.identifier_value AS device_id, d.person_id,
               bool_or(ev.event_type = 'login' AND k.person_id = d.person_id) AS own_login
        FROM ev
        JOIN idt d ON d.identifier_type = 'device_id' AND d.identifier_value = ev.device_id
        LEFT JOIN idt k ON k.identifier_type = 'crm_id' AND k.identifier_value = ev.crm_id
        GROUP BY 1, 2, 3""")
    app, app_ok = con.sql("SELECT count(*), count(*) FILTER (WHERE own_login) FROM dev "
                          "WHERE channel = 'app'").fetchone()
    assert app > 200 and app_ok == app
    web, web_ok, online, online_ok = con.sql("""
        SELECT count(*), count(*) FILTER (WHERE own_login),
               count(*) FILTER (WHERE on_line), count(*) FILTER (WHERE on_line AND own_login)
        FROM (SELECT dev.*, person_id IN (SELECT person_id FROM op WHERE channel <> 'store') AS on_line
              FROM dev WHERE channel = 'web')""").fetchone()
    assert online > 200 and online_ok == online
    assert web_ok / web > 0.9
    # a device never changes hands: no device logs in with another person's crm_id
    foreign = con.sql("""
        SELECT count(*) FROM ev
        JOIN idt d ON d.identifier_type = 'device_id' AND d.identifier_value = ev.device_id
        JOIN idt k ON k.identifier_type = 'crm_id' AND k.identifier_value = ev.crm_id
        WHERE k.person_id <> d.person_id""").fetchone()[0]
    assert foreign == 0


def test_timestamp_conventions(small: tuple[Path, GenerateSummary]) -> None:
    d = small[0]
    for rel, cols in (("crm/customers.csv", (5, 8)), ("service/tickets.csv", (6, 7)),
                      ("surveys/responses.csv", (4,)), ("billing/invoices.csv", (4,)),
                      ("campaigns/contacts.csv", (6, 8, 10))):
        for row in _rows(d / rel)[1:]:
            for c in cols:
                assert row[c] == "" or LOCAL_TS.match(row[c]), (rel, row[c])
    offset = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?(Z|\+08:00)$")
    seen = set()
    for path in (d / "events").glob("*.jsonl"):
        for line in path.open(encoding="utf-8"):
            ev = json.loads(line)
            assert offset.match(ev["event_ts"]), ev["event_ts"]
            suffix = "Z" if ev["event_ts"].endswith("Z") else "+08:00"
            seen.add((ev["channel"], suffix))
    assert ("app", "Z") in seen and ("mini_program", "+08:00") in seen
    assert ("app", "+08:00") not in seen and ("mini_program", "Z") not in seen
    for line in (d / "cancellation/sessions.jsonl").open(encoding="utf-8"):
        assert json.loads(line)["started_at"].endswith("+08:00")


def test_person_life_is_consistent(small: tuple[Path, GenerateSummary]) -> None:
    con = _con(small[0])
    before, after = con.sql("""
        SELECT count(*) FILTER (WHERE op.local_ts < p.acquired_at),
               count(*) FILTER (WHERE op.local_ts > p.churned_at)
        FROM op JOIN p USING (person_id)""").fetchone()
    assert before == 0 and after == 0
    prospects = con.sql("""SELECT count(*) FROM op JOIN p USING (person_id)
                           WHERE p.is_prospect""").fetchone()[0]
    assert prospects == 0
    share = con.sql("SELECT avg(is_prospect::INT), avg((acquired_at < DATE '2025-11-01')::INT) "
                    "FROM p").fetchone()
    assert 0.02 < share[0] < 0.06 and 0.10 < share[1] < 0.20


def test_billing_consistency(small: tuple[Path, GenerateSummary]) -> None:
    d = small[0]
    con = _con(d)
    con.execute(f"CREATE VIEW m AS SELECT * FROM read_csv('{d}/billing/memberships.csv')")
    con.execute(f"CREATE VIEW i AS SELECT * FROM read_csv('{d}/billing/invoices.csv')")
    con.execute(f"CREATE VIEW s AS SELECT * FROM read_json('{d}/cancellation/sessions.jsonl', "
                "columns = {'session_id': 'VARCHAR', 'membership_id': 'VARCHAR', "
                "'ended_at': 'VARCHAR', 'offer_shown': 'BOOLEAN', 'offer_accepted': 'BOOLEAN', "
                "'outcome': 'VARCHAR'})")
    outside = con.sql("""SELECT count(*) FROM i JOIN m USING (membership_id)
                         WHERE i.attempted_at < m.started_at
                            OR i.attempted_at > coalesce(m.ended_at, TIMESTAMP '2100-01-01')""")
    assert outside.fetchone()[0] == 0
    assert con.sql("SELECT max(attempt_number) FROM i").fetchone()[0] == 3
    amounts = {r[0] for r in con.sql("SELECT DISTINCT amount FROM i").fetchall()}
    assert {25, 238} <= {float(a) for a in amounts}
    non_payment = con.sql("""
        SELECT count(*), count(*) FILTER (WHERE last_status = 'failed' AND last_attempt = 3)
        FROM (SELECT m.membership_id, arg_max(i.status, i.attempted_at) AS last_status,
                     arg_max(i.attempt_number, i.attempted_at) AS last_attempt
              FROM m JOIN i USING (membership_id) WHERE m.end_reason = 'non_payment'
              GROUP BY 1)""").fetchone()
    assert non_payment[0] > 0 and non_payment[0] == non_payment[1]
    cancelled = con.sql("""
        SELECT count(*), count(s.session_id) FROM m LEFT JOIN s
          ON s.membership_id = m.membership_id AND s.outcome = 'cancelled'
             AND s.ended_at = strftime(m.ended_at, '%Y-%m-%dT%H:%M:%S+08:00')
        WHERE m.end_reason = 'cancelled'""").fetchone()
    assert cancelled[0] > 0 and cancelled[0] == cancelled[1]
    deflected_ok = con.sql("""SELECT bool_and(offer_accepted AND offer_shown) FROM s
                              WHERE outcome = 'deflected'""").fetchone()[0]
    assert deflected_ok
    involuntary = con.sql("""
        SELECT count(*), count(m.membership_id) FROM p
        JOIN idt ON idt.person_id = p.person_id AND idt.identifier_type = 'crm_id'
        LEFT JOIN m ON m.crm_id = idt.identifier_value AND m.end_reason = 'non_payment'
                   AND m.ended_at = p.churned_at
        WHERE p.churn_cause = 'involuntary_non_payment'""").fetchone()
    assert involuntary[0] == involuntary[1]


def test_campaign_holdouts(small: tuple[Path, GenerateSummary]) -> None:
    d = small[0]
    con = duckdb.connect()
    rows = con.sql(f"""
        SELECT campaign_id, count(*), count(*) FILTER (WHERE assigned_group = 'holdout'),
               count(*) FILTER (WHERE assigned_group = 'holdout' AND (sent_at IS NOT NULL
                                OR coupon_code IS NOT NULL OR delivered IS NOT NULL)),
               count(*) FILTER (WHERE assigned_group = 'treatment' AND coupon_code IS NULL)
        FROM read_csv('{d}/campaigns/contacts.csv', all_varchar = true) GROUP BY 1""").fetchall()
    assert len(rows) >= 20
    for cid, n, holdout, leaked, no_coupon in rows:
        assert abs(holdout - 0.2 * n) <= 4 * math.sqrt(n * 0.2 * 0.8) + 1, cid
        assert leaked == 0 and no_coupon == 0, cid
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    redeemed = con.sql(f"""
        SELECT count(*), count(o.order_id), count(*) FILTER (WHERE o.coupon_code = c.coupon_code
                   AND strftime(o.ordered_at::TIMESTAMP, '%Y-%m-%d %H:%M:%S') = c.redeemed_at
                   AND c.redeemed_at >= c.sent_at)
        FROM read_csv('{d}/campaigns/contacts.csv', all_varchar = true) c
        LEFT JOIN read_parquet('{d}/orders/*.parquet') o ON o.order_id = c.redeemed_order_id
        WHERE c.redeemed_order_id IS NOT NULL""").fetchone()
    coupons = con.sql(f"""SELECT count(*) FROM read_parquet('{d}/orders/*.parquet')
                          WHERE coupon_code IS NOT NULL""").fetchone()[0]
    assert redeemed[0] > 0 and redeemed[0] == redeemed[1] == redeemed[2] == coupons
    truth = _rows(d / "truth/channel_uplift.csv")[1:]
    per_channel = dict(con.sql(f"""
        SELECT k.channel, count(*) FROM read_csv('{d}/campaigns/contacts.csv') c
        JOIN read_csv('{d}/campaigns/campaigns.csv') k USING (campaign_id) GROUP BY 1""").fetchall())
    for channel, planted, n, nt, nh, ate in truth:
        assert int(n) == int(nt) + int(nh) == per_channel.get(channel, 0)
        bound = float(planted) + 4 * math.sqrt(float(planted) * (1 - float(planted)) / max(int(n), 1))
        assert 0.0 <= float(ate) <= bound, channel
        if float(planted) == 0.0:
            assert float(ate) == 0.0


def test_acquisition_spend_overclaims(small: tuple[Path, GenerateSummary]) -> None:
    d = small[0]
    con = duckdb.connect()
    rows = con.sql(f"""
        WITH real AS (SELECT acquisition_channel AS channel, count(*) AS n
                      FROM read_csv('{d}/truth/persons.csv')
                      WHERE acquired_at >= DATE '2025-11-01' GROUP BY 1)
        SELECT s.channel, sum(new_customers_reported) / any_value(real.n), sum(spend_cny)
        FROM read_csv('{d}/acquisition/spend.csv') s JOIN real USING (channel)
        GROUP BY 1""").fetchall()
    assert len(rows) == 6
    for channel, ratio, spend in rows:
        assert 1.08 <= ratio <= 1.22 and spend > 0, channel


# --- faults -------------------------------------------------------------------------------------

def _faults(d: Path) -> list[dict[str, str]]:
    with (d / "truth/faults.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _count(faults: list[dict[str, str]], file: str, kind: str) -> int:
    return sum(1 for f in faults if f["file"].startswith(file) and f["kind"] == kind)


def test_clean_run_has_no_faults(small: tuple[Path, GenerateSummary]) -> None:
    assert _faults(small[0]) == []


def test_faults_are_injected_and_recorded(faulty: Path) -> None:
    d = faulty
    faults = _faults(d)
    assert {f["kind"] for f in faults} == FAULT_KINDS
    # malformed rows and unparseable timestamps
    for rel, width, ts_col in (("crm/customers.csv", 9, 5), ("service/tickets.csv", 10, 6)):
        rows = _rows(d / rel)[1:]
        assert sum(len(r) != width for r in rows) == _count(faults, rel, "malformed_row") >= 2
        bad_ts = 0
        for r in rows:
            if len(r) == width:
                try:
                    datetime.strptime(r[ts_col], "%Y-%m-%d %H:%M:%S")
                except ValueError:
                    bad_ts += 1
        assert bad_ts == _count(faults, rel, "unparseable_timestamp") >= 2
    # malformed JSON lines
    broken = 0
    for path in (d / "events").glob("*.jsonl"):
        for line in path.open(encoding="utf-8"):
            try:
                json.loads(line)
            except json.JSONDecodeError:
                broken += 1
    assert broken == _count(faults, "events/", "malformed_json") >= 3
    # GBK instead of UTF-8
    raw = (d / "surveys/responses.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gbk")
    assert re.search(r"[\u4e00-\u9fff]", text)
    rows = list(csv.reader(io.StringIO(text)))
    assert sum(1 for r in rows[1:] if r[1] == "") == _count(faults, "surveys/", "missing_identifier")
    # missing required column
    assert "status" not in _header(d / "billing/invoices.csv")


def test_duplicates_future_late_negative(faulty: Path) -> None:
    d = faulty
    faults = _faults(d)
    con = duckdb.connect()
    dup_orders = con.sql(f"""SELECT count(*) - count(DISTINCT order_id)
                             FROM read_parquet('{d}/orders/*.parquet')""").fetchone()[0]
    assert dup_orders == _count(faults, "orders/", "duplicate_row") > 0
    negative = con.sql(f"""SELECT count(DISTINCT order_id) FROM read_parquet('{d}/orders/*.parquet')
                           WHERE item_count < 0 OR net_amount < 0""").fetchone()[0]
    assert negative == _count(faults, "orders/", "negative_value") >= 4
    events = []
    for path in sorted((d / "events").glob("*.jsonl")):
        month = path.stem.split("_", 1)[1]
        for line in path.open(encoding="utf-8"):
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            events.append((month, ev["event_id"], ev["event_ts"], line))
    ids = [e[1] for e in events]
    exact = len(events) - len({e[3] for e in events})
    assert len(ids) - len(set(ids)) == exact == _count(faults, "events/", "duplicate_row") > 0
    limit = datetime(END.year, END.month, END.day) + timedelta(days=31)
    future = {e[1] for e in events
              if datetime.fromisoformat(e[2].replace("Z", "+00:00")).replace(tzinfo=None) > limit}
    assert len(future) == _count(faults, "events/", "future_timestamp") >= 5
    late = {e[1] for e in events if e[1] not in future and _local_month(e[2]) != e[0]}
    assert len(late) == _count(faults, "events/", "late_event") > 0
    tickets = _rows(d / "service/tickets.csv")[1:]
    fut_t = sum(1 for r in tickets if len(r) == 10 and _after(r[6], limit))
    assert fut_t == _count(faults, "service/", "future_timestamp") >= 3
    anon = sum(1 for r in tickets if len(r) == 10 and r[1] == r[2] == r[3] == "")
    assert anon == _count(faults, "service/", "missing_identifier") >= 3


def _after(ts: str, limit: datetime) -> bool:
    try:
        return datetime.strptime(ts, "%Y-%m-%d %H:%M:%S") > limit
    except ValueError:
        return False


def _local_month(ts: str) -> str:
    t = datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(SHANGHAI)
    return f"{t.year:04d}_{t.month:02d}"


def test_faults_leave_clean_truth_and_files_alone(small: tuple[Path, GenerateSummary],
                                                  faulty: Path) -> None:
    d = small[0]
    for rel in ("truth/persons.csv", "truth/identity.csv", "truth/channel_uplift.csv",
                "truth/driver_effects.csv", "billing/memberships.csv", "campaigns/contacts.csv",
                "cancellation/sessions.jsonl"):
        assert _md5(d / rel) == _md5(faulty / rel), rel


# --- planted effects (larger sample) ------------------------------------------------------------

def test_purchase_heterogeneity(big: Path) -> None:
    con = _con(big)
    mean, cv = con.sql("""SELECT avg(n), stddev_samp(n) / avg(n) FROM (
        SELECT person_id, count(*) AS n FROM op WHERE person_id IS NOT NULL GROUP BY 1)""").fetchone()
    assert cv > 1.8 / math.sqrt(mean)  # a Poisson with that mean has CV 1/sqrt(mean)


def test_planted_driver_effects_visible_in_raw_data(big: Path) -> None:
    con = _con(big)
    rows = dict(con.sql("""
        WITH ol AS (SELECT order_id, local_ts,
                           lead(local_ts) OVER (PARTITION BY person_id ORDER BY local_ts) AS nxt
                    FROM op WHERE person_id IS NOT NULL),
             k AS (SELECT order_id, bool_or(category = 'product_quality') AS q,
                          bool_or(category = 'delivery_delay') AS dd
                   FROM t WHERE order_id IS NOT NULL GROUP BY 1)
        SELECT CASE WHEN k.q THEN 'quality' WHEN k.dd THEN 'delay'
                    WHEN k.order_id IS NULL THEN 'none' ELSE 'other' END,
               avg((nxt IS NULL)::INT)
        FROM ol LEFT JOIN k USING (order_id)
        WHERE local_ts < TIMESTAMP '2026-03-01' GROUP BY 1""").fetchall())
    # share of orders after which the person never buys again
    assert rows["quality"] > 1.4 * rows["none"]
    assert rows["delay"] > 1.2 * rows["none"]
    # no-effect tickets arrive at the same rate for churned and retained persons
    rate = dict(con.sql("""
        WITH n AS (SELECT person_id, count(*) AS k FROM tp
                   WHERE category IN ('product_inquiry', 'address_change') GROUP BY 1)
        SELECT churned_at IS NOT NULL,
               sum(coalesce(k, 0)) / sum(date_diff('day', greatest(acquired_at,
                   TIMESTAMP '2024-11-01'), TIMESTAMP '2026-11-01') / 365.25)
        FROM p LEFT JOIN n USING (person_id) GROUP BY 1""").fetchall())
    assert 0.85 < rate[True] / rate[False] < 1.15
    nps = dict(con.sql(f"""
        SELECT o.is_returned OR o.delivered_at::DATE > o.promised_delivery_date,
               avg((s.score <= 6)::INT)
        FROM read_csv('{big}/surveys/responses.csv') s JOIN o USING (order_id)
        WHERE s.survey_type = 'nps' GROUP BY 1""").fetchall())
    assert nps[True] > 2 * nps[False]


def test_planted_campaign_uplift_visible_in_raw_data(big: Path) -> None:
    con = _con(big)
    rows = con.sql(f"""
        WITH c AS (
            SELECT k.channel, c.assigned_group = 'treatment' AS treated,
                   EXISTS (SELECT 1 FROM op WHERE op.person_id = i.person_id
                           AND op.local_ts >= k.launched_at
                           AND op.local_ts < k.launched_at + INTERVAL 30 DAY) AS y
            FROM read_csv('{big}/campaigns/contacts.csv') c
            JOIN read_csv('{big}/campaigns/campaigns.csv') k USING (campaign_id)
            JOIN idt i ON i.identifier_type = 'crm_id' AND i.identifier_value = c.crm_id)
        SELECT channel, avg(y::INT) FILTER (WHERE treated), avg(y::INT) FILTER (WHERE NOT treated),
               count(*) FILTER (WHERE treated), count(*) FILTER (WHERE NOT treated)
        FROM c GROUP BY 1""").fetchall()
    truth = {r[0]: (float(r[1]), float(r[5])) for r in _rows(big / "truth/channel_uplift.csv")[1:]}
    assert len(rows) == 5
    for channel, yt, yh, nt, nh in rows:
        est = yt - yh
        se = math.sqrt(yt * (1 - yt) / nt + yh * (1 - yh) / nh)
        planted, ate = truth[channel]
        assert abs(est - ate) < 4 * se, channel
        if planted >= 0.03:
            assert est > 2 * se, channel
        if planted == 0.0:
            assert est < 3 * se, channel
