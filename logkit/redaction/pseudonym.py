"""Typed keyed pseudonyms: ``[EMAIL:8f3a1c2b]``.

A pseudonym is a keyed HMAC, so the same value correlates across events of one tenant without
being recoverable, and one tenant's tokens say nothing about another's (each tenant has its own
key derived from the master key).

:class:`Pseudonyms` is the engine's per-key form, built for dense text: it keeps HMAC's two
keyed SHA-256 states (RFC 2104: the key XOR ipad and XOR opad blocks) and copies them per value,
which is about three times cheaper than a one-shot ``hmac.digest`` (that re-derives both states
every call), and it caches the tokens it made (the same user's email on every line).
"""

from __future__ import annotations

import hashlib
import hmac

_GLOBAL_TENANT = "_global"
_CACHE_SIZE = 4096
_BLOCK = 64  # SHA-256's block size
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def tenant_key(master: bytes, tenant_id: str | None) -> bytes:
    """The per-tenant pseudonym key: HMAC-SHA256(master, "logkit-pseudonym:" + tenant)."""
    label = "logkit-pseudonym:" + (tenant_id or _GLOBAL_TENANT)
    return hmac.digest(master, label.encode(), "sha256")


def pseudonym(kind: str, value: str, key: bytes) -> str:
    """``[KIND:xxxxxxxx]``: 8 hex chars of HMAC-SHA256(key, kind + ":" + value)."""
    digest = hmac.digest(key, f"{kind}:{value}".encode(), "sha256")
    return f"[{kind.upper()}:{digest[:4].hex()}]"


class Pseudonyms:
    """:func:`pseudonym` under one key: the same tokens, made faster and cached (bounded)."""

    __slots__ = ("_cache", "_inner", "_labels", "_outer", "key")

    def __init__(self, key: bytes) -> None:
        self.key = key
        block = (hashlib.sha256(key).digest() if len(key) > _BLOCK else key).ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(block.translate(_IPAD))
        self._outer = hashlib.sha256(block.translate(_OPAD))
        self._cache: dict[str, str] = {}
        self._labels: dict[str, str] = {}

    def token(self, kind: str, value: str) -> str:
        message = f"{kind}:{value}"
        token = self._cache.get(message)
        if token is None:
            inner = self._inner.copy()
            inner.update(message.encode())
            outer = self._outer.copy()
            outer.update(inner.digest())
            label = self._labels.get(kind) or self._labels.setdefault(kind, f"[{kind.upper()}:")
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()  # bounded; clearing is cheaper than tracking recency
            token = self._cache[message] = label + outer.digest()[:4].hex() + "]"
        return token
