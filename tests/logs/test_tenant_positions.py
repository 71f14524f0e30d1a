"""Per-tenant stream positions: a tenant's ids and reset decisions reveal nothing global.

Was: positions were global across tenants, so a tenant's own event ids showed how much every
other tenant wrote, and whether a forged cursor got a reset showed the newest global position.
Now each tenant has its own position space (1, 2, 3, ...), and every decision a subscriber can
observe is made on its tenant's feed alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logkit.config import StreamConfig
from logkit.envelope import Event
from logkit.sinks.protocols import Feed, Role, Selector
from logkit.sinks.registry import open_backend
from logkit.stream.cursor import parse_cursor
from logkit.stream.filters import Principal, StreamFilter
from logkit.stream.hub import Hub, Reset
from tests.sinks.backends import discard, make_backend

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
A = Principal("t_a")


def event(i: int, tenant: str) -> Event:
    return Event(
        tenant_id=tenant,
        env="dev",
        project_id="p",
        surface_id="s",
        app_id="app",
        run_id="run_1",
        event_id=f"{tenant}-{i:04d}",
        ts=T0 + dt.timedelta(seconds=i),
        event_type="message",
        payload={"i": i},
    )


@pytest.fixture(params=["sqlite", "memory"])
def feed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    backend = make_backend(request.param, tmp_path)
    store = backend.store(Role.TIMELINE)
    assert isinstance(store, Feed)
    yield store
    discard(backend)


async def _view(
    feed: Any, principal: Principal, cursor: str | None
) -> tuple[str | None, list[int]]:
    """What a subscriber observes when it connects: a reset (reason) and the catch-up ids."""
    hub = Hub(feed, StreamConfig(page_size=7))
    await hub.start()
    try:
        subscription = hub.subscribe(principal, StreamFilter(), cursor, "start")
        await subscription.open()
        reset = subscription._reset
        positions = [
            d.cursor.position  # type: ignore[union-attr]
            for batch in [b async for b in subscription._catch_up()]
            for d in batch
        ]
        subscription.close()
    finally:
        await hub.stop()
    return (reset.reason if isinstance(reset, Reset) else None), positions


def view(
    feed: Any, cursor: int | str | None, principal: Principal = A
) -> tuple[str | None, list[int]]:
    text = f"{feed.feed_id()}-{cursor}" if isinstance(cursor, int) else cursor
    return asyncio.run(_view(feed, principal, text))


def test_a_tenants_ids_are_its_own_whatever_others_write(feed: Any) -> None:
    feed.write([event(0, "t_a")])
    feed.write([event(i, "t_b") for i in range(100)])
    feed.write([event(1, "t_a"), event(100, "t_b"), event(2, "t_a")])
    assert view(feed, None) == (None, [1, 2, 3])
    assert view(feed, None, Principal("t_b")) == (None, list(range(1, 102)))


def test_reset_decisions_depend_on_the_tenants_feed_only(feed: Any) -> None:
    """The same cursors get the same answers before and after another tenant writes 500
    events and has them erased: a forged cursor probes nothing global."""
    feed.write([event(i, "t_a") for i in range(4)])
    cursors: list[int | str | None] = [None, 0, 2, 4, 5, 50, 400, "garbage"]
    before = [view(feed, c) for c in cursors]
    assert before[4] == ("unknown_cursor", [1, 2, 3, 4])  # just past t_a's newest
    feed.write([event(i, "t_b") for i in range(500)])
    during = [view(feed, c) for c in cursors]
    feed.delete(Selector("t_b"))
    after = [view(feed, c) for c in cursors]
    assert before == during == after


def test_expiry_is_decided_on_the_tenants_own_oldest_event(feed: Any) -> None:
    feed.write([event(i, "t_b") for i in range(10)])
    feed.write([event(i, "t_a") for i in range(4)])
    feed.delete(Selector("t_b"))  # another tenant's retention: nothing of t_a expired
    assert view(feed, 0) == (None, [1, 2, 3, 4])
    feed.delete(Selector("t_a", event_ids=("t_a-0000", "t_a-0001")))
    assert view(feed, 0) == ("expired_cursor", [3, 4])
    assert view(feed, 2) == (None, [3, 4])


def test_a_cursor_of_another_tenant_reads_only_the_readers_events(feed: Any) -> None:
    feed.write([event(i, "t_a") for i in range(3)] + [event(i, "t_b") for i in range(9)])
    reason, positions = view(feed, 1)  # t_b's cursor "1" presented by t_a: t_a's space
    assert reason is None and positions == [2, 3]


# --- an older SQLite database (global positions only) -----------------------------------------

OLD_TABLE = """
CREATE TABLE timeline_events (
    pos INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, tenant_id TEXT NOT NULL,
    run_id TEXT, user_id TEXT, event_type TEXT NOT NULL, ts_us INTEGER NOT NULL,
    body TEXT NOT NULL, UNIQUE (tenant_id, event_id)
);
CREATE TABLE logkit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO logkit_meta VALUES ('database_id', 'olddb');
"""


def test_an_older_database_gets_per_tenant_positions_in_store_order(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_TABLE)
        for i, tenant in enumerate(["t_a", "t_b", "t_b", "t_a", "t_b", "t_a"]):
            e = event(i, tenant)
            conn.execute(
                "INSERT INTO timeline_events (event_id, tenant_id, run_id, user_id, event_type,"
                " ts_us, body) VALUES (?, ?, ?, NULL, ?, 0, ?)",
                (e.event_id, tenant, e.run_id, "message", e.to_json()),
            )
        conn.execute("DELETE FROM timeline_events WHERE event_id = 't_b-0004'")
    backend = open_backend(f"sqlite:///{path}")
    try:
        store: Any = backend.store(Role.TIMELINE)
        assert backend.check_schema() == []
        rows, _ = store.feed_after("t_a", 0)
        assert [(r.position, r.body.count("t_a-0000")) for r in rows] == [(1, 1), (2, 0), (3, 0)]
        assert store.feed_bounds("t_b") == (1, 2)  # numbered from what was still stored
        store.write([event(9, "t_b")])
        assert store.feed_bounds("t_b") == (1, 3)
        # A cursor handed out under the global numbering (its feed id as it was derived then)
        # reads as unknown: it is never resumed at whatever a tenant has at that number.
        old_feed = hashlib.sha256(b"olddb/timeline_events").hexdigest()[:12]
        assert old_feed != store.feed_id() and parse_cursor(f"{old_feed}-3") is not None
        assert view(store, f"{old_feed}-3") == ("unknown_cursor", [1, 2, 3])
    finally:
        backend.close()
