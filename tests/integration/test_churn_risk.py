"""fct_churn_risk on a generated sample: the population, the BG/NBD fit on the warehouse's own
purchases, and the fit telling the generator's planted churners from customers still alive."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

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


def test_spend_model_on_the_warehouse_matches_an_independent_summary_and_fit(built):
    """m_x recomputed with pandas from fct_orders (qualifying orders, a day's orders summed, the first
    day left out), the Gamma-Gamma fit refitted on it: the pipeline's summary, fit, expected values
    and worth-recalling flags agree."""
    from flows.models import gamma_gamma

    db, _ = built
    with duckdb.connect(str(db), read_only=True) as con:
        orders = con.execute(
            "select customer_id, order_date, net_amount::double as net from marts.fct_orders "
            "where is_qualifying and customer_id is not null and order_date <= ?", [END]).df()
        rfm = con.execute("select customer_id, frequency, mean_repeat_purchase_value "
                          "from intermediate.int_customer_rfm").df().set_index("customer_id")
        fit = con.execute("select p, q, gamma, n_customers, population_mean_purchase_value, "
                          "spend_frequency_correlation from marts.rpt_gamma_gamma_fit").df()
        scores = con.execute("select customer_id, repeat_purchase_days, mean_repeat_purchase_value, "
                             "expected_purchase_value, expected_purchases_90d, expected_revenue_90d "
                             "from marts.fct_customer_bgnbd_scores").df()
        risk = con.execute("select risk_tier, margin_at_risk_90d::double as margin, recall_recommendation, "
                           "recall_recommendation_reason from marts.fct_churn_risk").df()
    days = orders.groupby(["customer_id", "order_date"], as_index=False)["net"].sum().sort_values(["customer_id", "order_date"])
    days["nth"] = days.groupby("customer_id").cumcount()
    mine = days[days.nth > 0].groupby("customer_id")["net"].agg(x="count", m="mean")
    repeaters = rfm[rfm.frequency > 0]
    assert len(mine) == len(repeaters) > 300
    joined = repeaters.join(mine, how="inner")
    assert len(joined) == len(mine) and (joined.frequency == joined.x).all()
    assert (joined.mean_repeat_purchase_value - joined.m).abs().max() < 1e-9
    assert rfm[rfm.frequency == 0].mean_repeat_purchase_value.isna().all()

    refit = gamma_gamma.fit(mine.x.to_numpy(), mine.m.to_numpy())
    assert len(fit) == 1 and fit.n_customers[0] == len(mine)
    for name in ("p", "q", "gamma"):
        assert fit[name][0] == pytest.approx(getattr(refit.params, name), rel=1e-5), name
    assert fit.population_mean_purchase_value[0] == pytest.approx(refit.params.population_mean, rel=1e-5)
    assert fit.spend_frequency_correlation[0] == pytest.approx(np.corrcoef(mine.x, mine.m)[0, 1], rel=1e-9)

    x = scores.repeat_purchase_days.to_numpy(float)
    m = scores.mean_repeat_purchase_value.fillna(0).to_numpy(float)
    p, q, g = fit.p[0], fit.q[0], fit.gamma[0]
    np.testing.assert_allclose(scores.expected_purchase_value, p * (g + x * m) / (p * x + q - 1), rtol=1e-12)
    np.testing.assert_allclose(scores.expected_revenue_90d, scores.expected_purchases_90d * scores.expected_purchase_value,
                               rtol=1e-12)
    # shrinkage: every repeat customer's expected value lies between their own mean and the population's
    own = scores[scores.repeat_purchase_days > 0]
    pop = fit.population_mean_purchase_value[0]
    lo = np.minimum(own.mean_repeat_purchase_value, pop) - 1e-9
    hi = np.maximum(own.mean_repeat_purchase_value, pop) + 1e-9
    assert ((own.expected_purchase_value >= lo) & (own.expected_purchase_value <= hi)).all()

    worth = risk[risk.recall_recommendation == "worth_recalling"]
    assert len(worth) > 0 and (worth.risk_tier != "low").all() and (worth.margin >= 10).all()
    at_risk_not_worth = risk[(risk.recall_recommendation == "not_worth_recalling") & (risk.risk_tier != "low")]
    assert (at_risk_not_worth.margin < 10).all() and len(at_risk_not_worth) > 0
