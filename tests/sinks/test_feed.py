"""The Feed contract (the live stream's durable cursor), over every feed: the stores that number
what they store (SQLite, memory) and the live feed on Redis Streams (a real redis-server).

Positions grow in the order of storing and are never reused; SQLite and memory number them
1, 2, 3... while Redis's grow with its clock (with gaps). Firestore and BigQuery do not number
what they store, and say so by not being a Feed; with a Redis feed the stream serves them
(tests/logs/test_stream_redis.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logkit.config import StreamConfig
from logkit.envelope import Event
from logkit.errors import SinkUnavailable
from logkit.sinks import cursor
from logkit.sinks.protocols import ROW_GAP, Feed, LiveFeed, Role, Selector
from logkit.sinks.redis import RedisFeed
from tests import services
from tests.servers import free_port
from tests.sinks.backends import discard, make_backend
from tests.streams import wait_for

FEED_KINDS = ("sqlite", "memory", "redis")
CONTIGUOUS = ("sqlite", "memory")
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def event(
    i: int, tenant: str = "t_a", run: str = "run_1", kind: str = "message", **fields: Any
) -> Event:
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
        **fields,
    )


def redis_feed(config: StreamConfig | None = None) -> RedisFeed:
    """A feed under a prefix of its own on the shared redis-server (no test sees another's)."""
    url = services.require("REDIS_URL")
    return RedisFeed.from_uri(f"{url}?prefix=lkt{uuid.uuid4().hex[:10]}", config)


@pytest.fixture(params=FEED_KINDS)
def feed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "redis":
        live = redis_feed()
        yield live
        live.close()
        return
    backend = make_backend(request.param, tmp_path)
    store = backend.store(Role.TIMELINE)
    assert isinstance(store, Feed)
    yield store
    discard(backend)


def ids(rows: list[Any]) -> list[str]:
    return [r.body.split('"event_id":"')[1][:5] for r in rows]


def contiguous(feed: Any) -> bool:
    return not isinstance(feed, LiveFeed)


def test_positions_follow_the_order_of_storing_and_never_repeat(feed: Any) -> None:
    assert feed.feed_bounds("t_a") == (1, 0)  # empty: oldest is newest + 1
    feed.write([event(0), event(1)])
    feed.write([event(2), event(1)])  # e0001 again: stored once
    rows, scanned = feed.feed_after("t_a", 0)
    assert ids(rows) == ["e0000", "e0001", "e0002"]
    positions = [r.position for r in rows]
    assert positions == sorted(set(positions))  # strictly growing
    if contiguous(feed):
        assert positions == [1, 2, 3]  # a duplicate takes no number
    assert scanned == feed.feed_bounds("t_a")[1] == positions[-1]
    assert feed.feed_bounds("t_a") == (positions[0], positions[-1])


def test_each_tenant_has_its_own_positions(feed: Any) -> None:
    """Another tenant's volume moves none of a tenant's positions or bounds."""
    feed.write([event(0)])
    feed.write([event(i, tenant="t_b") for i in range(1, 50)])
    feed.write([event(50), event(51, tenant="t_b"), event(52)])
    rows, scanned = feed.feed_after("t_a", 0)
    assert ids(rows) == ["e0000", "e0050", "e0052"] and scanned == rows[-1].position
    assert {r.tenant_id for r in rows} == {"t_a"}
    assert feed.feed_bounds("t_a") == (rows[0].position, rows[-1].position)
    b_rows, _ = feed.feed_after("t_b", 0)
    assert len(b_rows) == 50 and feed.feed_bounds("t_b") == (
        b_rows[0].position,
        b_rows[-1].position,
    )
    if contiguous(feed):
        assert [r.position for r in rows] == [1, 2, 3] and feed.feed_bounds("t_b") == (1, 50)
    assert feed.feed_bounds("t_nobody") == (1, 0)
    feed.delete(Selector("t_b"))
    assert feed.feed_bounds("t_a") == (rows[0].position, rows[-1].position)  # t_b's erasure
    assert feed.feed_after("t_a", rows[-1].position) == ([], rows[-1].position)


def test_filters_and_the_scanned_position(feed: Any) -> None:
    feed.write([event(0), event(1, tenant="t_b"), event(2, run="run_2"), event(3, kind="error")])
    newest = feed.feed_bounds("t_a")[1]
    rows, scanned = feed.feed_after("t_a", 0, run_id="run_1")
    assert [r.tenant_id for r in rows] == ["t_a", "t_a"]
    assert scanned == newest  # all looked at, even what was skipped
    rows, _ = feed.feed_after("t_a", 0, event_types=("error",))
    assert len(rows) == 1 and '"error"' in rows[0].body
    rows, scanned = feed.feed_after("t_a", 0, limit=2)  # a full page: resume after its last row
    assert len(rows) == 2 and scanned == rows[-1].position
    assert feed.feed_after("t_a", newest) == ([], newest)


def test_bounds_after_deletes_and_a_stable_identity(feed: Any) -> None:
    feed.write([event(i) for i in range(5)])
    identity = feed.feed_id()
    positions = [r.position for r in feed.feed_after("t_a", 0)[0]]
    removed = feed.delete(Selector("t_a", event_ids=("e0000", "e0001")))
    assert removed == 2
    assert feed.feed_bounds("t_a") == (positions[2], positions[4])
    feed.delete(Selector("t_a"))
    assert feed.feed_bounds("t_a") == (positions[4] + 1, positions[4])  # never reused
    feed.write([event(9)])
    assert feed.feed_after("t_a", positions[4])[0][0].position > positions[4]
    assert feed.feed_id() == identity


def test_a_replayed_batch_numbers_only_the_new_events(feed: Any) -> None:
    """A re-sent batch: the events already there keep their positions, the new ones follow."""
    feed.write([event(0), event(1)])
    feed.write([event(1), event(2), event(0), event(3, tenant="t_b"), event(4)])
    rows, _ = feed.feed_after("t_a", 0)
    assert ids(rows) == ["e0000", "e0001", "e0002", "e0004"]
    if contiguous(feed):
        assert [r.position for r in rows] == [1, 2, 3, 4]
    assert len(feed.feed_after("t_b", 0)[0]) == 1


def test_a_batch_stored_before_takes_no_positions(feed: Any) -> None:
    feed.write([event(0), event(1)])
    bounds = feed.feed_bounds("t_a")
    feed.write([event(1), event(0)])  # all of it a replay
    feed.write([])
    assert feed.feed_bounds("t_a") == bounds
    feed.write([event(2)])
    assert ids(feed.feed_after("t_a", 0)[0]) == ["e0000", "e0001", "e0002"]


# --- the live feed on Redis: what only it does ------------------------------------------------


@pytest.fixture
def live() -> Iterator[RedisFeed]:
    feed = redis_feed()
    yield feed
    feed.close()


def test_rows_carry_the_store_hint_of_their_event(live: RedisFeed) -> None:
    e = event(7)
    live.append([e])
    (row,), _ = live.feed_after("t_a", 0)
    assert row.hint == cursor.encode(e)
    assert cursor.decode(row.hint) == (cursor.to_micros(e.ts), e.event_id)
    assert live.feed_positions("t_a", ["e0007", "e9999"]) == {"e0007": row.position}


def test_stream_class_events_are_live_only_and_gaps_are_marked(live: RedisFeed) -> None:
    live.append([event(0), event(1, storage_class="stream", kind="state_pulse")])
    live.append([event(2)], gaps={"t_a": (3, 1_700_000_000_000_000)})
    rows, _ = live.feed_after("t_a", 0)  # replay: no gesture, the gap where it was
    assert [(r.kind, r.body if r.kind == ROW_GAP else ids([r])[0]) for r in rows] == [
        ("event", "e0000"),
        (ROW_GAP, '{"dropped":3,"since_us":1700000000000000}'),
        ("event", "e0002"),
    ]
    tail = live.tail()
    try:
        pages = tail.wait({"t_a": 0}, limit=100, timeout_s=1)
    finally:
        tail.close()
    assert [r.kind for r in pages["t_a"]] == ["event", "ephemeral", "gap", "event"]


def test_positions_from_several_writers_share_one_clock(live: RedisFeed) -> None:
    other = RedisFeed.from_uri(f"{live.url}?prefix={live.prefix}")
    try:
        for i in range(0, 40, 2):
            live.append([event(i)])
            other.append([event(i + 1)])
        other.append([event(i) for i in range(100, 2100)])  # > 1024 in one millisecond
    finally:
        other.close()
    rows, _ = live.feed_after("t_a", 0, limit=5000)
    positions = [r.position for r in rows]
    assert len(rows) == 2040 and positions == sorted(set(positions))
    assert ids(rows)[:4] == ["e0000", "e0001", "e0002", "e0003"]


def test_trimming_by_length_and_age_moves_the_oldest_position() -> None:
    feed = redis_feed(StreamConfig(feed_maxlen=50))
    try:
        feed.append([event(i) for i in range(400)])
        oldest, newest = feed.feed_bounds("t_a")
        rows, _ = feed.feed_after("t_a", 0, limit=1000)
        assert 50 <= len(rows) < 400  # approximate: whole nodes go
        assert rows[0].position == oldest and rows[-1].position == newest
        # the id index follows the stream: a trimmed event is no longer "held"
        assert feed.feed_positions("t_a", ["e0000"]) == {}
    finally:
        feed.close()
    aged = redis_feed(StreamConfig(feed_max_age_s=0.002))
    try:
        aged.append([event(i) for i in range(300)])
        newest_ms = aged.feed_bounds("t_a")[1] // 1024
        wait_for(lambda: redis_ms(aged) > newest_ms + 5, what="the redis clock to move on")
        aged.append([event(500)])  # everything before is older than 2 ms now
        assert aged.feed_positions("t_a", ["e0000", "e0150"]) == {}
        assert list(aged.feed_positions("t_a", ["e0500"])) == ["e0500"]
    finally:
        aged.close()


def redis_ms(feed: RedisFeed) -> int:
    seconds, micros = feed.client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def test_an_unreachable_redis_is_sink_unavailable_within_the_timeout() -> None:
    feed = RedisFeed.from_uri(
        f"redis://127.0.0.1:{free_port()}/0", StreamConfig(feed_timeout_s=0.5)
    )
    try:
        with pytest.raises(SinkUnavailable, match="redis is unreachable"):
            feed.append([event(0)])
        with pytest.raises(SinkUnavailable):
            feed.feed_bounds("t_a")
    finally:
        feed.close()
