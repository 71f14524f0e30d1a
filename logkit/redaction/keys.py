"""Key providers of sealed payloads: one key per canonical subject, never shared.

- :class:`LocalKeyDirectory`: one 0600 file per subject, named by a keyed hash of the subject
  (HMAC-SHA256 under a per-directory secret), so names neither collide nor reveal subjects.
  The dev default (``.logkit/keys``); elsewhere only when a directory is configured explicitly.
- :class:`WrappedKeys`: each subject key AES-GCM-wrapped under a key-encryption key from the
  configuration and kept in a database every instance shares (logkit.sinks.keytables: SQLite,
  Firestore). Destroying a key deletes its wrapped copy.
- :class:`Unconfigured`: outside dev with no provider configured; the first seal is a
  ConfigError, never a silent local directory.

A ``package.module:factory`` named in ``[redaction] key_provider`` (e.g. a KMS-backed provider)
is called with the settings and returns any object with ``key`` and ``destroy``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from logkit.envelope import Env
from logkit.errors import ConfigError, RedactionError
from logkit.redaction.sealing import KeyProvider, is_legacy, legacy_subject
from logkit.sinks.protocols import Role

if TYPE_CHECKING:
    from logkit._sqlite import Residue
    from logkit.config import RedactionConfig, Settings

KEY_BYTES = 32
DEV_KEY_DIR = Path(".logkit/keys")  # sealed-payload keys in dev when nothing is configured
_HEX_KEY = re.compile(rb"^[0-9a-f]{64}$")
# The pre-canonical file naming (lossy): kept only to read payloads sealed before it changed.
_LEGACY_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _legacy_file_name(legacy: str) -> str:
    return _LEGACY_UNSAFE.sub("_", legacy.replace("/", "__")) + ".key"


class LocalKeyDirectory:
    """One key file per subject (mode 0600, in a 0700 directory); destroying overwrites, then
    unlinks. Files are named ``HMAC-SHA256(secret, subject).key``; the secret is the
    directory's ``.name-secret`` file, created on first use (losing it loses every key).

    Key files named the legacy way (``t_acme__u_7.key``) are read for payloads sealed before,
    never written; destroying a subject also destroys its legacy file, because its old sealed
    payloads must become unrecoverable too (docs/retention-dsar.md, "Keys of sealed payloads").
    """

    SECRET_NAME = ".name-secret"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_of(self, subject: str, *, create: bool = False) -> Path | None:
        """The key file of a subject (a legacy subject: its legacy file); None when the
        directory has no name secret yet (so no key either) and ``create`` is false."""
        if is_legacy(subject):
            return self.directory / _legacy_file_name(subject)
        secret = self._secret(create=create)
        if secret is None:
            return None
        name = hmac.new(secret, subject.encode(), hashlib.sha256).hexdigest()
        return self.directory / f"{name}.key"

    def key(self, subject: str, *, create: bool) -> bytes | None:
        if is_legacy(subject) and create:
            raise RedactionError("legacy sealing subjects are read-only: nothing is sealed")
        path = self.path_of(subject, create=create)
        key = None if path is None else _read_key(path)
        if key is not None or not create or path is None:
            return key
        create_once(path, os.urandom(KEY_BYTES).hex().encode())
        return _read_key(path)  # ours, or the one another process created first

    def destroy(self, subject: str) -> bool:
        paths = [self.path_of(subject)]
        legacy = legacy_subject(subject)
        if legacy is not None:
            paths.append(self.directory / _legacy_file_name(legacy))
        return any([_shred(path) for path in paths if path is not None])

    def _secret(self, *, create: bool) -> bytes | None:
        path = self.directory / self.SECRET_NAME
        try:
            secret = path.read_bytes().strip()
        except FileNotFoundError:
            if not create:
                return None
            secret = create_once(path, secrets.token_hex(KEY_BYTES).encode())
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        if not _HEX_KEY.match(secret):
            raise ConfigError(f"{path} is not a key directory's name secret (64 hex characters)")
        return secret


def _read_key(path: Path) -> bytes | None:
    try:
        text = path.read_bytes().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RedactionError(f"cannot read the key file {path.name}: {exc.strerror}") from None
    if not _HEX_KEY.match(text):
        raise RedactionError(f"the key file {path.name} is damaged (not 64 hex characters)")
    return bytes.fromhex(text.decode())


def create_once(path: Path, content: bytes) -> bytes:
    """Create ``path`` (0600) holding ``content``, atomically and once: if another thread or
    process won the race, its content is returned. Written to a private temporary file first and
    hard-linked into place, so nobody ever reads a half-written key."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot create {path.name} in {path.parent} ({exc.strerror}): the key directory "
            "must be writable and support hard links (atomic creation)"
        ) from None
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_directory(path.parent)
    return content


