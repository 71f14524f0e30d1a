"""One contract, every backend: SQLite, memory, the Firestore emulator and the BigQuery emulator."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logkit import ContractError, Event
from logkit.sinks.protocols import AuditStore, Backend, EventStore, Query, Role, Selector, selected
from tests.conftest import SCOPE
from tests.sinks.backends import KINDS, discard, make_backend

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(params=KINDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    backend = make_backend(request.param, tmp_path)
    yield backend
    discard(backend)


@pytest.fixture
def store(backend: Backend) -> EventStore:
    return backend.store(Role.TIMELINE)


def ev(n: int, **fields: Any) -> Event:
    data: dict[str, Any] = {**SCOPE, "event_type": "message", "payload": {"n": n}}
    data["ts"] = T0 + dt.timedelta(seconds=n)
    data.update(fields)
    return Event(**data)


def read_all(store: EventStore, query: Query) -> list[Event]:
    events, cursor = [], None
    while True:
        page = store.query(Query(**{**_fields(query), "cursor": cursor}))
        events.extend(page.events)
        if page.next_cursor is None:
            return events
        cursor = page.next_cursor


def _fields(query: Query) -> dict[str, Any]:
    return {name: getattr(query, name) for name in query.__slots__}


def test_append_and_read_back_exactly(store: EventStore) -> None:
    events = [
        ev(i, run_id="run_a", user_id="u1", payload={"n": i, "nested": {"x": [1, "a"]}})
        for i in range(5)
    ]
    store.write(events)
    got = read_all(store, Query(tenant_id="t_acme"))
    assert got == events
    assert [g.model_dump_json() for g in got] == [e.model_dump_json() for e in events]


def test_same_event_id_is_stored_once(store: EventStore) -> None:
    first = ev(1)
    store.write([first, first])
    store.write([first])
    store.write([first, ev(2)])
    got = read_all(store, Query(tenant_id="t_acme"))
    assert [g.event_id for g in got] == [first.event_id, got[1].event_id]
    assert len(got) == 2


def test_an_event_id_reused_by_another_tenant_is_its_own_event(store: EventStore) -> None:
    mine = ev(1)
    theirs = mine.replace(tenant_id="t_other", payload={"n": 99})
    store.write([mine, theirs])
    store.write([theirs])
    assert read_all(store, Query(tenant_id="t_acme")) == [mine]
    assert read_all(store, Query(tenant_id="t_other")) == [theirs]


def test_a_runs_events_come_back_in_order(store: EventStore) -> None:
    same_ts = T0 + dt.timedelta(seconds=100)
    events = [ev(i, run_id="run_o") for i in range(30)]
    events += [ev(0, run_id="run_o", ts=same_ts, payload={"tie": i}) for i in range(5)]
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    for chunk in range(0, len(shuffled), 8):
        store.write(shuffled[chunk : chunk + 8])
    store.write([ev(i, run_id="run_other") for i in range(3)])
    got = read_all(store, Query(tenant_id="t_acme", run_id="run_o"))
    assert got == sorted(events, key=lambda e: (e.ts, e.event_id))


def test_queries_by_run_user_type_and_time(store: EventStore) -> None:
    events = [
        ev(
            i,
            run_id=f"run_{i % 3}",
            user_id=f"u{i % 2}",
            event_type=("step_started", "step_ended", "message")[i % 3],
        )
        for i in range(24)
    ]
    store.write(events)

    def expect(**kw: Any) -> list[Event]:
        query = Query(tenant_id="t_acme", **kw)
        from logkit.sinks.protocols import matches

        return sorted((e for e in events if matches(e, query)), key=lambda e: (e.ts, e.event_id))

    cases: list[dict[str, Any]] = [
        {"run_id": "run_1"},
        {"user_id": "u0"},
        {"event_types": ("step_started",)},
        {"event_types": ("step_started", "message")},
        {"since": T0 + dt.timedelta(seconds=5), "until": T0 + dt.timedelta(seconds=11)},
        {"run_id": "run_2", "user_id": "u1", "since": T0 + dt.timedelta(seconds=4)},
        {"run_id": "run_missing"},
    ]
    for case in cases:
        got = read_all(store, Query(tenant_id="t_acme", **case))
        assert got == expect(**case), case
    since_exact = read_all(store, Query(tenant_id="t_acme", since=events[5].ts, until=events[6].ts))
    assert since_exact == [events[5]]  # since inclusive, until exclusive


def test_cursor_paging_is_complete_ordered_and_stable(store: EventStore) -> None:
    events = [ev(i, run_id="run_p") for i in range(23)]
    store.write(events)
    pages, cursor = [], None
    while True:
        page = store.query(Query(tenant_id="t_acme", run_id="run_p", limit=5, cursor=cursor))
        pages.append(page.events)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert [e for p in pages for e in p] == events


def test_exact_page_boundary_has_no_empty_next_page(store: EventStore) -> None:
    store.write([ev(i) for i in range(4)])
    page = store.query(Query(tenant_id="t_acme", limit=4))
    assert len(page.events) == 4 and page.next_cursor is None


def test_tenants_are_isolated(store: EventStore) -> None:
    mine = [ev(i) for i in range(3)]
    theirs = [ev(i, tenant_id="t_other") for i in range(3)]
    store.write(mine + theirs)
    assert read_all(store, Query(tenant_id="t_acme")) == mine
    assert read_all(store, Query(tenant_id="t_other")) == theirs
    assert read_all(store, Query(tenant_id="t_nobody")) == []


def test_delete_by_tenant_and_user(store: EventStore) -> None:
    events = [ev(i, user_id=f"u{i % 2}") for i in range(10)]
    other = [ev(i, tenant_id="t_other", user_id="u1") for i in range(3)]
    store.write(events + other)
    assert store.delete(Selector(tenant_id="t_acme", user_id="u1")) == 5
    assert read_all(store, Query(tenant_id="t_acme")) == [e for e in events if e.user_id == "u0"]
    assert read_all(store, Query(tenant_id="t_other")) == other
    assert store.delete(Selector(tenant_id="t_acme", user_id="u1")) == 0
    assert store.delete(Selector(tenant_id="t_acme")) == 5
    assert read_all(store, Query(tenant_id="t_acme")) == []
    assert read_all(store, Query(tenant_id="t_other")) == other


def test_delete_by_ids_and_before(store: EventStore) -> None:
    events = [ev(i, run_id="run_d") for i in range(6)]
    store.write(events)
    assert store.delete(Selector(tenant_id="t_acme", event_ids=(events[0].event_id,))) == 1
    assert store.delete(Selector(tenant_id="t_acme", before=events[3].ts)) == 2
    assert read_all(store, Query(tenant_id="t_acme")) == events[3:]


def test_roles_are_separate(backend: Backend) -> None:
    backend.store(Role.TIMELINE).write([ev(1)])
    backend.store(Role.COST).write([ev(2, event_type="usage_recorded", storage_class="cost")])
    timeline = read_all(backend.store(Role.TIMELINE), Query(tenant_id="t_acme"))
    cost = read_all(backend.store(Role.COST), Query(tenant_id="t_acme"))
    assert [e.payload["n"] for e in timeline] == [1] and [e.payload["n"] for e in cost] == [2]


def test_bad_cursor_is_a_contract_error(store: EventStore) -> None:
    with pytest.raises(ContractError, match="cursor"):
        store.query(Query(tenant_id="t_acme", cursor="not-a-cursor"))


def test_large_batch(store: EventStore) -> None:
    events = [ev(i, run_id="run_big") for i in range(1200)]
    store.write(events)
    got = read_all(store, Query(tenant_id="t_acme", run_id="run_big"))
    assert len(got) == 1200 and got == events


def test_schema_check_is_clean_after_create(backend: Backend) -> None:
    assert backend.check_schema(create=True) == []
    assert backend.describe()


# --- what retention and DSAR need: count, tenant listing, body-level selectors ---------------


def test_count_is_what_delete_would_remove(store: EventStore) -> None:
    events = [ev(i, user_id=f"u{i % 3}", run_id=f"run_{i % 2}") for i in range(12)]
    store.write(events)
    selectors = [
        Selector(tenant_id="t_acme", user_id="u1"),
        Selector(tenant_id="t_acme", run_id="run_0", before=events[7].ts),
        Selector(tenant_id="t_acme", event_ids=(events[0].event_id, "nope")),
        Selector(tenant_id="t_nobody"),
    ]
    for selector in selectors:
        everything = read_all(store, Query(tenant_id=selector.tenant_id))
        expected = sum(selected(e, selector) for e in everything)
        assert store.count(selector) == expected
        assert store.delete(selector) == expected
        assert store.count(selector) == 0


def test_select_by_app_and_storage_class(store: EventStore) -> None:
    events = [
        ev(i, app_id=("bot-a", "bot-b", "bot-c")[i % 3], storage_class=("ops", "audit")[i % 2])
        for i in range(12)
    ]
    store.write(events)
    by_app = Selector(tenant_id="t_acme", app_id="bot-a")
    assert store.count(by_app) == 4
    others = Selector(tenant_id="t_acme", other_apps=("bot-a", "bot-b"), storage_classes=("ops",))
    assert store.count(others) == 2  # bot-c ops: i = 2, 8
    assert store.delete(others) == 2
    ops_before = Selector(tenant_id="t_acme", storage_classes=("ops",), before=events[6].ts)
    assert store.delete(ops_before) == 2  # i = 0, 4 (i = 2 went above)
    left = {e.payload["n"] for e in read_all(store, Query(tenant_id="t_acme"))}
    assert left == {1, 3, 5, 6, 7, 9, 10, 11}
    assert store.count(Selector(tenant_id="t_acme", storage_classes=())) == 0


def test_tenant_ids_lists_every_tenant_with_events(store: EventStore) -> None:
    store.write([ev(1), ev(2, tenant_id="t_beta"), ev(3, tenant_id="t_gamma")])
    assert {"t_acme", "t_beta", "t_gamma"} <= set(store.tenant_ids())
    assert store.tenant_ids() == sorted(store.tenant_ids())


# --- audit erasure, on every chain of record ------------------------------------------------


@pytest.fixture(params=("sqlite", "memory", "firestore"))
def audit_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditStore]:
    backend = make_backend(request.param, tmp_path)
    store = backend.store(Role.AUDIT)
    assert isinstance(store, AuditStore)
    yield store
    discard(backend)


def audit_ev(n: int, **fields: Any) -> Event:
    return ev(n, event_type="audit_action", storage_class="audit", **fields)


def test_erase_payloads_keeps_the_chain_verifiable(audit_store: AuditStore) -> None:
    from logkit.auditing.checkpoint import load_keys
    from logkit.auditing.verify import verify
    from logkit.config import AuditConfig
    from logkit.envelope import Env

    events = [audit_ev(i, run_id="run_e", user_id=f"u{i % 2}") for i in range(6)]
    audit_store.append([*events, audit_ev(9, tenant_id="t_other", user_id="u1")])
    subject = Selector(tenant_id="t_acme", user_id="u1")
    assert audit_store.erase_payloads(subject, dry_run=True) == 3
    assert audit_store.count(subject) == 3
    assert all(r.payload_bytes for r in audit_store.records("t_acme/run_e"))  # dry run
    assert audit_store.erase_payloads(subject) == 3
    assert audit_store.erase_payloads(subject) == 0  # already erased: nothing left
    assert audit_store.count(subject) == 3  # the records stay
    records = audit_store.records("t_acme/run_e")
    assert [r.payload_bytes is None for r in records] == [False, True] * 3
    assert all((r.payload_bytes is None) == (r.payload_salt is None) for r in records)
    assert audit_store.records("t_other/_tenant")[0].payload_bytes is not None
    keys = load_keys(AuditConfig(hmac_key="k"), Env.PROD)  # type: ignore[arg-type]
    report = verify(audit_store, ["t_acme/run_e"], keys)
    # An erasure no erasure record explains is tampering; the record DSAR appends explains it.
    assert (report.chains[0].first_bad_seq, report.chains[0].kind) == (1, "unexplained_erasure")
    named = {"t_acme/run_e": [1, 3, 5]}
    audit_store.append([ev(10, event_type="dsar_erasure", payload={"erased": named})])
    report = verify(audit_store, ["t_acme/run_e"], keys)
    assert report.ok and report.chains[0].erased == 3
    back = read_all(audit_store, Query(tenant_id="t_acme", user_id="u1"))
    assert [e.payload for e in back] == [{}] * 3 and all(e.payload_digest for e in back)


def test_erase_payloads_by_app_class_and_age(audit_store: AuditStore) -> None:
    events = [audit_ev(i, app_id=("bot-a", "bot-b")[i % 2]) for i in range(6)]
    audit_store.append(events)
    old_a = Selector(tenant_id="t_acme", app_id="bot-a", before=events[4].ts)
    assert audit_store.erase_payloads(old_a) == 2  # i = 0, 2
    rest = Selector(tenant_id="t_acme", other_apps=("bot-a",), storage_classes=("audit",))
    assert audit_store.erase_payloads(rest) == 3
    assert audit_store.erase_payloads(Selector(tenant_id="t_acme", storage_classes=("ops",))) == 0
    erased = [r.payload_bytes is None for r in audit_store.records("t_acme/_tenant")]
    assert erased == [True, True, True, True, False, True]
    assert audit_store.tenant_ids() == ["t_acme"] or "t_acme" in audit_store.tenant_ids()


def test_audit_delete_still_refuses(audit_store: AuditStore) -> None:
    from logkit.errors import SinkWriteError

    audit_store.append([audit_ev(1)])
    with pytest.raises(SinkWriteError, match="append-only"):
        audit_store.delete(Selector(tenant_id="t_acme"))


def test_span_ids_are_kept(backend: Backend) -> None:
    """Envelope 1.1.0: every store keeps trace_id, span_id and parent_span_id as written."""
    spanned = ev(
        1,
        run_id="run_s",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        span_id="00f067aa0ba902b7",
        parent_span_id="b7ad6b7169203331",
    )
    for role in (Role.TIMELINE, Role.AUDIT):
        store = backend.store(role)
        if role is Role.AUDIT and not isinstance(store, AuditStore):
            continue
        store.write([spanned])
        (got,) = read_all(store, Query(tenant_id="t_acme", run_id="run_s"))
        assert (got.trace_id, got.span_id, got.parent_span_id) == (
            spanned.trace_id,
            spanned.span_id,
            spanned.parent_span_id,
        )
