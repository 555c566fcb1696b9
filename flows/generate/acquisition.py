"""Acquisition spend per month and channel, consistent with the simulated acquisitions."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import params as P
from .persons import Persons
from .window import Window


def build_spend(rng: np.random.Generator, persons: Persons, window: Window) -> pa.Table:
    """acquisition/spend.csv: spend = real new customers x channel CAC x noise; dashboards
    over-claim new customers by 10-20 %."""
    nch = len(P.ACQ_CHANNELS)
    inw = persons.acquired >= 0
    month = window.month_index(persons.acquired[inw])
    counts = np.bincount(month * nch + persons.acq_channel[inw].astype(np.int64),
                         minlength=window.months * nch).reshape(window.months, nch)
    cac = np.array([P.CAC[c] for c in P.ACQ_CHANNELS])
    cpm = np.array([P.CPM[c] for c in P.ACQ_CHANNELS])
    ctr = np.array([P.CTR[c] for c in P.ACQ_CHANNELS])
    spend = np.round(counts * cac * rng.lognormal(0.0, 0.08, counts.shape), 2)
    impressions = np.round(spend / cpm * 1000 * rng.lognormal(0.0, 0.1, counts.shape))
    clicks = np.round(impressions * ctr * rng.lognormal(0.0, 0.1, counts.shape))
    reported = np.round(counts * rng.uniform(*P.OVERCLAIM_RANGE, counts.shape))
    months = np.array([f"{y:04d}-{m:02d}" for y, m in window.month_keys])
    return pa.table({
        "month": pa.array(np.repeat(months, nch)),
        "channel": pa.array(np.tile(np.array(P.ACQ_CHANNELS), window.months)),
        "spend_cents": pa.array(np.round(spend * 100).astype(np.int64).ravel()),
        "impressions": pa.array(impressions.astype(np.int64).ravel()),
        "clicks": pa.array(clicks.astype(np.int64).ravel()),
        "new_customers_reported": pa.array(reported.astype(np.int64).ravel()),
    })


SPEND_SELECT = """
SELECT month, channel, (spend_cents::DECIMAL(18,0) / 100)::DECIMAL(12,2) AS spend_cny,
       impressions, clicks, new_customers_reported
FROM t
"""
