"""Signatures verify with the Standard Webhooks reference implementation (independent code)."""

from __future__ import annotations

import base64
import os
import time

import standardwebhooks
from hypothesis import given
from hypothesis import strategies as st

from settlewatch.alerts.core.signing import headers


@given(
    key=st.binary(min_size=16, max_size=64),
    webhook_id=st.from_regex(r"msg_[A-Za-z0-9]{1,40}", fullmatch=True),
    body=st.text(max_size=300),
)
def test_signature_verifies_with_the_reference_library(
    key: bytes, webhook_id: str, body: str
) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    raw = body.encode()
    signed = headers([secret], webhook_id, int(time.time()), raw)
    assert standardwebhooks.Webhook(secret).verify(raw, signed, json_parse=False) is None


@given(keys=st.lists(st.binary(min_size=16, max_size=64), min_size=2, max_size=3, unique=True))
def test_while_secrets_overlap_each_one_verifies(keys: list[bytes]) -> None:
    secrets = ["whsec_" + base64.b64encode(key).decode() for key in keys]
    signed = headers(secrets, "msg_1", int(time.time()), b'{"a":1}')
    assert len(signed["webhook-signature"].split(" ")) == len(secrets)
    for secret in secrets:
        webhook = standardwebhooks.Webhook(secret)
        assert webhook.verify(b'{"a":1}', signed, json_parse=False) is None


def test_tampered_body_or_wrong_secret_fails_verification() -> None:
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    signed = headers([secret], "msg_1", int(time.time()), b'{"a":1}')
    webhook = standardwebhooks.Webhook(secret)
    other = standardwebhooks.Webhook("whsec_" + base64.b64encode(os.urandom(24)).decode())
    for check in (
        lambda: webhook.verify(b'{"a":2}', signed, json_parse=False),
        lambda: other.verify(b'{"a":1}', signed, json_parse=False),
    ):
        try:
            check()
        except standardwebhooks.WebhookVerificationError:
            continue
        raise AssertionError("verification should have failed")
