"""The hub tails the durable feed once per server and fans new rows out to subscriptions.

Positions are per tenant (:class:`~logkit.sinks.protocols.Feed`): the hub keeps one head per
tenant that has subscribers, reads each such tenant's new rows once per poll and offers them to
that tenant's subscriptions. A subscription first catches up from the store (from its cursor to
its tenant's newest position), then takes live rows from the hub. Rows are deduplicated by
position, a total order within a tenant, so the hand-over between the two never loses or
repeats an event. A subscription's live buffer is
bounded: when it fills (a burst, or a reader slower than the writers), the buffer is dropped and
the subscription catches up from the store again. Memory stays bounded and nothing is missed;
a reader that stops reading altogether is disconnected by the transport's send timeout and
resumes from its last event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from logkit.config import StreamConfig
from logkit.envelope import Event, StorageClass
from logkit.sinks.protocols import Feed, FeedRow
from logkit.stream.cursor import Cursor, parse_cursor
from logkit.stream.filters import Principal, StreamFilter

log = logging.getLogger("logkit.stream")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one subscriber: its cursor and its JSON.

    ``cursor`` is None for a ``stream``-class event: live only, never stored, so it has no
    position to resume from (and does not move the subscriber's).
    """

    cursor: Cursor | None
    body: str


@dataclass(frozen=True, slots=True)
class Reset:
    """The requested cursor cannot be honoured; the stream restarts at ``cursor``."""

    reason: str  # "unknown_cursor" | "expired_cursor"
    cursor: Cursor

    def json(self) -> str:
        return orjson.dumps(
            {
                "reason": self.reason,
                "cursor": str(self.cursor),
                "detail": (
                    "events before this cursor were removed (retention or erasure); "
                    "the stream restarts at the oldest event still stored"
                    if self.reason == "expired_cursor"
                    else "this cursor is not from this stream; it restarts at the oldest event"
                ),
            }
        ).decode()


class _Row:
    """A fanned-out row, its JSON parsed at most once for all subscribers."""

    __slots__ = ("_fields", "row")

    def __init__(self, row: FeedRow) -> None:
        self.row = row
        self._fields: dict[str, Any] | None = None

    @property
    def fields(self) -> dict[str, Any]:
        if self._fields is None:
            self._fields = orjson.loads(self.row.body)
        return self._fields


