"""Poison events: refused at emit by field when that can be known there, isolated by the
dispatcher otherwise (the culprits to the dead letters, everything else stored), never able to
block the queue or the process's exit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logkit
from logkit import ContractError, Event
from logkit.config import DispatchConfig
from logkit.dispatch import Dispatcher
from logkit.sinks.protocols import EventStore, Page, Query, Role, Selector
from logkit.sinks.sqlite import SQLiteBackend
from logkit.spool import Spool
from tests.conftest import SCOPE
from tests.sinks.backends import stored_numbers

BOB = json.loads('{"name":"bob\\ud800"}')  # what any client can send: an unpaired surrogate


def sqlite_sinks(tmp_path: Path, **dispatch: Any) -> dict[str, Any]:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    return {
        "env": "dev",
        "sinks": {"timeline": db, "audit": db},
        "dispatch": {"spool_path": tmp_path / "spool.db", **dispatch},
    }


# --- refused at emit, by field ----------------------------------------------------------------


def test_an_unpaired_surrogate_is_refused_at_emit_naming_the_field() -> None:
    with logkit.bind(**SCOPE), pytest.raises(ContractError) as refused:
        logkit.emit("message", BOB)
    assert "payload.name" in refused.value.problems
    assert "\ud800" not in str(refused.value) and "bob" not in str(refused.value)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"a": {"b": ["ok", "x\udfff"]}}, "payload.a.b[1]"),
        ({"k\ud800": 1}, "payload.<key k\\ud800>"),
        ({"deep": [{"deeper": "\ud83d"}]}, "payload.deep[0].deeper"),
    ],
)
def test_surrogates_anywhere_are_named(payload: dict[str, Any], field: str) -> None:
    with logkit.bind(**SCOPE), pytest.raises(ContractError) as refused:
        logkit.emit("message", payload)
    assert field in refused.value.problems


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_json_numbers_are_refused_naming_the_field(value: float) -> None:
    with logkit.bind(**SCOPE), pytest.raises(ContractError) as refused:
        logkit.emit("message", {"score": {"v": value}})
    # pydantic's JSON-value locations carry union tags: payload.score.dict.v.float
    assert any(name.startswith("payload.score") and ".v" in name for name in refused.value.problems)


def test_audit_refuses_the_same_payload_with_a_contract_error(
    configured: Any, tmp_path: Path
) -> None:
    configured(**sqlite_sinks(tmp_path))
    with logkit.bind(**SCOPE, run_id="run_p"):
        with pytest.raises(ContractError) as refused:
            logkit.audit("login", BOB)  # was a bare TypeError
        assert "payload.name" in refused.value.problems
        with pytest.raises(ContractError):
            logkit.audit("login", {"n": 2**60})  # no exact JCS form: refused now, not on replay
        assert logkit.audit("login", {"name": "bob"}).seq == 0  # the chain is fine


def test_a_legacy_event_handed_over_whole_is_checked_too() -> None:
    event = Event(**SCOPE, event_type="message").replace(payload=BOB)
    with pytest.raises(ContractError, match=r"payload\.name"):
        logkit.emit_event(event)


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(codec=None), max_size=8),  # surrogates included
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(st.characters(codec=None), max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.dictionaries(st.text(st.characters(codec=None), max_size=5), json_values))
def test_emit_either_refuses_by_field_or_hands_on_an_event_every_store_can_write(
    payload: dict[str, Any],
) -> None:
    try:
        event = logkit.build_event("message", payload, **SCOPE)
    except ContractError as refused:
        assert refused.problems or refused.missing  # it says which field
        assert all(name.startswith("payload") for name in refused.problems)
        return
    json.loads(event.to_json())  # valid UTF-8 JSON: the spool and every store can take it


# --- isolated by the dispatcher ---------------------------------------------------------------


def poison(n: int) -> Event:
    """An event that slipped past emit (built and changed in code): it cannot be serialised."""
    return Event(**SCOPE, event_type="message", payload={"n": n}).replace(
        payload={"n": n, "name": "bob\ud800"}
    )


def test_one_poison_event_neither_blocks_nor_costs_the_others(
    configured: Any, tmp_path: Path
) -> None:
    """Issue 14, item 1: 1,201 events with one poison among them, queue_size 1000."""
    runtime = configured(**sqlite_sinks(tmp_path, queue_size=1000, batch_size=51))
    with logkit.bind(**SCOPE):
        for i in range(1201):
            if i == 40:
                runtime.router(poison(i))  # past the emit check, straight to the router
            else:
                logkit.emit("message", {"n": i})
    assert logkit.flush(30)
    assert stored_numbers(runtime.stores[Role.TIMELINE]) == [i for i in range(1201) if i != 40]
    dispatcher = runtime.dispatchers[Role.TIMELINE]
    (letter,) = runtime.spool.dead_letters()
    assert letter.sink == dispatcher.sink and "n" in json.loads(letter.body)["payload"]
    assert dispatcher.stats.dead == 1 and dispatcher.stats.dropped == 0
    assert dispatcher.pending() == 0
    assert logkit.shutdown(10)


class Picky:
    """A real SQLite store that fails (any way) on chosen events, like a backend bug or a
    value it refuses. Counts writes, so the bisection's cost is visible."""

    def __init__(self, inner: EventStore, bad: set[int], error: type[Exception]) -> None:
        self.inner, self.bad, self.error = inner, bad, error
        self.writes = 0

    def write(self, events: Sequence[Event]) -> None:
        self.writes += 1
        if any(e.payload.get("n") in self.bad for e in events):
            raise self.error("refused (test)")
        self.inner.write(events)

    def query(self, query: Query) -> Page:
        return self.inner.query(query)

    def delete(self, selector: Selector) -> int:
        return self.inner.delete(selector)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[SQLiteBackend]:
    backend = SQLiteBackend(tmp_path / "store.db")
    yield backend
    backend.close()


