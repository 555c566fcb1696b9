"""Planted truths written to ``truth/`` (what the marts are supposed to rediscover)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import params as P
from .campaigns import Campaigns
from .persons import Persons
from .purchases import CAUSES, Purchases
from .window import Window

PERSON_ID_SQL = "CASE WHEN {c} < 0 THEN NULL ELSE 'P' || lpad(({c} + 1)::VARCHAR, 7, '0') END"


def persons_truth(persons: Persons, purchases: Purchases, is_member: np.ndarray,
                  window: Window) -> pa.Table:
    """truth/persons.csv (numeric person index; formatted by ``PERSONS_SELECT``)."""
    churned = np.isfinite(purchases.death_t)
    return pa.table({
        "person": pa.array(np.arange(persons.n, dtype=np.int64)),
        "acquired_at": pa.array(window.local_seconds(persons.acquired), pa.int64()),
        "acquisition_channel": pa.array(np.array(P.ACQ_CHANNELS)[persons.acq_channel]),
        "region": pa.array(np.array(P.REGIONS)[persons.region]),
        "city_tier": pa.array(persons.city_tier, pa.int8()),
        "lam": pa.array(np.round(persons.lam, 6)),
        "p": pa.array(np.round(persons.p, 4)),
        "mean_spend": pa.array(np.round(persons.mean_spend, 2)),
        "is_prospect": pa.array(persons.is_prospect),
        "is_member": pa.array(is_member),
        "churned_at": pa.array(window.local_seconds(np.where(churned, purchases.death_t, 0.0)),
                               pa.int64(), mask=~churned),
        "churn_cause": pa.array(np.array(CAUSES)[purchases.cause], pa.string(),
                                mask=purchases.cause == 0),
    })


PERSONS_SELECT = f"""
SELECT {PERSON_ID_SQL.format(c='person')} AS person_id,
       strftime(make_timestamp(acquired_at * 1000000), '%Y-%m-%d %H:%M:%S') AS acquired_at,
       acquisition_channel, region, city_tier, lam, p, mean_spend, is_prospect, is_member,
       strftime(make_timestamp(churned_at * 1000000), '%Y-%m-%d %H:%M:%S') AS churned_at,
       churn_cause
FROM t
"""

IDENTITY_SELECT = f"""
SELECT identifier_type, identifier_value, {PERSON_ID_SQL.format(c='person_id')} AS person_id,
       is_shared
FROM t
"""


def driver_truth() -> pa.Table:
    """truth/driver_effects.csv."""
    m = P.DRIVER_MULTIPLIERS
    rows = [
        ("delivery_delay", m["delivery_delay"], True,
         "online order delivered after the promised date; multiplies that purchase's dropout p"),
        ("product_quality", m["product_quality"], True,
         "product quality problem on an order; multiplies that purchase's dropout p"),
        ("app_error", m["app_error"], True,
         "app error during an app order; multiplies that purchase's dropout p"),
        ("return_refund", m["return_refund"], True,
         "order returned and refunded; multiplies that purchase's dropout p"),
        ("payment_failure", P.P_CHURN_ON_NON_PAYMENT, True,
         "churn PROBABILITY (not a multiplier) when a membership ends non_payment after failed "
         "dunning and the person was still active"),
        ("product_inquiry", 1.0, False,
         "product inquiry tickets arrive independently of purchases and churn"),
        ("address_change", 1.0, False,
         "address change tickets arrive independently of purchases and churn"),
    ]
    return pa.table({
        "driver": [r[0] for r in rows],
        "hazard_multiplier": pa.array([float(r[1]) for r in rows]),
        "has_effect": [r[2] for r in rows],
        "description": [r[3] for r in rows],
    })


def uplift_truth(camp: Campaigns) -> pa.Table:
    """truth/channel_uplift.csv: planted uplift and the realised sample ATE per channel."""
    u = camp.uplift
    n = np.asarray(u["n_targets"], dtype=np.float64)
    ate = np.divide(np.asarray(u["ate_sum"], np.float64), n, out=np.zeros_like(n), where=n > 0)
    return pa.table({
        "channel": list(P.CAMPAIGN_CHANNELS),
        "planted_uplift": pa.array([P.UPLIFT[c] for c in P.CAMPAIGN_CHANNELS]),
        "n_targets": pa.array(np.asarray(u["n_targets"]).astype(np.int64)),
        "n_treatment": pa.array(np.asarray(u["n_treatment"]).astype(np.int64)),
        "n_holdout": pa.array(np.asarray(u["n_holdout"]).astype(np.int64)),
        "realized_ate": pa.array(np.round(ate, 6)),
    })


README = """# Planted truths

