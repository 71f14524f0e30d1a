"""One subscriber's view of the feed: catch-up from the feed (or the store), then live rows.

A subscription first catches up (from its cursor to its tenant's newest position), then takes
live rows from the hub. Rows are deduplicated by position, a total order within a tenant, so
the hand-over loses and repeats nothing. Its live buffer is bounded: when it fills, the buffer
is dropped and the subscription catches up from the feed again.

With a feed beside the stores (Redis), a cursor older than the feed's window, or from a feed
that lost its data, resumes from the timeline store first (:mod:`logkit.stream.fallback`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING

import orjson

from logkit.sinks import cursor as store_cursor
from logkit.sinks.protocols import ROW_GAP, FeedRow
from logkit.stream.cursor import Cursor, parse_cursor
from logkit.stream.deliveries import Delivery, Reset, SharedRow
from logkit.stream.filters import Principal, StreamFilter

if TYPE_CHECKING:
    from logkit.stream.hub import Hub


class _Gap:
    """A gap marker met live: where it is, and since when (the writer's earliest drop)."""

    __slots__ = ("cursor", "since_us")

    def __init__(self, row: FeedRow, feed_id: str) -> None:
        self.cursor = Cursor(feed_id, row.position)
        try:
            since = orjson.loads(row.body).get("since_us")
        except (orjson.JSONDecodeError, AttributeError):
            since = None
        self.since_us: int | None = since if isinstance(since, int) else None


Item = Delivery | _Gap
_SEEN_MAX = 10_000


class Subscription:
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
        self._live: deque[Item] = deque()
        self._overflowed = False
        self._restart = False  # the feed was recreated: begin again from the last cursor
        self._begun = False
        self._ready = asyncio.Event()
        self.position = 0  # the last position delivered or scanned past
        self.last: Cursor | None = None  # the last cursor delivered
        self._reset: Reset | None = None
        self.fallback: str | None = None  # replay from the store after this hint first
        # Hints of events the store replay delivered that the feed did not hold (yet): if the
        # feed shows one later, it is not delivered twice. Bounded.
        self.seen: dict[str, None] = {}

    # --- hub side ---------------------------------------------------------------------------

    def offer(self, shared: SharedRow, *, ephemeral: bool = False) -> None:
        row = shared.row
        if row.tenant_id != self.principal.tenant_id:  # isolation before anything else
            return
        gap = row.kind == ROW_GAP
        if not gap and not self.filter.admits(shared.fields, self.principal):
            return
        if len(self._live) >= self.hub.buffer_events:
            if ephemeral:
                return  # nothing to catch up from: a full buffer drops the gesture
            self._overflowed = True
            self._live.clear()
        else:
            cursor = None if ephemeral else Cursor(self.hub.feed_id, row.position, row.hint)
            self._live.append(_Gap(row, self.hub.feed_id) if gap else Delivery(cursor, row.body))
        self._ready.set()

    def restart(self) -> None:
        """The feed's identity changed (Redis lost its data): begin again from the last cursor."""
        if self._begun:  # one still opening begins with the new identity anyway
            self._restart = True
            self._ready.set()

    def refill(self, since_us: int) -> None:
        """The feed may lack events from ``since_us`` on (Redis was unreachable): replay from
        the store what the feed does not hold, then go on from the current position."""
        if self.hub.store is None:
            return
        hint = store_cursor.encode_at(since_us)
        if self.fallback is None or store_cursor.decode(self.fallback) > (since_us, ""):
            self.fallback = hint
        self._ready.set()

    def _on_gap(self, gap: _Gap) -> Reset | None:
        """A writer dropped events here: fill them in from the store, or say so (a reset)."""
        self.position = gap.cursor.position
        self.last = gap.cursor
        if self.hub.store is None or gap.since_us is None:
            return Reset("feed_gap", gap.cursor)
        self.refill(gap.since_us - 1)
        return None

    # --- subscriber side --------------------------------------------------------------------

    async def _begin(self) -> tuple[int, Reset | None]:
        """The position to continue after, and the reset to announce first, if any."""
        self.fallback = None
        oldest, newest = await asyncio.to_thread(
            self.hub.feed.feed_bounds, self.principal.tenant_id
        )
        restart = Cursor(self.hub.feed_id, oldest - 1)
        if self.requested is None:
            return (newest if self.start == "now" else 0), None
        cursor = parse_cursor(self.requested)
        if cursor is None:
            return restart.position, Reset("unknown_cursor", restart)
        ours = cursor.feed_id == self.hub.feed_id
        if ours and cursor.position > newest:
            return restart.position, Reset("unknown_cursor", restart)
        from_store = cursor.position == 0 and cursor.hint is not None
        if ours and cursor.position >= oldest - 1 and not from_store:
            return cursor.position, None
        if cursor.hint is not None and self.hub.store is not None:
            # Older than the feed's window, from a feed that lost its data, or given out
            # while replaying from the store: the store takes it from here.
            self.fallback = cursor.hint
            return oldest - 1, None
        reason = "expired_cursor" if ours else "unknown_cursor"
        return restart.position, Reset(reason, restart)

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
        self._begun = True

    def close(self) -> None:
        self.hub.subscriptions.discard(self)
        self._live.clear()

    async def batches(self) -> AsyncGenerator[list[Delivery] | Reset, None]:
        """Every matching event after the cursor, once and in order, in batches; forever."""
        if self not in self.hub.subscriptions:
            await self.open()
        try:
            while True:
                if self._reset is not None:
                    reset, self._reset = self._reset, None
                    yield reset
                if self.fallback is not None:
                    from logkit.stream.fallback import from_store

                    async for item in from_store(self, self.fallback):
                        yield item
                self._overflowed = False
                self._live.clear()  # anything in it is stored: the catch-up reads it
                async for item in self._catch_up():
                    yield item
                async for item in self._follow():
                    yield item
                if self._restart:
                    self._restart = False
                    if self.last is not None:
                        self.requested = str(self.last)
                    await self.hub.track(self.principal.tenant_id)
                    self.position, self._reset = await self._begin()
                # otherwise _follow returned after an overflow: catch up from the feed again
        finally:
            self.close()

    async def _catch_up(self) -> AsyncIterator[list[Delivery] | Reset]:
        while True:
            rows, scanned = await self.hub.read(self.position, self.principal, self.filter)
            batch: list[Delivery] = []
            for row in rows:
                if row.kind == ROW_GAP:
                    if batch:
                        yield self._sent(batch)
                        batch = []
                    reset = self._on_gap(_Gap(row, self.hub.feed_id))
                    if reset is not None:
                        yield reset
                        continue
                    return  # the store fills the gap in, then the catch-up goes on
                if self._admits(row):
                    batch.append(
                        Delivery(Cursor(self.hub.feed_id, row.position, row.hint), row.body)
                    )
            self.position = scanned
            if batch:
                yield self._sent(batch)
            if len(rows) < self.hub.page_size:
                # Scanned up to the tenant's newest position, which is at or past the hub's
                # head for the tenant once it was tracked: everything later reaches the live
                # buffer.
                return

    def _admits(self, row: FeedRow) -> bool:
        if row.hint is not None and row.hint in self.seen:
            return False  # the store replay delivered it already
        # The feed filtered tenant, run and types; the rest needs the event's fields.
        return not self._needs_body or self.filter.admits(orjson.loads(row.body), self.principal)

    def _sent(self, batch: list[Delivery]) -> list[Delivery]:
        self.last = batch[-1].cursor
        return batch

    def remember(self, hint: str) -> None:
        self.seen[hint] = None
        if len(self.seen) > _SEEN_MAX:
            del self.seen[next(iter(self.seen))]

    async def _follow(self) -> AsyncIterator[list[Delivery] | Reset]:
        while not self._overflowed and not self._restart and self.fallback is None:
            if not self._live:
                self._ready.clear()
                await self._ready.wait()
                continue
            batch: list[Delivery] = []
            for item in self._drain():
                if item.cursor is not None and item.cursor.position <= self.position:
                    continue
                if isinstance(item, _Gap):
                    if batch:
                        yield self._sent(batch)
                        batch = []
                    reset = self._on_gap(item)
                    if reset is None:  # the store first; the rest comes again from the feed
                        return
                    yield reset
                    continue
                if item.cursor is not None:
                    self.position = item.cursor.position
                    if item.cursor.hint is not None and item.cursor.hint in self.seen:
                        continue  # the store replay delivered it already
                    self.last = item.cursor
                batch.append(item)
            if batch:
                yield batch

    def _drain(self) -> list[Item]:
        items = list(self._live)
        self._live.clear()
        return items
