"""The hub and subscription logic against a reference model (no network: hypothesis drives it).

Whatever the events, the filter, the cursor, the moment the subscriber joins and the size of
its live buffer, a subscription delivers exactly the stored events its principal and filter
admit, after its cursor, each once, in position order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logkit.config import StreamConfig
from logkit.envelope import Event, Severity
from logkit.sinks.memory import MemoryStore
from logkit.stream.filters import Principal, StreamFilter
from logkit.stream.hub import Delivery, Hub, Reset
from tests.sinks.test_feed import redis_feed

TENANTS = ("t_a", "t_b")
PROJECTS = ("p_1", "p_2")
RUNS = ("run_1", "run_2")
STEPS = ("s_1", "s_2", None)
TYPES = ("message", "error", "step_started")


def make_event(i: int, spec: tuple[str, str, str, str | None, str, Severity]) -> Event:
    tenant, project, run, step, event_type, severity = spec
    return Event(
        tenant_id=tenant,
        env="dev",
        project_id=project,
        surface_id="chat",
        app_id="app",
        run_id=run,
        step_id=step,
        event_id=f"e{i:05d}",
        ts=dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i),
        event_type=event_type,
        severity=severity,
        payload={"i": i},
    )


specs = st.tuples(
    st.sampled_from(TENANTS),
    st.sampled_from(PROJECTS),
    st.sampled_from(RUNS),
    st.sampled_from(STEPS),
    st.sampled_from(TYPES),
    st.sampled_from(list(Severity)),
)
filters = st.builds(
    StreamFilter,
    run_id=st.sampled_from((None, *RUNS)),
    types=st.sampled_from((None, ("message",), ("error", "step_started"))),
    min_severity=st.sampled_from((None, Severity.WARNING, Severity.ERROR)),
    step_id=st.sampled_from((None, "s_1", "s_2")),
)
principals = st.builds(
    Principal, tenant_id=st.sampled_from(TENANTS), project_id=st.sampled_from((None, *PROJECTS))
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.lists(specs, max_size=40),
    during=st.lists(specs, max_size=40),
    stream_filter=filters,
    principal=principals,
    cursor_at=st.integers(min_value=0, max_value=40),
    buffer_events=st.integers(min_value=1, max_value=8),
    page_size=st.integers(min_value=1, max_value=7),
)
def test_a_subscription_delivers_exactly_what_it_admits_once_in_order(
    before: list[Any],
    during: list[Any],
    stream_filter: StreamFilter,
    principal: Principal,
    cursor_at: int,
    buffer_events: int,
    page_size: int,
) -> None:
    store = MemoryStore()
    # A last event every subscriber admits: once it arrives, everything before it has.
    sentinel = (
        principal.tenant_id,
        principal.project_id or "p_1",
        stream_filter.run_id or "run_1",
        stream_filter.step_id,
        (stream_filter.types or ("message",))[0],
        Severity.CRITICAL,
    )
    during = [*during, sentinel]
    events = [make_event(i, spec) for i, spec in enumerate(before + during)]
    store.write(events[: len(before)])
    # Positions are the tenant's own: 1, 2, 3... over its events in the order of storing.
    mine = [e for e in events if e.tenant_id == principal.tenant_id]
    stored_before = sum(e.tenant_id == principal.tenant_id for e in events[: len(before)])
    cursor_at = min(cursor_at, stored_before)
    cursor = f"{store.feed_id()}-{cursor_at}" if cursor_at else None

    def admitted(event: Event, position: int) -> bool:
        fields = event.model_dump(mode="json")
        return position > cursor_at and stream_filter.admits(fields, principal)

    expected = [e.event_id for pos, e in enumerate(mine, 1) if admitted(e, pos)]
    live = events[len(before) :]
    got = asyncio.run(
        _subscribe(store, live, stream_filter, principal, cursor, buffer_events, page_size)
    )
    assert got == expected


async def _subscribe(
    store: MemoryStore,
    live: list[Event],
    stream_filter: StreamFilter,
    principal: Principal,
    cursor: str | None,
    buffer_events: int,
    page_size: int,
) -> list[str]:
    config = StreamConfig(page_size=page_size, buffer_events=buffer_events, poll_min_s=0.001)
    hub = Hub(store, config)
    await hub.start()
    got: list[str] = []
    subscription = hub.subscribe(principal, stream_filter, cursor, "start")

    async def consume() -> None:
        async for batch in subscription.batches():
            assert not isinstance(batch, Reset)
            got.extend(_event_id(d) for d in batch)
            if got and got[-1] == live[-1].event_id:
                return

    async def write_live() -> None:
        for event in live:  # one by one, waking the hub: bursts overflow small buffers
            store.write([event])
            hub.wake()
            await asyncio.sleep(0)

    try:
        consumer = asyncio.create_task(consume())
        await write_live()
        await asyncio.wait_for(consumer, timeout=10)
        assert len(subscription._live) <= buffer_events  # memory stayed bounded
    finally:
        await hub.stop()
    return got


def _event_id(delivery: Delivery) -> str:
    return delivery.body.split('"event_id":"', 1)[1].split('"', 1)[0]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.lists(specs, max_size=30),
    during=st.lists(specs, max_size=30),
    stream_filter=filters,
    principal=principals,
    cursor_at=st.integers(min_value=0, max_value=30),
    buffer_events=st.integers(min_value=1, max_value=8),
    page_size=st.integers(min_value=1, max_value=7),
)
def test_the_same_over_the_redis_feed_tailed_by_xread(
    before: list[Any],
    during: list[Any],
    stream_filter: StreamFilter,
    principal: Principal,
    cursor_at: int,
    buffer_events: int,
    page_size: int,
) -> None:
    """The same model over the live feed on Redis: catch-up by XRANGE, live rows by one
    blocking XREAD over the followed tenants, positions from the Redis clock (with gaps)."""
    feed = redis_feed()
    try:
        sentinel = (
            principal.tenant_id,
            principal.project_id or "p_1",
            stream_filter.run_id or "run_1",
            stream_filter.step_id,
            (stream_filter.types or ("message",))[0],
            Severity.CRITICAL,
        )
        during = [*during, sentinel]
        events = [make_event(i, spec) for i, spec in enumerate(before + during)]
        feed.append(events[: len(before)])
        positions = [r.position for r in feed.feed_after(principal.tenant_id, 0, limit=100)[0]]
        cursor_at = min(cursor_at, len(positions))
        cursor = f"{feed.feed_id()}-{positions[cursor_at - 1]}" if cursor_at else None
        mine = [e for e in events if e.tenant_id == principal.tenant_id]
        expected = [
            e.event_id
            for index, e in enumerate(mine, 1)
            if index > cursor_at and stream_filter.admits(e.model_dump(mode="json"), principal)
        ]
        got = asyncio.run(
            _subscribe_live(
                feed,
                events[len(before) :],
                stream_filter,
                principal,
                cursor,
                buffer_events,
                page_size,
            )
        )
        assert got == expected
    finally:
        feed.close()


async def _subscribe_live(
    feed: Any,
    live: list[Event],
    stream_filter: StreamFilter,
    principal: Principal,
    cursor: str | None,
    buffer_events: int,
    page_size: int,
) -> list[str]:
    config = StreamConfig(page_size=page_size, buffer_events=buffer_events, feed_block_s=1)
    hub = Hub(feed, config)
    await hub.start()
    got: list[str] = []
    subscription = hub.subscribe(principal, stream_filter, cursor, "start")

    async def consume() -> None:
        async for batch in subscription.batches():
            assert not isinstance(batch, Reset)
            got.extend(_event_id(d) for d in batch)
            if got and got[-1] == live[-1].event_id:
                return

    try:
        consumer = asyncio.create_task(consume())
        for event in live:  # one by one: bursts overflow small buffers
            await asyncio.to_thread(feed.append, [event])
        await asyncio.wait_for(consumer, timeout=20)
        assert len(subscription._live) <= buffer_events  # memory stayed bounded
    finally:
        await hub.stop()
    return got
