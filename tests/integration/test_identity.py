"""Identity graph on the default demo sample (what `liucun demo` generates) against its planted truth.

- Stitching: pairwise precision and recall of the identifier -> customer map
  (intermediate.int_identifiers_mapped_to_customers) against truth/identity.csv, over identifiers
  present in both, shared identifiers left out.
- Recall is measured against every true pair and must be >= 0.99. As a diagnostic, it is also
  printed against the *linkable* pairs: those an oracle that knows the truth can connect through
  the person's own source records (records that carry two of the person's identifiers, shared
  identifiers ignored); identifiers the sources never show together cannot be stitched by any
  method.
- The planted shared identifiers (placeholder phones, shared devices) are excluded as noisy, and no
  person's own identifier is.
- customer_id is stable: after adding an unrelated person (a new CRM record and an order), every
  existing identifier keeps its customer_id.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from flows.ingest.pii import pii_hash_sql
from tests.support.pipeline import build_candidate

# exactly what `liucun demo` uses
AS_OF = date(2026, 10, 31)  # the last day of the test run's demo sample (tests/conftest.py demo_sources)
IDENTITY_MODELS = ("int_identifiers_observed", "int_identifier_pairs_observed",
                   "int_identifiers_excluded", "int_identifiers_clustered",
                   "int_identifiers_mapped_to_customers", "dim_customers", "rpt_identity_quality",
                   "rpt_identity_excluded_identifiers")

NEW_CRM_ID = "C00000042"  # generated CRM ids are C + 8 digits >= 10,000,000: no clash
NEW_PHONE = "19900000042"
NEW_ORDER_ID = "O0000000042"


def _truth(con: duckdb.DuckDBPyConnection, sources: Path) -> pd.DataFrame:
    """truth/identity.csv with phones and emails hashed exactly as ingestion hashes them."""
    path = str(sources / "truth" / "identity.csv")
    return con.execute(
        f"""
        select identifier_type,
               case identifier_type
                   when 'phone' then {pii_hash_sql('phone', 'identifier_value')}
                   when 'email' then {pii_hash_sql('email', 'identifier_value')}
                   else identifier_value
               end as identifier_value,
               person_id,
               cast(is_shared as boolean) as is_shared
        from read_csv($path, all_varchar = true)
        """,
        {"path": path, "salt": os.environ["LIUCUN_PII_SALT"]},
    ).df()


def _mapping(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute(
        "select identifier_type, identifier_value, customer_id "
        "from intermediate.int_identifiers_mapped_to_customers").df()


def _evidence(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """(record, identifier) from the raw tables: identifiers one source record shows together.
    Records about an order (its checkout event, tickets, surveys, the redeeming campaign contact)
    count with the order. Written independently of the dbt models."""
    return con.execute(
        """
        with records as (
            select 'crm:' || crm_id as rec, crm_id, phone_hash, email_hash, member_card,
                   null as unionid, null as openid, null as device
            from raw.customers
            union all
            select 'order:' || order_id, crm_id, phone_hash, null, member_card, wechat_unionid,
                   null, null
            from raw.orders
            union all
            select coalesce(case when event_type = 'checkout'
                                 then 'order:' || json_extract_string(properties, '$.order_id') end,
                            'event:' || event_id),
                   crm_id, null, null, null, wechat_unionid, wechat_openid, device_id
            from raw.events
            union all
            select coalesce('order:' || order_id, 'ticket:' || ticket_id), crm_id, phone_hash,
                   null, null, null, null, null
            from raw.tickets
            union all
            select coalesce('order:' || redeemed_order_id, 'contact:' || contact_id), crm_id,
                   phone_hash, null, null, wechat_unionid, null, null
            from raw.campaign_contacts
            union all
            select coalesce('order:' || order_id, 'survey:' || response_id), crm_id, null, null,
                   null, null, null, null
            from raw.survey_responses
        )
        select distinct rec, identifier_type, identifier_value
        from records
        unpivot (identifier_value for identifier_type in (
            crm_id as 'crm_id', phone_hash as 'phone', email_hash as 'email',
            member_card as 'member_card', unionid as 'wechat_unionid', openid as 'wechat_openid',
            device as 'device_id'))
        """).df()


def _oracle_components(evidence: pd.DataFrame, person: dict[tuple[str, str], str]) -> dict:
    """Union-find of each person's identifiers over the records that show two of them together."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(x: tuple[str, str]) -> tuple[str, str]:
        root = x
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    first_of: dict[tuple[str, str], tuple[str, str]] = {}  # (record, person) -> first identifier
    for rec, t, v in evidence.itertuples(index=False):
        node = (t, v)
        p = person.get(node)
        if p is None:  # shared or unknown identifier: no evidence
            continue
        find(node)
        anchor = first_of.setdefault((rec, p), node)
        a, b = find(anchor), find(node)
        if a != b:
            parent[a] = b
    return {n: find(n) for n in parent}


