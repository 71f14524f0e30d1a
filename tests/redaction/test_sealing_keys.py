"""Keys of sealed payloads: one key per subject, never shared, never named after the subject.

The collisions an attacker-minded review found on the lossy file naming (``alice@x.com`` and
``alice_x.com``; ``t_a/b__c`` and ``t_a__b/c``; the user ``_tenant`` and the tenant itself),
the property behind them (two subjects never share a key, and destroying one never touches
another), legacy key files, and the provider chosen by configuration outside dev.
"""

from __future__ import annotations

import base64
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import logkit
from logkit import dsar
from logkit.config import load_settings
from logkit.envelope import Event
from logkit.errors import ConfigError, ContractError, RedactionError
from logkit.redaction.keys import LocalKeyDirectory, Unconfigured, WrappedKeys
from logkit.redaction.policy import key_provider
from logkit.redaction.sealing import (
    SEALED_KEY,
    legacy_subject,
    parse_subject,
    seal,
    subject_of,
    unseal,
)
from tests.conftest import SCOPE

COLLISIONS = [  # pairs of subjects the old naming gave one key
    (("t_acme", "alice@x.com"), ("t_acme", "alice_x.com")),
    (("t_a", "b__c"), ("t_a__b", "c")),
    (("t_acme", "_tenant"), ("t_acme", None)),
    (("t_acme", "a/b"), ("t_acme", "a__b")),
    (("t_acme", "é"), ("t_acme", "_")),
]
KEK = "k" * 16 + os.urandom(16).hex()

tenants = st.from_regex(r"t_[a-z0-9_-]{1,10}", fullmatch=True)
# Any user id the envelope takes (up to 256 characters): '/', ':', '.', '..', NUL, case...
users = st.none() | st.text(min_size=1, max_size=256) | st.sampled_from(["_tenant", ".", ".."])
subjects = st.tuples(tenants, users)


# --- canonical subjects -----------------------------------------------------------------------


@given(subjects)
def test_a_subject_names_exactly_one_tenant_and_user(pair: tuple[str, str | None]) -> None:
    assert parse_subject(subject_of(*pair)) == pair


@given(subjects, subjects)
def test_different_tenant_and_user_give_different_subjects(
    one: tuple[str, str | None], other: tuple[str, str | None]
) -> None:
    assert (subject_of(*one) == subject_of(*other)) == (one == other)


def test_subjects_refuse_what_is_not_a_tenant_or_a_user() -> None:
    for tenant, user in [("Zq9", "u_1"), ("t_a:Zq9", "u_1"), ("t_Zq9", None), ("t_acme", "")]:
        with pytest.raises(ContractError) as caught:
            subject_of(tenant, user)
        assert "Zq9" not in str(caught.value)  # errors name fields, never values
    with pytest.raises(RedactionError):
        parse_subject("t_acme/u_1")  # the legacy spelling is not canonical


# --- the local key directory ------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@settings(max_examples=60, deadline=None)
@given(st.lists(subjects, min_size=2, max_size=6, unique=True), st.data())
def test_two_subjects_never_share_a_key_and_destroying_one_spares_the_rest(
    shared_dir: Path, pairs: list[tuple[str, str | None]], data: st.DataObject
) -> None:
    keys = LocalKeyDirectory(shared_dir)
    names = [subject_of(*pair) for pair in pairs]
    for name in names:
        keys.destroy(name)  # examples share the directory: start each subject afresh
    made = {name: keys.key(name, create=True) for name in names}
    assert len(set(made.values())) == len(names)
    assert len({keys.path_of(name) for name in names}) == len(names)
    victim = data.draw(st.sampled_from(names))
    assert keys.destroy(victim)
    assert keys.key(victim, create=False) is None
    for name in names:
        if name != victim:
            assert keys.key(name, create=False) == made[name]


@pytest.mark.parametrize(("one", "other"), COLLISIONS)
def test_the_reported_collisions_have_keys_of_their_own(
    tmp_path: Path, one: tuple[str, str | None], other: tuple[str, str | None]
) -> None:
    keys = LocalKeyDirectory(tmp_path / "keys")
    first, second = subject_of(*one), subject_of(*other)
    mine, theirs = keys.key(first, create=True), keys.key(second, create=True)
    assert first != second and mine != theirs
    assert keys.path_of(first) != keys.path_of(second)
    assert keys.destroy(first)
    assert keys.key(second, create=False) == theirs
    assert keys.key(first, create=False) is None


