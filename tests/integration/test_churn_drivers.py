"""Churn attribution against the planted truth of the default demo (20,000 customers, 24 months).

The generator plants hazard multipliers of the dropout at the purchase where an experience happens
(product quality x3 strongest, delivery delay x2, app error x1.6, return/refund x1.3) and
no-effect tickets (product inquiry, address change) that arrive regardless of purchases.
rpt_churn_drivers must rank the strongest planted driver first and give the no-effect drivers
intervals that include 1.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import duckdb
import pytest

END = date(2026, 10, 31)
#: planted driver (truth/driver_effects.csv) -> driver in rpt_churn_drivers
DRIVER_NAMES = {"product_quality": "ticket_product_quality", "delivery_delay": "delivery_delay",
                "app_error": "app_error", "return_refund": "return_refund",
                "payment_failure": "payment_failure", "product_inquiry": "ticket_product_inquiry",
                "address_change": "ticket_address_change"}


@pytest.fixture(scope="module")
def demo(demo_sources: Path, demo_built) -> tuple[Path, Path]:
    """The test run's demo sample (tests/conftest.py) and its built candidate."""
    return demo_sources, demo_built[0]


def _truth(sources: Path) -> list[dict[str, str]]:
    with (sources / "truth" / "driver_effects.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _drivers(db: Path) -> dict[str, dict]:
    with duckdb.connect(str(db), read_only=True) as con:
        cur = con.execute("select * from marts.rpt_churn_drivers")
        cols = [d[0] for d in cur.description]
        return {r[0]: dict(zip(cols, r, strict=False)) for r in cur.fetchall()}


def test_strongest_planted_driver_ranks_first(demo):
    sources, db = demo
    truth = _truth(sources)
    # payment_failure's truth value is a churn probability, not a multiplier: not comparable
    multipliers = [t for t in truth if t["has_effect"] == "true" and t["driver"] != "payment_failure"]
    strongest = max(multipliers, key=lambda t: float(t["hazard_multiplier"]))["driver"]
    drivers = _drivers(db)
    top = [d for d in drivers.values() if d["driver_rank"] == 1]
    assert len(top) == 1
    assert top[0]["driver"] == DRIVER_NAMES[strongest], sorted(
        (d["driver_rank"] or 99, d["driver"], round(d["odds_ratio"], 2)) for d in drivers.values())
    assert top[0]["odds_ratio_ci_lower"] > 1


def test_no_effect_drivers_intervals_include_one(demo):
    sources, db = demo
    drivers = _drivers(db)
    for t in _truth(sources):
        if t["has_effect"] == "false":
            d = drivers[DRIVER_NAMES[t["driver"]]]
            assert d["is_ranked"], d
            assert d["odds_ratio_ci_lower"] <= 1 <= d["odds_ratio_ci_upper"], d


def test_churn_events_are_typed_with_a_basis(demo):
    _, db = demo
    with duckdb.connect(str(db), read_only=True) as con:
        rows = dict(con.execute(
            "select type_basis, count(*) from marts.fct_churn_events group by type_basis").fetchall())
        involuntary_typed = con.execute(
            "select count(*) from marts.fct_churn_events where voluntariness = 'involuntary' "
            "and churn_type <> 'involuntary' and type_basis <> 'stated_reason'").fetchone()[0]
    assert {"stated_reason", "non_payment", "preceding_experience", "no_evidence"} <= set(rows)
    assert involuntary_typed == 0
