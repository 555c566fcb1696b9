"""Identifiers of each person across systems (CRM ids, phones, emails, cards, WeChat, devices)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from . import params as P
from .persons import Persons
from .rand import (
    HEX,
    OPENID_ALPHABET,
    base32_codes,
    prefixed,
    random_strings,
    unique_ints,
    uuids,
    zfill,
)
from .window import Window

log = logging.getLogger(__name__)

PHONE_PREFIXES = np.array([130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 155, 156,
                           157, 158, 159, 166, 176, 177, 178, 180, 181, 182, 183, 185, 186, 187,
                           188, 189, 198, 199], dtype=np.int64)
SURNAMES = np.array(["wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou",
                     "xu", "sun", "ma", "zhu", "hu", "guo", "he", "lin", "luo", "gao"])
GIVEN = np.array(["wei", "fang", "na", "min", "jing", "li", "qiang", "lei", "jun", "yang", "yong",
                  "yan", "jie", "tao", "ming", "chao", "xiu", "xia", "ping", "gang", "hui", "hong",
                  "ying", "xin"])
DOMAINS = np.array(["qq.com", "163.com", "126.com", "sina.com", "gmail.com", "outlook.com",
                    "hotmail.com", "foxmail.com"])
DOMAIN_PROBS = np.array([0.45, 0.20, 0.08, 0.05, 0.07, 0.06, 0.04, 0.05])
DOMAIN_TYPOS = np.array(["qq.con", "163.cm", "126.con", "sian.com", "gmial.com", "outlok.com",
                         "hotmial.com", "foxmial.com"])
P_EMAIL_TYPO_PRIMARY = 0.005
P_DUP_EMAIL = 0.40
P_DUP_EMAIL_TYPO = 0.30


@dataclass
class Identity:
    """Per-person identifiers ('' = none) plus duplicate CRM records and shared devices."""

    crm_id: np.ndarray
    phone: np.ndarray  # normalised 11-digit mobile number
    phone_fmt: np.ndarray  # int8: 0 plain, 1 dashed, 2 +86 spaced (as typed in the CRM)
    email: np.ndarray  # normalised (lower-cased, trimmed) email of the primary record
    email_typed: np.ndarray  # as typed in the primary CRM record
    member_card: np.ndarray
    unionid: np.ndarray
    openid_mp: np.ndarray  # mini-program openid
    openid_oa: np.ndarray  # official-account openid
    app_dev1: np.ndarray
    app_dev2: np.ndarray
    web_dev: np.ndarray
    referral_code: np.ndarray
    dup_person: np.ndarray  # persons with a second CRM record
    dup_crm_id: np.ndarray
    dup_registered: np.ndarray  # float days
    dup_channel: np.ndarray  # int8 index into REG_CHANNELS
    dup_phone_fmt: np.ndarray
    dup_email_typed: np.ndarray
    dup_index: np.ndarray  # per person: index into dup_* arrays, -1 if none
    shared_devices: np.ndarray  # device ids used by many persons
    wx_phone_auth: np.ndarray  # bool: authorises the phone on the first mini-program order
    wx_unbound: np.ndarray  # bool: never binds WeChat to the membership (unless buying there)


REG_CHANNELS: tuple[str, ...] = ("store", "online_shop", "app", "mini_program", "official_account")


def _blank(n: int, width: int) -> np.ndarray:
    return np.full(n, "", dtype=f"<U{width}")


def _fill(out: np.ndarray, mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    out[mask] = values
    return out


def format_phone(phone: np.ndarray, fmt: np.ndarray) -> np.ndarray:
    """Render normalised phone numbers the way a clerk typed them."""
    num = np.where(phone == "", "0", phone).astype(np.int64)
    a = (num // 10**8).astype(str)
    b = zfill((num // 10**4) % 10**4, 4)
    c = zfill(num % 10**4, 4)
    dashed = np.char.add(np.char.add(np.char.add(a, "-"), np.char.add(b, "-")), c)
    spaced = np.char.add(np.char.add("+86 ", np.char.add(a, " ")), np.char.add(np.char.add(b, " "), c))
    out = np.where(fmt == 1, dashed, np.where(fmt == 2, spaced, phone.astype(spaced.dtype)))
    return np.where(phone == "", "", out)


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    placeholders = np.array([int(x) for x in P.PLACEHOLDER_PHONES], dtype=np.int64)
    nums = np.zeros(n, dtype=np.int64)
    todo = np.ones(n, dtype=bool)
    while todo.any():
        k = int(todo.sum())
        nums[todo] = (PHONE_PREFIXES[rng.integers(0, PHONE_PREFIXES.size, k)] * 10**8
                      + rng.integers(0, 10**8, k))
        _, first = np.unique(nums, return_index=True)
        todo = np.ones(n, dtype=bool)
        todo[first] = False
        todo |= np.isin(nums, placeholders)
    return nums.astype(str)


def _type_email(rng: np.random.Generator, email: np.ndarray) -> np.ndarray:
    """Mixed case and stray spaces, as people type into a CRM form."""
    u = rng.random(email.size)
    typed = np.where(u < 0.25, np.char.capitalize(email),
                     np.where(u < 0.30, np.char.upper(email), email))
    v = rng.random(email.size)
    typed = np.where(v < 0.05, np.char.add(" ", typed), typed)
    typed = np.where((v >= 0.05) & (v < 0.10), np.char.add(typed, " "), typed)
    return np.where(email == "", "", typed)


def _emails(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    dom = rng.choice(DOMAINS.size, size=n, p=DOMAIN_PROBS)
    qq = dom == 0
    local = np.empty(n, dtype="<U40")
    local[qq] = unique_ints(rng, int(qq.sum()), 100_000, 3_000_000_000).astype(str)
    k = int((~qq).sum())
    sep = np.where(rng.random(k) < 0.3, ".", "")
    name = np.char.add(np.char.add(SURNAMES[rng.integers(0, SURNAMES.size, k)], sep),
                       GIVEN[rng.integers(0, GIVEN.size, k)])
    local[~qq] = np.char.add(name, unique_ints(rng, k, 10, 10_000_000).astype(str))
    return np.char.add(np.char.add(local, "@"), DOMAINS[dom]), dom


def _typo(email: np.ndarray, dom: np.ndarray) -> np.ndarray:
    local = np.char.rpartition(email, "@")[:, 0]
    return np.char.add(np.char.add(local, "@"), DOMAIN_TYPOS[dom])


def simulate_identity(rng: np.random.Generator, persons: Persons, window: Window,
                      bind_rng: np.random.Generator) -> Identity:
    """Assign every person's identifiers, duplicate CRM records and the shared devices.

    ``bind_rng`` draws how each WeChat user binds WeChat to the membership (its own stream, so
    the identifiers drawn from ``rng`` do not depend on it)."""
    n = persons.n
    crm_num = unique_ints(rng, n + n, 10_000_000, 100_000_000)
    crm_id = prefixed("C", crm_num[:n], 8)

    has_phone = rng.random(n) < P.P_PHONE
    phone = _fill(_blank(n, 11), has_phone, _phones(rng, int(has_phone.sum())))
    phone_fmt = rng.choice(3, size=n, p=[0.6, 0.2, 0.2]).astype(np.int8)

    has_email = rng.random(n) < P.P_EMAIL
    em, dom = _emails(rng, int(has_email.sum()))
    typo = rng.random(em.size) < P_EMAIL_TYPO_PRIMARY
    em = np.where(typo, _typo(em, dom), em)
    email = _fill(_blank(n, 60), has_email, em)
    email_dom = np.full(n, -1)
    email_dom[has_email] = dom
    email_typed = _type_email(rng, email)

    pref_store = persons.pref[:, 0]
    has_card = rng.random(n) < np.clip(0.12 + 1.1 * pref_store, 0.0, 0.95)
    member_card = _fill(_blank(n, 11), has_card,
                        prefixed("M", unique_ints(rng, int(has_card.sum()), 10**9, 10**10), 10))

    wx = persons.has_wechat
    unionid = _fill(_blank(n, 28), wx, np.char.add("o", random_strings(rng, int(wx.sum()), 27,
                                                                         OPENID_ALPHABET)))
    mp = wx & ((persons.pref[:, 3] > 0) | (rng.random(n) < 0.3))
    oa = wx & ((persons.acq_channel == 4) | (rng.random(n) < 0.35))
    openid_mp = _fill(_blank(n, 28), mp, np.char.add("o", random_strings(rng, int(mp.sum()), 27,
                                                                           OPENID_ALPHABET)))
    openid_oa = _fill(_blank(n, 28), oa, np.char.add("o", random_strings(rng, int(oa.sum()), 27,
                                                                           OPENID_ALPHABET)))

    app_user = persons.pref[:, 2] > 0
    ios = rng.random(n) < 0.6
    dev_ios = uuids(rng, n, upper=True)
    dev_android = random_strings(rng, n, 16, HEX)
    app_dev1 = np.where(app_user, np.where(ios, dev_ios, dev_android), "")
    two = app_user & (rng.random(n) < 0.3)
    app_dev2 = _fill(_blank(n, 36), two, uuids(rng, int(two.sum()), upper=True))
    web_user = persons.pref[:, 1] > 0
    web_dev = _fill(_blank(n, 36), web_user, uuids(rng, int(web_user.sum())))

    referral_code = np.char.add("RF", base32_codes(unique_ints(rng, n, 0, 32**6), 6))

    # duplicate CRM records: a second registration, later and via another channel, with the same
    # phone (the form asks for it); without a phone, with the same email. A person with neither
    # gets no duplicate. Every draw is made for all candidates, the filter comes last.
    cand = np.nonzero(rng.random(n) < P.P_DUP_CRM)[0]
    reg = persons.acquired[cand] + rng.uniform(20.0, 500.0, cand.size)
    ok = reg < window.days
    dup_person, dup_registered = cand[ok], reg[ok]
    m = dup_person.size
    dup_crm_id = prefixed("C", crm_num[n:n + m], 8)
    prim = registration_channel(persons)[dup_person]
    dup_channel = ((prim + 1 + rng.integers(0, 4, m)) % 5).astype(np.int8)
    dup_phone_fmt = rng.choice(3, size=m, p=[0.4, 0.3, 0.3]).astype(np.int8)
    dup_no_phone = phone[dup_person] == ""
    has_dup_email = (email[dup_person] != "") & ((rng.random(m) < P_DUP_EMAIL) | dup_no_phone)
    dup_typo = has_dup_email & (rng.random(m) < P_DUP_EMAIL_TYPO) & ~dup_no_phone
    base = email[dup_person]
    dd = np.maximum(email_dom[dup_person], 0)
    dup_email = np.where(dup_typo, _typo(base, dd) if m else base, base)
    dup_email_typed = np.where(has_dup_email, _type_email(rng, dup_email), "")
    keep = ~dup_no_phone | has_dup_email
    dup_person, dup_registered, dup_crm_id = dup_person[keep], dup_registered[keep], dup_crm_id[keep]
    dup_channel, dup_phone_fmt = dup_channel[keep], dup_phone_fmt[keep]
    dup_email_typed = dup_email_typed[keep]
    m = dup_person.size
    dup_index = np.full(n, -1, dtype=np.int64)
    dup_index[dup_person] = np.arange(m)

    k = int(np.clip(n // 4000, 3, 50))
    shared = uuids(rng, k, upper=True)

    wx_unbound = wx & (bind_rng.random(n) < P.P_WECHAT_UNBOUND)
    wx_phone_auth = wx & has_phone & (bind_rng.random(n) < P.P_WECHAT_PHONE_AUTH)
    log.debug("identity: %d CRM duplicates, %d shared devices", m, k)
    return Identity(crm_id=crm_id, phone=phone, phone_fmt=phone_fmt, email=email,
                    email_typed=email_typed, member_card=member_card, unionid=unionid,
                    openid_mp=openid_mp, openid_oa=openid_oa, app_dev1=app_dev1,
                    app_dev2=app_dev2, web_dev=web_dev, referral_code=referral_code,
                    dup_person=dup_person, dup_crm_id=dup_crm_id, dup_registered=dup_registered,
                    dup_channel=dup_channel, dup_phone_fmt=dup_phone_fmt,
                    dup_email_typed=dup_email_typed, dup_index=dup_index, shared_devices=shared,
                    wx_phone_auth=wx_phone_auth, wx_unbound=wx_unbound)


def registration_channel(persons: Persons) -> np.ndarray:
    """CRM registration channel (REG_CHANNELS index); referrals register where they first buy."""
    reg = persons.acq_channel.astype(np.int8).copy()
    ref = reg == 5
    reg[ref] = (1 + np.argmax(persons.pref[ref][:, 1:], axis=1)).astype(np.int8)
    return reg


def identity_truth(ident: Identity) -> pa.Table:
    """truth/identity.csv: every identifier value -> person (shared identifiers: no person)."""
    n = ident.crm_id.size
    pid = np.arange(n)
    types: list[np.ndarray] = []
    values: list[pa.Array | pa.ChunkedArray] = []
    owners: list[np.ndarray] = []

    def add(kind: str, vals: np.ndarray, who: np.ndarray) -> None:
        keep = vals != ""
        types.append(np.full(int(keep.sum()), kind, dtype="<U14"))
        values.append(pa.array(vals[keep]))
        owners.append(who[keep])

    dup_emails = np.char.lower(np.char.strip(ident.dup_email_typed))
    add("crm_id", ident.crm_id, pid)
    add("crm_id", ident.dup_crm_id, ident.dup_person)
    add("phone", ident.phone, pid)
    add("email", ident.email, pid)
    extra = (dup_emails != "") & (dup_emails != ident.email[ident.dup_person])
    add("email", np.where(extra, dup_emails, ""), ident.dup_person)
    add("member_card", ident.member_card, pid)
    add("wechat_unionid", ident.unionid, pid)
    add("wechat_openid", ident.openid_mp, pid)
    add("wechat_openid", ident.openid_oa, pid)
    add("device_id", ident.app_dev1, pid)
    add("device_id", ident.app_dev2, pid)
    add("device_id", ident.web_dev, pid)
    shared_vals = np.concatenate([np.array(P.PLACEHOLDER_PHONES), ident.shared_devices])
    shared_types = ["phone"] * len(P.PLACEHOLDER_PHONES) + ["device_id"] * ident.shared_devices.size
    person = np.concatenate(owners)
    types.append(np.array(shared_types, dtype="<U14"))
    values.append(pa.array(shared_vals))
    return pa.table({
        "identifier_type": pa.array(np.concatenate(types)),
        "identifier_value": pa.chunked_array(
            [c.cast(pa.string()) for v in values
             for c in (v.chunks if isinstance(v, pa.ChunkedArray) else [v])], pa.string()),
        "person_id": pa.array(np.concatenate([person, np.full(shared_vals.size, -1)]),
                              pa.int64()),
        "is_shared": pa.array(np.concatenate([np.zeros(person.size, bool),
                                              np.ones(shared_vals.size, bool)])),
    })
