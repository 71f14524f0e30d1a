"""`logkit audit verify` as an attacker with write access to the SQLite store would try it:
each reproduction of issue 14 (items 6 to 9) reports (chain, seq, kind, detail) and exits 1.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import logkit
from logkit import Event
from logkit.chain import canonical, link
from logkit.cli.main import app as cli
from logkit.sinks import cursor
from logkit.sinks.protocols import AuditStore, Role
from logkit.sinks.sqlite import SQLiteBackend
from tests.audit_tamper import SQLiteTamper
from tests.conftest import SCOPE

runner = CliRunner()
RUN_A, RUN_B = "t_acme/run_a", "t_acme/run_b"


class World:
    """An audit store with two chains, a config pointing at it, and raw access to the file."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.db = tmp / "audit.db"
        self.backend = SQLiteBackend(self.db)
        store = self.backend.store(Role.AUDIT)
        assert isinstance(store, AuditStore)
        self.store = store
        self.tamper = SQLiteTamper(self.db)
        self.config = tmp / "logkit.toml"
        self.configure(hmac_key="key-one")
        self.append("run_a", 6)
        self.append("run_b", 3)

    def configure(self, **audit: Any) -> None:
        uri = f"sqlite:///{self.db}"
        lines = ['env = "prod"', "[sinks]", *(f'{r} = "{uri}"' for r in ("timeline", "audit"))]
        lines += ["[redaction]", 'key = "k"', "[audit]", f'seen_state = "{self.tmp / "seen.json"}"']
        lines += [f"{name} = {json.dumps(value)}" for name, value in audit.items()]
        self.config.write_text("\n".join(lines) + "\n")

    def append(self, run_id: str, n: int) -> None:
        self.store.append(
            [
                Event(
                    **SCOPE,
                    run_id=run_id,
                    user_id="u_1",
                    event_type="audit_action",
                    storage_class="audit",
                    payload={"action": "export", "i": i},
                )
                for i in range(n)
            ]
        )

    def cli(self, *args: str) -> Any:
        return runner.invoke(cli, [*args, "--config", str(self.config)])

    def verify(self, *args: str) -> tuple[int, dict[str, Any]]:
        result = self.cli("audit", "verify", "--tenant", "t_acme", "--json", *args)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        return result.exit_code, json.loads(result.stdout)

    def sql(self, statement: str, *params: Any) -> None:
        self.tamper.conn.execute(statement, params)

    def row(self, chain_id: str, seq: int) -> dict[str, Any]:
        return self.tamper.get(chain_id, seq)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.chdir(tmp_path)
    world = World(tmp_path)
    yield world
    world.backend.close()
    from tests.conftest import memory_sinks

    logkit.configure(**memory_sinks(tmp_path / "restored"))  # `dsar delete` configured one


def broken(report: dict[str, Any], chain_id: str) -> tuple[int, str]:
    """(first_bad_seq, kind) of one chain's report, after checking it says everything."""
    assert report["ok"] is False
    (chain,) = [c for c in report["chains"] if c["chain_id"] == chain_id]
    assert chain["status"] == "broken" and chain["detail"]
    return chain["first_bad_seq"], chain["kind"]


def test_the_untouched_world_verifies(world: World) -> None:
    assert world.verify() == (0, world.verify()[1])
    assert world.verify()[1]["ok"] is True


# --- item 6: tampering that crashed verify -----------------------------------------------------


def rehashed(row: dict[str, Any], record: bytes) -> dict[str, Any]:
    return {**row, "record": record, "hash": hashlib.sha256(record).hexdigest()}


