"""Personal data: normalise, hash with a secret salt, and mask what cannot be hashed.

Phones and emails are hashed inside DuckDB at ingest, so raw values never land in a table. The
salt is a query parameter (``$salt``), never part of SQL text that could be logged.

- phone: digits only; mainland China mobiles to E.164 (``13812345678``, ``+86 138-1234-5678``,
  ``008613812345678`` -> ``+8613812345678``); other numbers written with ``+`` keep their digits;
  anything else is unusable (hash NULL).
- email: trimmed and lower-cased; must contain one ``@`` with text on both sides.
"""

from __future__ import annotations

import re

PHONE_PATTERN = r"(?:\+?86[\s-]?)?1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}"
EMAIL_PATTERN = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"
_PHONE_RE = re.compile(PHONE_PATTERN)
_EMAIL_RE = re.compile(EMAIL_PATTERN)


def phone_e164_sql(expr: str) -> str:
    """SQL expression normalising a phone-number string to E.164 (NULL when unusable)."""
    digits = f"regexp_replace({expr}, '[^0-9]', '', 'g')"
    return (
        "(case"
        f" when {digits} like '0086%' and length({digits}) = 15"
        f"  then '+' || substr({digits}, 3)"
        f" when {digits} like '86%' and length({digits}) = 13 then '+' || {digits}"
        f" when {digits} like '1%' and length({digits}) = 11 then '+86' || {digits}"
        f" when trim({expr}) like '+%' and length({digits}) between 8 and 15 then '+' || {digits}"
        " else null end)"
    )


def email_norm_sql(expr: str) -> str:
    """SQL expression normalising an email (NULL when it is not an address)."""
    e = f"lower(trim({expr}))"
    return f"(case when regexp_full_match({e}, '[^@\\s]+@[^@\\s]+\\.[^@\\s]+') then {e} end)"


def hash_sql(kind: str, normalised_expr: str) -> str:
    """Salted SHA-256 of a normalised identifier; the salt is bound as ``$salt``."""
    return f"sha256($salt || ':{kind}:' || {normalised_expr})"


def pii_hash_sql(kind: str, expr: str) -> str:
    norm = phone_e164_sql(expr) if kind == "phone" else email_norm_sql(expr)
    return hash_sql(kind, norm)


def mask_text_sql(expr: str) -> str:
    """SQL that masks phone numbers and emails inside free text (quarantined raw lines)."""
    return (
        f"regexp_replace(regexp_replace({expr}, '{EMAIL_PATTERN}', '<email>', 'g'),"
        f" '{PHONE_PATTERN}', '<phone>', 'g')"
    )


def mask_text(text: str) -> str:
    """Python twin of :func:`mask_text_sql` for messages and logs."""
    return _PHONE_RE.sub("<phone>", _EMAIL_RE.sub("<email>", text))


def normalise_phone(raw: str | None) -> str | None:
    """Python twin of :func:`phone_e164_sql` (used by tests and the truth join)."""
    if raw is None:
        return None
    digits = re.sub(r"[^0-9]", "", raw)
    if digits.startswith("0086") and len(digits) == 15:
        return "+" + digits[2:]
    if digits.startswith("86") and len(digits) == 13:
        return "+" + digits
    if digits.startswith("1") and len(digits) == 11:
        return "+86" + digits
    if raw.strip().startswith("+") and 8 <= len(digits) <= 15:
        return "+" + digits
    return None