class Hub:
    def __init__(self, feed: Feed, config: StreamConfig) -> None:
        self.feed = feed
        self.page_size = config.page_size
        self.buffer_events = config.buffer_events
        self.poll_min_s = config.poll_min_s
        self.poll_max_s = config.poll_max_s
        self.feed_id = ""
        # Per tenant with subscribers: the newest position fanned out to them.
        self.heads: dict[str, int] = {}
        self.subscriptions: set[Subscription] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.feed_id = await asyncio.to_thread(self.feed.feed_id)
        self._task = asyncio.create_task(self._run(), name="logkit-stream-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def wake(self) -> None:
        """Something was stored: read now rather than at the next poll. Any thread may call."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._wake.set)

    def publish(self, event: Event) -> None:
        """A pipeline output: ``stream``-class events go to live subscribers of this process.

        They are never stored (storage class ``stream``: ephemeral gestures), so they are not
        replayed and carry no cursor. Any thread may call this.
        """
        if event.storage_class is not StorageClass.STREAM or not self.subscriptions:
            return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            row = FeedRow(0, event.tenant_id, event.to_json())
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._fan_out_ephemeral, row)

    def _fan_out_ephemeral(self, row: FeedRow) -> None:
        shared = _Row(row)
        for subscription in list(self.subscriptions):
            subscription.offer(shared, ephemeral=True)

    def subscribe(
        self, principal: Principal, stream_filter: StreamFilter, cursor: str | None, start: str
    ) -> Subscription:
        return Subscription(self, principal, stream_filter, cursor, start)

    async def track(self, tenant_id: str) -> None:
        """Follow ``tenant_id`` from its newest position, unless it is followed already.

        A joining subscription calls this before it catches up: its catch-up then reads at
        least up to the head, and the hub offers it everything after.
        """
        if tenant_id in self.heads:
            return
        _, newest = await asyncio.to_thread(self.feed.feed_bounds, tenant_id)
        self.heads.setdefault(tenant_id, newest)

    async def read(
        self, position: int, principal: Principal, stream_filter: StreamFilter
    ) -> tuple[list[FeedRow], int]:
        return await asyncio.to_thread(
            self.feed.feed_after,
            principal.tenant_id,
            position,
            run_id=stream_filter.run_id,
            event_types=stream_filter.types,
            limit=self.page_size,
        )

    def _read_heads(self, heads: dict[str, int]) -> dict[str, tuple[list[FeedRow], int]]:
        """Each followed tenant's rows after its head (one thread hop for all of them)."""
        return {
            tenant: self.feed.feed_after(tenant, head, limit=self.page_size)
            for tenant, head in heads.items()
        }

    async def _run(self) -> None:
        delay = self.poll_min_s
        while True:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
            # lands as the wait completes, and stop() would then wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            followed = {s.principal.tenant_id for s in self.subscriptions}
            for tenant in [t for t in self.heads if t not in followed]:
                del self.heads[tenant]  # nobody left: a later subscriber starts afresh
            heads = {t: h for t, h in self.heads.items() if t in followed}
            if not heads:
                delay = self.poll_max_s
                continue
            try:
                pages = await asyncio.to_thread(self._read_heads, heads)
            except Exception as exc:  # the store is down: keep serving, keep polling
                log.warning("logkit stream: reading the feed failed: %s", exc)
                delay = self.poll_max_s
                continue
            full = False
            for tenant, (rows, scanned) in pages.items():
                for row in rows:
                    shared = _Row(row)
                    for subscription in list(self.subscriptions):
                        subscription.offer(shared)
                if tenant in self.heads:
                    self.heads[tenant] = max(self.heads[tenant], scanned)
                full = full or len(rows) == self.page_size
            if full:
                delay = 0.0  # more is waiting: read on at once
            elif any(rows for rows, _ in pages.values()):
                delay = self.poll_min_s
            else:
                delay = min(max(delay, self.poll_min_s) * 2, self.poll_max_s)


class Subscription:
    """One subscriber's view of the feed: catch-up from the store, then live from the hub."""

    def __init__(
        self,
        hub: Hub,
        principal: Principal,
        stream_filter: StreamFilter,
        cursor: str | None,
        start: str,
    ) -> None:
        self.hub = hub
        self.principal = principal
        self.filter = stream_filter
        self.requested = cursor
        self.start = start
        self._needs_body = stream_filter.needs_body(principal)
        self._live: deque[Delivery] = deque()
        self._overflowed = False
        self._ready = asyncio.Event()
        self.position = 0  # the last position delivered or scanned past
        self._reset: Reset | None = None

    # --- hub side ---------------------------------------------------------------------------

    def offer(self, shared: _Row, *, ephemeral: bool = False) -> None:
        row = shared.row
        if row.tenant_id != self.principal.tenant_id:  # isolation before anything else
            return
        if not self.filter.admits(shared.fields, self.principal):
            return
        if len(self._live) >= self.hub.buffer_events:
            if ephemeral:
                return  # nothing to catch up from: a full buffer drops the gesture
            self._overflowed = True
            self._live.clear()
        else:
            cursor = None if ephemeral else Cursor(self.hub.feed_id, row.position)
            self._live.append(Delivery(cursor, row.body))
        self._ready.set()

    # --- subscriber side --------------------------------------------------------------------

    async def _begin(self) -> tuple[int, Reset | None]:
        """The position to continue after, and the reset to announce first, if any."""
        oldest, newest = await asyncio.to_thread(
            self.hub.feed.feed_bounds, self.principal.tenant_id
        )
        restart = Cursor(self.hub.feed_id, oldest - 1)
        if self.requested is None:
            return (newest if self.start == "now" else 0), None
        cursor = parse_cursor(self.requested)
        if cursor is None or cursor.feed_id != self.hub.feed_id or cursor.position > newest:
            return restart.position, Reset("unknown_cursor", restart)
        if cursor.position < oldest - 1:
            return restart.position, Reset("expired_cursor", restart)
        return cursor.position, None

    async def open(self) -> None:
        """Join the hub and fix the starting point: "now" is when the client asked.

        Joining comes first, so every row stored from here on is offered to this subscription.
        """
        self.hub.subscriptions.add(self)
        try:
            await self.hub.track(self.principal.tenant_id)
            self.hub.wake()  # an idle hub polls slowly: have it tail for this one now
            self.position, self._reset = await self._begin()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.hub.subscriptions.discard(self)
        self._live.clear()

    async def batches(self) -> AsyncGenerator[list[Delivery] | Reset, None]:
        """Every matching event after the cursor, once and in order, in batches; forever."""
        if self not in self.hub.subscriptions:
            await self.open()
        try:
            if self._reset is not None:
                yield self._reset
            while True:
                self._overflowed = False
                self._live.clear()  # anything in it is stored: the catch-up reads it
                async for batch in self._catch_up():
                    yield batch
                async for batch in self._follow():
                    yield batch
                # _follow returns only after an overflow: catch up from the store again
        finally:
            self.close()

    async def _catch_up(self) -> AsyncIterator[list[Delivery]]:
        while True:
            rows, scanned = await self.hub.read(self.position, self.principal, self.filter)
            batch = [
                Delivery(Cursor(self.hub.feed_id, row.position), row.body)
                for row in rows
                if self._admits(row)
            ]
            self.position = scanned
            if batch:
                yield batch
            if len(rows) < self.hub.page_size:
                # Scanned up to the tenant's newest position, which is at or past the hub's
                # head for the tenant once it was tracked: everything later reaches the live
                # buffer.
                return

    def _admits(self, row: FeedRow) -> bool:
        # The store filtered tenant, run and types; the rest needs the event's fields.
        return not self._needs_body or self.filter.admits(orjson.loads(row.body), self.principal)

    async def _follow(self) -> AsyncIterator[list[Delivery]]:
        while not self._overflowed:
            if not self._live:
                self._ready.clear()
                await self._ready.wait()
                continue
            batch = [
                d for d in self._drain() if d.cursor is None or d.cursor.position > self.position
            ]
            for delivery in batch:
                if delivery.cursor is not None:
                    self.position = delivery.cursor.position
            if batch:
                yield batch

    def _drain(self) -> list[Delivery]:
        items = list(self._live)
        self._live.clear()
        return items
