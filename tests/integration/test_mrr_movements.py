"""Membership revenue on a generated sample, recomputed from the staging rows with pandas and numpy
in another way than the models: every customer's MRR day by day (an array of days per customer,
in fen), its changes classified from consecutive days, months read off the daily values — then
compared with fct_customer_mrr, rpt_mrr_movements and the dunning marts, row for row. The
ChartMogul worked examples and the movement rules are hand-worked dbt unit tests
(models/*/memberships/_memberships__models.yml)."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.integration.conftest import END

ZONE = "Asia/Shanghai"  # flows/demo/liucun.yml business_timezone
MONTHS = {"monthly": 1, "annual": 12}  # var membership_plan_period_months


def _local_date(utc: pd.Series) -> pd.Series:
    return pd.to_datetime(utc).dt.tz_localize("UTC").dt.tz_convert(ZONE).dt.date


def _add_months(d: date, n: int) -> date:
    return (pd.Timestamp(d) + pd.DateOffset(months=n)).date()


@pytest.fixture(scope="module")
def tables(built):
    db, _ = built
    with duckdb.connect(str(db), read_only=True) as con:
        q = con.execute
        return {
            "members": q("select membership_id, crm_id, plan, started_at, ended_at from staging.stg_billing__memberships").df(),
            "invoices": q("select membership_id, billing_period_start, attempted_at, attempt_number, amount, plan, "
                          "status from staging.stg_billing__invoices").df(),
            "ids": q("select identifier_value as crm_id, customer_id from intermediate.int_identifiers_mapped_to_customers "
                     "where identifier_type = 'crm_id'").df(),
            "fct": q("select * from marts.fct_customer_mrr").df(),
            "rpt": q("select * from marts.rpt_mrr_movements order by month_start").df(),
            "recovery": q("select * from marts.rpt_dunning_recovery order by month_start").df(),
            "attempts": q("select * from marts.rpt_dunning_attempts order by month_start, attempt_number").df(),
        }


def _attempts(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Attempts made by the as-of date with their billed period and rank among its attempts."""
    inv = t["invoices"].copy()
    inv["day"] = _local_date(inv.attempted_at)
    inv = inv[inv.day <= END].copy()
    period = pd.to_datetime(inv.billing_period_start).dt.date
    inv["period"] = [p if pd.notna(p) else d for p, d in zip(period, inv.day, strict=True)]
    inv = inv.sort_values(["membership_id", "period", "attempt_number", "attempted_at"])
    inv["rank"] = inv.groupby(["membership_id", "period"]).cumcount() + 1
    return inv


