"""The Firestore audit chain of record, against the emulator: layout, linking, idempotence,
independent chains, paging, checkpoints, concurrent appenders, and the raw tamper."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from logkit import Event, SinkWriteError
from logkit.chain import GENESIS, chain_id_of, payload_digest, sha256_hex
from logkit.sinks import cursor
from logkit.sinks.firestore import FirestoreBackend
from logkit.sinks.firestore_audit import FirestoreAuditStore, document_key
from logkit.sinks.protocols import AuditStore, Query, Role, Selector, StoredRecord, matches
from tests.audit_tamper_firestore import FirestoreTamper
from tests.sinks.backends import make_backend
from tests.sinks.test_store_contract import T0, ev, read_all

TENANT = "t_acme"
ROW_KEYS = {
    "record",
    "payload",
    "payload_salt",
    "hash",
    "seq",
    "chain_id",
    "event_id",
    "tenant_id",
    "run_id",
    "user_id",
    "event_type",
    "ts_us",
}


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[FirestoreBackend]:
    backend = make_backend("firestore", tmp_path)
    assert isinstance(backend, FirestoreBackend)
    yield backend
    backend.close()


@pytest.fixture
def store(backend: FirestoreBackend) -> FirestoreAuditStore:
    store = backend.store(Role.AUDIT)
    assert isinstance(store, FirestoreAuditStore)
    assert isinstance(store, AuditStore)
    return store


@pytest.fixture
def tamper(backend: FirestoreBackend) -> FirestoreTamper:
    return FirestoreTamper(backend.settings.project, backend.settings.root)


def all_records(store: FirestoreAuditStore, chain_id: str, page: int = 1000) -> list[StoredRecord]:
    records: list[StoredRecord] = []
    while batch := store.records(
        chain_id, after_seq=records[-1].seq if records else -1, limit=page
    ):
        records.extend(batch)
    return records


def assert_links(records: list[StoredRecord], chain_id: str) -> None:
    """A contiguous chain from seq 0 whose stored bytes hash and link as logkit.chain says."""
    assert [r.seq for r in records] == list(range(len(records)))
    prev_hash = GENESIS
    for r in records:
        assert r.chain_id == chain_id
        assert sha256_hex(r.record_bytes) == r.hash
        record = orjson.loads(r.record_bytes)
        assert (record["chain_id"], record["seq"], record["prev_hash"]) == (
            chain_id,
            r.seq,
            prev_hash,
        )
        assert r.payload_salt is not None and r.payload_bytes is not None
        assert payload_digest(r.payload_salt, r.payload_bytes) == record["payload_digest"]
        assert r.columns == {
            "event_id": record["event_id"],
            "tenant_id": record["tenant_id"],
            "run_id": record.get("run_id"),
            "user_id": record.get("user_id"),
            "event_type": record["event_type"],
            "ts_us": cursor.to_micros(dt.datetime.fromisoformat(record["ts"])),
        }
        prev_hash = r.hash


def test_append_makes_a_contiguous_linked_chain(store: FirestoreAuditStore) -> None:
    events = [
        ev(i, run_id="run_a", user_id="u1", payload={"n": i, "x": [1, "a"]}) for i in range(5)
    ]
    chained = store.append(events)
    chain_id = chain_id_of(TENANT, "run_a")
    assert [e.seq for e in chained] == list(range(5))
    assert [e.chain_id for e in chained] == [chain_id] * 5
    assert [e.prev_hash for e in chained] == [GENESIS] + [e.hash for e in chained[:-1]]
    assert [e.replace(**_unchained()) for e in chained] == events

    records = store.records(chain_id)
    assert_links(records, chain_id)
    assert [r.hash for r in records] == [e.hash for e in chained]
    assert read_all(store, Query(tenant_id=TENANT)) == chained


def _unchained() -> dict[str, Any]:
    return dict.fromkeys(("chain_id", "seq", "prev_hash", "hash", "payload_digest", "payload_salt"))


def test_the_documented_layout(store: FirestoreAuditStore, tamper: FirestoreTamper) -> None:
    (chained,) = store.append([ev(1, run_id="run/x", user_id="u7")])
    tenant = tamper.db.collection(store.backend.settings.root).document(TENANT)
    chain = tenant.collection("audit_chains").document("run%2Fx")
    assert chain.get().to_dict() == {
        "chain_id": "t_acme/run/x",
        "tenant_id": TENANT,
        "run_id": "run/x",
    }
    record = chain.collection("records").document("000000000000").get().to_dict()
    assert set(record) == ROW_KEYS
    assert record["record"] == store.records("t_acme/run/x")[0].record_bytes
    assert record["hash"] == chained.hash
    index = tenant.collection("audit_events").document(chained.event_id).get().to_dict()
    assert index == {
        "event_id": chained.event_id,
        "tenant_id": TENANT,
        "run_id": "run/x",
        "user_id": "u7",
        "event_type": "message",
        "ts_us": cursor.to_micros(chained.ts),
        "chain_id": "t_acme/run/x",
        "seq": 0,
    }


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("run_1", "run_1"),
        ("a/b", "a%2Fb"),
        ("100%", "100%25"),
        (".", "%2E"),
        ("..", "%2E."),
        ("__x__", "%5F_x__"),
        ("_tenant", "_tenant"),
    ],
)
def test_document_keys_are_safe_and_injective(value: str, key: str) -> None:
    from urllib.parse import unquote

    assert document_key(value) == key
    assert unquote(key) == value


def test_odd_run_and_event_ids_get_their_own_chains(store: FirestoreAuditStore) -> None:
    runs = ["a/b", "a%2Fb", ".", "..", "__x__"]
    events = [ev(i, run_id=run, event_id=f"e/{i}") for i, run in enumerate(runs)]
    chained = store.append(events)
    assert [e.seq for e in chained] == [0] * len(runs)
    assert store.chain_ids(TENANT) == sorted(chain_id_of(TENANT, r) for r in runs)
    for event in chained:
        assert event.chain_id is not None
        assert [r.hash for r in store.records(event.chain_id)] == [event.hash]
    assert store.append(events) == chained
    assert read_all(store, Query(tenant_id=TENANT)) == chained


def test_reappending_an_event_id_does_not_chain_it_again(
    backend: FirestoreBackend, store: FirestoreAuditStore
) -> None:
    a, b, c = ev(1, run_id="run_i"), ev(2, run_id="run_i"), ev(3, run_id="run_i")
    first = store.append([a, b])
    assert store.append([a]) == first[:1]
    again = store.append([a, a, c, b])
    assert [again[0], again[1], again[3]] == [first[0], first[0], first[1]]
    assert (again[2].event_id, again[2].seq, again[2].prev_hash) == (c.event_id, 2, first[1].hash)
    # Another machine (a fresh backend and client) sees the same.
    other = FirestoreBackend(backend.settings)
    try:
        other_store = other.store(Role.AUDIT)
        assert isinstance(other_store, FirestoreAuditStore)
        assert other_store.append([c, b, a]) == [again[2], first[1], first[0]]
    finally:
        other.close()
    records = store.records(chain_id_of(TENANT, "run_i"))
    assert_links(records, chain_id_of(TENANT, "run_i"))
    assert [r.columns["event_id"] for r in records] == [a.event_id, b.event_id, c.event_id]


def test_chains_are_independent(store: FirestoreAuditStore) -> None:
    events = [ev(i, run_id=("run_1", "run_2", None)[i % 3]) for i in range(9)]
    store.append(events)
    store.append([ev(20, tenant_id="t_other", run_id="run_1")])
    expected = [chain_id_of(TENANT, r) for r in ("_tenant", "run_1", "run_2")]
    assert store.chain_ids(TENANT) == sorted(expected)
    assert store.chain_ids(TENANT, run_id="run_1") == [f"{TENANT}/run_1"]
    assert store.chain_ids(TENANT, run_id="run_9") == []
    assert store.chain_ids("t_other") == ["t_other/run_1"]
    assert store.chain_ids("t_nobody") == []
    for chain_id in expected:
        records = store.records(chain_id)
        assert len(records) == 3
        assert_links(records, chain_id)
    assert len(store.records("t_other/run_1")) == 1
    # The tenant chain holds the events outside any run; a run filter reads one run.
    tenant_chain = store.records(f"{TENANT}/_tenant")
    assert all(r.columns["run_id"] is None for r in tenant_chain)
    run_1 = read_all(store, Query(tenant_id=TENANT, run_id="run_1"))
    assert [e.event_id for e in run_1] == [e.event_id for e in events if e.run_id == "run_1"]


def test_records_pages_with_after_seq(store: FirestoreAuditStore) -> None:
    chain_id = chain_id_of(TENANT, "run_p")
    store.append([ev(i, run_id="run_p") for i in range(12)])
    assert [r.seq for r in store.records(chain_id, after_seq=4, limit=3)] == [5, 6, 7]
    assert [r.seq for r in store.records(chain_id, after_seq=9)] == [10, 11]
    assert store.records(chain_id, after_seq=11) == []
    assert store.records(chain_id, limit=0) == []
    assert store.records("t_acme/run_none") == []
    assert store.records("not a chain id") == []
    paged = all_records(store, chain_id, page=5)
    assert paged == store.records(chain_id)
    assert_links(paged, chain_id)


def test_checkpoints_round_trip_oldest_first(store: FirestoreAuditStore) -> None:
    chain_id = chain_id_of(TENANT, "run_k")
    store.append([ev(i, run_id="run_k") for i in range(3)])
    documents = [orjson.dumps({"seq": seq, "n": n}).decode() for n, seq in enumerate((2, 0, 1))]
    for document in documents:
        store.put_checkpoint(chain_id, orjson.loads(document)["seq"], document)
    assert store.checkpoints(chain_id) == documents
    assert store.checkpoints(chain_id_of(TENANT, "run_other")) == []


def test_delete_refuses(store: FirestoreAuditStore) -> None:
    store.append([ev(1)])
    with pytest.raises(SinkWriteError, match="append-only"):
        store.delete(Selector(tenant_id=TENANT))
    assert len(read_all(store, Query(tenant_id=TENANT))) == 1


def test_write_chains_like_append(store: FirestoreAuditStore) -> None:
    store.write([ev(1), ev(2), ev(1)])
    assert_links(store.records(f"{TENANT}/_tenant"), f"{TENANT}/_tenant")


def test_queries_match_the_reference_semantics(store: FirestoreAuditStore) -> None:
    kinds = ("message", "step_started", "error")
    same_ts = T0 + dt.timedelta(seconds=5)
    events = [
        ev(
            i,
            run_id=(None, "run_q1", "run_q2")[i % 3],
            user_id=("u1", "u2")[i % 2],
            event_type=kinds[i % 3],
            ts=same_ts if i % 4 == 0 else T0 + dt.timedelta(seconds=i),
        )
        for i in range(24)
    ]
    chained = store.append(events)
    queries = [
        Query(tenant_id=TENANT, limit=5),
        Query(tenant_id=TENANT, run_id="run_q1", limit=2),
        Query(tenant_id=TENANT, user_id="u2", event_types=("message", "error"), limit=3),
        Query(tenant_id=TENANT, since=same_ts, until=T0 + dt.timedelta(seconds=20), limit=4),
        Query(tenant_id=TENANT, event_types=()),
        Query(tenant_id="t_nobody"),
    ]
    for query in queries:
        want = sorted((e for e in chained if matches(e, query)), key=lambda e: (e.ts, e.event_id))
        assert read_all(store, query) == want, query


def _run_threads(count: int, work: Callable[[int], None]) -> None:
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            start.wait()
            work(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_concurrent_appenders_never_fork_the_chain(backend: FirestoreBackend) -> None:
    chain_id = chain_id_of(TENANT, "run_c")
    written: dict[int, list[Event]] = {}

    def appender(n: int) -> None:  # its own backend and client: another machine
        mine = FirestoreBackend(backend.settings)
        try:
            store = mine.store(Role.AUDIT)
            assert isinstance(store, FirestoreAuditStore)
            written[n] = []
            for i in range(25):
                (chained,) = store.append([ev(n * 100 + i, run_id="run_c")])
                written[n].append(chained)
        finally:
            mine.close()

    _run_threads(8, appender)
    store = backend.store(Role.AUDIT)
    assert isinstance(store, FirestoreAuditStore)
    records = all_records(store, chain_id, page=64)
    assert len(records) == 200
    assert_links(records, chain_id)
    event_ids = [str(r.columns["event_id"]) for r in records]
    assert len(set(event_ids)) == 200
    returned = {e.event_id: e for events in written.values() for e in events}
    assert set(returned) == set(event_ids)
    assert [returned[event_id].hash for event_id in event_ids] == [r.hash for r in records]
    assert len(read_all(store, Query(tenant_id=TENANT, run_id="run_c"))) == 200


def test_concurrent_appends_of_the_same_events_never_fork(backend: FirestoreBackend) -> None:
    """Real Firestore chains each event once. The emulator's commits are not atomic, so there a
    lost race may leave a second copy in the chain: still linked, and never in query results."""
    chain_id = chain_id_of(TENANT, "run_d")
    events = [ev(i, run_id="run_d") for i in range(10)]
    results: dict[int, list[Event]] = {}

    def appender(n: int) -> None:
        mine = FirestoreBackend(backend.settings)
        try:
            store = mine.store(Role.AUDIT)
            assert isinstance(store, FirestoreAuditStore)
            results[n] = [e for event in events for e in store.append([event])]
        finally:
            mine.close()

    _run_threads(4, appender)
    assert all(result == results[0] for result in results.values())
    store = backend.store(Role.AUDIT)
    assert isinstance(store, FirestoreAuditStore)
    records = all_records(store, chain_id)
    assert_links(records, chain_id)
    assert {r.columns["event_id"] for r in records} == {e.event_id for e in events}
    assert read_all(store, Query(tenant_id=TENANT, run_id="run_d")) == results[0]


def test_the_tamper_round_trips_a_row(store: FirestoreAuditStore, tamper: FirestoreTamper) -> None:
    chain_id = chain_id_of(TENANT, "run_t")
    chained = store.append([ev(i, run_id="run_t") for i in range(3)])
    before = store.records(chain_id)
    row = tamper.get(chain_id, 1)
    assert set(row) == ROW_KEYS
    assert (row["chain_id"], row["seq"], row["hash"]) == (chain_id, 1, chained[1].hash)
    assert isinstance(row["record"], bytes)
    tamper.put(chain_id, 1, row)
    assert tamper.seqs(chain_id) == [0, 1, 2]
    assert store.records(chain_id) == before
    assert_links(store.records(chain_id), chain_id)
    assert read_all(store, Query(tenant_id=TENANT)) == chained
    assert store.append(chained) == chained  # the index still knows every event


def test_the_tamper_can_forge_remove_and_move(
    store: FirestoreAuditStore, tamper: FirestoreTamper
) -> None:
    chain_id = chain_id_of(TENANT, "run_f")
    chained = store.append([ev(i, run_id="run_f") for i in range(3)])
    # Forge: new payload bytes under the old hash; the digest no longer matches.
    row = tamper.get(chain_id, 1)
    tamper.put(chain_id, 1, {**row, "payload": orjson.dumps({"n": 99})})
    forged = store.records(chain_id)[1]
    record = orjson.loads(forged.record_bytes)
    assert forged.payload_salt is not None and forged.payload_bytes is not None
    assert payload_digest(forged.payload_salt, forged.payload_bytes) != record["payload_digest"]
    # Remove: a gap; the event is gone from reads.
    tamper.remove(chain_id, 1)
    assert tamper.seqs(chain_id) == [0, 2]
    assert [e.event_id for e in read_all(store, Query(tenant_id=TENANT))] == [
        chained[0].event_id,
        chained[2].event_id,
    ]
    # Move: the last row to another chain; the old filing is gone, the chain lists follow.
    moved = tamper.get(chain_id, 2)
    tamper.put(f"{TENANT}/run_g", 0, moved)
    assert tamper.seqs(chain_id) == [0]
    assert tamper.seqs(f"{TENANT}/run_g") == [0]
    assert store.chain_ids(TENANT) == [f"{TENANT}/run_f", f"{TENANT}/run_g"]
    tamper.remove(f"{TENANT}/run_g", 0)
    assert store.chain_ids(TENANT) == [f"{TENANT}/run_f"]