def _shred(path: Path) -> bool:
    """Overwrite a key file, then unlink it; True if it existed. Best effort on a local disk
    (a copy-on-write or journaling file system may keep old blocks; a KMS destroys for real)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    with contextlib.suppress(OSError), path.open("r+b") as handle:
        handle.write(b"\0" * size)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        path.unlink()
    except FileNotFoundError:
        return False  # another process destroyed it at the same moment
    _fsync_directory(path.parent)
    return True


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- wrapped keys in a shared database --------------------------------------------------------


class KeyTable(Protocol):
    """Wrapped keys by id, in a database every instance shares (logkit.sinks.keytables)."""

    def get(self, key_id: str) -> bytes | None: ...

    def put_if_absent(self, key_id: str, wrapped: bytes) -> bytes:
        """Store ``wrapped`` unless the id exists; the stored value either way."""
        ...

    def delete(self, key_id: str) -> bool: ...

    def describe(self) -> str: ...


class WrappedKeys:
    """Subject keys AES-256-GCM-wrapped under a key-encryption key (KEK), kept in a KeyTable.

    Two subkeys are derived from the KEK with HKDF-SHA256: one wraps (the associated data is
    the key id, so a wrapped key cannot be moved to another subject), one names (key id =
    HMAC-SHA256 of the canonical subject: ids reveal no subject). Nothing is cached: a key
    destroyed by another instance is gone for this one at once. The table's ``check`` entry,
    wrapped by the first KEK that used it, tells another KEK apart from a missing key.
    """

    CHECK_ID = "check"  # never a key id (those are 64 hex characters)

    def __init__(self, table: KeyTable, kek: bytes) -> None:
        if len(kek) < KEY_BYTES:
            raise ConfigError(
                f"the key-encryption key must be at least {KEY_BYTES} bytes of random data"
            )
        self.table = table
        self._wrap = _derive(kek, b"logkit sealed keys: wrap")
        self._name = _derive(kek, b"logkit sealed keys: name")
        self._checked = False

    def key_id(self, subject: str) -> str:
        return hmac.new(self._name, subject.encode(), hashlib.sha256).hexdigest()

    def key(self, subject: str, *, create: bool) -> bytes | None:
        if is_legacy(subject):
            if create:
                raise RedactionError("legacy sealing subjects are read-only: nothing is sealed")
            return None  # keys were never kept here under legacy subjects
        self._check_kek()
        key_id = self.key_id(subject)
        wrapped = self.table.get(key_id)
        if wrapped is None:
            if not create:
                return None
            wrapped = self.table.put_if_absent(key_id, self._wrapped(key_id, os.urandom(KEY_BYTES)))
        return self._unwrapped(key_id, wrapped)

    def destroy(self, subject: str) -> bool:
        if is_legacy(subject):
            return False
        self._check_kek()
        return self.table.delete(self.key_id(subject))

    def _check_kek(self) -> None:
        """Refuse another KEK than the table's: its ids would find no key, silently."""
        if self._checked:
            return
        stored = self.table.get(self.CHECK_ID)
        if stored is None:
            stored = self.table.put_if_absent(self.CHECK_ID, self._wrapped(self.CHECK_ID, b""))
        try:
            self._unwrapped(self.CHECK_ID, stored)
        except RedactionError:
            raise ConfigError(
                f"the keys in {self.table.describe()} were wrapped under another "
                "key-encryption key: configure that one (keys are never re-created under a new one)"
            ) from None
        self._checked = True

    def scrub(self, wait_s: float) -> list[Residue]:
        """Push deletions to disk where the table is a local file (see logkit.erasure)."""
        scrub = getattr(self.table, "scrub", None)
        return list(scrub(wait_s)) if scrub is not None else []

    def close(self) -> None:
        close = getattr(self.table, "close", None)
        if close is not None:
            close()

    def _wrapped(self, key_id: str, key: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(12)
        return nonce + AESGCM(self._wrap).encrypt(nonce, key, key_id.encode())

    def _unwrapped(self, key_id: str, wrapped: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            return AESGCM(self._wrap).decrypt(wrapped[:12], wrapped[12:], key_id.encode())
        except (InvalidTag, ValueError):
            raise RedactionError(
                f"a wrapped key in {self.table.describe()} does not unwrap: another "
                "key-encryption key, or the stored key was altered"
            ) from None


def _derive(kek: bytes, info: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(kek)


class Unconfigured:
    """Outside dev with no key provider: sealing is a ConfigError; nothing was ever sealed, so
    there is nothing to read or destroy."""

    def __init__(self, env: str) -> None:
        self.env = env

    def key(self, subject: str, *, create: bool) -> bytes | None:
        if create:
            raise ConfigError(
                f"seal_raw needs a key provider in {self.env}: set [redaction] key_provider "
                '("local" with encryption_key_dir, "store" with key_encryption_key, or '
                '"package.module:factory"); see docs/retention-dsar.md'
            )
        return None

    def destroy(self, subject: str) -> bool:
        return False


# --- which provider: [redaction] key_provider -------------------------------------------------


def provider_for(settings: Settings) -> KeyProvider:
    """Keys of sealed payloads, as ``[redaction] key_provider`` says (docs/retention-dsar.md).

    Unset: the local ``.logkit/keys`` directory in dev, or the directory ``encryption_key_dir``
    names; outside dev with neither, a provider whose first seal is a ConfigError.
    """
    config = settings.redaction
    choice = config.key_provider or ("local" if config.encryption_key_dir else None)
    if choice is None:
        if settings.env is Env.DEV:
            return LocalKeyDirectory(DEV_KEY_DIR)
        return Unconfigured(settings.env.value)
    if choice == "local":
        if config.encryption_key_dir is None:
            raise ConfigError(
                'key_provider "local" needs redaction.encryption_key_dir: a directory that '
                "every instance shares and keeps (a mounted volume), never a default"
            )
        return LocalKeyDirectory(config.encryption_key_dir)
    if choice == "store":
        return _store_provider(settings)
    if ":" in choice:
        return _factory_provider(choice, settings)
    raise ConfigError(
        f"redaction.key_provider must be local, store or package.module:factory, got {choice!r}"
    )


def _store_provider(settings: Settings) -> KeyProvider:
    from logkit.sinks.keytables import open_key_table

    config = settings.redaction
    uri = config.key_store or settings.sink_uri(Role.AUDIT)
    if uri is None:
        raise ConfigError('key_provider "store" needs redaction.key_store (or an audit sink)')
    return WrappedKeys(open_key_table(uri), _key_encryption_key(config))


def _key_encryption_key(config: RedactionConfig) -> bytes:
    if config.key_encryption_key is not None:
        return config.key_encryption_key.get_secret_value().encode()
    path = config.key_encryption_key_file
    if path is None:
        raise ConfigError(
            'key_provider "store" needs redaction.key_encryption_key '
            "(LOGKIT_REDACTION__KEY_ENCRYPTION_KEY) or key_encryption_key_file"
        )
    try:
        return path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read key_encryption_key_file {path}: {exc.strerror}") from None


def _factory_provider(spec: str, settings: Settings) -> KeyProvider:
    """``package.module:factory``, called with the settings (e.g. a KMS-backed provider)."""
    import importlib

    module_name, _, attribute = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"redaction.key_provider {spec!r} cannot be imported: {exc}") from None
    try:
        provider = factory(settings)
    except Exception as exc:  # a plug-in's own error: say whose, without its details
        raise ConfigError(f"redaction.key_provider {spec!r} failed: {type(exc).__name__}") from exc
    if not all(callable(getattr(provider, name, None)) for name in ("key", "destroy")):
        raise ConfigError(f"redaction.key_provider {spec!r} returned no key provider")
    return cast(KeyProvider, provider)