def _billed_periods(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    inv = _attempts(t)
    first = inv.groupby(["membership_id", "period"]).first()
    first["paid"] = inv.assign(p=inv.status == "paid").groupby(["membership_id", "period"]).p.any()
    return first.reset_index()


def _daily_mrr(t: dict[str, pd.DataFrame]) -> tuple[np.ndarray, list[str], date]:
    """(MRR in fen: customers x days, customer ids, first day)."""
    periods = _billed_periods(t)
    m = t["members"].copy()
    m["start"] = _local_date(m.started_at)
    m = m[m.start <= END].merge(t["ids"], on="crm_id", how="left").set_index("membership_id")
    ended = _local_date(m.ended_at.where(m.ended_at.notna(), pd.Timestamp("2200-01-01")))
    m["end"] = ended.where(ended <= END, None)
    periods = periods[periods.membership_id.isin(m.index)]
    first_day = min(periods.period)
    days = (END - first_day).days + 1
    customers = sorted(m.customer_id.dropna().unique())
    row = {c: i for i, c in enumerate(customers)}
    diff = np.zeros((len(customers), days + 1), dtype=np.int64)
    for ms, p in periods.groupby("membership_id"):
        if not p.paid.any():
            continue  # never a member
        info = m.loc[ms]
        p = p.sort_values("period")
        plans = p.plan.where(p.plan.notna(), info.plan)
        months = plans.map(MONTHS).astype(int).to_numpy()
        fen = [int(round(float(a) * 100 / k)) for a, k in zip(p.amount, months, strict=True)]
        starts = list(p.period)
        paid_through = max(_add_months(s, int(k)) for s, k, ok in zip(starts, months, p.paid, strict=True) if ok)
        end = None if info.end is None else max(info.end, paid_through)  # end_of_paid_period
        for k, s in enumerate(starts):
            s = max(s, info.start)
            stop = starts[k + 1] if k + 1 < len(starts) else end
            if end is not None and stop is not None:
                stop = min(stop, end)
            if stop is not None and stop <= s:
                continue
            diff[row[info.customer_id], (s - first_day).days] += fen[k]
            if stop is not None and stop <= END:
                diff[row[info.customer_id], (stop - first_day).days] -= fen[k]
    return np.cumsum(diff[:, :days], axis=1), customers, first_day


def test_mrr_recomputed_day_by_day_matches_the_marts(tables):
    mrr, customers, first_day = _daily_mrr(tables)
    days = mrr.shape[1]
    before = np.concatenate([np.zeros((len(customers), 1), dtype=np.int64), mrr[:, :-1]], axis=1)
    had_before = np.maximum.accumulate(before > 0, axis=1)  # MRR on some earlier day
    change = mrr != before
    kinds = {
        "new": change & (before == 0) & (mrr > 0) & ~had_before,
        "reactivation": change & (before == 0) & (mrr > 0) & had_before,
        "churn": change & (before > 0) & (mrr == 0),
        "expansion": change & (before > 0) & (mrr > before),
        "contraction": change & (mrr > 0) & (mrr < before),
    }
    assert sum(k.sum() for k in kinds.values()) == change.sum()  # every change has exactly one kind
    size = np.abs(mrr - before)
    day_dates = [first_day + timedelta(days=d) for d in range(days)]
    month_of = np.array([d.replace(day=1) for d in day_dates])
    months = sorted(set(month_of))
    rows = []
    for mo in months:
        cols = np.nonzero(month_of == mo)[0]
        start = before[:, cols[0]]
        end = mrr[:, cols[-1]]
        moved = change[:, cols].any(axis=1)
        keep = (start > 0) | (end > 0) | moved
        for i in np.nonzero(keep)[0]:
            r = {"customer_id": customers[i], "month_start": mo, "mrr_start": start[i], "mrr_end": end[i],
                 "changes": int(change[i, cols].sum())}
            for k, mask in kinds.items():
                r[k] = int((size[i, cols] * mask[i, cols]).sum())
                r[k + "_count"] = int(mask[i, cols].sum())
            rows.append(r)
    mine = pd.DataFrame(rows).set_index(["customer_id", "month_start"]).sort_index()
    fct = tables["fct"].copy()
    fct["month_start"] = pd.to_datetime(fct.month_start).dt.date
    fct = fct.set_index(["customer_id", "month_start"]).sort_index()
    assert len(mine) > 1000 and mine.index.equals(fct.index)
    fen = lambda s: (s.astype(float) * 100).round().astype(np.int64)  # noqa: E731
    pairs = {"mrr_start": "mrr_start", "mrr_end": "mrr_end", "new": "new_mrr", "expansion": "expansion_mrr",
             "contraction": "contraction_mrr", "churn": "churned_mrr", "reactivation": "reactivation_mrr"}
    for a, b in pairs.items():
        assert (mine[a] == fen(fct[b])).all(), b
    for a, b in {"new_count": "new_count", "reactivation_count": "reactivation_count",
                 "churn_count": "churn_count", "changes": "changes"}.items():
        assert (mine[a] == fct[b]).all(), b
    # the demo has every kind of movement but reactivations (a person joins once)
    assert all(mine[k].sum() > 0 for k in ("new", "expansion", "contraction", "churn"))

    # the monthly report, with ChartMogul's policies (defaults) and rates
    rpt = tables["rpt"].assign(month_start=lambda d: pd.to_datetime(d.month_start).dt.date).set_index("month_start")
    assert list(rpt.index) == months
    by_month = mine.groupby(level="month_start").sum()
    counted = mine[(mine.churn_count > 0) & (mine.mrr_start > 0) & (mine.mrr_end == 0)].groupby(level="month_start").size()
    starts = mine[mine.mrr_start > 0].groupby(level="month_start").size()
    ends = mine[mine.mrr_end > 0].groupby(level="month_start").size()
    for mo in months:
        r, b = rpt.loc[mo], by_month.loc[mo]
        assert fen(pd.Series([r.mrr_start, r.mrr_end]) ).tolist() == [b.mrr_start, b.mrr_end]
        assert int(round(float(r.churned_mrr) * 100)) == b.churn
        s, e, c = starts.get(mo, 0), ends.get(mo, 0), counted.get(mo, 0)
        assert (r.customers_start, r.customers_end, r.churned_customers) == (s, e, c), mo
        if s:
            assert r.logo_churn_rate == pytest.approx(c / s, rel=1e-12)
            assert r.gross_mrr_churn_rate == pytest.approx((b.churn + b.contraction) / b.mrr_start, rel=1e-12)
            assert r.net_mrr_churn_rate == pytest.approx(
                (b.churn + b.contraction - b.expansion - b.reactivation) / b.mrr_start, rel=1e-12, abs=1e-15)
        assert r.arpa == pytest.approx(b.mrr_end / 100 / e, rel=1e-12)
    # LTV: ARPA over the mean logo churn of the (up to) six months before
    rates = rpt.logo_churn_rate.to_numpy(dtype=float)
    for k, mo in enumerate(months):
        prior = [x for x in rates[max(0, k - 6):k] if not np.isnan(x)]
        if prior and np.mean(prior) > 0:
            assert rpt.ltv[mo] == pytest.approx(rpt.arpa[mo] / np.mean(prior), rel=1e-9), mo
            assert rpt.trailing_churn_months[mo] == len(prior)
        else:
            assert pd.isna(rpt.ltv[mo]), mo
    assert rpt.ltv.notna().sum() >= 6


def test_dunning_recomputed_from_the_attempts(tables):
    inv = _attempts(tables)
    first = inv[inv["rank"] == 1]
    failed = first[first.status == "failed"].set_index(["membership_id", "period"])
    paid_rank = inv[inv.status == "paid"].groupby(["membership_id", "period"])["rank"].min()
    m = tables["members"].set_index("membership_id")
    ended = _local_date(m.ended_at.where(m.ended_at.notna(), pd.Timestamp("2200-01-01"))) <= END
    failed = failed.join(paid_rank.rename("paid_at"))
    failed["month"] = [d.replace(day=1) for d in failed.day]
    failed["ended"] = ended.reindex(failed.index.get_level_values(0)).to_numpy()
    failed["status"] = np.where(failed.paid_at.notna(), "recovered", np.where(failed.ended, "lost", "open"))
    assert len(failed) > 20 and (failed.status == "recovered").sum() > 5 and (failed.status == "lost").sum() > 5

    rec = tables["recovery"].assign(month_start=lambda d: pd.to_datetime(d.month_start).dt.date).set_index("month_start")
    assert sorted(rec.index) == sorted(failed.month.unique())
    for mo, g in failed.groupby("month"):
        r = rec.loc[mo]
        n = g.status.value_counts()
        assert (r.failed_invoices, r.recovered_invoices, r.lost_invoices, r.open_invoices) == (
            len(g), n.get("recovered", 0), n.get("lost", 0), n.get("open", 0)), mo
        amount = g.amount.astype(float)
        assert float(r.recovered_amount) == pytest.approx(amount[g.status == "recovered"].sum(), abs=1e-9)
        assert r.recovery_rate == pytest.approx(amount[g.status == "recovered"].sum() / amount.sum(), rel=1e-12)

    att = tables["attempts"].assign(month_start=lambda d: pd.to_datetime(d.month_start).dt.date)
    retries = inv.join(failed[["month", "paid_at", "amount"]].rename(columns={"amount": "owed"}),
                       on=["membership_id", "period"], how="inner")
    retries = retries[(retries["rank"] >= 2) & (retries.paid_at.isna() | (retries["rank"] <= retries.paid_at))]
    expected = retries.groupby(["month", "rank"]).agg(
        retried=("rank", "size"), recovered=("paid_at", lambda s: int((s == retries.loc[s.index, "rank"]).sum())))
    got = att.set_index(["month_start", "attempt_number"])[["invoices_retried", "recovered_invoices"]]
    assert list(got.index) == list(expected.index)
    assert (got.invoices_retried.to_numpy() == expected.retried.to_numpy()).all()
    assert (got.recovered_invoices.to_numpy() == expected.recovered.to_numpy()).all()
