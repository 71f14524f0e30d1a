"""Audit appends that scale with writers, on the Firestore emulator: blocks, group commit, lanes.

Many writer *processes* (each its own client and writer id) append to one tenant's run-less
chain; every event is chained exactly once, every chain verifies, and with lanes the signed
checkpoints tie the lanes together so a lane deleted whole is reported.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from logkit.auditing.checkpoint import checkpoint_chains, load_keys, write_file
from logkit.auditing.verify import verify
from logkit.chain import chain_id_of
from logkit.cli.main import app as cli
from logkit.config import AuditConfig
from logkit.envelope import Env, Event
from logkit.sinks.firestore import FirestoreBackend
from logkit.sinks.firestore_append import MAX_BLOCK_RECORDS, BlockAppender
from logkit.sinks.firestore_audit import FirestoreAuditStore
from logkit.sinks.protocols import Role
from logkit.sinks.registry import open_backend
from tests.audit_tamper_firestore import FirestoreTamper
from tests.sinks.audit_writers import append_records
from tests.sinks.backends import uri_for
from tests.sinks.test_store_contract import ev

TENANT = "t_acme"
KEYS = load_keys(AuditConfig(hmac_key="scale-test-key"), Env.PROD)  # type: ignore[arg-type]


def audit_ev(n: int, **fields: Any) -> Event:
    return ev(n, event_type="audit_action", storage_class="audit", **fields)


@pytest.fixture
def base_uri(tmp_path: Path) -> str:
    return uri_for("firestore", tmp_path)


def audit_store(uri: str) -> tuple[FirestoreBackend, FirestoreAuditStore]:
    backend = open_backend(uri)
    assert isinstance(backend, FirestoreBackend)
    store = backend.store(Role.AUDIT)
    assert isinstance(store, FirestoreAuditStore)
    return backend, store


@pytest.fixture
def counted(base_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, list[int]]]:
    """A store whose commits are counted (records per commit), to see blocks form."""
    backend, store = audit_store(base_uri)
    sizes: list[int] = []
    real = store.commit

    def commit(chain_id: str, records: Any) -> None:
        real(chain_id, records)
        sizes.append(len(records))

    monkeypatch.setattr(store, "commit", commit)
    yield store, sizes
    backend.close()


def test_a_batch_for_one_chain_is_one_commit(counted: tuple[Any, list[int]]) -> None:
    store, sizes = counted
    chained = store.append([audit_ev(i, run_id="run_b") for i in range(MAX_BLOCK_RECORDS + 5)])
    assert sizes == [MAX_BLOCK_RECORDS, 5]
    assert [e.seq for e in chained] == list(range(MAX_BLOCK_RECORDS + 5))
    assert verify(store, [chain_id_of(TENANT, "run_b")], KEYS).ok


def test_concurrent_appends_in_one_process_share_commits(counted: tuple[Any, list[int]]) -> None:
    store, sizes = counted
    results: list[Event] = []
    start = threading.Barrier(16)

    def one(n: int) -> None:
        start.wait()
        for i in range(10):
            results.extend(store.append([audit_ev(n * 100 + i)]))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 160 and sum(sizes) == 160
    assert len(sizes) < 160  # group commit: followers rode along in their leader's blocks
    assert sorted(e.seq for e in results) == list(range(160))  # type: ignore[type-var]
    assert verify(store, [chain_id_of(TENANT, None)], KEYS).ok


def test_a_block_that_loses_its_seq_midway_is_relinked(base_uri: str) -> None:
    """Another writer took a seq inside our block: nothing forks, every event is once."""
    backend, store = audit_store(base_uri)
    rival_backend, rival = audit_store(base_uri)
    try:
        store.append([audit_ev(0, run_id="run_r")])  # our writer caches head 0
        rival.append([audit_ev(100 + i, run_id="run_r") for i in range(3)])  # seqs 1..3
        mine = store.append([audit_ev(i, run_id="run_r") for i in range(1, 6)])  # stale head
        assert [e.seq for e in mine] == [4, 5, 6, 7, 8]
        chain_id = chain_id_of(TENANT, "run_r")
        records = store.records(chain_id)
        assert len({r.event_id for r in records}) == len(records) == 9
        assert verify(store, [chain_id], KEYS).ok
    finally:
        backend.close()
        rival_backend.close()


@pytest.mark.parametrize("options", ["&append=record", "", "&lanes=writer"])
def test_writer_processes_chain_every_event_once(base_uri: str, options: str) -> None:
    uri = base_uri + options
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(4, mp_context=ctx) as pool:
        futures = [pool.submit(append_records, uri, w, 4, 8, None) for w in range(4)]
        appended = [row for future in futures for row in future.result(timeout=180)]
    backend, store = audit_store(uri)
    try:
        chains = store.chain_ids(TENANT)
        assert chains == store.chain_ids(TENANT, "_tenant")
        assert len(chains) == (4 if "lanes" in options else 1)
        records = [r for chain_id in chains for r in store.records(chain_id)]
        assert len(records) == 4 * 4 * 8
        assert {r.event_id for r in records} == {event_id for event_id, _, _ in appended}
        assert {(r.event_id, r.chain_id, r.seq) for r in records} == set(appended)
        report = verify(store, chains, KEYS)
        assert report.ok and [c.records for c in report.chains] == [
            len(records) // len(chains)
        ] * len(chains)
    finally:
        backend.close()


# --- lanes ----------------------------------------------------------------------------------


def test_a_lane_is_an_ordinary_chain_of_its_writer(base_uri: str) -> None:
    uri = base_uri + "&lanes=writer"
    backend, store = audit_store(uri)
    other_backend, other = audit_store(uri)
    try:
        assert isinstance(store.appender, BlockAppender)
        mine = store.append([audit_ev(i) for i in range(3)] + [audit_ev(9, run_id="run_x")])
        theirs = other.append([audit_ev(10 + i) for i in range(2)])
        lane, other_lane = mine[0].chain_id, theirs[0].chain_id
        assert lane == f"{TENANT}/_tenant~{store.appender.writer}" and lane != other_lane
        assert [e.chain_id for e in mine] == [lane] * 3 + [f"{TENANT}/run_x"]
        assert [e.seq for e in mine] == [0, 1, 2, 0] and [e.seq for e in theirs] == [0, 1]
        assert all(e.run_id is None for e in mine[:3])
        assert store.chain_ids(TENANT, "_tenant") == sorted([lane or "", other_lane or ""])
        assert store.chain_ids(TENANT) == sorted([lane or "", other_lane or "", f"{TENANT}/run_x"])
        assert other.append(mine) == mine  # chained already, in another lane: not again
        assert verify(store, store.chain_ids(TENANT), KEYS).ok
    finally:
        backend.close()
        other_backend.close()


def test_a_lane_deleted_whole_is_reported_against_the_checkpoint_file(
    base_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = base_uri + "&lanes=writer"
    backend, store = audit_store(uri)
    other_backend, other = audit_store(uri)
    try:
        store.append([audit_ev(i) for i in range(3)])
        (gone,) = other.append([audit_ev(10)])
        file = tmp_path / "checkpoints.json"
        write_file(file, checkpoint_chains(store, store.chain_ids(TENANT), KEYS))
        tamper = FirestoreTamper(backend.settings.project, backend.settings.root)
        assert gone.chain_id is not None
        tamper.remove(gone.chain_id, 0)  # the lane's only record, its index entry and chain
        assert gone.chain_id not in store.chain_ids(TENANT)
        config = tmp_path / "logkit.toml"
        config.write_text(
            f'env = "prod"\n[sinks]\naudit = "{uri}"\ntimeline = "memory://"\n'
            f'[audit]\nhmac_key = "scale-test-key"\nseen_state = "{tmp_path / "seen.json"}"\n'
        )
        monkeypatch.setenv("LOGKIT_CONFIG", str(config))
        args = ["audit", "verify", "--tenant", TENANT, "--checkpoint", str(file), "--json"]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, result.output
        assert gone.chain_id in result.output and '"missing_chain"' in result.output
    finally:
        backend.close()
        other_backend.close()


@pytest.mark.parametrize(
    ("chain_id", "tenant", "run", "expected"),
    [
        ("t_acme/_tenant", "t_acme", "_tenant", True),
        ("t_acme/_tenant~0a1b2c3d4e5f", "t_acme", "_tenant", True),
        ("t_acme/_tenant~0a1b2c3d4e5f", "t_acme", None, True),
        ("t_acme/_tenantx", "t_acme", "_tenant", False),  # a run that merely starts alike
        ("t_acme/run_1", "t_acme", "_tenant", False),
        ("t_acme/run_1", "t_acme", "run_1", True),
        ("t_other/_tenant~0a1b2c3d4e5f", "t_acme", "_tenant", False),
        ("t_acme", "t_acme", None, False),
    ],
)
def test_which_chains_a_verification_covers(
    chain_id: str, tenant: str, run: str | None, expected: bool
) -> None:
    from logkit.auditing.chains import in_scope

    assert in_scope(chain_id, tenant, run) is expected