ATTACKS = {
    "payload as TEXT": lambda w: w.sql(
        "UPDATE audit_chain SET payload = CAST(payload AS TEXT) WHERE chain_id = ? AND seq = 2",
        RUN_A,
    ),
    "salt not hex": lambda w: w.sql(
        "UPDATE audit_chain SET payload_salt = 'zz' || substr(payload_salt, 3) "
        "WHERE chain_id = ? AND seq = 2",
        RUN_A,
    ),
    "salt in capitals": lambda w: w.sql(
        "UPDATE audit_chain SET payload_salt = upper(payload_salt) WHERE chain_id = ? AND seq = 2",
        RUN_A,
    ),
    "record as TEXT": lambda w: w.sql(
        "UPDATE audit_chain SET record = CAST(record AS TEXT) WHERE chain_id = ? AND seq = 2",
        RUN_A,
    ),
    "seq 2x": lambda w: w.sql(
        "UPDATE audit_chain SET seq = '2x' WHERE chain_id = ? AND seq = 2", RUN_A
    ),
    "record not json, rehashed": lambda w: w.tamper.put(
        RUN_A, 2, rehashed(w.row(RUN_A, 2), b"not json")
    ),
    "record a list, rehashed": lambda w: w.tamper.put(
        RUN_A, 2, rehashed(w.row(RUN_A, 2), b"[1,2]")
    ),
    "ts_us as text": lambda w: w.sql(
        "UPDATE audit_chain SET ts_us = 'soon' WHERE chain_id = ? AND seq = 2", RUN_A
    ),
    "hash as bytes": lambda w: w.sql(
        "UPDATE audit_chain SET hash = CAST(hash AS BLOB) WHERE chain_id = ? AND seq = 2", RUN_A
    ),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_tampering_is_reported_never_a_traceback(world: World, attack: str) -> None:
    ATTACKS[attack](world)
    code, report = world.verify()
    assert code == 1
    seq, kind = broken(report, RUN_A)
    assert seq == 2 and kind in ("modified", "payload_modified", "missing")
    human = world.cli("audit", "verify", "--tenant", "t_acme")  # the table, too, survives it
    assert human.exit_code == 1 and isinstance(human.exception, SystemExit), human.output


def test_a_stored_checkpoint_that_is_not_json_is_reported(world: World) -> None:
    assert world.cli("audit", "checkpoint", "--tenant", "t_acme").exit_code == 0
    world.sql("UPDATE audit_checkpoints SET document = '{not json' WHERE chain_id = ?", RUN_B)
    code, report = world.verify()
    assert code == 1 and broken(report, RUN_B)[1] == "bad_checkpoint"


# --- item 7: chains that vanish --------------------------------------------------------------


def test_a_chain_deleted_whole_is_missing_against_the_checkpoint_file(world: World) -> None:
    assert world.cli("audit", "checkpoint", "--tenant", "t_acme", "--out", "cp.json").exit_code == 0
    world.sql("DELETE FROM audit_chain WHERE chain_id = ?", RUN_B)
    code, report = world.verify("--checkpoint", "cp.json")
    assert code == 1 and broken(report, RUN_B) == (0, "missing_chain")


def test_a_chain_moved_to_another_tenant_is_missing(world: World) -> None:
    assert world.cli("audit", "checkpoint", "--tenant", "t_acme", "--out", "cp.json").exit_code == 0
    world.sql("UPDATE audit_chain SET tenant_id = 't_other' WHERE chain_id = ?", RUN_B)
    code, report = world.verify("--checkpoint", "cp.json")
    assert code == 1 and broken(report, RUN_B)[1] in ("missing_chain", "modified")


def test_every_chain_deleted_is_still_a_report(world: World) -> None:
    assert world.verify()[0] == 0  # remembered
    world.sql("DELETE FROM audit_chain")
    code, report = world.verify()
    assert code == 1
    assert broken(report, RUN_A) == (0, "missing_chain")
    assert broken(report, RUN_B) == (0, "missing_chain")


def test_a_cut_tail_is_caught_by_the_remembered_head_without_any_checkpoint(world: World) -> None:
    assert world.cli("audit", "checkpoint", "--tenant", "t_acme").exit_code == 0
    assert world.verify()[0] == 0  # remembers the heads it verified
    world.tamper.remove(RUN_A, 5)
    world.sql("DELETE FROM audit_checkpoints")
    code, report = world.verify()
    assert code == 1 and broken(report, RUN_A) == (5, "truncated")


# --- item 8: faked erasure, and the real first bad record --------------------------------------


def test_a_faked_erasure_is_unexplained(world: World) -> None:
    world.sql(
        "UPDATE audit_chain SET payload = NULL, payload_salt = NULL WHERE chain_id = ? AND seq = 3",
        RUN_A,
    )
    code, report = world.verify()
    assert code == 1 and broken(report, RUN_A) == (3, "unexplained_erasure")


def test_a_real_dsar_erasure_verifies(world: World) -> None:
    erased = world.cli("dsar", "delete", "--tenant", "t_acme", "--user", "u_1", "--yes")
    assert erased.exit_code == 0, erased.output  # payloads erased, the erasure recorded
    code, report = world.verify()
    assert code == 0, report
    assert {c["chain_id"]: c["erased"] for c in report["chains"]}[RUN_A] == 6


def test_a_rewritten_head_names_the_head(world: World) -> None:
    assert world.cli("audit", "checkpoint", "--tenant", "t_acme").exit_code == 0
    head, before = world.row(RUN_A, 5), world.row(RUN_A, 4)
    original = Event.model_validate(
        {**json.loads(head["record"]), "payload": {"action": "nothing to see"}}
    )
    redone = link(
        original.replace(seq=None, hash=None, prev_hash=None), seq=5, prev_hash=before["hash"]
    )
    world.tamper.put(
        RUN_A,
        5,
        {
            **head,
            "hash": redone.event.hash,
            "record": redone.record_bytes,
            "payload": redone.payload_bytes,
            "payload_salt": redone.event.payload_salt,
            "ts_us": cursor.to_micros(redone.event.ts),
        },
    )
    code, report = world.verify()
    assert code == 1 and broken(report, RUN_A) == (5, "rewritten")  # not 0, "after seq -1"


# --- item 9: key rotation ------------------------------------------------------------------------


def test_key_rotation_keeps_old_checkpoints_verifiable(world: World) -> None:
    assert world.cli("audit", "checkpoint", "--tenant", "t_acme").exit_code == 0
    world.configure(hmac_key="key-two")  # rotated: the old key is not listed yet
    code, report = world.verify()
    assert code == 1 and broken(report, RUN_A) == (5, "unknown_key")
    world.configure(hmac_key="key-two", verify_hmac_keys=["key-one"])
    assert world.verify()[0] == 0
    assert world.cli("audit", "checkpoint", "--tenant", "t_acme").exit_code == 0  # new key signs
    world.configure(hmac_key="key-two")  # the old checkpoints are still stored beside new ones
    assert broken(world.verify()[1], RUN_A)[1] == "unknown_key"


def test_a_forged_signature_with_a_known_key_id_is_a_bad_signature(world: World) -> None:
    assert world.cli("audit", "checkpoint", "--tenant", "t_acme", "--out", "cp.json").exit_code == 0
    document = json.loads(Path("cp.json").read_text())
    document["checkpoints"][0]["signature"] = "00" * 32
    Path("cp.json").write_text(json.dumps(document))
    code, report = world.verify("--checkpoint", "cp.json")
    assert (
        code == 1 and broken(report, document["checkpoints"][0]["chain_id"])[1] == "bad_signature"
    )


def test_ed25519_rotation_with_a_retired_public_key(world: World, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    def keypair(name: str) -> tuple[Path, Path]:
        key = ed25519.Ed25519PrivateKey.generate()
        private, public = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub"
        private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return private, public

    old_private, old_public = keypair("old")
    _, new_public = keypair("new")
    world.configure(ed25519_private_key_file=str(old_private))
    assert world.cli("audit", "checkpoint", "--tenant", "t_acme").exit_code == 0
    world.configure(ed25519_public_key_file=str(new_public))
    assert broken(world.verify()[1], RUN_A)[1] == "unknown_key"
    world.configure(
        ed25519_public_key_file=str(new_public),
        verify_ed25519_public_key_files=[str(old_public)],
    )
    assert world.verify()[0] == 0


def test_a_checkpoint_file_with_wrong_types_is_a_usage_error(world: World) -> None:
    assert world.cli("audit", "checkpoint", "--tenant", "t_acme", "--out", "cp.json").exit_code == 0
    for bad in (5, [1], {"seq": "2"}):
        document = json.loads(Path("cp.json").read_text())
        document["checkpoints"] = bad if not isinstance(bad, dict) else [bad]
        Path("cp.json").write_text(json.dumps(document))
        result = world.cli("audit", "verify", "--tenant", "t_acme", "--checkpoint", "cp.json")
        assert result.exit_code == 2 and "cp.json" in result.output


def test_the_canonical_bytes_of_a_forged_record_still_parse(world: World) -> None:
    """Sanity for the helpers above: canonical() is what the store hashes."""
    row = world.row(RUN_A, 0)
    assert canonical(json.loads(row["record"])) == row["record"]
    assert sqlite3.sqlite_version_info >= (3, 35)