Written by `liucun generate`; the source exports never contain these. All times are local
(Asia/Shanghai) wall-clock `YYYY-MM-DD HH:MM:SS`.

## persons.csv (one row per real person)
- `person_id`: `P` + 7 digits (a person may own several CRM records and many identifiers).
- `acquired_at`: acquisition (= registration of the first CRM record); ~15 % precede the window.
- `acquisition_channel`: store, online_shop, app, mini_program, official_account, referral.
- `region`, `city_tier`: as in the CRM.
- `lam`: purchase rate per day (Gamma(r={r}, alpha={alpha}), capped at {cap}); 0 for prospects.
- `p`: dropout probability after each purchase, including the first (Beta({a}, {b})).
- `mean_spend`: person-level mean gross per order in CNY (Gamma-Gamma spirit; orders are lognormal
  around it with sigma {sigma}).
- `is_prospect`: registered in the CRM but never orders.
- `is_member`: started a paid membership in the window.
- `churned_at`: when the person became inactive for good (empty if active at the window end or a
  prospect). For dropouts it is the time of the last purchase; follow-ups of that last order
  (delivery, its ticket, its survey), billing of a dormant member until they cancel, no-effect
  tickets and campaign contacts may come later. Persons revived by a win-back campaign carry their
  final churn.
- `churn_cause`: natural_dropout, experience:<driver> (the dropout happened at a purchase with a bad
  experience and is attributed to the strongest one present), involuntary_non_payment,
  cancellation; empty if not churned.

## identity.csv (one row per identifier value)
- `identifier_type`: crm_id, phone, email, member_card, wechat_unionid, wechat_openid, device_id.
- `identifier_value`: exactly as in the sources for ids; phones normalised to 11 digits; emails
  lower-cased and trimmed (typo'd variants that appear in the CRM are listed as their own values).
- `person_id`: owner; empty for shared identifiers.
- `is_shared`: true for the placeholder phones {placeholders} (typed by cashiers) and for shared
  devices (kiosks, family tablets) used by {shared_min}+ persons each.

How the sources show a person's identifiers together (what an identity graph can link):
- CRM records carry crm_id with phone, email and member card. A duplicate CRM record (a second
  registration) always repeats the person's phone, or the email when there is no phone; a person
  with neither has no duplicate.
- WeChat member binding (会员绑定): every mini-program buyer binds. With a phone, {p_auth} of them
  authorise it on their first mini-program order of the export (the order carries unionid and
  phone); the others log in with their membership (a `login` event with crm_id, unionid and
  openid) at the start of their first WeChat session of the export. WeChat users without a mini-program order
  bind with that login too, except a share of {p_unbound} who never bind: their unionid and openids
  are seen together but not with a crm_id or phone (unless a WeChat template campaign contact
  shows them).
- The first session (of the export) of every app device starts with a login carrying crm_id; so
  does the first web session of a person who ever orders online. Web devices of people who never order online are
  the only devices that may stay anonymous.
- Orders carry the identifiers typical of their channel; checkout events, tickets, surveys and
  redeeming campaign contacts reference an order. Placeholder phones and shared devices link
  unrelated persons and must be excluded.

## driver_effects.csv
- `driver`, `hazard_multiplier` (multiplier of the dropout probability at the purchase where the
  experience happens, capped at {cap_p}; for payment_failure the churn probability), `has_effect`,
  `description`. No-effect drivers (product_inquiry, address_change) arrive as a Poisson process
  ({rates}/person-year) independent of purchases and churn. Also planted: a completed membership
  cancellation makes a still-active buyer churn with probability {p_cancel}.

## channel_uplift.csv (win-back campaigns)
- `channel`, `planted_uplift` (u_c: P(induced recall) of a target whose natural outcome Y0 is 0;
  requires delivery, so the per-delivered probability is u_c / reach), `n_targets`, `n_treatment`,
  `n_holdout`, `realized_ate` = mean(Y1 - Y0) over all the channel's targets (treatment and
  holdout): the sample average treatment effect an unbiased treatment-vs-holdout comparison of
  "purchased within the attribution window" is centred on. Reach: {reach}.

