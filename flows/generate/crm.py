"""CRM export (one row per CRM record; ~5 % of persons have a second record)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import params as P
from .identity import REG_CHANNELS, Identity, format_phone, registration_channel
from .persons import Persons
from .window import Window


def build_crm(rng: np.random.Generator, persons: Persons, ident: Identity,
              window: Window) -> pa.Table:
    """crm/customers.csv rows: primary records followed by duplicate records."""
    dp = ident.dup_person
    reg_t = np.concatenate([persons.acquired, ident.dup_registered])
    n = reg_t.size
    upd_frac = np.where(rng.random(n) < 0.6, rng.random(n), 0.0)
    upd_t = reg_t + upd_frac * (window.days - 1e-3 - reg_t)
    phone = np.concatenate([format_phone(ident.phone, ident.phone_fmt),
                            format_phone(ident.phone[dp], ident.dup_phone_fmt)])
    email = np.concatenate([ident.email_typed, ident.dup_email_typed])
    card = np.concatenate([ident.member_card, np.full(dp.size, "")])
    channel = np.concatenate([registration_channel(persons), ident.dup_channel])
    region = np.concatenate([persons.region, persons.region[dp]])
    tier = np.concatenate([persons.city_tier, persons.city_tier[dp]])
    return pa.table({
        "crm_id": pa.array(np.concatenate([ident.crm_id, ident.dup_crm_id])),
        "phone": pa.array(phone, pa.string(), mask=phone == ""),
        "email": pa.array(email, pa.string(), mask=email == ""),
        "member_card": pa.array(card, pa.string(), mask=card == ""),
        "registration_channel": pa.array(np.array(REG_CHANNELS)[channel]),
        "registered_at": pa.array(window.local_seconds(reg_t), pa.int64()),
        "region": pa.array(np.array(P.REGIONS)[region]),
        "city_tier": pa.array(tier, pa.int8()),
        "updated_at": pa.array(window.local_seconds(upd_t), pa.int64()),
    })


CRM_SELECT = """
SELECT crm_id, phone, email, member_card, registration_channel,
       strftime(make_timestamp(registered_at * 1000000), '%Y-%m-%d %H:%M:%S') AS registered_at,
       region, city_tier,
       strftime(make_timestamp(updated_at * 1000000), '%Y-%m-%d %H:%M:%S') AS updated_at
FROM t
"""
