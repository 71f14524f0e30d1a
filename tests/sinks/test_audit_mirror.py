"""The audit mirror on the BigQuery emulator, against a SQLite or Firestore chain of record.

``sync`` copies incrementally and propagates erasures; ``compare`` (``audit verify --mirror``)
verifies the mirror's chains and reports every disagreement with the primary, including the
ones a plain chain cannot see (a suffix rewritten with valid hashes, a tail cut off, a chain
deleted whole).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from logkit.auditing.checkpoint import load_keys
from logkit.auditing.mirror import compare, open_mirror, sync
from logkit.auditing.verify import verify
from logkit.chain import chain_id_of, event_from_bytes, link
from logkit.cli.main import app as cli
from logkit.config import AuditConfig
from logkit.envelope import Env, Event
from logkit.sinks.bigquery_mirror import BigQueryMirror
from logkit.sinks.protocols import AuditStore, Role, Selector
from logkit.sinks.sqlite import SQLiteBackend
from tests.audit_tamper import SQLiteTamper, Tamper
from tests.audit_tamper_firestore import FirestoreTamper
from tests.conftest import SCOPE
from tests.sinks.backends import make_backend, uri_for

TENANT = "t_acme"
KEYS = load_keys(AuditConfig(hmac_key="mirror-test-key"), Env.PROD)  # type: ignore[arg-type]
RUN_A, RUN_B = chain_id_of(TENANT, "run_a"), chain_id_of(TENANT, None)


class Primary:
    def __init__(self, uri: str, store: AuditStore, tamper: Tamper) -> None:
        self.uri, self.store, self.tamper = uri, store, tamper

    def append(self, n: int, run_id: str | None = "run_a", start: int = 0) -> list[Event]:
        return self.store.append(
            [
                Event(
                    **SCOPE,
                    run_id=run_id,
                    user_id=f"u{i % 2}",
                    event_type="audit_action",
                    storage_class="audit",
                    payload={"action": "export", "i": i},
                )
                for i in range(start, start + n)
            ]
        )


@pytest.fixture(params=["sqlite", "firestore"])
def primary(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Primary]:
    if request.param == "sqlite":
        backend: Any = SQLiteBackend(tmp_path / "audit.db")
        tamper: Tamper = SQLiteTamper(tmp_path / "audit.db")
        uri = f"sqlite:///{tmp_path / 'audit.db'}"
    else:
        backend = make_backend("firestore", tmp_path)
        tamper = FirestoreTamper(backend.settings.project, backend.settings.root)
        uri = f"firestore://{backend.settings.project}?root={backend.settings.root}"
    store = backend.store(Role.AUDIT)
    assert isinstance(store, AuditStore)
    primary = Primary(uri, store, tamper)
    primary.append(6)
    primary.append(3, run_id=None)
    yield primary
    backend.close()


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[BigQueryMirror]:
    mirror = open_mirror(uri_for("bigquery", tmp_path))
    yield mirror
    client = mirror.backend.client
    client.delete_dataset(mirror.backend.dataset_id, delete_contents=True, not_found_ok=True)
    mirror.backend.close()


def check(primary: Primary, mirror: BigQueryMirror) -> Any:
    return compare(primary.store, mirror, primary.store.chain_ids(TENANT), KEYS, tenant_id=TENANT)


def kinds(report: Any) -> list[tuple[str, int | None, str]]:
    return [(d.chain_id, d.seq, d.kind) for d in report.disagreements]


def test_sync_copies_once_and_the_mirror_verifies(primary: Primary, mirror: BigQueryMirror) -> None:
    first = sync(primary.store, mirror, TENANT)
    assert (first.copied, first.erased, first.chains) == (9, 0, 2)
    assert sync(primary.store, mirror, TENANT).copied == 0  # nothing new: nothing copied
    primary.append(4, start=6)
    assert sync(primary.store, mirror, TENANT).copied == 4
    rows = next(
        iter(mirror.backend.client.query(f"SELECT COUNT(*) AS n FROM `{mirror.table_id}`").result())
    )
    assert rows["n"] == 13  # physically once
    report = check(primary, mirror)
    assert report.ok and report.disagreements == [] and report.behind == {}
    assert [(c.chain_id, c.records) for c in report.mirror.chains] == [(RUN_B, 3), (RUN_A, 10)]
    assert mirror.records(RUN_A) == primary.store.records(RUN_A)  # byte for byte


def test_a_mirror_behind_is_reported_but_agrees(primary: Primary, mirror: BigQueryMirror) -> None:
    sync(primary.store, mirror, TENANT)
    primary.append(2, start=6)
    primary.append(1, run_id="run_new")
    report = check(primary, mirror)
    assert report.ok and report.behind == {RUN_A: 2, chain_id_of(TENANT, "run_new"): 1}


def rewrite_suffix(primary: Primary, chain_id: str, start: int) -> None:
    """A key holder rewrites the chain from ``start`` with perfectly valid hashes."""
    rows = {s: primary.tamper.get(chain_id, s) for s in primary.tamper.seqs(chain_id)}
    previous = rows[start - 1]["hash"]
    for seq in range(start, max(rows) + 1):
        row = rows[seq]
        original = event_from_bytes(row["record"], row["payload"], row["payload_salt"], row["hash"])
        redone = link(original.replace(payload={"action": "nothing"}), seq=seq, prev_hash=previous)
        primary.tamper.put(
            chain_id,
            seq,
            {
                **row,
                "hash": redone.event.hash,
                "record": redone.record_bytes,
                "payload": redone.payload_bytes,
                "payload_salt": redone.event.payload_salt,
            },
        )
        previous = redone.event.hash or ""


def test_a_primary_rewritten_with_valid_hashes_disagrees_with_the_mirror(
    primary: Primary, mirror: BigQueryMirror
) -> None:
    sync(primary.store, mirror, TENANT)
    rewrite_suffix(primary, RUN_A, 4)
    assert verify(primary.store, [RUN_A], KEYS, checkpoints=[]).ok  # the chain alone: fine
    report = check(primary, mirror)
    assert not report.ok and report.mirror.ok
    assert kinds(report) == [(RUN_A, 4, "differs"), (RUN_A, 5, "differs")]


def test_a_primary_truncated_or_deleted_chain_is_missing_in_primary(
    primary: Primary, mirror: BigQueryMirror
) -> None:
    sync(primary.store, mirror, TENANT)
    primary.tamper.remove(RUN_A, 5)
    primary.tamper.remove(RUN_A, 4)
    for seq in range(3):
        primary.tamper.remove(RUN_B, seq)
    assert primary.store.chain_ids(TENANT) == [RUN_A]
    report = compare(primary.store, mirror, [RUN_A], KEYS, tenant_id=TENANT)
    assert not report.ok
    assert kinds(report) == [(RUN_B, None, "missing_in_primary"), (RUN_A, 4, "missing_in_primary")]
    assert "2 from seq 4" in report.disagreements[1].detail


def test_an_erasure_reaches_the_mirror_on_the_next_sync(
    primary: Primary, mirror: BigQueryMirror
) -> None:
    sync(primary.store, mirror, TENANT)
    assert primary.store.erase_payloads(Selector(tenant_id=TENANT, user_id="u1")) == 4
    # As DSAR does: the erasure record on the tenant chain names what was erased.
    erased = {RUN_A: [1, 3, 5], RUN_B: [1]}
    primary.store.append(
        [
            Event(
                **SCOPE,
                event_type="dsar_erasure",
                storage_class="audit",
                payload={"erased": erased},
            )
        ]
    )
    report = check(primary, mirror)
    assert not report.ok
    assert {k for _, _, k in kinds(report)} == {"erasure_pending"} and len(
        report.disagreements
    ) == 4
    assert sync(primary.store, mirror, TENANT).erased == 4  # one batched MERGE
    after = check(primary, mirror)
    assert after.ok and sum(c.erased for c in after.mirror.chains) == 4
    assert [r.payload_bytes is None for r in mirror.records(RUN_A)] == [False, True] * 3


def test_a_tampered_mirror_fails_its_own_verification(
    primary: Primary, mirror: BigQueryMirror
) -> None:
    sync(primary.store, mirror, TENANT)
    sql = (
        f"UPDATE `{mirror.table_id}` SET record = REPLACE(record, '\"u1\"', '\"u9\"')"
        f" WHERE chain_id = '{RUN_A}' AND seq = 3"
    )
    mirror.backend.client.query(sql).result()
    report = check(primary, mirror)
    assert not report.ok
    run_a = next(c for c in report.mirror.chains if c.chain_id == RUN_A)
    assert (run_a.status, run_a.first_bad_seq, run_a.kind) == ("broken", 3, "modified")
    assert kinds(report) == [(RUN_A, 3, "differs")]


def test_a_second_different_row_at_one_seq_is_reported(
    primary: Primary, mirror: BigQueryMirror
) -> None:
    sync(primary.store, mirror, TENANT)
    copies = mirror.records(RUN_A)
    mirror.write(copies[2:3])  # an identical copy (two syncs racing): collapsed on read
    assert check(primary, mirror).ok
    forged = copies[2]._replace(hash="0" * 64)
    mirror.write([forged])  # a different row at seq 2
    report = check(primary, mirror)
    assert not report.ok and (RUN_A, 2, "differs") in kinds(report)


def test_sync_runs_no_dml_unless_it_erases(primary: Primary, mirror: BigQueryMirror) -> None:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    sync(primary.store, mirror, TENANT)
    primary.append(3, start=6)
    sync(primary.store, mirror, TENANT)
    dataset = mirror.backend.dataset_id.split(".")[1]
    statements = [
        job.statement_type
        for job in mirror.backend.client.list_jobs(min_creation_time=since, all_users=True)
        if dataset in (getattr(job, "query", None) or "")
    ]
    assert statements and set(statements) == {"SELECT"}  # heads and unerased keys: reads


def test_the_cli_mirrors_and_verifies_against_the_mirror(
    primary: Primary, mirror: BigQueryMirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "logkit.toml"
    config.write_text(
        f'env = "prod"\n[sinks]\naudit = "{primary.uri}"\ntimeline = "memory://"\n'
        f'[audit]\nhmac_key = "mirror-test-key"\nseen_state = "{tmp_path / "seen.json"}"\n'
    )
    monkeypatch.setenv("LOGKIT_CONFIG", str(config))
    target = f"bigquery://{mirror.backend.target.project}/{mirror.backend.target.dataset}"
    runner = CliRunner()
    copied = runner.invoke(cli, ["audit", "mirror", "--tenant", TENANT, "--to", target, "--json"])
    assert copied.exit_code == 0, copied.output
    assert json.loads(copied.output) == {"copied": 9, "erased": 0, "chains": 2}
    args = ["audit", "verify", "--tenant", TENANT, "--mirror", target]
    agreed = runner.invoke(cli, [*args, "--json"])
    assert agreed.exit_code == 0, agreed.output
    assert json.loads(agreed.output)["mirror"]["ok"] is True
    primary.tamper.remove(RUN_A, 5)
    disagreed = runner.invoke(cli, [*args, "--json"])
    assert disagreed.exit_code == 1
    (only,) = json.loads(disagreed.output)["mirror"]["disagreements"]
    assert (only["chain_id"], only["seq"], only["kind"]) == (RUN_A, 5, "missing_in_primary")
    human = runner.invoke(cli, args)
    assert human.exit_code == 1 and "missing_in_primary" in human.output
    bad = runner.invoke(cli, [*args[:-1], "sqlite:///x.db"])
    assert bad.exit_code == 2 and "BigQuery" in bad.output


def test_an_unreachable_mirror_is_a_mapped_error(
    primary: Primary, monkeypatch: pytest.MonkeyPatch
) -> None:
    from logkit.errors import SinkUnavailable
    from tests.sinks.test_bigquery_backend import closed_port

    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("BIGQUERY_STORAGE_EMULATOR_HOST", f"127.0.0.1:{closed_port()}")
    down = open_mirror("bigquery://logkit-test/ds_down?timeout=1")
    for call in (
        lambda: sync(primary.store, down, TENANT),
        lambda: check(primary, down),
        lambda: down.write(primary.store.records(RUN_A)),
    ):
        with pytest.raises(SinkUnavailable) as info:
            call()
        assert info.value.__cause__ is not None
    down.backend.close()
