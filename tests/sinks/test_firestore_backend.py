"""Firestore-only behaviour: URIs, error mapping, the documented layout, paging edge cases."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from logkit import ConfigError, Event, SinkUnavailable, SinkWriteError
from logkit.envelope import EventType
from logkit.sinks import cursor, firestore
from logkit.sinks.firestore import FIRESTORE_INDEXES, FirestoreBackend, Settings, parse_uri
from logkit.sinks.protocols import ROLE_TABLES, Query, Role, Selector, matches
from logkit.sinks.registry import open_backend
from tests import services
from tests.sinks.backends import make_backend
from tests.sinks.test_store_contract import T0, ev, read_all

# --- URIs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("firestore://my-project", Settings("my-project")),
        ("firestore://my-project?root=events", Settings("my-project", root="events")),
        (
            "firestore://my-project?root=lk_1&database=logs-eu&timeout=2.5",
            Settings("my-project", "lk_1", "logs-eu", 2.5),
        ),
        ("firestore://my-project?database=%28default%29", Settings("my-project")),
        ("FIRESTORE://example.com:my-project", Settings("example.com:my-project")),
    ],
)
def test_good_uris(uri: str, expected: Settings) -> None:
    assert parse_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("firestore://", "project id"),
        ("firestore:/my-project", "looks like"),
        ("sqlite://my-project", "looks like"),
        ("firestore://My_Project", "project id"),
        ("firestore://my-project/extra", "project id"),
        ("firestore://user:secret@my-project", "project id"),
        ("firestore://my-project?root=", "root must be"),
        ("firestore://my-project?root=a/b", "root must be"),
        ("firestore://my-project?root=__x__", "root must be"),
        ("firestore://my-project?database=Bad_DB", "database must be"),
        ("firestore://my-project?timeout=0", "timeout must be"),
        ("firestore://my-project?timeout=-1", "timeout must be"),
        ("firestore://my-project?timeout=soon", "timeout must be"),
        ("firestore://my-project?timeout=nan", "timeout must be"),
        ("firestore://my-project?timeout=inf", "timeout must be"),
        ("firestore://my-project?roots=x", "root, database, timeout"),
        ("firestore://my-project?root=a&root=b", "root, database, timeout"),
        ("firestore://my-project?lanes=yes", "lanes must be"),
        ("firestore://my-project?append=batch", "append must be"),
        ("firestore://my-project?lanes=writer&append=record", "lanes need the block"),
        ("firestore://my-project?root", "parameters must look like"),
    ],
)
def test_bad_uris_are_config_errors(uri: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        parse_uri(uri)
    assert "secret" not in str(info.value)


def test_the_registry_builds_the_backend_without_connecting() -> None:
    backend = open_backend("firestore://some-project?root=events&timeout=3")
    assert isinstance(backend, FirestoreBackend)
    assert backend.rpc["timeout"] == 3.0
    assert "some-project" in backend.describe() and "events" in backend.describe()
    backend.close()


def test_a_missing_client_library_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.cloud

    monkeypatch.delattr(google.cloud, "firestore", raising=False)
    monkeypatch.setitem(sys.modules, "google.cloud.firestore", None)
    with pytest.raises(ConfigError, match=r"pip install 'logkit\[gcp\]'"):
        FirestoreBackend.from_uri("firestore://my-project")


def test_importing_the_module_does_not_import_the_sdk() -> None:
    code = (
        "import sys, logkit, logkit.sinks.firestore; "
        "print(sorted(m for m in sys.modules if m.startswith('google.cloud')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- An unreachable backend -----------------------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never answers (a hung server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_a_closed_port_is_unavailable_at_once(
    closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.api_core.exceptions import GoogleAPICallError

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{closed_port}")
    backend = FirestoreBackend.from_uri("firestore://logkit-test?timeout=5")
    store = backend.store(Role.TIMELINE)
    secret = ev(1, payload={"marker": "do-not-echo"})
    calls: list[Callable[[], object]] = [
        lambda: store.write([secret]),
        lambda: store.query(Query(tenant_id="t_acme")),
        lambda: store.delete(Selector(tenant_id="t_acme")),
        lambda: store.delete(Selector(tenant_id="t_acme", event_ids=(secret.event_id,))),
        backend.check_schema,
    ]
    try:
        for call in calls:
            started = time.monotonic()
            with pytest.raises(SinkUnavailable) as info:
                call()
            assert time.monotonic() - started < 3  # refused, not retried up to the timeout
            assert isinstance(info.value.__cause__, GoogleAPICallError)
            assert "do-not-echo" not in str(info.value)
            assert secret.event_id not in str(info.value)
    finally:
        backend.close()


def test_a_silent_server_is_unavailable_after_the_timeout(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{silent_port}")
    backend = FirestoreBackend.from_uri("firestore://logkit-test?timeout=0.5")
    try:
        for call in (
            lambda: backend.store(Role.AUDIT).write([ev(1)]),
            lambda: backend.store(Role.AUDIT).query(Query(tenant_id="t_acme")),
        ):
            started = time.monotonic()
            with pytest.raises(SinkUnavailable, match="DeadlineExceeded"):
                call()
            assert 0.4 < time.monotonic() - started < 3
    finally:
        backend.close()


# --- Against the emulator -------------------------------------------------------------------


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[FirestoreBackend]:
    backend = make_backend("firestore", tmp_path)
    assert isinstance(backend, FirestoreBackend)
    yield backend
    backend.close()


@pytest.fixture
def raw(backend: FirestoreBackend) -> Any:
    """The official client on its own, to look at what the backend stored."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore as sdk

    services.require("FIRESTORE_EMULATOR_HOST")
    anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
    return sdk.Client(project="logkit-test", credentials=anonymous)


