"""Webhook addresses (SPEC §14): every refused range, in every spelling the system resolver
reads, and names resolved by a test resolver."""

from __future__ import annotations

import asyncio

import pytest

from settlewatch.common.webhook_guard import (
    Blocked,
    allowed_networks,
    checked_addresses,
    system_resolver,
)

REFUSED = [
    "https://10.0.0.5/hook",
    "https://172.16.0.1/hook",
    "https://172.31.255.254/hook",
    "https://192.168.1.1/hook",
    "https://127.0.0.1/hook",
    "https://127.8.9.10/hook",
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata
    "https://[::1]/hook",
    "https://[fc00::1]/hook",
    "https://[fd12:3456::1]/hook",
    "https://[fe80::1]/hook",
    "https://[::ffff:10.0.0.1]/hook",  # IPv4-mapped IPv6
    "https://[::ffff:169.254.169.254]/hook",
    "https://2130706433/hook",  # 127.0.0.1 as one decimal number
    "https://0177.0.0.1/hook",  # 127.0.0.1 in octal
    "https://0x7f.0.0.1/hook",  # and in hex
    "https://0.0.0.0/hook",
    "https://localhost/hook",
    # An IPv4 address inside an IPv6 one is judged as itself (issue 28): Python 3.11 calls
    # these public.
    "https://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
    "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
    "https://[64:ff9b:1::a00:1]/hook",  # NAT64, local-use prefix
    "https://[2002:7f00:1::1]/hook",  # 6to4 of 127.0.0.1
    "https://[2002:c0a8:101::1]/hook",  # 6to4 of 192.168.1.1
    "https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/hook",  # Teredo, client 10.0.0.1
]


@pytest.mark.parametrize("url", REFUSED)
def test_a_private_address_is_refused_in_any_spelling(url: str) -> None:
    with pytest.raises(Blocked, match="which is not a public address"):
        asyncio.run(checked_addresses(url, system_resolver, ()))


def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return {"hooks.merchant.test": ["93.184.215.14", "10.0.0.1"]}[host]

    with pytest.raises(Blocked, match="hooks.merchant.test resolves to 10.0.0.1"):
        asyncio.run(checked_addresses("https://hooks.merchant.test/x", resolver, ()))


def test_public_addresses_pass_and_allowed_networks_open_the_guard() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        assert port == 443
        return ["8.8.8.8", "2001:4860:4860::8888"]

    found = asyncio.run(checked_addresses("https://hooks.example/x", resolver, ()))
    assert found == ["8.8.8.8", "2001:4860:4860::8888"]
    nat64 = "https://[64:ff9b::808:808]/hook"  # NAT64 of 8.8.8.8: public
    assert asyncio.run(checked_addresses(nat64, system_resolver, ())) == ["64:ff9b::808:808"]
    loopback = allowed_networks("127.0.0.0/8, ::1")
    assert asyncio.run(checked_addresses("http://127.0.0.1:9/x", system_resolver, loopback))
    with pytest.raises(Blocked):
        asyncio.run(checked_addresses("http://10.1.2.3:9/x", system_resolver, loopback))


def test_a_name_that_does_not_resolve_is_left_to_delivery() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    assert asyncio.run(checked_addresses("https://nowhere.test/x", resolver, ())) == []


def test_a_network_that_cannot_be_read_is_named() -> None:
    with pytest.raises(ValueError, match="'loopback' is not a network"):
        allowed_networks("loopback")
