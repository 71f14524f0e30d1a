"""Encrypted raw payloads ("sealed"): AES-256-GCM under a per-subject key, crypto-shredding.

A payload marked for it (``logkit.emit(..., seal_raw=True)``) is redacted as always, and the raw
original is also kept, encrypted, under the reserved payload key ``_sealed``. The key belongs to
the subject: the (tenant, user) of the event, or the tenant when there is no user. Reading the
raw payload needs the key; destroying the key (DSAR erasure) makes every sealed copy for that
subject unrecoverable, wherever the ciphertext was copied (crypto-shredding). The associated
data binds a ciphertext to its tenant and event id, so it cannot be moved to another event.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
from pathlib import Path
from typing import Any, Protocol

import orjson

from logkit.envelope import Event
from logkit.errors import RedactionError

SEALED_KEY = "_sealed"
ALG = "AES-256-GCM"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def subject_of(tenant_id: str, user_id: str | None) -> str:
    return f"{tenant_id}/{user_id or '_tenant'}"


class KeyProvider(Protocol):
    """Where subject keys live: a local key directory in dev, a KMS-backed store in prod."""

    def key(self, subject: str, *, create: bool) -> bytes | None:
        """The subject's 32-byte key; created when missing and ``create``; None if destroyed."""
        ...

    def destroy(self, subject: str) -> bool:
        """Destroy the subject's key for good; True if one existed."""
        ...


class LocalKeyDirectory:
    """One key file per subject (mode 0600). Destroying overwrites, then unlinks."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, subject: str) -> Path:
        return self.directory / (_SAFE.sub("_", subject.replace("/", "__")) + ".key")

    def key(self, subject: str, *, create: bool) -> bytes | None:
        path = self._path(subject)
        if path.exists():
            return bytes.fromhex(path.read_text().strip())
        if not create:
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            return bytes.fromhex(path.read_text().strip())
        with os.fdopen(fd, "w") as handle:
            handle.write(key.hex())
        return key

    def destroy(self, subject: str) -> bool:
        path = self._path(subject)
        if not path.exists():
            return False
        with contextlib.suppress(OSError), path.open("r+") as handle:
            handle.write("0" * 64)  # best effort on the local disk; a KMS destroys for real
        path.unlink()
        return True


def _aad(tenant_id: str, event_id: str) -> bytes:
    return f"logkit-sealed:{tenant_id}:{event_id}".encode()


def seal(raw_payload: dict[str, Any], event: Event, provider: KeyProvider) -> dict[str, Any]:
    """The sealed envelope of ``raw_payload`` for ``event`` (ciphertext only, never the value)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    subject = subject_of(event.tenant_id, event.user_id)
    key = provider.key(subject, create=True)
    if key is None:
        raise RedactionError(f"the key of {subject} was destroyed: nothing new is sealed")
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
    key = provider.key(str(sealed.get("subject")), create=False)
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
