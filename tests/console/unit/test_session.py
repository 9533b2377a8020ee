"""The console's session cookie (SPEC §15): sealed, idle expiry, HttpOnly and SameSite=Strict,
Secure over HTTPS; the sign-in's next page stays on the console."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from fastapi import HTTPException
from starlette.requests import Request

from settlewatch.console.clients.ingest import CurrentToken
from settlewatch.console.context import safe_next
from settlewatch.console.i18n import choose_locale
from settlewatch.console.session import SESSION_COOKIE, Session, Sessions, check_csrf

KEY = Fernet.generate_key().decode()
WHO: CurrentToken = {
    "scope": "acquirer",
    "token_id": "0123456789abcdef",
    "expires_at": None,
    "may_write": True,
    "merchant_id": None,
}


def request(scheme: str = "http", cookie: str = "", language: str = "") -> Request:
    headers = [(b"cookie", cookie.encode()), (b"accept-language", language.encode())]
    scope = {"type": "http", "scheme": scheme, "headers": headers, "server": ("c", 80)}
    return Request(scope | {"path": "/", "query_string": b""})


def cookie_value(set_cookie: str) -> str:
    return set_cookie.split(";")[0].split("=", 1)[1]


def test_a_session_opens_until_it_has_been_idle_too_long() -> None:
    now = [1_800_000_000.0]
    sessions = Sessions([KEY], timedelta(hours=8), clock=lambda: now[0])
    session = Session.of("sw_token", WHO)
    set_cookie = sessions.cookie(session, request())
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    assert "Secure" not in set_cookie and "Secure" in sessions.cookie(session, request("https"))
    sealed = cookie_value(set_cookie)
    assert "sw_token" not in sealed  # sealed, not merely signed
    now[0] += 8 * 3600 - 1
    assert sessions.open(request(cookie=f"{SESSION_COOKIE}={sealed}")) == session
    now[0] += 2
    assert sessions.open(request(cookie=f"{SESSION_COOKIE}={sealed}")) is None


def test_a_forged_or_foreign_cookie_opens_no_session() -> None:
    sessions = Sessions([KEY], timedelta(hours=8))
    other = Sessions([Fernet.generate_key().decode()], timedelta(hours=8))
    session = Session.of("sw_token", WHO)
    foreign = cookie_value(other.cookie(session, request()))
    for value in (foreign, "garbage", Fernet(KEY).encrypt(b'{"token": "x"}').decode()):
        assert sessions.open(request(cookie=f"{SESSION_COOKIE}={value}")) is None
    # A webhook secret sealed under the same key is not a cookie (the cookie key is derived).
    sealed_secret = Fernet(KEY).encrypt(b"whsec").decode()
    assert sessions.open(request(cookie=f"{SESSION_COOKIE}={sealed_secret}")) is None


def test_a_rotated_key_still_opens_the_sessions_sealed_before() -> None:
    new = Fernet.generate_key().decode()
    session = Session.of("sw_token", WHO | {"scope": "acquirer:read", "may_write": False})
    sealed = cookie_value(Sessions([KEY], timedelta(hours=1)).cookie(session, request()))
    rotated = Sessions([new, KEY], timedelta(hours=1))
    assert rotated.open(request(cookie=f"{SESSION_COOKIE}={sealed}")) == session


@pytest.mark.parametrize(("expected", "given"), [("a" * 32, ""), ("a" * 32, "b" * 32), ("", "")])
def test_a_missing_or_wrong_csrf_token_is_refused(expected: str, given: str) -> None:
    with pytest.raises(HTTPException) as refused:
        check_csrf(expected, given)
    assert refused.value.status_code == 403
    check_csrf("a" * 32, "a" * 32)


@pytest.mark.parametrize(
    ("asked", "goes_to"),
    [
        ("/payments?rrn=1", "/payments?rrn=1"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
    ],
)
def test_after_signing_in_a_person_stays_on_the_console(asked: str, goes_to: str) -> None:
    assert safe_next(asked) == goes_to


@pytest.mark.parametrize(
    ("cookie", "language", "locale"),
    [
        ("", "en-GB,en;q=0.9", "en"),
        ("", "fr-FR, en;q=0.5, zh-CN;q=0.8", "zh-CN"),
        ("", "fr-FR", "zh-CN"),
        ("sw_lang=en", "zh-CN", "en"),
        ("sw_lang=xx", "en", "en"),
    ],
)
def test_the_language_is_the_switch_s_then_the_browser_s_then_chinese(
    cookie: str, language: str, locale: str
) -> None:
    assert choose_locale(request(cookie=cookie, language=language)) == locale
