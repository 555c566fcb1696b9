"""Planted parameters of the demo generator.

Everything the downstream marts are supposed to rediscover lives here, in one place, so that the
truth files and the simulation cannot drift apart. Changing a value here changes both the simulated
data and the corresponding truth file.
"""

from __future__ import annotations

from typing import Final

# --- vocabularies -------------------------------------------------------------------------------

ACQ_CHANNELS: Final = ("store", "online_shop", "app", "mini_program", "official_account", "referral")
ACQ_CHANNEL_PROBS: Final = (0.30, 0.18, 0.14, 0.20, 0.08, 0.10)
#: Customer acquisition cost per channel (CNY per real new customer).
CAC: Final = {"store": 60.0, "online_shop": 120.0, "app": 90.0, "mini_program": 45.0,
              "official_account": 30.0, "referral": 20.0}
#: Cost per thousand impressions and click-through rate used to derive impressions and clicks.
CPM: Final = {"store": 8.0, "online_shop": 35.0, "app": 28.0, "mini_program": 18.0,
              "official_account": 12.0, "referral": 5.0}
CTR: Final = {"store": 0.004, "online_shop": 0.018, "app": 0.022, "mini_program": 0.030,
              "official_account": 0.025, "referral": 0.080}
#: Channels' own dashboards over-claim new customers by a factor drawn from this range.
OVERCLAIM_RANGE: Final = (1.10, 1.20)

ORDER_CHANNELS: Final = ("store", "online_shop", "app", "mini_program")
#: Base order-channel preference (store, online_shop, app, mini_program) per acquisition channel.
CHANNEL_PREF_BASE: Final = {
    "store": (0.75, 0.10, 0.05, 0.10),
    "online_shop": (0.10, 0.70, 0.10, 0.10),
    "app": (0.05, 0.10, 0.80, 0.05),
    "mini_program": (0.08, 0.07, 0.05, 0.80),
    "official_account": (0.15, 0.10, 0.05, 0.70),
    "referral": (0.10, 0.20, 0.30, 0.40),
}
CHANNEL_PREF_CONCENTRATION: Final = 6.0
#: Preferences below this are zeroed (the person simply never uses that channel).
CHANNEL_PREF_MIN: Final = 0.05

REGIONS: Final = ("Guangdong", "Zhejiang", "Jiangsu", "Shanghai", "Beijing", "Sichuan", "Hubei",
                  "Shandong", "Fujian", "Henan", "Hunan", "Shaanxi")
REGION_PROBS: Final = (0.17, 0.12, 0.11, 0.09, 0.08, 0.08, 0.06, 0.07, 0.06, 0.06, 0.05, 0.05)
#: P(city tier 1..4) per region.
TIER_PROBS: Final = (
    (0.45, 0.25, 0.20, 0.10), (0.25, 0.35, 0.25, 0.15), (0.20, 0.40, 0.25, 0.15),
    (1.0, 0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0), (0.00, 0.45, 0.30, 0.25),
    (0.00, 0.50, 0.30, 0.20), (0.00, 0.35, 0.40, 0.25), (0.00, 0.45, 0.35, 0.20),
    (0.00, 0.35, 0.35, 0.30), (0.00, 0.40, 0.35, 0.25), (0.00, 0.50, 0.30, 0.20),
)
TIER_SPEND_FACTOR: Final = (1.25, 1.10, 0.95, 0.85)
STORES_PER_REGION: Final = 8

# --- persons and purchases (BG/NBD + Gamma-Gamma spirit) ----------------------------------------

PRE_WINDOW_SHARE: Final = 0.15  # persons acquired in the 12 months before the window
PROSPECT_SHARE: Final = 0.04  # registered in the CRM, never order
ACQ_GROWTH_PER_YEAR: Final = 0.25  # log-growth of acquisitions per year
LAMBDA_SHAPE: Final = 0.8  # r of Gamma(r, alpha) purchase rate per day
LAMBDA_RATE: Final = 48.0  # alpha: mean rate r/alpha = 1/60 per day
LAMBDA_CAP: Final = 0.15  # per day
DROPOUT_A: Final = 1.0  # p ~ Beta(a, b), applied after every purchase (incl. the first)
DROPOUT_B: Final = 4.0
SPEND_SHAPE: Final = 4.0  # person mean spend ~ Gamma(shape, scale) * tier factor
SPEND_SCALE: Final = 70.0
SPEND_SIGMA: Final = 0.45  # lognormal sigma of an order's gross around the person's mean
DROPOUT_CAP: Final = 0.95

# --- experiences that raise churn (planted driver effects) --------------------------------------

ONLINE_CHANNELS: Final = ("online_shop", "app", "mini_program")
P_DELIVERY_DELAY: Final = 0.10  # online orders
P_QUALITY: Final = 0.04  # all orders
P_APP_ERROR: Final = 0.08  # app orders
P_RETURN_ONLINE: Final = 0.06
P_RETURN_STORE: Final = 0.015
#: Multiplier of the person's dropout probability at the purchase where the experience happens.
DRIVER_MULTIPLIERS: Final = {"delivery_delay": 2.0, "product_quality": 3.0, "app_error": 1.6,
                             "return_refund": 1.3}
