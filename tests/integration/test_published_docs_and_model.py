"""What a BI user finds in a publication of a real candidate: every mart column documented with its
dbt description (from the build's own manifest), and the BG/NBD model behind fct_churn_risk — its
fitted parameters with standard errors and one score row per customer it scored."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml

from expectations.gate import run_gate
from expectations.suites import GateParams
from flows.publish.duckdb_file import publish
from flows.publish.warehouse import Warehouse
from tests.integration.conftest import END
from tests.support.pipeline import DEMO_CONFIG

MODEL_MARTS = ("fct_customer_bgnbd_scores", "rpt_bgnbd_fit")
PARAMS = ("r", "alpha", "a", "b")


@pytest.fixture(scope="module")
def publication(built, tmp_path_factory: pytest.TempPathFactory):
    """The shared candidate published into a fresh warehouse folder (copies marts only: ~1 s)."""
    db, _ = built
    warehouse = Warehouse(tmp_path_factory.mktemp("published"))
    return db, publish(warehouse, db, "docs-and-model-run", END.isoformat(), {})


def _manifest_marts(db: Path) -> dict[str, dict]:
    """The marts models of the manifest the candidate's `dbt build` wrote."""
    manifest = json.loads((db.parent / "dbt_target" / "manifest.json").read_text())
    return {n["name"]: n for n in manifest["nodes"].values()
            if n["resource_type"] == "model" and n["schema"] == "marts"}


def test_every_published_mart_column_carries_its_dbt_description(publication):
    db, pub = publication
    models = _manifest_marts(db)
    with duckdb.connect(str(pub.path), read_only=True) as con:
        tables = dict(con.execute("select table_name, comment from duckdb_tables() "
                                  "where schema_name = 'marts'").fetchall())
        cols = con.execute("select table_name, column_name, comment from duckdb_columns() "
                           "where schema_name = 'marts' order by table_name, column_index").fetchall()
    assert set(tables) == set(models) == set(pub.row_counts) and set(MODEL_MARTS) <= set(tables)
    assert all(tables[t] == models[t]["description"] for t in tables), "table comments differ from dbt"
    assert len(cols) > 300
    undocumented = [(t, c) for t, c, _ in cols if not models[t]["columns"].get(c, {}).get("description", "").strip()]
    assert not undocumented, f"mart columns without a dbt description: {undocumented[:10]}"
    differ = [(t, c) for t, c, comment in cols if comment != models[t]["columns"][c]["description"]]
    assert not differ, f"published column comments differ from the dbt descriptions: {differ[:10]}"


def test_the_fitted_model_and_every_customers_scores_are_published(publication):
    db, pub = publication
    with duckdb.connect(str(pub.path), read_only=True) as con:
        con.execute(f"attach '{db}' as cand (read_only)")
        fits = con.execute("select * from marts.rpt_bgnbd_fit").df()
        fitted = con.execute("select * from cand.ml.bgnbd_fit").df()
        rfm = con.execute("select count(*) from cand.intermediate.int_customer_rfm").fetchone()[0]
        n, distinct, mismatched = con.execute(
            """select count(*), count(distinct s.customer_id),
                      count(*) filter (where m.customer_id is null or s.p_alive <> m.p_alive
                                       or s.expected_purchases_90d <> m.expected_purchases_90d
                                       or s.p_alive_ci_low is distinct from m.p_alive_ci_low
                                       or s.repeat_purchase_days <> m.frequency
                                       or s.first_to_last_purchase_days <> m.recency_days
                                       or s.days_since_first_purchase <> m.age_days)
               from marts.fct_customer_bgnbd_scores as s
               left join cand.ml.customer_bgnbd_scores as m using (customer_id)""").fetchone()
        for t in MODEL_MARTS:
            parquet = pub.parquet_dir / f"{t}.parquet"
            assert con.execute(f"select count(*) from read_parquet('{parquet}')").fetchone()[0] == pub.row_counts[t]
    assert len(fits) == 1 and len(fitted) == 1
    fit, source = fits.iloc[0], fitted.iloc[0]
    assert fit.as_of_date.date() == END and fit.n_customers == rfm > 1000 and fit.converged
    for p in PARAMS:
        assert fit[p] == source[p] > 0 and fit[f"{p}_se"] == source[f"{p}_se"]
        assert 0 < fit[f"{p}_se"] < fit[p] * 10 and math.isfinite(fit[f"{p}_se"]), p
    assert math.isclose(fit.mean_purchase_rate_per_day, fit.r / fit.alpha)
    assert math.isclose(fit.mean_dropout_probability, fit.a / (fit.a + fit.b))
    assert n == distinct == rfm == pub.row_counts["fct_customer_bgnbd_scores"] and mismatched == 0
    assert pub.row_counts["rpt_bgnbd_fit"] == 1


def test_marts_gate_refuses_a_model_missing_a_customers_score(built, tmp_path: Path):
    db, _ = built
    bad = tmp_path / "candidate.duckdb"  # the staging views name their catalog: keep the file name
    shutil.copy(db, bad)
    with duckdb.connect(str(bad)) as con:
        con.execute("delete from marts.fct_customer_bgnbd_scores where customer_id = "
                    "(select min(customer_id) from marts.fct_customer_bgnbd_scores)")
    kinds = frozenset(s["kind"] for s in yaml.safe_load(DEMO_CONFIG.read_text())["sources"].values())
    result = run_gate("marts", bad, GateParams(END, configured_kinds=kinds), tmp_path)
    assert not result.passed
    assert {f.table for f in result.blocking_failures} == {"marts.fct_customer_bgnbd_scores"}, result.failure_message()