def expected(events: list[Event], query: Query) -> list[Event]:
    """The reference answer: matching events in (ts, event_id) order."""
    return sorted((e for e in events if matches(e, query)), key=lambda e: (e.ts, e.event_id))


def test_an_event_is_stored_at_the_documented_path(backend: FirestoreBackend, raw: Any) -> None:
    event = ev(3, run_id="run_l", user_id="u7", event_type="step_started")
    backend.store(Role.TIMELINE).write([event])
    backend.store(Role.COST).write([ev(4, event_type="usage_recorded", storage_class="cost")])

    tenant = raw.collection(backend.settings.root).document("t_acme")
    snapshot = tenant.collection("timeline_events").document(event.event_id).get()
    assert snapshot.to_dict() == {
        "event_id": event.event_id,
        "tenant_id": "t_acme",
        "run_id": "run_l",
        "user_id": "u7",
        "event_type": "step_started",
        "ts_us": cursor.to_micros(event.ts),
        "body": event.model_dump_json(),
    }
    assert Event.model_validate_json(snapshot.get("body")) == event
    assert [d.id for d in tenant.collection("cost_events").stream()] != []
    assert list(tenant.collection("audit_events").stream()) == []


def test_more_than_30_event_types(backend: FirestoreBackend) -> None:
    store = backend.store(Role.TIMELINE)
    kinds = ("message", "step_started", "step_ended", "error")
    events = [ev(i, event_type=kinds[i % 4], run_id=f"run_{i % 2}") for i in range(20)]
    store.write(events)
    bogus = tuple(f"not_a_type_{i}" for i in range(30))
    for types in [
        ("message", *bogus),  # 31 values, one real
        tuple(t.value for t in EventType) + bogus,  # every type, 52 values
        ("error",) * 40 + ("message",),  # 41 values, 2 distinct: still one `in` filter
    ]:
        assert len(types) > 30
        for query in (
            Query(tenant_id="t_acme", event_types=types, limit=3),
            Query(tenant_id="t_acme", event_types=types, run_id="run_1", since=events[4].ts),
        ):
            assert read_all(store, query) == expected(events, query), (types, query)
    assert store.query(Query(tenant_id="t_acme", event_types=())).events == []


