"""The hub tails the durable feed once per server and fans new rows out to subscriptions.

Positions are per tenant (:class:`~logkit.sinks.protocols.Feed`): the hub keeps one head per
tenant that has subscribers, reads each such tenant's new rows once and offers them to that
tenant's subscriptions (:mod:`logkit.stream.subscription`). A store that is the feed (SQLite)
is polled, and woken at once by this process's own writes. A feed of its own (Redis,
:class:`~logkit.sinks.protocols.LiveFeed`) is tailed by one blocking read over every followed
tenant (XREAD BLOCK): no polling; a tenant that gets its first subscriber interrupts it. A
reader that stops reading altogether is disconnected by the transport's send timeout and
resumes from its last event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from logkit.config import StreamConfig
from logkit.envelope import Event, StorageClass
from logkit.sinks.protocols import ROW_EPHEMERAL, EventStore, Feed, FeedRow, LiveFeed, Tail
from logkit.stream.deliveries import Delivery, Reset, SharedRow
from logkit.stream.filters import Principal, StreamFilter
from logkit.stream.subscription import Subscription

__all__ = ["Delivery", "Hub", "Reset", "Subscription"]

log = logging.getLogger("logkit.stream")


_RETRY_MIN_S = 0.05
_RETRY_MAX_S = 2.0
# After an outage, the store fills in from a little before the hub noticed it: writers noticed
# at their own moment, and stamped events with their own clocks.
_OUTAGE_MARGIN_S = 5.0


class Hub:
    def __init__(self, feed: Feed, config: StreamConfig, store: EventStore | None = None) -> None:
        self.feed = feed
        # The timeline store, when the feed is not the store: cursors older than the feed's
        # window resume from it (logkit.stream.fallback).
        self.store = store
        self.block_s = config.feed_block_s
        self._tail: Tail | None = None
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
        if isinstance(self.feed, LiveFeed):
            self._tail = await asyncio.to_thread(self.feed.tail)
            self._task = asyncio.create_task(self._run_tail(self._tail), name="logkit-stream-hub")
        else:
            self._task = asyncio.create_task(self._run(), name="logkit-stream-hub")

    @property
    def live(self) -> bool:
        """Whether the feed carries stream-class events itself (every replica sees them)."""
        return self._tail is not None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        tail, self._tail = self._tail, None
        if tail is not None:  # the blocked read returns at once, then its connection goes
            with contextlib.suppress(Exception):
                await asyncio.to_thread(tail.interrupt)
            await asyncio.to_thread(tail.close)

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
                loop.call_soon_threadsafe(self._fan_out, row, True)

    def _fan_out(self, row: FeedRow, ephemeral: bool = False) -> None:
        """Offer one row to every subscription (each takes only its own tenant's)."""
        shared = SharedRow(row)
        for subscription in list(self.subscriptions):
            subscription.offer(shared, ephemeral=ephemeral)

    def subscribe(
        self, principal: Principal, stream_filter: StreamFilter, cursor: str | None, start: str
    ) -> Subscription:
        return Subscription(self, principal, stream_filter, cursor, start)

    async def track(self, tenant_id: str) -> None:
        """Follow ``tenant_id`` from its newest position, unless it is followed already.

        A joining subscription calls this before it catches up: its catch-up then reads at
        least up to the head, and the hub offers it everything after.
        """
        if self._tail is not None:
            # An idle hub may not have seen Redis lose its data: check before anyone begins.
            feed_id = await asyncio.to_thread(self.feed.feed_id)
            if feed_id != self.feed_id:
                self._recreated(feed_id)
        if tenant_id in self.heads:
            return
        _, newest = await asyncio.to_thread(self.feed.feed_bounds, tenant_id)
        self.heads.setdefault(tenant_id, newest)
        tail = self._tail
        if tail is not None:  # the blocked read follows the old set of tenants: renew it
            await asyncio.to_thread(tail.interrupt)

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
            heads = self._followed()
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
                    self._fan_out(row)
                if tenant in self.heads:
                    self.heads[tenant] = max(self.heads[tenant], scanned)
                full = full or len(rows) == self.page_size
            if full:
                delay = 0.0  # more is waiting: read on at once
            elif any(rows for rows, _ in pages.values()):
                delay = self.poll_min_s
            else:
                delay = min(max(delay, self.poll_min_s) * 2, self.poll_max_s)

    def _followed(self) -> dict[str, int]:
        followed = {s.principal.tenant_id for s in self.subscriptions}
        for tenant in [t for t in self.heads if t not in followed]:
            del self.heads[tenant]  # nobody left: a later subscriber starts afresh
        return dict(self.heads)

    async def _run_tail(self, tail: Tail) -> None:
        """Blocking reads of every followed tenant's feed; rows fanned out as they come."""
        retry, down_since, down_id = 0.0, 0.0, self.feed_id
        while True:
            heads = self._followed()
            if not heads:
                self._wake.clear()
                await self._wake.wait()  # track() wakes it with a first subscriber
                continue
            try:
                pages = await asyncio.to_thread(
                    tail.wait, heads, limit=self.page_size, timeout_s=self.block_s
                )
            except Exception as exc:  # Redis is down: keep serving, try again with a backoff
                if not retry:
                    log.warning("logkit stream: reading the feed failed: %s", exc)
                    down_since, down_id = time.time() - _OUTAGE_MARGIN_S, self.feed_id
                retry = min(max(retry * 2, _RETRY_MIN_S), _RETRY_MAX_S)
                await asyncio.sleep(retry)
                continue
            if retry:
                retry = 0.0
                await self._recovered(int(down_since * 1_000_000), down_id)
            for tenant, rows in pages.items():
                for row in rows:
                    self._fan_out(row, ephemeral=row.kind == ROW_EPHEMERAL)
                if rows and tenant in self.heads:
                    self.heads[tenant] = max(self.heads[tenant], rows[-1].position)

    async def _recovered(self, since_us: int, down_id: str) -> None:
        """The feed answers again. Same identity: writers may have dropped events meanwhile
        (a writer that lived through it leaves a gap marker too, one that ended does not): the
        hub marks the gap in every followed tenant's feed, and whoever meets a marker fills in
        from the store what the feed lacks since then. A new identity (Redis lost its data):
        every subscription begins again from its last cursor, which the store resumes."""
        try:
            feed_id = await asyncio.to_thread(self.feed.feed_id)
        except Exception:
            return
        if feed_id != down_id:  # recreated meanwhile (a subscriber joining may have seen it)
            if feed_id != self.feed_id:
                self._recreated(feed_id)
            return
        # A gap marker in each followed tenant's feed: this hub's subscribers meet it like any
        # other, and so does a client that resumes across it later, on any replica.
        gaps = {tenant: (0, since_us) for tenant in self.heads}
        feed = self.feed
        try:
            if isinstance(feed, LiveFeed) and gaps:
                await asyncio.to_thread(feed.append, [], gaps)
                return
        except Exception as exc:
            log.warning("logkit stream: marking the outage in the feed failed: %s", exc)
        for subscription in list(self.subscriptions):
            subscription.refill(since_us)

    def _recreated(self, feed_id: str) -> None:
        log.warning("logkit stream: the feed was recreated; subscribers resume from the store")
        self.feed_id = feed_id
        self.heads.clear()
        for subscription in list(self.subscriptions):
            subscription.restart()
