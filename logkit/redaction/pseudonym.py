"""Typed keyed pseudonyms: ``[EMAIL:8f3a1c2b]``.

A pseudonym is a keyed HMAC, so the same value correlates across events of one tenant without
being recoverable, and one tenant's tokens say nothing about another's (each tenant has its own
key derived from the master key).
"""

from __future__ import annotations

import hashlib
import hmac

_GLOBAL_TENANT = "_global"


def tenant_key(master: bytes, tenant_id: str | None) -> bytes:
    """The per-tenant pseudonym key: HMAC-SHA256(master, "logkit-pseudonym:" + tenant)."""
    label = "logkit-pseudonym:" + (tenant_id or _GLOBAL_TENANT)
    return hmac.new(master, label.encode(), hashlib.sha256).digest()


def pseudonym(kind: str, value: str, key: bytes) -> str:
    """``[KIND:xxxxxxxx]``: 8 hex chars of HMAC-SHA256(key, kind + ":" + value)."""
    digest = hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return f"[{kind.upper()}:{digest[:8]}]"
