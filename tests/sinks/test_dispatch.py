"""The dispatcher: batching, retry, durable spool on outage, ordered replay, flush, no loss."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from logkit import Event, SinkUnavailable, SinkWriteError
from logkit.config import DispatchConfig
from logkit.dispatch import Dispatcher
from logkit.sinks.protocols import EventStore, Page, Query, Role, Selector
from logkit.sinks.sqlite import SQLiteBackend
from logkit.spool import Spool
from tests.conftest import SCOPE
from tests.sinks.backends import stored_numbers


class Flaky:
    """A real SQLite store with a switch: while ``down`` every call is SinkUnavailable."""

    def __init__(self, inner: EventStore) -> None:
        self.inner = inner
        self.down = False
        self.writes: list[list[str]] = []
        self.reject: set[int] = set()  # payload["n"] values the backend refuses outright
        self.gate: threading.Event | None = None  # when set, writes wait on it

    def write(self, events: Sequence[Event]) -> None:
        if self.gate is not None:
            self.gate.wait(30)
        if self.down:
            raise SinkUnavailable("backend unreachable (test switch)")
        if any(e.payload.get("n") in self.reject for e in events):
            raise SinkWriteError("backend rejected the batch (test)")
        self.inner.write(events)
        self.writes.append([e.event_id for e in events])

    def query(self, query: Query) -> Page:
        return self.inner.query(query)

    def delete(self, selector: Selector) -> int:
        return self.inner.delete(selector)


@pytest.fixture
def sqlite_backend(tmp_path: Path) -> Iterator[SQLiteBackend]:
    backend = SQLiteBackend(tmp_path / "store.db")
    yield backend
    backend.close()


@pytest.fixture
def flaky(sqlite_backend: SQLiteBackend) -> Flaky:
    return Flaky(sqlite_backend.store(Role.TIMELINE))


def config(**overrides: Any) -> DispatchConfig:
    base: dict[str, Any] = {
        "batch_size": 50,
        "flush_interval_s": 0.05,
        "retry_attempts": 2,
        "retry_initial_s": 0.001,
        "retry_max_s": 0.002,
        "replay_interval_s": 0.01,
    }
    return DispatchConfig(**{**base, **overrides})


def make(flaky: Flaky, tmp_path: Path, **overrides: Any) -> Dispatcher:
    return Dispatcher("test#timeline", flaky, Spool(tmp_path / "spool.db"), config(**overrides))


def ev(n: int) -> Event:
    return Event(**SCOPE, event_type="message", payload={"n": n})


def test_batches_reach_the_store(flaky: Flaky, tmp_path: Path) -> None:
    dispatcher = make(flaky, tmp_path)
    for i in range(230):
        dispatcher.submit(ev(i))
    assert dispatcher.flush(10)
    assert stored_numbers(flaky.inner) == list(range(230))
    assert all(len(batch) <= 50 for batch in flaky.writes)
    assert dispatcher.stats.written == 230 and dispatcher.pending() == 0
    dispatcher.close(10)


def test_outage_mid_stream_loses_nothing_and_replays_in_order(flaky: Flaky, tmp_path: Path) -> None:
    dispatcher = make(flaky, tmp_path)
    events = [ev(i) for i in range(600)]
    for event in events[:200]:
        dispatcher.submit(event)
    assert dispatcher.flush(10)
    flaky.down = True
    for event in events[200:450]:
        dispatcher.submit(event)
    assert dispatcher.flush(10)
    assert dispatcher.stats.spooled == 250 and dispatcher.pending() == 250
    for event in events[450:]:  # still down: these queue behind the spooled ones
        dispatcher.submit(event)
    assert dispatcher.flush(10)
    flaky.down = False
    assert dispatcher.flush(10)
    assert stored_numbers(flaky.inner) == list(range(600))
    written_order = [event_id for batch in flaky.writes for event_id in batch]
    assert written_order == [e.event_id for e in events]  # replayed oldest first, then the rest
    assert dispatcher.pending() == 0 and dispatcher.stats.replayed == 400
    dispatcher.close(10)


def test_spool_survives_a_restart(flaky: Flaky, tmp_path: Path) -> None:
    first = make(flaky, tmp_path)
    flaky.down = True
    for i in range(120):
        first.submit(ev(i))
    assert first.close(10)
    assert stored_numbers(flaky.inner) == []
    flaky.down = False
    second = make(flaky, tmp_path)  # a new process finds the spool and replays it
    assert second.flush(10)
    assert stored_numbers(flaky.inner) == list(range(120))
    second.close(10)


def test_rejected_events_are_kept_in_the_dead_letter_table(flaky: Flaky, tmp_path: Path) -> None:
    dispatcher = make(flaky, tmp_path)
    flaky.reject = {3, 7}
    for i in range(20):
        dispatcher.submit(ev(i))
    assert dispatcher.flush(10)
    assert stored_numbers(flaky.inner) == [i for i in range(20) if i not in (3, 7)]
    assert dispatcher.stats.dead == 2 and dispatcher.spool.dead_count() == 2
    dispatcher.close(10)


def test_a_full_queue_spools_instead_of_dropping_or_blocking(flaky: Flaky, tmp_path: Path) -> None:
    flaky.gate = threading.Event()  # the backend hangs: the worker is stuck in write()
    dispatcher = make(flaky, tmp_path, queue_size=10, batch_size=5, max_block_s=0.001)
    for i in range(100):
        dispatcher.submit(ev(i))
    assert dispatcher.spool.count("test#timeline") > 0  # callers spooled the overflow
    flaky.gate.set()
    assert dispatcher.flush(10)
    assert dispatcher.flush(10)  # the replay of what callers spooled
    assert stored_numbers(flaky.inner) == list(range(100))
    dispatcher.close(10)


def test_the_same_event_twice_is_stored_once(flaky: Flaky, tmp_path: Path) -> None:
    dispatcher = make(flaky, tmp_path)
    event = ev(1)
    dispatcher.submit(event)
    dispatcher.submit(event)
    assert dispatcher.flush(10)
    dispatcher.submit(event)
    assert dispatcher.flush(10)
    assert stored_numbers(flaky.inner) == [1]
    dispatcher.close(10)


def test_flush_with_nothing_queued_returns_at_once(flaky: Flaky, tmp_path: Path) -> None:
    dispatcher = make(flaky, tmp_path)
    assert dispatcher.flush(5) and dispatcher.close(5)


def test_concurrent_submitters(flaky: Flaky, tmp_path: Path) -> None:
    dispatcher = make(flaky, tmp_path)

    def produce(base: int) -> None:
        for i in range(250):
            dispatcher.submit(ev(base + i))

    threads = [threading.Thread(target=produce, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert dispatcher.flush(10)
    assert stored_numbers(flaky.inner) == sorted(k * 1000 + i for k in range(4) for i in range(250))
    dispatcher.close(10)