@pytest.mark.parametrize("error", [logkit.SinkWriteError, TypeError, ValueError, KeyError])
def test_a_failing_batch_is_split_until_the_culprits_are_found(
    backend: SQLiteBackend, tmp_path: Path, error: type[Exception]
) -> None:
    store = Picky(backend.store(Role.TIMELINE), {17, 130, 131}, error)
    config = DispatchConfig(batch_size=200, flush_interval_s=0.01, replay_interval_s=0.01)
    dispatcher = Dispatcher("t#timeline", store, Spool(tmp_path / "spool.db"), config)
    for i in range(400):
        dispatcher.submit(Event(**SCOPE, event_type="message", payload={"n": i}))
    assert dispatcher.flush(10)
    assert stored_numbers(store.inner) == [i for i in range(400) if i not in (17, 130, 131)]
    letters = dispatcher.spool.dead_letters()
    assert sorted(json.loads(d.body)["payload"]["n"] for d in letters) == [17, 130, 131]
    assert all(d.reason.startswith(error.__name__) for d in letters)
    assert store.writes < 60  # found by halving, not one write per event
    assert dispatcher.close(5)


def test_a_poison_event_spooled_during_an_outage_is_set_aside_not_held(
    backend: SQLiteBackend, tmp_path: Path
) -> None:
    """The spool cannot serialise it either: it goes to the dead letters, the rest waits."""
    store = Picky(backend.store(Role.TIMELINE), set(), logkit.SinkUnavailable)
    store.bad = set(range(100))  # the backend is down for every event
    config = DispatchConfig(
        batch_size=20, flush_interval_s=0.01, retry_attempts=1, replay_interval_s=0.01
    )
    dispatcher = Dispatcher("t#timeline", store, Spool(tmp_path / "spool.db"), config)
    for i in range(50):
        dispatcher.submit(
            poison(i) if i == 7 else Event(**SCOPE, event_type="message", payload={"n": i})
        )
    assert dispatcher.flush(10)
    assert dispatcher.spool.count("t#timeline") == 49 and dispatcher.spool.dead_count() == 1
    store.bad = set()
    assert dispatcher.flush(10)
    assert stored_numbers(store.inner) == [i for i in range(50) if i != 7]
    assert dispatcher.close(5)


def test_replay_counts_each_event_once_stored_or_dead(
    backend: SQLiteBackend, tmp_path: Path
) -> None:
    """A spooled batch the backend refuses in part at replay: what the split stores counts as
    replayed (not also as written), what it buries counts dead (not also replayed): the
    figures `logkit spool replay` prints."""
    store = Picky(backend.store(Role.TIMELINE), set(range(100)), logkit.SinkUnavailable)
    config = DispatchConfig(
        batch_size=50, flush_interval_s=0.01, retry_attempts=1, replay_interval_s=0.01
    )
    dispatcher = Dispatcher("t#timeline", store, Spool(tmp_path / "spool.db"), config)
    for i in range(50):
        dispatcher.submit(Event(**SCOPE, event_type="message", payload={"n": i}))
    assert dispatcher.flush(10)
    assert dispatcher.spool.count("t#timeline") == 50 and dispatcher.stats.written == 0
    store.bad, store.error = {12}, ValueError  # back, but it refuses one event
    assert dispatcher.flush(10)
    assert stored_numbers(store.inner) == [i for i in range(50) if i != 12]
    assert (dispatcher.stats.replayed, dispatcher.stats.dead, dispatcher.stats.written) == (
        49,
        1,
        0,
    )
    assert dispatcher.close(5)
