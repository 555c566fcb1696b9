"""The notebook a user would write instead of liucun: monthly first-purchase cohorts, S/E/N/CRR and
strict retention, and the activity lifecycle, with pandas, from an orders file that already has a
customer id (so it gets identity resolution for free). A reference point for `make bench`, not
part of the product.

    python -m tests.benchmarks.pandas_notebook ORDERS.parquet   # columns customer_id, ordered_at, amount

Prints one JSON line: wall seconds, peak RSS (MB) and the sizes of what it computed.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import pandas as pd


def notebook(path: str) -> dict[str, float]:
    started = time.perf_counter()
    df = pd.read_parquet(path, columns=["customer_id", "ordered_at", "amount"])
    df = df[(df["amount"] > 0) & df["customer_id"].notna()]
    df["month"] = pd.to_datetime(df["ordered_at"]).dt.to_period("M")
    act = df[["customer_id", "month"]].drop_duplicates()
    first = act.groupby("customer_id")["month"].min().rename("cohort")
    act = act.join(first, on="customer_id")
    act["k"] = (act["month"] - act["cohort"]).apply(lambda x: x.n)
    cohort = act.groupby(["cohort", "k"])["customer_id"].nunique().unstack(fill_value=0)
    months = sorted(act["month"].unique())
    by_month = {m: set(g) for m, g in act.groupby("month")["customer_id"]}
    rows = []
    for prev, cur in zip(months, months[1:], strict=False):
        s, e = by_month[prev], by_month[cur]
        n = set(act.loc[(act["month"] == cur) & (act["cohort"] == cur), "customer_id"])
        retained = len(s & e)
        rows.append({"month": str(cur), "S": len(s), "E": len(e), "N": len(n), "crr": (len(e) - len(n)) / len(s),
                     "strict": retained / len(s), "returning": retained, "resurrecting": len(e - s - n),
                     "dormant": len(s - e)})
    monthly = pd.DataFrame(rows)
    return {"seconds": time.perf_counter() - started,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "orders": len(df), "cohorts": len(cohort), "months": len(monthly)}


if __name__ == "__main__":
    print(json.dumps(notebook(sys.argv[1])))
