import duckdb
import pytest

from flows.ingest.pii import mask_text, mask_text_sql, normalise_phone, phone_e164_sql, pii_hash_sql


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("13812345678", "+8613812345678"),
        ("138-1234-5678", "+8613812345678"),
        ("+86 138 1234 5678", "+8613812345678"),
        ("008613812345678", "+8613812345678"),
        ("8613812345678", "+8613812345678"),
        ("+44 20 7946 0958", "+442079460958"),
        ("12345", None),
        ("", None),
    ],
)
def test_phone_normalisation_python_and_sql_agree(raw, expected):
    assert normalise_phone(raw) == expected
    con = duckdb.connect()
    got = con.execute(f"select {phone_e164_sql('x')} from (select $v::varchar as x)", {"v": raw}).fetchone()[0]
    assert got == expected


def test_hash_is_salted_and_normalised():
    con = duckdb.connect()
    sql = f"select {pii_hash_sql('phone', 'x')} from (select $v::varchar as x)"
    a = con.execute(sql, {"v": "138-1234-5678", "salt": "s1"}).fetchone()[0]
    b = con.execute(sql, {"v": "+86 13812345678", "salt": "s1"}).fetchone()[0]
    c = con.execute(sql, {"v": "13812345678", "salt": "s2"}).fetchone()[0]
    assert a == b  # same person, different formatting
    assert a != c  # a different salt gives a different hash
    assert len(a) == 64 and "1381234" not in a
    email = f"select {pii_hash_sql('email', 'x')} from (select $v::varchar as x)"
    e1 = con.execute(email, {"v": "  Li.Wei@Example.COM ", "salt": "s1"}).fetchone()[0]
    e2 = con.execute(email, {"v": "li.wei@example.com", "salt": "s1"}).fetchone()[0]
    assert e1 == e2
    assert con.execute(email, {"v": "not-an-email", "salt": "s1"}).fetchone()[0] is None


def test_masking_removes_phones_and_emails_from_free_text():
    text = "C9,138-1234-5678,Wang.Fang@qq.com,M1,store"
    assert mask_text(text) == "C9,<phone>,<email>,M1,store"
    con = duckdb.connect()
    assert con.execute(f"select {mask_text_sql('$t')}", {"t": text}).fetchone()[0] == "C9,<phone>,<email>,M1,store"
