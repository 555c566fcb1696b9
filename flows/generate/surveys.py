"""Survey responses: NPS after some orders, CSAT after some resolved tickets.

NPS depends on whether the order had a bad experience (detractors mostly follow bad experiences).
Free-text comments are mostly Chinese, so the file's encoding matters.
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from .identity import Identity
from .orders import Orders
from .purchases import Purchases
from .rand import categorical, prefixed
from .tickets import Tickets
from .window import Window

log = logging.getLogger(__name__)

P_NPS = 0.10
P_CSAT = 0.35
NPS_GROUP_BAD = np.array([0.70, 0.20, 0.10])  # detractor, passive, promoter
NPS_GROUP_GOOD = np.array([0.12, 0.30, 0.58])
DETRACTOR_SCORES = np.array([0.08, 0.05, 0.08, 0.10, 0.14, 0.22, 0.33])

COMMENTS_BAD = {
    "delay": ("快递太慢了，等了一个星期", "物流一直不更新", "delivery was late again", "发货太慢"),
    "quality": ("质量不好，洗了一次就掉色", "衣服有线头，做工很差", "quality is poor",
                "收到的商品有破损"),
    "app_error": ("APP老是闪退，付款失败好几次", "支付页面一直报错", "the app keeps crashing"),
    "returned": ("退货流程太麻烦", "退款到现在还没到账", "尺码不合适，只能退了"),
}
COMMENTS_GOOD = ("很满意，会回购", "质量很好，穿着舒服", "服务态度很好", "物流很快，包装精美",
                 "great value", "性价比高", "店员很热情", "还不错")
COMMENTS_MID = ("一般般吧", "价格有点贵", "款式可以，颜色有色差", "ok", "还行")
COMMENTS_TICKET_BAD = ("问题一直没解决", "客服回复太慢", "处理结果不满意", "nobody called me back")
COMMENTS_TICKET_GOOD = ("客服很耐心，谢谢", "问题很快就解决了", "helpful agent", "处理及时")


def _choose(rng: np.random.Generator, texts: tuple[str, ...], n: int) -> np.ndarray:
    return np.array(texts, dtype="<U30")[rng.integers(0, len(texts), n)]


def build_surveys(rng: np.random.Generator, ident: Identity, purchases: Purchases, orders: Orders,
                  tickets: Tickets, window: Window) -> pa.Table:
    """Survey responses inside the window, sorted by response time."""
    # NPS after orders the brand can attribute to a known customer
    pick = np.nonzero(orders.has_crm & (rng.random(orders.pos.size) < P_NPS))[0]
    pos = orders.pos[pick]
    exp = {k: getattr(purchases, k)[pos] for k in ("delay", "quality", "app_error", "returned")}
    bad = exp["delay"] | exp["quality"] | exp["app_error"] | exp["returned"]
    base = np.where(np.isnan(orders.delivered_t[pick]), orders.t[pick], orders.delivered_t[pick])
    t_nps = base + rng.uniform(0.5, 5.0, pick.size)
    group = categorical(rng, np.where(bad[:, None], NPS_GROUP_BAD, NPS_GROUP_GOOD))
    det = categorical(rng, np.tile(DETRACTOR_SCORES, (pick.size, 1)))
    score = np.where(group == 0, det, np.where(group == 1, 7 + rng.integers(0, 2, pick.size),
                                               9 + rng.integers(0, 2, pick.size)))
    comment = np.full(pick.size, "", dtype="<U30")
    for key, texts in COMMENTS_BAD.items():
        m = exp[key] & (group == 0)
        comment[m] = _choose(rng, texts, int(m.sum()))
    m = (comment == "") & (group == 2)
    comment[m] = _choose(rng, COMMENTS_GOOD, int(m.sum()))
    m = (comment == "") & (group < 2)
    comment[m] = _choose(rng, COMMENTS_MID, int(m.sum()))
    comment[rng.random(pick.size) < 0.5] = ""

    # CSAT after resolved tickets
    res = np.nonzero(~np.isnan(tickets.resolved_t) & (rng.random(tickets.person.size) < P_CSAT))[0]
    sat = tickets.satisfaction[res].astype(np.int64)
    noise = rng.integers(-1, 2, res.size) * (rng.random(res.size) < 0.3)
    fallback = np.where(np.isin(tickets.category[res], (0, 1, 3, 6)), 2, 4)
    csat = np.clip(np.where(sat > 0, sat + noise, fallback + noise), 1, 5)
    t_csat = tickets.resolved_t[res] + rng.uniform(0.05, 2.0, res.size)
    c_comment = np.where(csat <= 2, _choose(rng, COMMENTS_TICKET_BAD, res.size),
                         _choose(rng, COMMENTS_TICKET_GOOD, res.size))
    c_comment[rng.random(res.size) < 0.6] = ""

    who = np.concatenate([orders.person[pick], tickets.person[res]])
    t = np.concatenate([t_nps, t_csat])
    kind = np.concatenate([np.zeros(pick.size, np.int8), np.ones(res.size, np.int8)])
    scores = np.concatenate([score, csat]).astype(np.int8)
    order_id = np.concatenate([orders.order_id[pick], np.full(res.size, "")])
    ticket_id = np.concatenate([np.full(pick.size, ""), tickets.ticket_id[res]])
    comments = np.concatenate([comment, c_comment])
    keep = t < window.days
    o = np.nonzero(keep)[0][np.lexsort((who[keep], t[keep]))]
    n = o.size
    response_id = prefixed("R", 100_000_000 + np.cumsum(rng.integers(1, 4, n)), 9)
    log.debug("surveys: %d responses", n)
    return pa.table({
        "response_id": pa.array(response_id),
        "crm_id": pa.array(ident.crm_id[who[o]]),
        "survey_type": pa.array(np.where(kind[o] == 0, "nps", "csat")),
        "score": pa.array(scores[o], pa.int8()),
        "responded_at": pa.array(window.local_seconds(t[o]), pa.int64()),
        "order_id": pa.array(order_id[o], pa.string(), mask=order_id[o] == ""),
        "ticket_id": pa.array(ticket_id[o], pa.string(), mask=ticket_id[o] == ""),
        "comment": pa.array(comments[o], pa.string(), mask=comments[o] == ""),
    })


SURVEYS_SELECT = """
SELECT response_id, crm_id, survey_type, score,
       strftime(make_timestamp(responded_at * 1000000), '%Y-%m-%d %H:%M:%S') AS responded_at,
       order_id, ticket_id, comment
FROM t
"""