def _pairs(*groupings: pd.Series) -> int:
    counts = Counter(zip(*groupings, strict=True))
    return sum(n * (n - 1) // 2 for n in counts.values())


def test_stitching_precision_and_recall_against_planted_truth(demo_built, demo_sources: Path):
    db, summary = demo_built
    timings = {r["unique_id"].split(".")[-1]: r.get("execution_time") or 0.0
               for r in summary.results if r["unique_id"].startswith("model.")}
    with duckdb.connect(str(db), read_only=True) as con:
        truth = _truth(con, demo_sources)
        mapping = _mapping(con)
        evidence = _evidence(con)

    own = truth[~truth.is_shared]
    joined = mapping.merge(own, on=["identifier_type", "identifier_value"], how="inner")
    assert len(joined) > 0.7 * len(mapping), "most mapped identifiers must be in the truth"
    assert mapping.identifier_value.map(len).gt(0).all()

    person = dict(zip(zip(own.identifier_type, own.identifier_value, strict=True), own.person_id,
                      strict=True))
    oracle = _oracle_components(evidence, person)
    joined["oracle"] = [oracle.get((t, v), (t, v))
                        for t, v in zip(joined.identifier_type, joined.identifier_value, strict=True)]

    true_pairs = _pairs(joined.person_id)
    predicted_pairs = _pairs(joined.customer_id)
    correct_pairs = _pairs(joined.customer_id, joined.person_id)
    linkable_pairs = _pairs(joined.person_id, joined.oracle)
    correct_linkable = _pairs(joined.customer_id, joined.person_id, joined.oracle)
    precision = correct_pairs / predicted_pairs
    recall = correct_pairs / true_pairs
    recall_linkable = correct_linkable / linkable_pairs
    identity_seconds = sum(timings.get(m, 0.0) for m in IDENTITY_MODELS)
    print(f"\nidentity stitching on the demo sample ({len(joined):,} identifiers in map and truth, "
          f"{mapping.customer_id.nunique():,} customers for {own.person_id.nunique():,} persons):"
          f"\n  precision            {precision:.4f}  ({correct_pairs:,} / {predicted_pairs:,} pairs)"
          f"\n  recall (linkable)    {recall_linkable:.4f}  ({correct_linkable:,} / {linkable_pairs:,})"
          f"\n  recall (all pairs)   {recall:.4f}  ({correct_pairs:,} / {true_pairs:,}; the sources"
          f" link {linkable_pairs / true_pairs:.4f} of them)"
          f"\n  identity models      {identity_seconds:.2f}s dbt execution time "
          + ", ".join(f"{m} {timings.get(m, 0.0):.2f}s" for m in IDENTITY_MODELS))
    assert precision >= 0.99
    assert recall >= 0.99


def test_planted_shared_identifiers_are_excluded(demo_built, demo_sources: Path):
    db, _ = demo_built
    with duckdb.connect(str(db), read_only=True) as con:
        truth = _truth(con, demo_sources)
        excluded = con.execute(
            "select identifier_type, identifier_value, linked_identifiers, max_links_per_identifier, "
            "exclusion_reason from marts.rpt_identity_excluded_identifiers").df()
        observed = con.execute(
            "select distinct identifier_type, identifier_value "
            "from intermediate.int_identifiers_observed").df()
        mapped = _mapping(con)
    key = ["identifier_type", "identifier_value"]
    shared = truth[truth.is_shared].merge(observed, on=key)
    assert set(shared.identifier_type) == {"phone", "device_id"}  # both kinds occur in the sample
    missed = shared.merge(excluded, on=key, how="left", indicator=True)
    assert (missed._merge == "both").all(), missed[missed._merge != "both"]
    # every person's own identifiers stay linkable
    wrongly = truth[~truth.is_shared].merge(excluded, on=key)
    assert wrongly.empty, wrongly
    assert (excluded.linked_identifiers > excluded.max_links_per_identifier).all()
    assert excluded.exclusion_reason.str.startswith("linked to ").all()
    assert shared.merge(mapped, on=key).empty  # shared identifiers map to no customer


def _add_unrelated_person(src: Path, dst: Path) -> None:
    """A copy of the sources (symlinks) with one new person: a CRM record and an order."""
    shutil.copytree(src, dst, copy_function=os.symlink)
    crm = dst / "crm" / "customers.csv"
    text = (src / "crm" / "customers.csv").read_text(encoding="utf-8")
    crm.unlink()
    crm.write_text(text + f"{NEW_CRM_ID},{NEW_PHONE},New.Person@Example.com,,online_shop,"
                          "2026-10-20 10:00:00,Zhejiang,2,2026-10-20 10:00:00\n", encoding="utf-8")
    orders = dst / "orders" / "orders_2026_10.parquet"
    table = pq.read_table(src / "orders" / "orders_2026_10.parquet")
    row = {name: None for name in table.schema.names}
    row.update(order_id=NEW_ORDER_ID, ordered_at=datetime(2026, 10, 21, 3, 0, tzinfo=UTC),
               channel="online_shop", crm_id=NEW_CRM_ID, phone=NEW_PHONE, item_count=1,
               gross_amount=Decimal("99.00"), discount_amount=Decimal("0.00"),
               net_amount=Decimal("99.00"), refund_amount=Decimal("0.00"), is_returned=False,
               promised_delivery_date=date(2026, 10, 24))
    orders.unlink()
    pq.write_table(pa.concat_tables([table, pa.Table.from_pylist([row], schema=table.schema)]),
                   orders)


def test_customer_id_is_stable_when_unrelated_data_arrives(demo_built, demo_sources: Path,
                                                           tmp_path: Path):
    db, _ = demo_built
    with duckdb.connect(str(db), read_only=True) as con:
        before = _mapping(con)
        customers_before = con.execute("select count(*) from marts.dim_customers").fetchone()[0]
    assert NEW_CRM_ID not in set(before.identifier_value)

    sources = tmp_path / "sources"
    _add_unrelated_person(demo_sources, sources)
    db2, _ = build_candidate(sources, tmp_path / "candidate", AS_OF, os.environ["LIUCUN_PII_SALT"])
    with duckdb.connect(str(db2), read_only=True) as con:
        after = _mapping(con)
        customers_after = con.execute("select count(*) from marts.dim_customers").fetchone()[0]
        new_order = con.execute(
            "select customer_id from marts.fct_orders where order_id = ?", [NEW_ORDER_ID]).fetchone()

    key = ["identifier_type", "identifier_value"]
    both = before.merge(after, on=key, how="left", suffixes=("_before", "_after"))
    changed = both[both.customer_id_before != both.customer_id_after]
    assert changed.empty, f"{len(changed)} identifiers changed customer_id:\n{changed.head()}"
    new = after.merge(before[key], on=key, how="left", indicator=True)
    new = new[new._merge == "left_only"]
    assert sorted(new.identifier_type) == ["crm_id", "email", "phone"]
    assert new.customer_id.nunique() == 1
    assert new.customer_id.iloc[0] not in set(before.customer_id)
    assert new_order == (new.customer_id.iloc[0],)
    assert customers_after == customers_before + 1