def test_key_files_are_private_and_their_names_reveal_no_subject(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    keys = LocalKeyDirectory(directory)
    for pair in [("t_acme", "alice@x.com"), ("t_acme", None), ("t_other", "u_42")]:
        keys.key(subject_of(*pair), create=True)
    names = sorted(p.name for p in directory.iterdir())
    assert names[0] == LocalKeyDirectory.SECRET_NAME and len(names) == 4
    for name in names[1:]:
        assert len(name) == 68 and name.endswith(".key") and int(name[:64], 16) >= 0
    for needle in ("acme", "alice", "other", "u_42", "tenant"):
        assert not any(needle in name for name in names)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()} == {0o600}
    # Another directory has another secret: the same subject gets another name.
    assert LocalKeyDirectory(tmp_path / "more").path_of(
        subject_of("t_acme", None), create=True
    ) != keys.path_of(subject_of("t_acme", None))


def test_reading_creates_nothing(tmp_path: Path) -> None:
    keys = LocalKeyDirectory(tmp_path / "keys")
    assert keys.key(subject_of("t_acme", "u_1"), create=False) is None
    assert not keys.destroy(subject_of("t_acme", "u_1"))
    assert not (tmp_path / "keys").exists()


def test_threads_creating_one_key_at_once_all_get_the_same(tmp_path: Path) -> None:
    keys = LocalKeyDirectory(tmp_path / "keys")
    subject = subject_of("t_acme", "u_race")
    start = threading.Barrier(8)
    got: list[bytes | None] = []

    def create() -> None:
        start.wait(timeout=10)
        got.append(keys.key(subject, create=True))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(got) == 8 and len(set(got)) == 1 and got[0] is not None
    assert [p.name for p in (tmp_path / "keys").iterdir() if p.name.endswith(".tmp")] == []


def test_a_damaged_key_file_is_an_error_that_quotes_nothing(tmp_path: Path) -> None:
    keys = LocalKeyDirectory(tmp_path / "keys")
    subject = subject_of("t_acme", "alice@x.com")
    path = keys.path_of(subject, create=True)
    assert path is not None
    path.write_text("not a key alice@x.com")
    with pytest.raises(RedactionError, match="damaged") as caught:
        keys.key(subject, create=False)
    assert "alice" not in str(caught.value)


# --- sealed envelopes -------------------------------------------------------------------------


def _event(user_id: str | None, tenant_id: str = "t_acme") -> Event:
    return Event(
        **{**SCOPE, "tenant_id": tenant_id}, event_type="message", user_id=user_id, payload={}
    )


def test_the_sealed_envelope_holds_the_events_subject_and_ciphertext_only(tmp_path: Path) -> None:
    keys = LocalKeyDirectory(tmp_path / "keys")
    event = _event("[EMAIL:0123456789abcdef0123456789abcdef]")  # a gated user id
    raw = {"prompt": "alice@x.com 4111 1111 1111 1111"}
    sealed = seal(raw, event, keys)
    assert sorted(sealed) == ["alg", "ciphertext", "nonce", "subject"]
    assert sealed["subject"] == subject_of(event.tenant_id, event.user_id)
    assert "alice" not in orjson.dumps(sealed).decode() and "4111" not in str(sealed)
    stored = event.replace(payload={SEALED_KEY: sealed})
    assert unseal(stored, keys) == raw
    moved = stored.replace(payload={SEALED_KEY: {**sealed, "subject": subject_of("t_x", None)}})
    with pytest.raises(RedactionError, match="another tenant"):
        unseal(moved, keys)


# --- keys written before the canonical naming -------------------------------------------------