P_EXPERIENCE_TICKET: Final = 0.60
#: No-effect ticket drivers: Poisson rate per person-year from acquisition to the window end.
NO_EFFECT_TICKET_RATES: Final = {"product_inquiry": 0.50, "address_change": 0.20}

# --- memberships and billing ---------------------------------------------------------------------

P_MEMBER: Final = 0.25
P_MONTHLY: Final = 0.70
PLAN_PRICE_CENTS: Final = {"monthly": 2500, "annual": 23800}
P_FIRST_ATTEMPT_FAIL: Final = 0.04
P_RETRY_RECOVER: Final = 0.40
DUNNING_RETRY_DAYS: Final = (3.0, 7.0)  # attempts 2 and 3, days after attempt 1
P_CHURN_ON_NON_PAYMENT: Final = 0.60  # involuntary churn
P_CHURN_ON_CANCEL: Final = 0.50  # a completed cancellation makes an active buyer churn
ALIVE_CANCEL_HAZARD_PER_DAY: Final = 0.025 / 30.0
DEAD_CANCEL_DELAY_MEAN_DAYS: Final = 45.0
P_SESSION_ABANDON: Final = 0.12
P_LOST_DEFLECTION: Final = 0.35
OFFER_ACCEPT: Final = {"discount_50_3m": 0.35, "pause_3m": 0.40, "downgrade_annual": 0.25}

# --- win-back campaigns --------------------------------------------------------------------------

CAMPAIGN_CHANNELS: Final = ("sms", "email", "wechat_template", "outbound_call", "app_push")
COST_PER_CONTACT: Final = {"sms": 0.05, "email": 0.01, "wechat_template": 0.10,
                           "outbound_call": 3.00, "app_push": 0.005}
INCENTIVE_VALUE: Final = {"sms": 20.0, "email": 20.0, "wechat_template": 20.0,
                          "outbound_call": 30.0, "app_push": 15.0}
#: Planted behavioural uplift per target: P(induced recall) for a target whose Y0 is 0.
UPLIFT: Final = {"sms": 0.03, "email": 0.0, "wechat_template": 0.05, "outbound_call": 0.10,
                 "app_push": 0.02}
#: Share of treated contacts that are delivered (answered, for calls).
REACH: Final = {"sms": 0.95, "email": 0.93, "wechat_template": 0.97, "outbound_call": 0.45,
                "app_push": 0.90}
OPEN_RATE: Final = {"sms": 0.0, "email": 0.22, "wechat_template": 0.40, "outbound_call": 0.0,
                    "app_push": 0.10}
#: Relative share of the lapsed pool each channel gets (among channels that can reach a person).
CHANNEL_ALLOCATION: Final = {"sms": 0.30, "email": 0.15, "wechat_template": 0.25,
                             "outbound_call": 0.10, "app_push": 0.20}
HOLDOUT_SHARE: Final = 0.20
ATTRIBUTION_WINDOW_DAYS: Final = 30
CAMPAIGN_EVERY_MONTHS: Final = 2
LAPSED_MIN_DAYS: Final = 90
LAPSED_MAX_DAYS: Final = 365
P_NATURAL_REDEEM: Final = 0.35  # treated natural buyers who use the coupon anyway
RECALL_CONTINUE_P: Final = 0.55  # revived person: P(another purchase) after each revival order
RECALL_MIN_RATE: Final = 1.0 / 60.0  # per day, floor of a revived person's purchase rate

# --- identity ------------------------------------------------------------------------------------

P_DUP_CRM: Final = 0.05
P_PHONE: Final = 0.90
P_EMAIL: Final = 0.55
P_WECHAT_OTHER: Final = 0.60  # WeChat users among persons not acquired through WeChat
P_PLACEHOLDER_PHONE: Final = 0.02  # store orders where the cashier typed a placeholder
PLACEHOLDER_PHONES: Final = ("13800000000", "13900000000")
P_ANON_STORE: Final = 0.08  # store cash sales with no identifier although the buyer is known
#: WeChat member binding (会员绑定). Mini-program buyers always bind: those with a phone who draw
#: below this authorise it (手机号快速验证) on their first exported mini-program order, the others
#: log in with their membership in their first WeChat session.
P_WECHAT_PHONE_AUTH: Final = 0.70
#: WeChat users who never bind their membership (only those without a mini-program order).
P_WECHAT_UNBOUND: Final = 0.03

# --- events --------------------------------------------------------------------------------------

BROWSE_SESSIONS_PER_ORDER: Final = 1.2  # browsing sessions per expected purchase, while alive
OA_READS_PER_MONTH: Final = 0.4  # official-account article sessions per follower-month
SHARED_DEVICE_MIN_PERSONS: Final = 30
