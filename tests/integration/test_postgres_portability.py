"""The same dbt project builds on PostgreSQL (a throwaway cluster) and gives the same retention."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import psycopg2
import pytest

from flows.models.dbt_runner import run_dbt
from flows.settings import Settings
from tests.support.pipeline import copy_raw_to_postgres
from tests.support.postgres import throwaway_cluster

pytestmark = pytest.mark.postgres

IDENTITY_QUERY = ("select customer_id, customer_key, crm_id, identifiers, crm_ids, phones, emails, "
                  "member_cards, wechat_unionids, wechat_openids, device_ids, first_seen_at, "
                  "acquisition_channel, orders, net_revenue from marts.dim_customers")
QUALITY_QUERY = "select metric_group, metric, value, base from marts.rpt_identity_quality"
RETENTION_MARTS_QUERY = (
    "select 'retention', period_grain || ':' || cast(period_start as varchar), segment_type || ':' || segment_value, customers_start, "
    "customers_end, customers_new, customers_retained, revenue_retained_net from marts.rpt_retention_rate "
    "union all select 'cohort', period_grain || ':' || cohort_type || ':' || cast(cohort_period_start as varchar) || '+' "
    "|| cast(period_number as varchar), segment_type || ':' || segment_value, cohort_size, active_customers, "
    "orders, active_customers_cumulative, revenue from marts.rpt_cohort_retention "
    "union all select 'cohort_means', period_grain || ':' || cohort_type || '+' || cast(period_number as varchar), "
    "segment_type || ':' || segment_value, cohorts, customers, active_customers, active_customers_cumulative, "
    "round(cast(retention_rate_simple_mean as numeric(20, 10)) * 100000000) "  # to 1e-8, whole: the column is decimal(38,2)
    "from marts.rpt_cohort_retention_means "
    "union all select 'lifecycle', period_grain || ':' || cast(period_start as varchar), '', customers_active, customers_new, "
    "customers_returning, customers_resurrecting, customers_dormant from marts.rpt_activity_lifecycle")


SURVIVAL_QUERY = ("select group_type, group_value, duration_days, customers_at_risk, churned, censored, "
                  "survival, survival_ci_low, survival_ci_high from marts.rpt_survival_curves "
                  "union all select group_type, group_value, -1, customers, churned, censored, "
                  "coalesce(median_survival_days, -1), coalesce(median_ci_low_days, -1), "
                  "coalesce(median_ci_high_days, -1) from marts.rpt_survival_summary")


# the model marts: the renewal curves (observed: sums of logs; fitted: from ml), the customers' value
# and worth-recalling rule, and the Gamma-Gamma fit (from ml, renamed and cast)
# membership revenue: every customer-month's MRR and movements, each month's figures and rates, dunning
MRR_MARTS_QUERY = (
    "select 'customer', customer_id, cast(month_start as varchar), 0, mrr_start, mrr_end, "
    "new_mrr + expansion_mrr + reactivation_mrr, contraction_mrr + churned_mrr, churn_count "
    "from marts.fct_customer_mrr "
    "union all select 'month', '', cast(month_start as varchar), customers_end, mrr_start, mrr_end, "
    "round(cast(net_mrr_churn_rate as numeric(20, 10)), 8), round(cast(ltv as numeric(20, 10)), 6), "
    "churned_customers from marts.rpt_mrr_movements "
    "union all select 'dunning', '', cast(month_start as varchar), failed_invoices, failed_amount, "
    "recovered_amount, lost_amount, round(cast(recovery_rate as numeric(20, 10)), 8), open_invoices "
    "from marts.rpt_dunning_recovery "
    "union all select 'retry', '', cast(month_start as varchar), attempt_number, failed_amount, "
    "recovered_amount, cumulative_recovered_amount, round(cast(cumulative_recovery_rate as numeric(20, 10)), 8), "
    "invoices_retried from marts.rpt_dunning_attempts"
)
MODEL_MARTS_QUERY = ("select plan, renewals, coalesce(members_at_risk, -1), coalesce(cancelled, -1), is_projection, "
                     "'', observed_survival, fitted_survival, fitted_survival_ci_low "
                     "from marts.rpt_membership_renewals "
                     "union all select customer_id, 0, 0, 0, false, recall_recommendation, margin_at_risk_90d, "
                     "expected_purchase_value, expected_revenue_90d from marts.fct_churn_risk "
                     "union all select 'gamma-gamma', n_customers, 0, 0, converged, '', p, q, gamma "
                     "from marts.rpt_gamma_gamma_fit")


def _same_models(pg_rows: list[tuple], duck_rows: list[tuple]) -> bool:
    """Keys, counts and rules exactly, the estimates to 1e-12 (null where null)."""
    def close(x, y) -> bool:
        return (x is None) == (y is None) and (x is None or math.isclose(float(x), float(y), rel_tol=1e-12, abs_tol=1e-12))

    return len(pg_rows) == len(duck_rows) and all(
        p[:6] == d[:6] and all(close(x, y) for x, y in zip(p[6:], d[6:], strict=True))
        for p, d in zip(sorted(pg_rows, key=str), sorted(duck_rows, key=str), strict=True))


def _same_survival(pg_rows: list[tuple], duck_rows: list[tuple]) -> bool:
    """Counts and keys exactly, the estimates to 1e-12 (sums of logarithms in another order)."""
    if len(pg_rows) != len(duck_rows):
        return False
    return all(p[:6] == d[:6] and all(math.isclose(float(x), float(y), rel_tol=1e-12, abs_tol=1e-15)
                                      for x, y in zip(p[6:], d[6:], strict=True))
               for p, d in zip(sorted(pg_rows), sorted(duck_rows), strict=True))


def test_dbt_project_builds_on_postgres_with_identical_marts(built, tmp_path: Path):
    db, _ = built
    with throwaway_cluster() as pg:
        counts = copy_raw_to_postgres(db, pg)
        assert counts["orders"] > 0
        env = {"LIUCUN_DBT_TARGET": "postgres", "LIUCUN_PG_HOST": pg["host"], "LIUCUN_PG_PORT": pg["port"],
               "LIUCUN_PG_USER": pg["user"], "LIUCUN_PG_DBNAME": pg["dbname"]}
        summary = run_dbt(["build"], Settings().dbt_project_dir, tmp_path, env, {"as_of_date": "2025-12-31"})
        # exposures are no-op nodes of a build (they declare readers, nothing runs)
        failed = [(r["unique_id"], r["status"], r.get("message")) for r in summary.results
                  if r["status"] not in ("success", "pass")
                  and not (r["unique_id"].startswith("exposure.") and r["status"] == "no-op")]
        assert not failed, failed
        assert summary.count("unit_test") >= 5
        query = ("select period_start, customers_start, customers_end, customers_new, customers_retained, "
                 "round(cast(crr as numeric(20, 10)), 8) from marts.rpt_retention_rate "
                 "where segment_type = 'all' and base_definition = 'active_in_period' and period_grain = 'month' "
                 "order by period_start")
        with psycopg2.connect(pg["dsn"]) as con:
            cur = con.cursor()
            cur.execute(query)
            on_pg = [tuple(float(v) if i == 5 and v is not None else v for i, v in enumerate(r))
                     for r in cur.fetchall()]
            cur.execute("select count(*), sum(net_amount) from marts.fct_orders")
            pg_orders = cur.fetchone()
            cur.execute(IDENTITY_QUERY)
            pg_customers = sorted(cur.fetchall())
            cur.execute(QUALITY_QUERY)
            pg_quality = sorted(cur.fetchall())
            cur.execute(RETENTION_MARTS_QUERY)
            pg_retention = sorted(cur.fetchall())
            cur.execute(SURVIVAL_QUERY)
            pg_survival = cur.fetchall()
            cur.execute(MODEL_MARTS_QUERY)
            pg_models = cur.fetchall()
            cur.execute(MRR_MARTS_QUERY)
            pg_mrr = sorted(cur.fetchall())
            # every table the build read or wrote has planner statistics (reltuples is -1 until a
            # table is analyzed): without them PostgreSQL planned fct_churn_risk as nested loops
            cur.execute("select n.nspname || '.' || c.relname from pg_class c join pg_namespace n "
                        "on n.oid = c.relnamespace where c.relkind = 'r' and c.reltuples < 0 "
                        "and n.nspname in ('raw', 'ml', 'intermediate', 'marts')")
            unanalyzed = sorted(r[0] for r in cur.fetchall())
            cur.execute("select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                        "where c.relkind = 'r' and n.nspname in ('raw', 'marts')")
            analyzed_tables = cur.fetchone()[0]
    with duckdb.connect(str(db), read_only=True) as con:
        on_duck = [tuple(float(v) if i == 5 and v is not None else v for i, v in enumerate(r))
                   for r in con.execute(query).fetchall()]
        duck_orders = con.execute("select count(*), sum(net_amount) from marts.fct_orders").fetchone()
        duck_customers = sorted(con.execute(IDENTITY_QUERY).fetchall())
        duck_quality = sorted(con.execute(QUALITY_QUERY).fetchall())
        duck_retention = sorted(con.execute(RETENTION_MARTS_QUERY).fetchall())
        duck_survival = con.execute(SURVIVAL_QUERY).fetchall()
        duck_models = con.execute(MODEL_MARTS_QUERY).fetchall()
        duck_mrr = sorted(con.execute(MRR_MARTS_QUERY).fetchall())
    assert not unanalyzed, unanalyzed
    assert analyzed_tables >= 30
    assert len(on_pg) >= 10
    assert on_pg == on_duck
    assert pg_orders == duck_orders
    # the identity graph gives the same customers, with the same ids, on both engines
    assert len(pg_customers) > 1000
    assert pg_customers == duck_customers
    assert pg_quality == duck_quality
    # segments, cohorts and the activity lifecycle agree too
    assert len(pg_retention) > 100
    assert pg_retention == duck_retention
    # the Kaplan-Meier curves and their summaries too
    assert len(duck_survival) > 1000
    assert _same_survival(pg_survival, duck_survival)
    # the renewal curves, customer values and recall rule, and the spend model's fit too
    assert sum(1 for r in duck_models if r[0] == "monthly") > 10
    assert sum(1 for r in duck_models if r[5] == "worth_recalling") > 10
    assert _same_models(pg_models, duck_models)
    # MRR, its movements and rates, and dunning, to the fen
    assert sum(1 for r in duck_mrr if r[0] == "customer") > 1000
    assert sum(1 for r in duck_mrr if r[0] == "retry") > 5
    assert pg_mrr == duck_mrr