def _legacy_sealed(directory: Path, event: Event, legacy: str, raw: dict[str, Any]) -> Event:
    """A payload sealed the way the previous release did: key file named from the subject."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    directory.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32)
    name = legacy.replace("/", "__").replace("@", "_") + ".key"
    (directory / name).write_text(key.hex())
    nonce = os.urandom(12)
    aad = f"logkit-sealed:{event.tenant_id}:{event.event_id}".encode()
    sealed = {
        "alg": "AES-256-GCM",
        "subject": legacy,
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(AESGCM(key).encrypt(nonce, orjson.dumps(raw), aad)).decode(),
    }
    return event.replace(payload={SEALED_KEY: sealed})


def test_payloads_sealed_under_legacy_key_files_stay_readable_until_erasure(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "keys"
    keys = LocalKeyDirectory(directory)
    subject = subject_of("t_acme", "u_7")
    old = _legacy_sealed(directory, _event("u_7"), "t_acme/u_7", {"prompt": "old"})
    assert legacy_subject(subject) == "t_acme/u_7"
    assert unseal(old, keys) == {"prompt": "old"}
    with pytest.raises(RedactionError, match="read-only"):
        keys.key("t_acme/u_7", create=True)
    new = _event("u_7")
    new = new.replace(payload={SEALED_KEY: seal({"prompt": "new"}, new, keys)})
    assert (directory / "t_acme__u_7.key").read_text() != keys.key(subject, create=False)
    assert unseal(new, keys) == {"prompt": "new"} and unseal(old, keys) == {"prompt": "old"}
    assert keys.destroy(subject)  # the new key and the subject's legacy file both go
    assert not (directory / "t_acme__u_7.key").exists()
    for event in (old, new):
        with pytest.raises(RedactionError, match="destroyed"):
            unseal(event, keys)


# --- erasure through dsar delete, across tenants ----------------------------------------------


@pytest.fixture
def on_sqlite(configured: Any, tmp_path: Path) -> Callable[..., Any]:
    """``on_sqlite(env, **settings)``: a runtime keeping timeline, audit and cost in one file."""
    db = f"sqlite:///{tmp_path / 'logkit.db'}"
    sinks = {"timeline": db, "audit": db, "cost": db}
    return lambda env, **more: configured(env=env, sinks=sinks, **more)


@pytest.fixture
def sealing_runtime(on_sqlite: Callable[..., Any]) -> Any:
    return on_sqlite("dev")


def _sealed_event(tenant_id: str, user_id: str | None) -> Event:
    scope = {**SCOPE, "env": "dev", "tenant_id": tenant_id}
    with logkit.bind(**scope):
        return logkit.emit(
            "model_call_ended", {"prompt": f"said by {user_id}"}, user_id=user_id, seal_raw=True
        )


def test_dsar_delete_of_one_subject_spares_every_other_subjects_key(sealing_runtime: Any) -> None:
    everyone = sorted({pair for collision in COLLISIONS for pair in collision}, key=str)
    sealed = {pair: _sealed_event(*pair) for pair in everyone}
    keys = sealing_runtime.keys
    for pair, event in sealed.items():
        assert unseal(event, keys) == {"prompt": f"said by {pair[1]}"}
    for victim in [("t_a", "b__c"), ("t_acme", "_tenant"), ("t_acme", "alice@x.com")]:
        result = dsar.delete(*victim)  # type: ignore[arg-type]
        assert result.ok and result.keys_destroyed == 1
        with pytest.raises(RedactionError, match="destroyed"):
            unseal(sealed.pop(victim), keys)
        for pair, event in sealed.items():  # every other subject, in every tenant
            assert unseal(event, keys) == {"prompt": f"said by {pair[1]}"}, pair


# --- the provider, by configuration -----------------------------------------------------------


def test_dev_without_configuration_uses_the_local_dev_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    provider = key_provider(load_settings(env="dev"))
    assert isinstance(provider, LocalKeyDirectory)
    assert provider.directory == Path(".logkit/keys")


def test_outside_dev_sealing_without_a_provider_is_a_config_error(
    on_sqlite: Callable[..., Any], tmp_path: Path
) -> None:
    runtime = on_sqlite("prod", redaction={"key": "test-redaction-master-key"})
    assert isinstance(runtime.keys, Unconfigured)
    with pytest.raises(ConfigError, match="seal_raw needs a key provider in prod"):
        _sealed_event("t_acme", "u_1")
    assert not (tmp_path / ".logkit" / "keys").exists()  # never a silent local directory
    assert dsar.delete("t_acme", "u_1").keys_destroyed == 0


@pytest.mark.parametrize(
    ("redaction", "message"),
    [
        ({"key_provider": "local"}, "needs redaction.encryption_key_dir"),
        ({"key_provider": "vault"}, "must be local, store or package.module:factory"),
        ({"key_provider": "no_such_module_x:make"}, "cannot be imported"),
        ({"key_provider": "os:getcwd"}, "failed: TypeError"),
        ({"key_provider": f"{__name__}:make_nothing"}, "returned no key provider"),
        ({"key_provider": "store"}, "needs redaction.key_encryption_key"),
        ({"key_provider": "store", "key_encryption_key": "short"}, "at least 32 bytes"),
        (
            {"key_provider": "store", "key_encryption_key": KEK, "key_store": "memory://"},
            "must be a sqlite:/// or firestore:// URI",
        ),
    ],
)
def test_a_provider_misconfigured_is_refused_at_configure(
    tmp_path: Path, redaction: dict[str, Any], message: str
) -> None:
    db = f"sqlite:///{tmp_path / 'logkit.db'}"
    settings = load_settings(env="prod", sinks={"timeline": db, "audit": db}, redaction=redaction)
    with pytest.raises(ConfigError, match=message):
        key_provider(settings)


def make_test_provider(settings: Any) -> LocalKeyDirectory:
    """A ``package.module:factory`` provider, as a KMS-backed one would be plugged in."""
    return LocalKeyDirectory(Path(settings.redaction.encryption_key_dir) / "factory")


def make_nothing(settings: Any) -> object:
    return object()


def test_a_factory_named_in_the_configuration_is_the_provider(tmp_path: Path) -> None:
    settings = load_settings(
        env="prod",
        redaction={
            "key_provider": f"{__name__}:make_test_provider",
            "encryption_key_dir": tmp_path,
        },
    )
    provider = key_provider(settings)
    assert isinstance(provider, LocalKeyDirectory) and provider.directory == tmp_path / "factory"


# --- wrapped keys in a shared store -----------------------------------------------------------


def _store_settings(uri: str, kek: str = KEK) -> Any:
    return load_settings(
        env="prod",
        redaction={"key_provider": "store", "key_store": uri, "key_encryption_key": kek},
    )


def _check_wrapped_keys(uri: str) -> tuple[WrappedKeys, list[bytes]]:
    """Two instances on one store share keys; destroying in one is seen by the other; another
    KEK is refused, never taken for missing keys. Returns the provider and the keys made."""
    one, two = key_provider(_store_settings(uri)), key_provider(_store_settings(uri))
    assert isinstance(one, WrappedKeys) and isinstance(two, WrappedKeys)
    pairs = [pair for collision in COLLISIONS for pair in collision]
    made = {subject_of(*pair): one.key(subject_of(*pair), create=True) for pair in pairs}
    assert len(set(made.values())) == len(pairs)
    for subject, key in made.items():
        assert two.key(subject, create=True) == key  # another instance: the same key
    victim = subject_of("t_a", "b__c")
    assert two.destroy(victim) and not two.destroy(victim)
    assert one.key(victim, create=False) is None
    for subject, key in made.items():
        if subject != victim:
            assert one.key(subject, create=False) == key
    stranger = key_provider(_store_settings(uri, kek="z" * 40))
    for use in (lambda s: stranger.key(s, create=True), stranger.destroy):
        with pytest.raises(ConfigError, match="another key-encryption key"):
            use(subject_of("t_acme", None))
    return one, [k for k in made.values() if k is not None]


def test_wrapped_keys_in_sqlite_are_shared_and_destroyed_on_disk(tmp_path: Path) -> None:
    from logkit.erasure import WAIT_S

    path = tmp_path / "keys.db"
    one, keys = _check_wrapped_keys(f"sqlite:///{path}")
    assert one.scrub(WAIT_S) == []
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("keys.db"))
    assert all(key not in on_disk and key.hex().encode() not in on_disk for key in keys)
    assert b"alice" not in on_disk and b"t_acme" not in on_disk  # ids are keyed hashes


def test_wrapped_keys_in_firestore_are_shared_between_instances() -> None:
    import uuid

    from tests import services

    services.require("FIRESTORE_EMULATOR_HOST")
    root = f"k{uuid.uuid4().hex[:12]}"
    one, _ = _check_wrapped_keys(f"firestore://logkit-test?root={root}")
    client = one.table.backend.client()  # type: ignore[attr-defined]
    documents = list(client.collection(f"{root}_sealing_keys").stream())
    ids = {d.id for d in documents} - {WrappedKeys.CHECK_ID}
    assert len(ids) == len(documents) - 1 == 9  # 10 subjects made, 1 destroyed
    assert all(len(i) == 64 and int(i, 16) >= 0 for i in ids)  # keyed hashes only
    for document in documents:
        document.reference.delete()


def test_configured_store_provider_seals_and_dsar_delete_destroys(
    on_sqlite: Callable[..., Any],
) -> None:
    runtime = on_sqlite(
        "prod",
        redaction={
            "key": "test-redaction-master-key",
            "key_provider": "store",
            "key_encryption_key": KEK,
        },
    )
    assert isinstance(runtime.keys, WrappedKeys)
    mine, theirs = _sealed_event("t_acme", "u_1"), _sealed_event("t_acme", "u_2")
    assert unseal(mine, runtime.keys) == {"prompt": "said by u_1"}
    result = dsar.delete("t_acme", "u_1")
    assert result.ok and result.keys_destroyed == 1
    with pytest.raises(RedactionError, match="destroyed"):
        unseal(mine, runtime.keys)
    assert unseal(theirs, runtime.keys) == {"prompt": "said by u_2"}


def test_dsar_counts_and_destroys_a_legacy_key_file_of_the_subject(sealing_runtime: Any) -> None:
    directory = sealing_runtime.keys.directory
    old = _legacy_sealed(directory, _event("u_9"), "t_acme/u_9", {"prompt": "old"})
    bystander = _legacy_sealed(directory, _event("u_10"), "t_acme/u_10", {"prompt": "kept"})
    assert unseal(old, sealing_runtime.keys) == {"prompt": "old"}
    assert dsar.delete("t_acme", "u_9", dry_run=True).keys_destroyed == 1
    assert dsar.delete("t_acme", "u_9").keys_destroyed == 1
    with pytest.raises(RedactionError, match="destroyed"):
        unseal(old, sealing_runtime.keys)
    assert unseal(bystander, sealing_runtime.keys) == {"prompt": "kept"}
