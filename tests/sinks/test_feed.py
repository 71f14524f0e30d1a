"""The Feed contract (the live stream's durable cursor), over every store that offers it.

Firestore and BigQuery do not number what they store, and say so by not being a Feed; the
stream refuses them (tests/logs/test_stream_replay.py covers the server side).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from logkit.envelope import Event
from logkit.sinks.protocols import Feed, Role, Selector
from tests.sinks.backends import discard, make_backend

FEED_KINDS = ("sqlite", "memory")
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def event(i: int, tenant: str = "t_a", run: str = "run_1", kind: str = "message") -> Event:
    return Event(
        tenant_id=tenant,
        env="dev",
        project_id="p",
        surface_id="s",
        app_id="a",
        run_id=run,
        event_id=f"e{i:04d}",
        # out of time order on purpose: the feed's order is the order of storing
        ts=T0 - dt.timedelta(seconds=i),
        event_type=kind,
        payload={"i": i},
    )


@pytest.fixture(params=FEED_KINDS)
def feed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Feed]:
    backend = make_backend(request.param, tmp_path)
    store = backend.store(Role.TIMELINE)
    assert isinstance(store, Feed)
    yield store
    discard(backend)


def test_positions_follow_the_order_of_storing_and_never_repeat(feed: Feed) -> None:
    assert feed.feed_bounds("t_a") == (1, 0)  # empty: oldest is newest + 1
    feed.write([event(0), event(1)])  # type: ignore[attr-defined]
    feed.write([event(2), event(1)])  # type: ignore[attr-defined]  # e0001 again: stored once
    rows, scanned = feed.feed_after("t_a", 0)
    assert [r.body.count('"e000') for r in rows] == [1, 1, 1]
    # a tenant's positions are 1, 2, 3...: a duplicate takes no number
    assert [r.position for r in rows] == [1, 2, 3]
    assert ['"i":0' in rows[0].body, '"i":1' in rows[1].body, '"i":2' in rows[2].body] == [True] * 3
    assert scanned == feed.feed_bounds("t_a")[1] == 3


def test_each_tenant_has_its_own_positions(feed: Feed) -> None:
    """Another tenant's volume moves none of a tenant's positions or bounds."""
    feed.write([event(0)])  # type: ignore[attr-defined]
    feed.write([event(i, tenant="t_b") for i in range(1, 50)])  # type: ignore[attr-defined]
    feed.write([event(50), event(51, tenant="t_b"), event(52)])  # type: ignore[attr-defined]
    rows, scanned = feed.feed_after("t_a", 0)
    assert [r.position for r in rows] == [1, 2, 3] and scanned == 3
    assert {r.tenant_id for r in rows} == {"t_a"}
    assert feed.feed_bounds("t_a") == (1, 3)
    assert feed.feed_bounds("t_b") == (1, 50)
    assert feed.feed_bounds("t_nobody") == (1, 0)
    feed.delete(Selector("t_b"))  # type: ignore[attr-defined]
    assert feed.feed_bounds("t_a") == (1, 3)  # another tenant's erasure says nothing here
    assert feed.feed_after("t_a", 3) == ([], 3)


def test_filters_and_the_scanned_position(feed: Feed) -> None:
    feed.write(  # type: ignore[attr-defined]
        [event(0), event(1, tenant="t_b"), event(2, run="run_2"), event(3, kind="error")]
    )
    rows, scanned = feed.feed_after("t_a", 0, run_id="run_1")
    assert [r.tenant_id for r in rows] == ["t_a", "t_a"]
    assert scanned == feed.feed_bounds("t_a")[1] == 3  # all looked at, even what was skipped
    rows, _ = feed.feed_after("t_a", 0, event_types=("error",))
    assert len(rows) == 1 and '"error"' in rows[0].body
    rows, scanned = feed.feed_after("t_a", 0, limit=2)  # a full page: resume after its last row
    assert len(rows) == 2 and scanned == rows[-1].position
    newest = feed.feed_bounds("t_a")[1]
    assert feed.feed_after("t_a", newest) == ([], newest)


def test_bounds_after_deletes_and_a_stable_identity(feed: Feed) -> None:
    feed.write([event(i) for i in range(5)])  # type: ignore[attr-defined]
    identity = feed.feed_id()
    removed = feed.delete(Selector("t_a", event_ids=("e0000", "e0001")))  # type: ignore[attr-defined]
    assert removed == 2
    assert feed.feed_bounds("t_a") == (3, 5)
    feed.delete(Selector("t_a"))  # type: ignore[attr-defined]
    assert feed.feed_bounds("t_a") == (6, 5)  # positions are never reused
    feed.write([event(9)])  # type: ignore[attr-defined]
    assert feed.feed_after("t_a", 5)[0][0].position == 6
    assert feed.feed_id() == identity


def test_a_replayed_batch_numbers_only_the_new_events(feed: Feed) -> None:
    """A spool replay re-sends events already stored: they keep their positions, and the new
    ones of the same batch follow without a gap."""
    feed.write([event(0), event(1)])  # type: ignore[attr-defined]
    feed.write([event(1), event(2), event(0), event(3, tenant="t_b"), event(4)])  # type: ignore[attr-defined]
    rows, _ = feed.feed_after("t_a", 0)
    assert [(r.position, r.body.split('"event_id":"')[1][:5]) for r in rows] == [
        (1, "e0000"),
        (2, "e0001"),
        (3, "e0002"),
        (4, "e0004"),
    ]
    assert feed.feed_bounds("t_b") == (1, 1)


def test_a_batch_stored_before_takes_no_positions(feed: Feed) -> None:
    feed.write([event(0), event(1)])  # type: ignore[attr-defined]
    feed.write([event(1), event(0)])  # type: ignore[attr-defined]  # all of it a replay
    feed.write([])  # type: ignore[attr-defined]
    assert feed.feed_bounds("t_a") == (1, 2)
    feed.write([event(2)])  # type: ignore[attr-defined]
    assert [r.position for r in feed.feed_after("t_a", 0)[0]] == [1, 2, 3]
