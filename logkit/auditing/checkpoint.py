"""Signed checkpoints of chain heads: HMAC-SHA256 with a shared key, or Ed25519.

A checkpoint states "chain C had seq N with hash H at time T", signed. Kept where the writers
cannot reach (a deploy pipeline's artefact store), it catches what a plain hash chain cannot: a
truncated tail and a suffix rewritten with valid hashes. With Ed25519 the verifier needs only
the public key, so holding the verification key does not let anyone forge a checkpoint.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from logkit.chain import canonical
from logkit.config import AuditConfig
from logkit.envelope import Env
from logkit.errors import ConfigError
from logkit.sinks.protocols import AuditStore

FILE_FORMAT = "logkit-checkpoints/1"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    chain_id: str
    seq: int
    hash: str
    time: str  # RFC 3339, UTC
    alg: str  # "hmac-sha256" | "ed25519"
    key_id: str
    signature: str  # hex

    def signed_bytes(self) -> bytes:
        """The JCS bytes the signature covers: every field but the signature."""
        fields = asdict(self)
        del fields["signature"]
        return canonical(fields)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        try:
            return cls(**{name: data[name] for name in cls.__slots__})
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"not a logkit checkpoint: missing {exc}") from None


@dataclass(frozen=True)
class Keys:
    """The signing key (if any) and every key a checkpoint may be verified with, by key id."""

    signer: tuple[str, str, Callable[[bytes], str]] | None  # (alg, key_id, sign)
    verifiers: dict[str, tuple[str, Callable[[bytes, str], bool]]]  # key_id -> (alg, verify)


def load_keys(config: AuditConfig, env: Env) -> Keys:
    """Keys from config; in dev with none configured, a generated local HMAC key."""
    signer = None
    verifiers: dict[str, tuple[str, Callable[[bytes, str], bool]]] = {}
    secret = _hmac_secret(config, env)
    if secret is not None:
        key_id = "hmac:" + hashlib.sha256(secret).hexdigest()[:16]

        def sign_hmac(data: bytes) -> str:
            return hmac.new(secret, data, hashlib.sha256).hexdigest()

        def verify_hmac(data: bytes, signature: str) -> bool:
            return hmac.compare_digest(sign_hmac(data), signature)

        signer = ("hmac-sha256", key_id, sign_hmac)
        verifiers[key_id] = ("hmac-sha256", verify_hmac)
    ed_signer, ed_verifiers = _ed25519(config)
    verifiers.update(ed_verifiers)
    return Keys(ed_signer or signer, verifiers)


def _hmac_secret(config: AuditConfig, env: Env) -> bytes | None:
    if config.hmac_key is not None:
        return config.hmac_key.get_secret_value().encode()
    if config.hmac_key_file is not None:
        return _read_key(config.hmac_key_file)
    if config.ed25519_private_key_file or config.ed25519_public_key_file:
        return None
    if env is not Env.DEV:
        return None
    path = config.dev_hmac_key_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(os.urandom(32).hex())
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read key file {path}: {exc.strerror}") from None


def _ed25519(
    config: AuditConfig,
) -> tuple[
    tuple[str, str, Callable[[bytes], str]] | None,
    dict[str, tuple[str, Callable[[bytes, str], bool]]],
]:
    if not (config.ed25519_private_key_file or config.ed25519_public_key_file):
        return None, {}
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = public = None
    try:
        if config.ed25519_private_key_file is not None:
            private = serialization.load_pem_private_key(
                _read_key(config.ed25519_private_key_file), password=None
            )
            public = private.public_key()
        elif config.ed25519_public_key_file is not None:
            public = serialization.load_pem_public_key(_read_key(config.ed25519_public_key_file))
    except ValueError as exc:
        raise ConfigError(f"not an Ed25519 PEM key: {exc}") from None
    if not isinstance(public, ed25519.Ed25519PublicKey):
        raise ConfigError("audit checkpoint keys must be Ed25519")
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_id = "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]
    checked = public

    def verify(data: bytes, signature: str) -> bool:
        try:
            checked.verify(bytes.fromhex(signature), data)
            return True
        except (InvalidSignature, ValueError):
            return False

    signer = None
    if isinstance(private, ed25519.Ed25519PrivateKey):
        key = private
        signer = ("ed25519", key_id, lambda data: key.sign(data).hex())
    return signer, {key_id: ("ed25519", verify)}


def sign(
    chain_id: str, seq: int, hash_hex: str, keys: Keys, now: dt.datetime | None = None
) -> Checkpoint:
    if keys.signer is None:
        raise ConfigError(
            "no checkpoint signing key: set audit.hmac_key (or hmac_key_file) "
            "or audit.ed25519_private_key_file"
        )
    alg, key_id, signer = keys.signer
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    unsigned = Checkpoint(
        chain_id, seq, hash_hex, moment.isoformat().replace("+00:00", "Z"), alg, key_id, ""
    )
    return Checkpoint(**{**asdict(unsigned), "signature": signer(unsigned.signed_bytes())})


def signature_ok(checkpoint: Checkpoint, keys: Keys) -> bool:
    verifier = keys.verifiers.get(checkpoint.key_id)
    if verifier is None or verifier[0] != checkpoint.alg:
        return False
    return verifier[1](checkpoint.signed_bytes(), checkpoint.signature)


def chain_head(store: AuditStore, chain_id: str) -> tuple[int, str] | None:
    """(seq, hash) of the chain's last stored record."""
    return store.head(chain_id)


def checkpoint_chains(
    store: AuditStore, chain_ids: Iterable[str], keys: Keys, now: dt.datetime | None = None
) -> list[Checkpoint]:
    """Sign the head of each chain and keep the checkpoint in the audit store too."""
    made = []
    for chain_id in chain_ids:
        head = chain_head(store, chain_id)
        if head is None:
            continue
        checkpoint = sign(chain_id, head[0], head[1], keys, now)
        store.put_checkpoint(chain_id, checkpoint.seq, checkpoint.to_json())
        made.append(checkpoint)
    return made


def write_file(path: Path, checkpoints: list[Checkpoint]) -> None:
    document = {"format": FILE_FORMAT, "checkpoints": [asdict(c) for c in checkpoints]}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def read_file(path: Path) -> list[Checkpoint]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"checkpoint file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"checkpoint file {path} is unreadable: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FILE_FORMAT:
        raise ConfigError(f"{path} is not a logkit checkpoint file ({FILE_FORMAT})")
    return [Checkpoint.from_dict(c) for c in document.get("checkpoints", [])]


def parse_stored(documents: Iterable[str]) -> list[Checkpoint]:
    return [Checkpoint.from_dict(json.loads(d)) for d in documents]
