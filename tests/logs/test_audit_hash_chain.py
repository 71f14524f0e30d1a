"""The audit chain: JCS, the write path, every kind of break, checkpoints, concurrency."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import logkit
from logkit.auditing.checkpoint import Keys, checkpoint_chains, load_keys, read_file, write_file
from logkit.auditing.verify import VerifyReport, verify
from logkit.chain import GENESIS, canonical, chain_id_of, link, sha256_hex
from logkit.cli.main import app as cli
from logkit.config import AuditConfig
from logkit.envelope import Env, Event
from logkit.sinks.protocols import AuditStore, Role
from logkit.sinks.sqlite import SQLiteBackend
from tests.audit_tamper import SQLiteTamper, Tamper
from tests.audit_tamper_firestore import FirestoreTamper
from tests.conftest import SCOPE
from tests.sinks.backends import make_backend

JCS = Path(__file__).resolve().parent.parent / "data" / "jcs"
runner = CliRunner()

# --- JCS --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in (JCS / "input").iterdir()))
def test_official_rfc8785_vectors(name: str) -> None:
    value = json.loads((JCS / "input" / name).read_text(encoding="utf-8"))
    assert canonical(value) == (JCS / "output" / name).read_bytes()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400)
@given(json_values)
def test_fast_jcs_path_agrees_with_the_reference(value: Any) -> None:
    assert canonical(value) == rfc8785.dumps(value)


def test_integers_beyond_json_doubles_are_a_contract_error() -> None:
    with pytest.raises(logkit.ContractError, match="JCS"):
        canonical({"n": 2**60})


# --- fixtures ---------------------------------------------------------------------------------


class Chain:
    """A backend's audit store, an attacker's raw access to it, and a chain to attack."""

    def __init__(self, store: AuditStore, tamper: Tamper, keys: Keys, tmp: Path) -> None:
        self.store, self.tamper, self.keys, self.tmp = store, tamper, keys, tmp
        self.chain_id = chain_id_of("t_acme", "run_a")
        self.other_id = chain_id_of("t_acme", "run_b")

    def append(self, n: int, run_id: str = "run_a", start: int = 0) -> list[Event]:
        events = [
            Event(
                **SCOPE,
                run_id=run_id,
                event_type="audit_action",
                storage_class="audit",
                user_id=f"u{i % 3}",
                payload={"action": "export", "i": i, "amount": i * 1.5},
            )
            for i in range(start, start + n)
        ]
        return self.store.append(events)

    def verify(self, **kw: Any) -> VerifyReport:
        return verify(
            self.store, [self.chain_id], self.keys, seen_path=self.tmp / "seen.json", **kw
        )

    def checkpoint(self) -> list[Any]:
        return checkpoint_chains(self.store, [self.chain_id], self.keys)


def keys_for(tmp: Path) -> Keys:
    return load_keys(AuditConfig(hmac_key="test-key-material"), Env.PROD)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "firestore"])
def chain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Chain]:
    """Every attack runs on SQLite and on the Firestore emulator."""
    tamper: Tamper
    if request.param == "sqlite":
        backend: Any = SQLiteBackend(tmp_path / "audit.db")
        tamper = SQLiteTamper(tmp_path / "audit.db")
    else:
        backend = make_backend("firestore", tmp_path)
        tamper = FirestoreTamper(backend.settings.project, backend.settings.root)
    store = backend.store(Role.AUDIT)
    assert isinstance(store, AuditStore)
    chain = Chain(store, tamper, keys_for(tmp_path), tmp_path)
    chain.append(6)
    chain.append(3, run_id="run_b")
    yield chain
    backend.close()


def only(report: VerifyReport) -> Any:
    (chain,) = report.chains
    return chain


def rewrite_record(row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    record = json.loads(row["record"])
    record.update(changes)
    return {**row, "record": canonical(record)}


# --- the write path ---------------------------------------------------------------------------


def test_append_builds_a_contiguous_linked_chain(chain: Chain) -> None:
    records = chain.store.records(chain.chain_id)
    assert [r.seq for r in records] == list(range(6))
    previous = GENESIS
    for r in records:
        fields = json.loads(r.record_bytes)
        assert fields["prev_hash"] == previous and fields["chain_id"] == "t_acme/run_a"
        assert sha256_hex(r.record_bytes) == r.hash
        assert fields["payload_digest"] == sha256_hex(
            bytes.fromhex(r.payload_salt or "") + (r.payload_bytes or b"")
        )
        previous = r.hash
    assert chain.verify().ok


def test_reappending_an_event_chains_it_once(chain: Chain) -> None:
    first = chain.store.records(chain.chain_id)[0]
    event = logkit.chain.event_from_bytes(
        first.record_bytes, first.payload_bytes, first.payload_salt, first.hash
    )
    again = chain.store.append([event.replace(seq=None, hash=None, prev_hash=None)])
    assert again[0].seq == 0 and len(chain.store.records(chain.chain_id)) == 6


def test_events_outside_a_run_use_the_tenant_chain(chain: Chain) -> None:
    (event,) = chain.store.append(
        [Event(**SCOPE, event_type="audit_action", storage_class="audit")]
    )
    assert event.chain_id == "t_acme/_tenant" and event.seq == 0
    assert chain.store.chain_ids("t_acme") == ["t_acme/_tenant", "t_acme/run_a", "t_acme/run_b"]


def test_logkit_audit_chains_and_copies_to_the_timeline(configured: Any, tmp_path: Path) -> None:
    configured(
        env="dev",
        sinks={
            "timeline": f"sqlite:///{tmp_path / 'x.db'}",
            "audit": f"sqlite:///{tmp_path / 'x.db'}",
        },
    )
    with logkit.bind(**SCOPE, run_id="run_z"):
        first = logkit.audit("key.rotate", {"key": "k1"})
        second = logkit.audit("key.rotate", {"key": "k2"})
    assert (first.seq, second.seq) == (0, 1) and second.prev_hash == first.hash
    assert first.payload == {"action": "key.rotate", "key": "k1"}
    assert logkit.flush(10)
    timeline = logkit.run_events("t_acme", "run_z")
    assert [e.hash for e in timeline] == [first.hash, second.hash]


def test_strict_audit_raises_when_the_store_is_down(configured: Any, tmp_path: Path) -> None:
    runtime = configured(env="dev", sinks={"timeline": "memory://", "audit": "memory://"})
    store = runtime.stores[Role.AUDIT]

    def down(events: Any) -> list[Event]:
        raise logkit.SinkUnavailable("audit store down (test)")

    store.append = down  # type: ignore[method-assign]
    with logkit.bind(**SCOPE), pytest.raises(logkit.SinkUnavailable):
        logkit.audit("login", strict=True)
    with logkit.bind(**SCOPE):
        spooled = logkit.audit("login")  # not strict: spooled, chained on replay
    assert spooled.seq is None


# --- every break ------------------------------------------------------------------------------


def test_modified_hashed_field(chain: Chain) -> None:
    chain.tamper.put(
        chain.chain_id, 2, rewrite_record(chain.tamper.get(chain.chain_id, 2), user_id="u_evil")
    )
    report = chain.verify()
    assert not report.ok and (only(report).first_bad_seq, only(report).kind) == (2, "modified")


def test_modified_query_column(chain: Chain) -> None:
    row = chain.tamper.get(chain.chain_id, 3)
    chain.tamper.put(chain.chain_id, 3, {**row, "user_id": "u_hidden"})
    assert (only(chain.verify()).first_bad_seq, only(chain.verify()).kind) == (3, "modified")


def test_modified_payload(chain: Chain) -> None:
    row = chain.tamper.get(chain.chain_id, 1)
    chain.tamper.put(chain.chain_id, 1, {**row, "payload": canonical({"action": "nothing"})})
    assert (only(chain.verify()).first_bad_seq, only(chain.verify()).kind) == (
        1,
        "payload_modified",
    )


def test_deleted_from_the_middle(chain: Chain) -> None:
    chain.tamper.remove(chain.chain_id, 3)
    assert (only(chain.verify()).first_bad_seq, only(chain.verify()).kind) == (3, "missing")


def test_reordered(chain: Chain) -> None:
    two, three = chain.tamper.get(chain.chain_id, 2), chain.tamper.get(chain.chain_id, 3)
    chain.tamper.put(chain.chain_id, 2, three)
    chain.tamper.put(chain.chain_id, 3, two)
    assert (only(chain.verify()).first_bad_seq, only(chain.verify()).kind) == (2, "reordered")


def test_forged_record_inserted(chain: Chain) -> None:
    rows = {s: chain.tamper.get(chain.chain_id, s) for s in chain.tamper.seqs(chain.chain_id)}
    for seq in sorted(rows, reverse=True):  # shift seq 2.. up by one, contents untouched
        if seq >= 2:
            chain.tamper.put(chain.chain_id, seq + 1, rows[seq])
    forged = link(
        Event(
            **SCOPE,
            run_id="run_a",
            event_type="audit_action",
            storage_class="audit",
            payload={"action": "grant_admin"},
        ),
        seq=2,
        prev_hash=rows[1]["hash"],
    )
    e = forged.event
    chain.tamper.put(
        chain.chain_id,
        2,
        {
            **rows[2],
            "event_id": e.event_id,
            "hash": e.hash,
            "record": forged.record_bytes,
            "payload": forged.payload_bytes,
            "payload_salt": e.payload_salt,
            "user_id": e.user_id,
            "ts_us": logkit.sinks.cursor.to_micros(e.ts),
        },
    )
    assert (only(chain.verify()).first_bad_seq, only(chain.verify()).kind) == (2, "inserted")


def test_record_moved_in_from_another_chain(chain: Chain) -> None:
    stranger = chain.tamper.get(chain.other_id, 1)
    chain.tamper.put(chain.chain_id, 6, stranger)  # appended as if it were the next record
    assert (only(chain.verify()).first_bad_seq, only(chain.verify()).kind) == (6, "foreign")


def test_truncated_tail_is_caught_only_against_a_checkpoint(chain: Chain) -> None:
    chain.checkpoint()
    chain.tamper.remove(chain.chain_id, 5)
    chain.tamper.remove(chain.chain_id, 4)
    assert verify(chain.store, [chain.chain_id], chain.keys, checkpoints=[]).ok  # chain alone
    report = only(chain.verify())
    assert (report.first_bad_seq, report.kind) == (4, "truncated")


def test_suffix_rewritten_with_valid_hashes(chain: Chain) -> None:
    early = checkpoint_chains(chain.store, [chain.chain_id], chain.keys)  # at seq 5
    rows = {s: chain.tamper.get(chain.chain_id, s) for s in chain.tamper.seqs(chain.chain_id)}
    # Keep a second, earlier checkpoint (seq 2) as the pipeline would have from a past deploy.
    older = replace(early[0], seq=2, hash=rows[2]["hash"], signature="")
    older = logkit.auditing.checkpoint.sign(older.chain_id, 2, rows[2]["hash"], chain.keys)
    chain.store.put_checkpoint(chain.chain_id, 2, older.to_json())
    previous = rows[2]["hash"]
    for seq in (3, 4, 5):  # a key holder rewrites the suffix with perfectly valid hashes
        original = logkit.chain.event_from_bytes(
            rows[seq]["record"], rows[seq]["payload"], rows[seq]["payload_salt"], rows[seq]["hash"]
        )
        redone = link(
            original.replace(payload={"action": "export", "i": -1}), seq=seq, prev_hash=previous
        )
        chain.tamper.put(
            chain.chain_id,
            seq,
            {
                **rows[seq],
                "hash": redone.event.hash,
                "record": redone.record_bytes,
                "payload": redone.payload_bytes,
                "payload_salt": redone.event.payload_salt,
            },
        )
        previous = redone.event.hash
    assert verify(chain.store, [chain.chain_id], chain.keys, checkpoints=[]).ok  # chain alone
    report = only(chain.verify())
    assert (report.first_bad_seq, report.kind) == (3, "rewritten")


def test_bad_checkpoint_signature(chain: Chain) -> None:
    (checkpoint,) = chain.checkpoint()
    forged = replace(checkpoint, signature="00" * 32)
    report = only(chain.verify(checkpoints=[forged]))
    assert (report.first_bad_seq, report.kind) == (5, "bad_signature")


def test_a_checkpoint_older_than_one_already_seen_is_refused(chain: Chain) -> None:
    (old,) = chain.checkpoint()  # seq 5
    chain.append(2, start=6)
    (new,) = chain.checkpoint()  # seq 7
    assert chain.verify(checkpoints=[new]).ok  # remembered: seq 7 seen
    report = only(chain.verify(checkpoints=[old]))  # a rolled-back checkpoint
    assert (report.first_bad_seq, report.kind) == (5, "stale_checkpoint")


def test_erased_payload_verifies_as_erased(chain: Chain) -> None:
    row = chain.tamper.get(chain.chain_id, 2)
    chain.tamper.put(chain.chain_id, 2, {**row, "payload": None, "payload_salt": None})
    # What logkit.dsar.delete appends after erasing: the positions it erased.
    chain.store.append(
        [
            Event(
                **SCOPE,
                event_type="dsar_erasure",
                storage_class="audit",
                payload={"user_id": "u2", "erased": {chain.chain_id: [2]}},
            )
        ]
    )
    report = only(chain.verify())
    assert report.status == "ok" and report.erased == 1


def test_erasure_without_an_erasure_record_is_tampering(chain: Chain) -> None:
    row = chain.tamper.get(chain.chain_id, 2)
    chain.tamper.put(chain.chain_id, 2, {**row, "payload": None, "payload_salt": None})
    chain.store.append(  # an erasure record that names another position explains nothing here
        [
            Event(
                **SCOPE,
                event_type="dsar_erasure",
                storage_class="audit",
                payload={"erased": {chain.chain_id: [3]}},
            )
        ]
    )
    report = only(chain.verify())
    assert (report.first_bad_seq, report.kind) == (2, "unexplained_erasure")


def test_half_erased_payload_is_tampering(chain: Chain) -> None:
    row = chain.tamper.get(chain.chain_id, 2)
    chain.tamper.put(chain.chain_id, 2, {**row, "payload": None})
    assert only(chain.verify()).kind == "payload_modified"


# --- concurrency ------------------------------------------------------------------------------


def _append_many(path: str, worker: int, count: int) -> None:
    backend = SQLiteBackend(Path(path))
    store = backend.store(Role.AUDIT)
    for i in range(count):
        store.append(
            [
                Event(
                    **SCOPE,
                    run_id="run_c",
                    event_type="audit_action",
                    storage_class="audit",
                    payload={"worker": worker, "i": i},
                )
            ]
        )
    backend.close()


def test_concurrent_processes_never_fork_a_chain(tmp_path: Path) -> None:
    path = tmp_path / "concurrent.db"
    SQLiteBackend(path).check_schema()
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_append_many, args=(str(path), w, 40)) for w in range(6)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    backend = SQLiteBackend(path)
    store = backend.store(Role.AUDIT)
    chain_id = chain_id_of("t_acme", "run_c")
    records = store.records(chain_id, limit=10_000)
    assert [r.seq for r in records] == list(range(240))
    seen = {
        (json.loads(r.payload_bytes or b"{}")["worker"], json.loads(r.payload_bytes or b"{}")["i"])
        for r in records
    }
    assert len(seen) == 240
    assert verify(store, [chain_id], keys_for(tmp_path)).ok
    backend.close()


# --- the CLI, as a new user would use it --------------------------------------------------------


@pytest.fixture
def demo_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    from tests.conftest import memory_sinks

    logkit.configure(**memory_sinks(tmp_path / "restored"))


def test_demo_then_verify_then_one_byte_edit(demo_dir: Path) -> None:
    assert runner.invoke(cli, ["demo"]).exit_code == 0
    result = runner.invoke(cli, ["audit", "verify", "--tenant", "t_acme", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ok"]
    db = SQLiteTamper(demo_dir / ".logkit" / "logkit.db")
    chain_id, seq = db.conn.execute(
        "SELECT chain_id, seq FROM audit_chain WHERE payload IS NOT NULL LIMIT 1"
    ).fetchone()
    row = db.get(chain_id, seq)
    edited = bytearray(row["payload"])
    edited[edited.index(b":") + 2] ^= 0x01  # flip one bit of one byte of the payload
    db.put(chain_id, seq, {**row, "payload": bytes(edited)})
    result = runner.invoke(cli, ["audit", "verify", "--tenant", "t_acme", "--json"])
    assert result.exit_code == 1
    broken = [c for c in json.loads(result.output)["chains"] if c["status"] != "ok"]
    assert broken == [
        {**broken[0], "chain_id": chain_id, "first_bad_seq": seq, "kind": "payload_modified"}
    ]


def test_checkpoint_file_round_trip_and_usage_errors(demo_dir: Path) -> None:
    assert runner.invoke(cli, ["demo"]).exit_code == 0
    out = demo_dir / "checkpoints.json"
    result = runner.invoke(cli, ["audit", "checkpoint", "--tenant", "t_acme", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert read_file(out) and all(c.alg == "hmac-sha256" for c in read_file(out))
    ok = runner.invoke(cli, ["audit", "verify", "--tenant", "t_acme", "--checkpoint", str(out)])
    assert ok.exit_code == 0, ok.output
    missing = runner.invoke(
        cli, ["audit", "verify", "--tenant", "t_acme", "--checkpoint", str(demo_dir / "nope.json")]
    )
    assert missing.exit_code == 2 and "not found" in missing.output
    nobody = runner.invoke(cli, ["audit", "verify", "--tenant", "t_nobody"])
    assert nobody.exit_code == 2 and "nothing to verify" in nobody.output  # not_found, not 1
    forged = [asdict(c) | {"signature": "ab" * 32} for c in read_file(out)]
    (demo_dir / "forged.json").write_text(
        json.dumps({"format": "logkit-checkpoints/1", "checkpoints": forged})
    )
    bad = runner.invoke(
        cli,
        [
            "audit",
            "verify",
            "--tenant",
            "t_acme",
            "--checkpoint",
            str(demo_dir / "forged.json"),
            "--json",
        ],
    )
    assert bad.exit_code == 1
    assert {c["kind"] for c in json.loads(bad.output)["chains"]} == {"bad_signature"}


def test_checkpoint_without_a_key_outside_dev_is_a_usage_error(demo_dir: Path) -> None:
    db = demo_dir / "prod.db"
    toml = demo_dir / "prod.toml"
    toml.write_text(
        f'env = "prod"\n[sinks]\ntimeline = "sqlite:///{db}"\naudit = "sqlite:///{db}"\n'
    )
    backend = SQLiteBackend(db)
    backend.store(Role.AUDIT).append(
        [Event(**SCOPE, event_type="audit_action", storage_class="audit")]
    )
    backend.close()
    result = runner.invoke(
        cli, ["audit", "checkpoint", "--tenant", "t_acme", "--config", str(toml)]
    )
    assert result.exit_code == 2 and "no checkpoint signing key" in result.output


def test_ed25519_checkpoints_verify_with_the_public_key_only(tmp_path: Path, chain: Chain) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "k.pem").write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "k.pub").write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    signer = load_keys(AuditConfig(ed25519_private_key_file=tmp_path / "k.pem"), Env.PROD)
    verifier = load_keys(AuditConfig(ed25519_public_key_file=tmp_path / "k.pub"), Env.PROD)
    assert verifier.signer is None
    made = checkpoint_chains(chain.store, [chain.chain_id], signer)
    write_file(tmp_path / "cp.json", made)
    report = verify(
        chain.store, [chain.chain_id], verifier, checkpoints=read_file(tmp_path / "cp.json")
    )
    assert report.ok and only(report).checkpoint == "matched"
    assert made[0].alg == "ed25519"


# --- the worked example in docs/audit-chain.md, recomputed without logkit ------------------------


def test_docs_worked_example_recomputes_with_hashlib_and_rfc8785() -> None:
    import hashlib

    doc = (Path(__file__).resolve().parents[2] / "docs" / "audit-chain.md").read_text()
    block = doc.split("```json worked-example")[1].split("```")[0]
    example = json.loads(block)
    prev = "0" * 64
    for record in example["records"]:
        payload, salt, stated = record["payload"], record["payload_salt"], record["hash"]
        digest = hashlib.sha256(bytes.fromhex(salt) + rfc8785.dumps(payload)).hexdigest()
        assert digest == record["payload_digest"]
        assert record["prev_hash"] == prev
        hashed = {k: v for k, v in record.items() if k not in ("hash", "payload", "payload_salt")}
        assert hashlib.sha256(rfc8785.dumps(hashed)).hexdigest() == stated
        prev = stated


@settings(max_examples=200)
@given(
    st.builds(
        Event,
        tenant_id=st.from_regex(r"^t_[a-z0-9_-]{1,12}$", fullmatch=True),
        env=st.sampled_from(["dev", "prod"]),
        project_id=st.text(min_size=1, max_size=12),
        surface_id=st.text(min_size=1, max_size=12),
        app_id=st.text(min_size=1, max_size=12),
        user_id=st.none() | st.text(min_size=1, max_size=12),
        run_id=st.none() | st.text(min_size=1, max_size=12),
        ts=st.datetimes(timezones=st.just(__import__("datetime").UTC)),
        event_type=st.just("audit_action"),
        redaction=st.none()
        | st.builds(
            logkit.RedactionReport,
            policy=st.text(max_size=8),
            counts=st.dictionaries(st.sampled_from(["email", "phone"]), st.integers(0, 99)),
        ),
        payload=st.dictionaries(st.text(max_size=6), json_values, max_size=3),
    )
)
def test_record_bytes_are_the_jcs_of_the_hashed_view(event: Event) -> None:
    linked = link(event, seq=7, prev_hash=GENESIS)
    assert linked.record_bytes == rfc8785.dumps(logkit.chain.hashed_view(linked.event))


@pytest.mark.parametrize(
    "attack", ["none", "modify", "remove_boundary", "remove_last", "erase", "fake_erase"]
)
def test_parallel_verification_agrees_with_the_serial_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attack: str
) -> None:
    import logkit.auditing.parallel as parallel

    monkeypatch.setattr(parallel, "PARALLEL_MIN", 10)
    db = tmp_path / "long.db"
    backend = SQLiteBackend(db)
    chain = Chain(backend.store(Role.AUDIT), SQLiteTamper(db), keys_for(tmp_path), tmp_path)
    chain.append(40)
    row = chain.tamper.get(chain.chain_id, 20)
    if attack == "modify":
        chain.tamper.put(
            chain.chain_id, 27, rewrite_record(chain.tamper.get(chain.chain_id, 27), user_id="u_x")
        )
    elif attack == "remove_boundary":  # 40 records on 2 workers: the second starts at seq 20
        chain.tamper.remove(chain.chain_id, 19)
    elif attack == "remove_last":
        chain.tamper.remove(chain.chain_id, 39)
        chain.tamper.remove(chain.chain_id, 38)
        chain.tamper.put(chain.chain_id, 38, chain.tamper.get(chain.chain_id, 37) | {"seq": 38})
    elif attack in ("erase", "fake_erase"):
        chain.tamper.put(chain.chain_id, 20, {**row, "payload": None, "payload_salt": None})
        named = {chain.chain_id: [20 if attack == "erase" else 21]}
        chain.store.append([Event(**SCOPE, event_type="dsar_erasure", payload={"erased": named})])
    serial = verify(chain.store, [chain.chain_id], chain.keys, checkpoints=[])
    split = verify(
        chain.store, [chain.chain_id], chain.keys, checkpoints=[], uri=f"sqlite:///{db}", workers=2
    )
    assert split.as_dict() == serial.as_dict()
    assert serial.ok == (attack in ("none", "erase"))
    backend.close()
