"""fct_churn_risk on a generated sample: the population, the BG/NBD fit on the warehouse's own
purchases, and the fit telling the generator's planted churners from customers still alive."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from tests.integration.conftest import END


def test_one_row_per_active_or_dormant_customer_with_scores(built):
    db, _ = built
    with duckdb.connect(str(db), read_only=True) as con:
        n, distinct, scored, bad_p, bad_e = con.execute(
            "select count(*), count(distinct customer_id), count(p_alive), "
            "count(*) filter (where p_alive < 0 or p_alive > 1), "
            "count(*) filter (where expected_purchases_90d < 0) from marts.fct_churn_risk").fetchone()
        expected = con.execute(
            "select count(*) from marts.fct_customer_lifecycle where period_start = "
            "(select max(period_start) from marts.fct_customer_lifecycle) "
            "and stage in ('new', 'growth', 'mature', 'dormant')").fetchone()[0]
        fits = con.execute("select n_customers, r, alpha, a, b, converged, as_of_date from ml.bgnbd_fit").fetchall()
        rfm = con.execute("select count(*) from intermediate.int_customer_rfm").fetchone()[0]
        tiers = dict(con.execute("select risk_tier, count(*) from marts.fct_churn_risk group by 1").fetchall())
        reasons = con.execute("select count(*) from marts.fct_churn_risk where risk_reasons is null").fetchone()[0]
    assert n == distinct == expected > 1000
    assert scored == n and bad_p == 0 and bad_e == 0
    assert len(fits) == 1 and fits[0][0] == rfm and fits[0][5] and fits[0][6] == END
    assert all(v > 0 for v in fits[0][1:5])
    assert set(tiers) == {"high", "medium", "low"} and reasons == 0


def test_planted_churners_have_lower_p_alive(built, small_sources: Path):
    db, _ = built
    persons = pd.read_csv(small_sources / "truth" / "persons.csv", usecols=["person_id", "churned_at"])
    identity = pd.read_csv(small_sources / "truth" / "identity.csv")
    crm = identity[identity.identifier_type == "crm_id"][["identifier_value", "person_id"]]
    with duckdb.connect(str(db), read_only=True) as con:
        con.register("crm_truth", crm)
        con.register("persons_truth", persons)
        scored = con.execute(
            """select r.customer_id, r.p_alive, r.last_purchase_date,
                      max(p.churned_at) as churned_at, count(distinct p.person_id) as persons,
                      count(p.churned_at) as churned_persons
               from marts.fct_churn_risk as r
               join intermediate.int_identifiers_mapped_to_customers as m
                 on m.customer_id = r.customer_id and m.identifier_type = 'crm_id'
               join crm_truth as c on c.identifier_value = m.identifier_value
               join persons_truth as p on p.person_id = c.person_id
               group by r.customer_id, r.p_alive, r.last_purchase_date""").df()
    scored = scored[scored.persons == 1]  # one true person per customer
    churned_at = pd.to_datetime(scored.churned_at)
    churned = scored[churned_at.notna() & (pd.to_datetime(scored.last_purchase_date) <= churned_at.dt.normalize()
                                           + pd.Timedelta(days=1))]
    alive = scored[churned_at.isna()]
    assert len(churned) >= 50 and len(alive) >= 200, (len(churned), len(alive))
    assert churned.p_alive.mean() < alive.p_alive.mean() - 0.05, (churned.p_alive.mean(), alive.p_alive.mean())