## faults.csv (header only unless generated with --faults)
- `file` (the file the faulty row was written to), `kind` (malformed_row, unparseable_timestamp,
  malformed_json, duplicate_row, late_event, future_timestamp, negative_value,
  missing_identifier, wrong_encoding, missing_column), `line` (1-based physical line, header
  included, for faults injected into written files), `key` (id of the affected row when known; the
  column name for missing_column), `description`. Faults never change the other truth files.

## Other planted mechanics
- Experiences: delivery delay on {p_delay} of online orders, quality problem on {p_quality} of all
  orders, app error on {p_app} of app orders, returns on {p_ret_on} of online / {p_ret_st} of store
  orders; each produces a ticket with probability {p_ticket}. Win-back recall orders carry no
  experiences.
- Memberships: {p_member} of buyers join at one of their in-window purchases; renewals fail
  first time with {p_fail}, each of two dunning retries recovers with {p_recover}.
- Campaigns: every {every} months, lapsed customers (last purchase {lap_min}-{lap_max} days ago)
  are split over the channels that can reach them; holdout share {holdout}; attribution window
  {window} days. A dormant person recalled by a campaign buys again after each purchase with
  probability {cont} (at least every 60 days on average) before dropping out again; {p_redeem} of
  treated natural buyers redeem the coupon anyway.
"""


def readme() -> str:
    """Render the truth README with the planted parameters."""
    return README.format(
        r=P.LAMBDA_SHAPE, alpha=P.LAMBDA_RATE, cap=P.LAMBDA_CAP, a=P.DROPOUT_A, b=P.DROPOUT_B,
        sigma=P.SPEND_SIGMA, placeholders=", ".join(P.PLACEHOLDER_PHONES),
        shared_min=P.SHARED_DEVICE_MIN_PERSONS, cap_p=P.DROPOUT_CAP,
        p_auth=P.P_WECHAT_PHONE_AUTH, p_unbound=P.P_WECHAT_UNBOUND,
        rates=", ".join(f"{k} {v}" for k, v in P.NO_EFFECT_TICKET_RATES.items()),
        p_cancel=P.P_CHURN_ON_CANCEL, reach=", ".join(f"{k} {v}" for k, v in P.REACH.items()),
        p_delay=P.P_DELIVERY_DELAY, p_quality=P.P_QUALITY, p_app=P.P_APP_ERROR,
        p_ret_on=P.P_RETURN_ONLINE, p_ret_st=P.P_RETURN_STORE, p_ticket=P.P_EXPERIENCE_TICKET,
        p_member=P.P_MEMBER, p_fail=P.P_FIRST_ATTEMPT_FAIL, p_recover=P.P_RETRY_RECOVER,
        every=P.CAMPAIGN_EVERY_MONTHS, lap_min=P.LAPSED_MIN_DAYS, lap_max=P.LAPSED_MAX_DAYS,
        holdout=P.HOLDOUT_SHARE, window=P.ATTRIBUTION_WINDOW_DAYS, cont=P.RECALL_CONTINUE_P,
        p_redeem=P.P_NATURAL_REDEEM)
