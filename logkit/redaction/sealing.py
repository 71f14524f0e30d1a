"""Encrypted raw payloads ("sealed"): AES-256-GCM under a per-subject key, crypto-shredding.

A payload marked for it (``logkit.emit(..., seal_raw=True)``) is redacted as always, and the raw
original is also kept, encrypted, under the reserved payload key ``_sealed``. The key belongs to
the subject: the (tenant, user) of the event, or the tenant when there is no user. Reading the
raw payload needs the key; destroying the key (DSAR erasure) makes every sealed copy for that
subject unrecoverable, wherever the ciphertext was copied (crypto-shredding). The associated
data binds a ciphertext to its tenant and event id, so it cannot be moved to another event.

Subjects are canonical strings, one per (tenant, user) and never shared: ``tenant:<tenant_id>``
for the tenant itself and ``user:<tenant_id>:<user_id>`` for a user. A tenant id has no ``:``
(``^t_[a-z0-9_-]+$``), so the first ``:`` after ``user:`` ends it and any user id, ``_tenant``
included, gives a subject of its own. The subject is built from the event's own identifiers
(its ``user_id`` as the envelope stores it, gated), so the sealed envelope repeats nothing the
event does not already carry. Where keys live is a :class:`KeyProvider` (logkit.redaction.keys).
"""

from __future__ import annotations

import base64
import os
import re
from typing import Any, Protocol

import orjson

from logkit.envelope import TENANT_PATTERN, Event
from logkit.errors import ContractError, RedactionError

SEALED_KEY = "_sealed"
ALG = "AES-256-GCM"
_TENANT = re.compile(TENANT_PATTERN)
# Subjects written before canonical subjects existed: "t_acme/u_7", "t_acme/_tenant".
_LEGACY = re.compile(r"^(t_[a-z0-9_-]+)/(.+)$", re.DOTALL)


def subject_of(tenant_id: str, user_id: str | None) -> str:
    """The canonical subject of (tenant, user); ``None`` user: the tenant itself."""
    if not _TENANT.fullmatch(tenant_id):
        raise ContractError("tenant_id must look like t_acme", problems={"tenant_id": "pattern"})
    if user_id is None:
        return f"tenant:{tenant_id}"
    if not user_id:
        raise ContractError("user_id must not be empty", problems={"user_id": "empty"})
    return f"user:{tenant_id}:{user_id}"


def parse_subject(subject: str) -> tuple[str, str | None]:
    """(tenant, user) of a canonical subject: the inverse of :func:`subject_of`."""
    kind, _, rest = subject.partition(":")
    tenant_id, sep, user_id = rest.partition(":")
    if kind == "tenant" and not sep and _TENANT.fullmatch(tenant_id):
        return tenant_id, None
    if kind == "user" and sep and user_id and _TENANT.fullmatch(tenant_id):
        return tenant_id, user_id
    raise RedactionError("not a canonical sealing subject")


def legacy_subject(subject: str) -> str | None:
    """The pre-canonical spelling of a subject (``t_acme/u_7``), whose key files may still
    hold keys of payloads sealed before; None when the subject is not canonical."""
    try:
        tenant_id, user_id = parse_subject(subject)
    except RedactionError:
        return None
    return f"{tenant_id}/{user_id or '_tenant'}"


def is_legacy(subject: str) -> bool:
    """Whether a sealed envelope names its subject the pre-canonical way (read-only keys)."""
    return _LEGACY.match(subject) is not None


def tenant_of_subject(subject: str) -> str | None:
    """The tenant a canonical or legacy subject belongs to; None if it is neither."""
    legacy = _LEGACY.match(subject)
    if legacy is not None:
        return legacy.group(1)
    try:
        return parse_subject(subject)[0]
    except RedactionError:
        return None


class KeyProvider(Protocol):
    """Where subject keys live: see logkit.redaction.keys for the built-in ones.

    ``subject`` is canonical (:func:`subject_of`), or, for reading payloads sealed before
    canonical subjects, a legacy one (:func:`is_legacy`): a provider that never had legacy keys
    returns None for those, and none creates one.
    """

    def key(self, subject: str, *, create: bool) -> bytes | None:
        """The subject's 32-byte key; created when missing and ``create``; None if absent."""
        ...

    def destroy(self, subject: str) -> bool:
        """Destroy the subject's key (and only its own) for good; True if one existed."""
        ...


def _aad(tenant_id: str, event_id: str) -> bytes:
    return f"logkit-sealed:{tenant_id}:{event_id}".encode()


def seal(raw_payload: dict[str, Any], event: Event, provider: KeyProvider) -> dict[str, Any]:
    """The sealed envelope of ``raw_payload`` for ``event`` (ciphertext only, never the value).

    The subject is taken from ``event`` as given: pass the event whose identifiers are the ones
    stored, so that the envelope's ``subject`` and the key it names are the stored subject's.
    """
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    subject = subject_of(event.tenant_id, event.user_id)
    key = provider.key(subject, create=True)
    if key is None:
        raise RedactionError("the subject's key provider refused a key: nothing is sealed")
    nonce = os.urandom(12)
    ciphertext = AESGCM(key).encrypt(
        nonce, orjson.dumps(raw_payload), _aad(event.tenant_id, event.event_id)
    )
    return {
        "alg": ALG,
        "subject": subject,
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }


def unseal(event: Event, provider: KeyProvider) -> dict[str, Any]:
    """The raw payload sealed in ``event``. RedactionError when absent, destroyed or altered."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    sealed = event.payload.get(SEALED_KEY)
    if not isinstance(sealed, dict) or sealed.get("alg") != ALG:
        raise RedactionError("this event carries no sealed payload")
    subject = str(sealed.get("subject"))
    if tenant_of_subject(subject) != event.tenant_id:
        raise RedactionError("the sealed payload names a subject of another tenant")
    key = provider.key(subject, create=False)
    if key is None:
        raise RedactionError("the sealed payload's key was destroyed: it is unrecoverable")
    try:
        plain = AESGCM(key).decrypt(
            base64.b64decode(str(sealed["nonce"])),
            base64.b64decode(str(sealed["ciphertext"])),
            _aad(event.tenant_id, event.event_id),
        )
    except (InvalidTag, KeyError, ValueError):
        raise RedactionError("the sealed payload does not decrypt for this event") from None
    data = orjson.loads(plain)
    if not isinstance(data, dict):
        raise RedactionError("the sealed payload is not an object")
    return data
