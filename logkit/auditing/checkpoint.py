"""Signed checkpoints of chain heads: HMAC-SHA256 with a shared key, or Ed25519.

A checkpoint states "chain C had seq N with hash H at time T", signed. Kept where the writers
cannot reach (a deploy pipeline's artefact store), it catches what a plain hash chain cannot: a
truncated tail and a suffix rewritten with valid hashes. With Ed25519 the verifier needs only
the public key, so holding the verification key does not let anyone forge a checkpoint.

A checkpoint also signs ``anchors``: the hashes at seq N-1, N-2, N-4, ... N-2^16. When a suffix
was rewritten, the lowest anchor that differs names the first rewritten record (exactly, for
the recent records a rewrite usually targets), not just "somewhere before N".

Every checkpoint names the key that signed it (``key_id``). Verification keys are a list: the
current key and retired ones (``audit.verify_*``), so key rotation never breaks old checkpoints;
a checkpoint signed by a key not in the list is ``unknown_key``, not ``bad_signature``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from logkit.chain import canonical
from logkit.config import AuditConfig
from logkit.envelope import Env
from logkit.errors import ConfigError, LogkitError
from logkit.sinks.protocols import AuditStore

FILE_FORMAT = "logkit-checkpoints/1"
ALGORITHMS = ("hmac-sha256", "ed25519")
ANCHOR_SPAN = 16  # anchors at seq - 2^0 ... seq - 2^16
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX = re.compile(r"(?:[0-9a-f]{2})+")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    chain_id: str
    seq: int
    hash: str
    time: str  # RFC 3339, UTC
    alg: str  # "hmac-sha256" | "ed25519"
    key_id: str
    signature: str  # hex
    anchors: tuple[tuple[int, str], ...] = ()  # (seq, hash) of earlier records, signed too

    def signed_bytes(self) -> bytes:
        """The JCS bytes the signature covers: every field but the signature (``anchors``
        only when there are any, so checkpoints made before anchors still verify)."""
        fields = self.as_dict()
        del fields["signature"]
        return canonical(fields)

    def as_dict(self) -> dict[str, Any]:
        fields = asdict(self)
        if self.anchors:
            fields["anchors"] = [list(a) for a in self.anchors]
        else:
            del fields["anchors"]
        return fields

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    def points(self) -> dict[int, str]:
        """Every (seq, hash) this checkpoint vouches for: its head and its anchors."""
        return {**dict(self.anchors), self.seq: self.hash}

    @classmethod
    def from_dict(cls, data: Any) -> Checkpoint:
        """A checkpoint from parsed JSON, every field checked; ConfigError saying what is
        wrong (never echoing a value) otherwise."""
        if not isinstance(data, dict):
            raise ConfigError("not a logkit checkpoint: not a JSON object")
        problem = _problem(data)
        if problem is not None:
            raise ConfigError(f"not a logkit checkpoint: {problem}")
        anchors = tuple((int(seq), str(h)) for seq, h in data.get("anchors") or ())
        fields = {name: data[name] for name in _FIELDS}
        return cls(**fields, anchors=anchors)


_FIELDS = ("chain_id", "seq", "hash", "time", "alg", "key_id", "signature")


def _problem(data: dict[str, Any]) -> str | None:
    """What makes ``data`` not a checkpoint, or None."""
    missing = [name for name in _FIELDS if name not in data]
    if missing:
        return f"missing {missing[0]!r}"
    anchors = data.get("anchors", [])
    checks = (
        (all(isinstance(data[n], str) for n in _FIELDS if n != "seq"), "a text field is not text"),
        (_is_seq(data["seq"]), "seq is not a non-negative integer"),
        (_HEX64.fullmatch(str(data["hash"])), "hash is not 64 lowercase hex digits"),
        (data["alg"] in ALGORITHMS, "alg is not one of " + ", ".join(ALGORITHMS)),
        (_HEX.fullmatch(str(data["signature"])), "signature is not hex"),
        (isinstance(anchors, list) and all(map(_is_anchor, anchors)), "bad anchors"),
        (set(data) <= {*_FIELDS, "anchors"}, "unknown fields"),
    )
    return next((message for good, message in checks if not good), None)


def _is_anchor(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and _is_seq(value[0])
        and isinstance(value[1], str)
        and _HEX64.fullmatch(value[1]) is not None
    )


def _is_seq(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**53


@dataclass(frozen=True)
class Keys:
    """The signing key (if any) and every key a checkpoint may be verified with, by key id."""

    signer: tuple[str, str, Callable[[bytes], str]] | None  # (alg, key_id, sign)
    verifiers: dict[str, tuple[str, Callable[[bytes, str], bool]]]  # key_id -> (alg, verify)


Verifier = tuple[str, Callable[[bytes, str], bool]]  # (alg, verify)


def load_keys(config: AuditConfig, env: Env) -> Keys:
    """Keys from config; in dev with none configured, a generated local HMAC key.

    Verifiers: the current keys, plus the retired ones listed in ``verify_hmac_keys``,
    ``verify_hmac_key_files`` and ``verify_ed25519_public_key_files``.
    """
    signer = None
    verifiers: dict[str, Verifier] = {}
    secret = _hmac_secret(config, env)
    if secret is not None:
        key_id, sign_hmac, verify_hmac = _hmac(secret)
        signer = ("hmac-sha256", key_id, sign_hmac)
        verifiers[key_id] = ("hmac-sha256", verify_hmac)
    retired = [k.get_secret_value().encode() for k in config.verify_hmac_keys]
    retired += [_read_key(path) for path in config.verify_hmac_key_files]
    for old in retired:
        key_id, _, verify_old = _hmac(old)
        verifiers.setdefault(key_id, ("hmac-sha256", verify_old))
    ed_signer, ed_verifiers = _ed25519(config)
    verifiers.update(ed_verifiers)
    for path in config.verify_ed25519_public_key_files:
        key_id, verify_ed = _ed25519_verifier(_load_public(path))
        verifiers.setdefault(key_id, ("ed25519", verify_ed))
    return Keys(ed_signer or signer, verifiers)


def _hmac(secret: bytes) -> tuple[str, Callable[[bytes], str], Callable[[bytes, str], bool]]:
    key_id = "hmac:" + hashlib.sha256(secret).hexdigest()[:16]

    def sign_hmac(data: bytes) -> str:
        return hmac.new(secret, data, hashlib.sha256).hexdigest()

    def verify_hmac(data: bytes, signature: str) -> bool:
        return hmac.compare_digest(sign_hmac(data), signature)

    return key_id, sign_hmac, verify_hmac


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
) -> tuple[tuple[str, str, Callable[[bytes], str]] | None, dict[str, Verifier]]:
    if not (config.ed25519_private_key_file or config.ed25519_public_key_file):
        return None, {}
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private: ed25519.Ed25519PrivateKey | None = None
    if config.ed25519_private_key_file is not None:
        try:
            loaded = serialization.load_pem_private_key(
                _read_key(config.ed25519_private_key_file), password=None
            )
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"not an Ed25519 PEM key: {exc}") from None
        if not isinstance(loaded, ed25519.Ed25519PrivateKey):
            raise ConfigError("audit checkpoint keys must be Ed25519")
        private = loaded
        public: Any = loaded.public_key()
    else:
        assert config.ed25519_public_key_file is not None
        public = _load_public(config.ed25519_public_key_file)
    key_id, verify = _ed25519_verifier(public)
    signer = None
    if private is not None:
        key = private
        signer = ("ed25519", key_id, lambda data: key.sign(data).hex())
    return signer, {key_id: ("ed25519", verify)}


def _load_public(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    try:
        public = serialization.load_pem_public_key(_read_key(path))
    except ValueError as exc:
        raise ConfigError(f"{path} is not an Ed25519 PEM public key: {exc}") from None
    if not isinstance(public, ed25519.Ed25519PublicKey):
        raise ConfigError(f"{path}: audit checkpoint keys must be Ed25519")
    return public


def _ed25519_verifier(public: Any) -> tuple[str, Callable[[bytes, str], bool]]:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_id = "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]

    def verify(data: bytes, signature: str) -> bool:
        try:
            public.verify(bytes.fromhex(signature), data)
            return True
        except (InvalidSignature, ValueError):
            return False

    return key_id, verify


def sign(
    chain_id: str,
    seq: int,
    hash_hex: str,
    keys: Keys,
    now: dt.datetime | None = None,
    *,
    anchors: Iterable[tuple[int, str]] = (),
) -> Checkpoint:
    if keys.signer is None:
        raise ConfigError(
            "no checkpoint signing key: set audit.hmac_key (or hmac_key_file) "
            "or audit.ed25519_private_key_file"
        )
    alg, key_id, signer = keys.signer
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    unsigned = Checkpoint(
        chain_id,
        seq,
        hash_hex,
        moment.isoformat().replace("+00:00", "Z"),
        alg,
        key_id,
        "",
        tuple(sorted(anchors)),
    )
    return replace(unsigned, signature=signer(unsigned.signed_bytes()))


def check_signature(checkpoint: Checkpoint, keys: Keys) -> str:
    """``ok``, ``unknown_key`` (no verification key has its key id: a retired key not
    listed, or a made-up id) or ``bad_signature``."""
    verifier = keys.verifiers.get(checkpoint.key_id)
    if verifier is None:
        return "unknown_key"
    if verifier[0] != checkpoint.alg:
        return "bad_signature"
    try:
        good = verifier[1](checkpoint.signed_bytes(), checkpoint.signature)
    except LogkitError:  # not canonicalisable: cannot have been signed by logkit
        good = False
    return "ok" if good else "bad_signature"


def anchor_seqs(seq: int) -> list[int]:
    """Where a checkpoint at ``seq`` anchors: seq - 1, seq - 2, seq - 4, ... (never below 0)."""
    return sorted({seq - 2**i for i in range(ANCHOR_SPAN + 1) if seq - 2**i >= 0})


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
        anchors = _anchors(store, chain_id, head[0])
        checkpoint = sign(chain_id, head[0], head[1], keys, now, anchors=anchors)
        store.put_checkpoint(chain_id, checkpoint.seq, checkpoint.to_json())
        made.append(checkpoint)
    return made


def _anchors(store: AuditStore, chain_id: str, seq: int) -> list[tuple[int, str]]:
    """The stored hashes at the anchor positions below ``seq`` (those that read cleanly)."""
    anchors = []
    for at in anchor_seqs(seq):
        found = store.records(chain_id, after_seq=at - 1, limit=1)
        if found and found[0].seq == at and isinstance(found[0].hash, str):
            anchors.append((at, found[0].hash))
    return anchors


def write_file(path: Path, checkpoints: list[Checkpoint]) -> None:
    document = {"format": FILE_FORMAT, "checkpoints": [c.as_dict() for c in checkpoints]}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def read_file(path: Path) -> list[Checkpoint]:
    """The checkpoints of a file ``write_file`` wrote; ConfigError (a usage error) when it is
    missing, unreadable or not entirely valid: a pipeline's evidence must be all good."""
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"checkpoint file not found: {path}") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(f"checkpoint file {path} is unreadable: {type(exc).__name__}") from None
    if not isinstance(document, dict) or document.get("format") != FILE_FORMAT:
        raise ConfigError(f"{path} is not a logkit checkpoint file ({FILE_FORMAT})")
    entries = document.get("checkpoints", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: 'checkpoints' is not a list")
    found = []
    for index, entry in enumerate(entries):
        try:
            found.append(Checkpoint.from_dict(entry))
        except ConfigError as exc:
            raise ConfigError(f"{path}: checkpoint #{index}: {exc}") from None
    return found


def parse_documents(documents: Iterable[object]) -> tuple[list[Checkpoint], list[str]]:
    """Stored checkpoint documents: the valid checkpoints, and what is wrong with the others."""
    found, problems = [], []
    for index, document in enumerate(documents):
        try:
            if not isinstance(document, str):  # stores keep text: anything else was changed
                raise ConfigError(f"not a logkit checkpoint: stored as {type(document).__name__}")
            checkpoint = Checkpoint.from_dict(json.loads(document))
            if document != checkpoint.to_json():  # same meaning, other bytes: edited by hand
                raise ConfigError("not a logkit checkpoint: not in the form logkit stores")
            found.append(checkpoint)
        except (ValueError, RecursionError) as exc:  # ConfigError is not a ValueError
            problems.append(f"stored checkpoint #{index} is not JSON ({type(exc).__name__})")
        except ConfigError as exc:
            problems.append(f"stored checkpoint #{index}: {exc}")
    return found, problems


def parse_stored(documents: Iterable[object]) -> list[Checkpoint]:
    """The valid checkpoints among stored documents (verify reports the others)."""
    return parse_documents(documents)[0]