def test_many_events_on_one_timestamp_page_correctly(
    backend: FirestoreBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tiny RPC reads, so that runs of equal timestamps span many reads (as 1000+ would).
    monkeypatch.setattr(firestore, "FETCH_SIZE", 3)
    store = backend.store(Role.TIMELINE)
    tie = T0 + dt.timedelta(seconds=5)
    events = [ev(i) for i in range(10)]
    events += [ev(0, ts=tie, event_type=("message", "error")[i % 2]) for i in range(11)]
    store.write(events)
    bogus = tuple(f"x{i}" for i in range(30))
    narrowing: list[dict[str, Any]] = [
        {},
        {"since": tie},
        {"until": tie + dt.timedelta(microseconds=1)},
        {"event_types": ("error", *bogus)},
    ]
    queries = [
        Query(tenant_id="t_acme", limit=limit, **kw)
        for limit, kw in itertools.product((1, 4, 7, 100), narrowing)
    ]
    for query in queries:
        assert read_all(store, query) == expected(events, query), query


def test_a_cursor_outside_the_time_window(backend: FirestoreBackend) -> None:
    store = backend.store(Role.TIMELINE)
    events = [ev(i) for i in range(10)]
    store.write(events)
    early = store.query(Query(tenant_id="t_acme", limit=2)).next_cursor
    page = store.query(Query(tenant_id="t_acme", since=events[6].ts, cursor=early))
    assert page.events == events[6:] and page.next_cursor is None
    late = cursor.encode(events[8])
    page = store.query(Query(tenant_id="t_acme", until=events[5].ts, cursor=late))
    assert page.events == [] and page.next_cursor is None


def test_delete_by_ids_respects_the_other_fields(
    backend: FirestoreBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(firestore, "FETCH_SIZE", 2)
    store = backend.store(Role.TIMELINE)
    events = [ev(i, user_id=f"u{i % 2}") for i in range(8)]
    other = ev(0, tenant_id="t_other")
    store.write([*events, other])
    ids = (*(e.event_id for e in events[:6]), other.event_id, "a/b", "..", "missing")
    doomed = Selector(tenant_id="t_acme", event_ids=ids, user_id="u0", before=events[4].ts)
    assert store.delete(doomed) == 2  # events 0 and 2
    left = read_all(store, Query(tenant_id="t_acme"))
    assert left == [e for i, e in enumerate(events) if i not in (0, 2)]
    assert store.delete(Selector(tenant_id="t_acme", before=events[5].ts)) == 3
    assert store.delete(Selector(tenant_id="t_acme")) == 3
    assert read_all(store, Query(tenant_id="t_other")) == [other]


def test_an_event_id_that_is_no_document_id_is_refused(backend: FirestoreBackend) -> None:
    store = backend.store(Role.TIMELINE)
    good, bad = ev(1), ev(2, event_id="runs/r1")
    with pytest.raises(SinkWriteError, match="document id"):
        store.write([good, bad])
    assert read_all(store, Query(tenant_id="t_acme")) == []  # refused before any commit
    store.write([good])
    assert read_all(store, Query(tenant_id="t_acme")) == [good]


def test_a_tenant_id_that_is_no_document_id_finds_nothing(backend: FirestoreBackend) -> None:
    store = backend.store(Role.TIMELINE)
    store.write([ev(1)])
    assert store.query(Query(tenant_id="t_acme/timeline_events")).events == []
    assert store.delete(Selector(tenant_id="..")) == 0
    assert len(read_all(store, Query(tenant_id="t_acme"))) == 1


# --- Indexes --------------------------------------------------------------------------------


def test_the_index_list_covers_every_query_shape() -> None:
    indexes = json.loads(json.dumps(FIRESTORE_INDEXES))["indexes"]
    shapes = {(i["collectionGroup"], tuple(f["fieldPath"] for f in i["fields"])) for i in indexes}
    assert len(shapes) == len(indexes) == 8 * len(ROLE_TABLES)
    for collection in ROLE_TABLES.values():
        for size in range(4):
            for equal in itertools.combinations(("run_id", "user_id", "event_type"), size):
                assert (collection, (*equal, "ts_us", "event_id")) in shapes
    assert all(i["queryScope"] == "COLLECTION" for i in indexes)
    overrides = FIRESTORE_INDEXES["fieldOverrides"]
    assert {(o["collectionGroup"], o["fieldPath"], len(o["indexes"])) for o in overrides} == {
        (c, "body", 0) for c in ROLE_TABLES.values()
    }
