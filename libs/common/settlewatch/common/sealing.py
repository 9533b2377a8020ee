"""Webhook secrets encrypted at rest (SPEC §14) with Fernet (AES-128-CBC and HMAC-SHA256, from
the `cryptography` library), keys from `SETTLEWATCH_SECRET_KEY`.

The variable holds one or more Fernet keys, comma-separated: the first encrypts, every one
decrypts, so a key is rotated by putting the new one first, restarting ingest (which re-encrypts
every secret under it, see ``key_id``) and removing the old one later.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from settlewatch.common.errors import ConfigError

__all__ = ["Sealer", "SealingError", "parse_keys"]


class SealingError(ConfigError):
    """A sealed secret that no configured key opens."""


def parse_keys(text: str) -> tuple[str, ...]:
    """The Fernet keys of `SETTLEWATCH_SECRET_KEY`; a clear error (never the key) otherwise."""
    keys = tuple(filter(None, (k.strip() for k in text.split(","))))
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ValueError(
                f"key {number} is not a Fernet key (32 bytes, URL-safe base64); generate one with "
                "python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from None
    return keys


def _key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class Sealer:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("no key: set SETTLEWATCH_SECRET_KEY")
        self._fernet = MultiFernet([Fernet(key) for key in keys])
        # Names the key that seals now; a row sealed under another one is re-sealed.
        self.key_id = _key_id(keys[0])

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SealingError("no key of SETTLEWATCH_SECRET_KEY opens this secret") from None

    def reseal(self, sealed: str) -> str:
        try:
            return self._fernet.rotate(sealed.encode()).decode()
        except InvalidToken:
            raise SealingError("no key of SETTLEWATCH_SECRET_KEY opens this secret") from None
