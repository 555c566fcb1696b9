"""Materialise the numeric event columns into one JSON-lines file per event month."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .events import DEV_APP1, DEV_APP2, DEV_SHARED, DEV_WEB, EVENT_CHANNELS, EVENT_TYPES, Events
from .identity import Identity
from .orders import Orders
from .window import UTC_OFFSET_S, Window
from .writers import Writer, take_masked

QUERIES = np.array(["连衣裙", "T恤", "牛仔裤", "羽绒服", "运动鞋", "卫衣", "衬衫", "外套", "短裤",
                    "双十一", "618", "新品", "会员", "优惠券", "包邮", "大码", "儿童", "袜子",
                    "内衣", "帽子", "dress", "jeans", "hoodie", "sneakers", "coat", "sale",
                    "羊毛衫", "防晒衣", "风衣", "半身裙", "睡衣", "背包", "围巾", "手套", "礼盒",
                    "情侣", "白色", "黑色", "oversize", "linen"])
ERRORS = np.array(["E1001", "E1002", "E2003", "E3001", "E5003", "E5004"])
SCREENS = np.array(["home", "product", "cart", "payment", "payment", "order_confirm"])
METHODS = np.array(["password", "sms_code", "wechat"])
TARGETS = np.array(["friend", "moments"])

EVENTS_SELECT = """
SELECT printf('%015x', event_num) AS event_id,
       CASE channel
         WHEN 'app' THEN strftime(make_timestamp((ts_ms // 1000 - {off}) * 1000000),
                                  '%Y-%m-%dT%H:%M:%SZ')
         WHEN 'web' THEN strftime(make_timestamp((ts_ms - {off} * 1000) * 1000),
                                  '%Y-%m-%dT%H:%M:%S.%gZ')
         ELSE strftime(make_timestamp(ts_ms // 1000 * 1000000), '%Y-%m-%dT%H:%M:%S') || '+08:00'
       END AS event_ts,
       device_id, wechat_openid, wechat_unionid, crm_id, event_type, channel,
       CASE event_type
         WHEN 'login' THEN json_object('method', method)
         WHEN 'search' THEN json_object('query', query)
         WHEN 'view' THEN CASE WHEN article >= 0
                               THEN json_object('article_id', 'A' || lpad(article::VARCHAR, 4, '0'))
                               ELSE json_object('sku', 'SKU' || lpad(sku::VARCHAR, 5, '0')) END
         WHEN 'add_to_cart' THEN json_object('sku', 'SKU' || lpad(sku::VARCHAR, 5, '0'),
                                             'qty', qty)
         WHEN 'share' THEN CASE WHEN article >= 0
                                THEN json_object('article_id', 'A' || lpad(article::VARCHAR, 4, '0'),
                                                 'target', target)
                                ELSE json_object('sku', 'SKU' || lpad(sku::VARCHAR, 5, '0'),
                                                 'target', target) END
         WHEN 'checkout' THEN json_object('order_id', order_id,
                                          'sku', 'SKU' || lpad(sku::VARCHAR, 5, '0'),
                                          'amount', (amount_cents::DECIMAL(18,0) / 100)::DECIMAL(12,2))
         WHEN 'app_error' THEN json_object('error_code', error_code, 'screen', screen)
       END AS properties
FROM t
""".replace("{off}", str(UTC_OFFSET_S))


class _Lookup:
    """Identifier strings as Arrow arrays, resolved per event with ``take`` (no Python strings)."""

    def __init__(self, ident: Identity, orders: Orders) -> None:
        n = ident.crm_id.size
        self.n = n
        self.crm = pa.array(ident.crm_id)
        self.devices = pa.array(np.concatenate([ident.app_dev1, ident.app_dev2, ident.web_dev,
                                                ident.shared_devices]))
        self.openids = pa.array(np.concatenate([ident.openid_mp, ident.openid_oa]))
        self.unionid = pa.array(ident.unionid)
        self.order_id = pa.array(np.append(orders.order_id, ""))
        self.net = np.append(orders.table.column("net_cents").to_numpy(), 0)


def _vocab(codes: np.ndarray, table: np.ndarray) -> pa.Array:
    c = codes.astype(np.int64)
    return take_masked(pa.array(table), c, c >= 0)


def month_table(ev: dict[str, np.ndarray], lk: _Lookup) -> pa.Table:
    """Arrow table of one month's events with identifier strings resolved."""
    who = ev["person"].astype(np.int64)
    ch = ev["channel"]
    dev = ev["device"]
    n = lk.n
    dev_idx = np.select([dev == DEV_APP1, dev == DEV_APP2, dev == DEV_WEB, dev == DEV_SHARED],
                        [who, n + who, 2 * n + who, 3 * n + ev["shared"]], 0)
    wx = (ch == 1) | (ch == 2)
    ono = ev["order_no"]
    has_order = ono >= 0
    return pa.table({
        "event_num": pa.array(ev["event_num"], pa.int64()),
        "ts_ms": pa.array(ev["ts_ms"], pa.int64()),
        "device_id": take_masked(lk.devices, dev_idx, dev != 0),
        "wechat_openid": take_masked(lk.openids, np.where(ch == 2, n + who, who), wx),
        "wechat_unionid": take_masked(lk.unionid, who, wx),
        "crm_id": take_masked(lk.crm, who, ev["logged"]),
        "event_type": _vocab(ev["etype"], np.array(EVENT_TYPES)),
        "channel": _vocab(ch, np.array(EVENT_CHANNELS)),
        "method": _vocab(ev["method"], METHODS),
        "query": _vocab(ev["query"], QUERIES),
        "article": pa.array(ev["article"], pa.int32()),
        "sku": pa.array(ev["sku"], pa.int32()),
        "qty": pa.array(ev["qty"], pa.int16()),
        "target": _vocab(ev["share_target"], TARGETS),
        "order_id": take_masked(lk.order_id, ono, has_order),
        "amount_cents": pa.array(lk.net[np.where(has_order, ono, -1)], pa.int64()),
        "error_code": _vocab(ev["error"], ERRORS),
        "screen": _vocab(ev["error"], SCREENS),
    })


def write_events(writer: Writer, events: Events, ident: Identity, orders: Orders,
                 window: Window) -> dict[str, int]:
    """Write ``events/events_YYYY_MM.jsonl`` per file month (rows already sorted)."""
    fm = events.cols["file_month"]
    bounds = np.searchsorted(fm, np.arange(window.months + 1), side="left")
    written: dict[str, int] = {}
    lookup = _Lookup(ident, orders)
    for mi, (y, m) in enumerate(window.month_keys):
        lo, hi = int(bounds[mi]), int(bounds[mi + 1])
        part = {k: v[lo:hi] for k, v in events.cols.items()}
        rel = f"events/events_{y:04d}_{m:02d}.jsonl"
        written[rel] = writer.write(rel, month_table(part, lookup), EVENTS_SELECT, "json")
    return written
