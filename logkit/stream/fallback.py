"""Resume from the timeline store a cursor the feed can no longer honour.

A cursor older than the feed's window (trimmed by length or age), or from a feed that lost its
data (a Redis without persistence restarted), carries its event's hint: the event's (ts,
event_id) as the stores' paging cursor. The subscription then replays the tenant's stored events
after it, in the store's (ts, event_id) order, and hands over to the feed. The same fills in
what writers dropped from the feed while Redis was unreachable (a gap marker, or the hub's own
outage), from the earliest such moment on:

1. ``F`` = the position the feed goes on from: one before the oldest it still holds (an old
   cursor), or the subscription's own position (a gap fill).
2. Each store page is checked against the feed's id index: an event the feed holds is skipped
   here (the feed delivers it next, in feed order, or did already); every other one (trimmed,
   or never in the feed: dropped while Redis was down) is delivered from the store, with a
   cursor ``<feed id>-0.<hint>`` that resumes this replay on any replica.
3. Then the subscription reads the feed after ``F`` as usual. Had the window moved past an
   event skipped in 2 meanwhile, that event is gone from both passes: the subscriber gets an
   ``expired_cursor`` reset rather than a silent gap.

The limits (docs/stream.md): the store's order is by ts, the feed's by arrival, so an event
with an earlier ts than the cursor's event that reached the feed after it (clock skew between
instances, a spool replay) is not replayed; a store that cannot answer ends in the same reset.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import orjson

from logkit.errors import ContractError, LogkitError
from logkit.sinks import cursor as store_cursor
from logkit.sinks.protocols import LiveFeed, Query
from logkit.stream.cursor import Cursor
from logkit.stream.deliveries import Delivery, Reset
from logkit.stream.subscription import Subscription

log = logging.getLogger("logkit.stream")


async def from_store(sub: Subscription, hint: str) -> AsyncIterator[list[Delivery] | Reset]:
    sub.fallback = None
    hub, tenant = sub.hub, sub.principal.tenant_id
    store, feed = hub.store, hub.feed
    floor = sub.position  # F
    skipped: int | None = None  # the lowest feed position skipped here
    after: str | None = hint
    reason: str | None = None
    try:
        while store is not None and after is not None:
            query = Query(
                tenant_id=tenant,
                run_id=sub.filter.run_id,
                event_types=sub.filter.types,
                cursor=after,
                limit=hub.page_size,
            )
            page = await asyncio.to_thread(store.query, query)
            ids = [e.event_id for e in page.events]
            held: dict[str, int] = {}
            if ids and isinstance(feed, LiveFeed):
                held = await asyncio.to_thread(feed.feed_positions, tenant, ids)
            batch: list[Delivery] = []
            for event in page.events:
                position = held.get(event.event_id)
                if position is not None:  # the feed has it: delivered from there (or already)
                    if position > floor:
                        skipped = position if skipped is None else min(skipped, position)
                    continue
                body = event.to_json()
                if not sub.filter.admits(orjson.loads(body), sub.principal):
                    continue
                event_hint = store_cursor.encode(event)
                if event_hint in sub.seen:
                    continue  # an earlier fill delivered it (several markers of one outage)
                sub.remember(event_hint)
                batch.append(Delivery(Cursor(hub.feed_id, 0, event_hint), body))
            if batch:
                sub.last = batch[-1].cursor
                yield batch
            after = page.next_cursor
    except ContractError:  # a hint that is not one: as any unknown cursor
        reason = "unknown_cursor"
    except LogkitError as exc:  # the store cannot answer: the documented reset
        log.warning("logkit stream: replay from the store failed: %s", type(exc).__name__)
        reason = "expired_cursor"
    oldest, _ = await asyncio.to_thread(feed.feed_bounds, tenant)
    if reason is None and skipped is not None and skipped < oldest:
        reason = "expired_cursor"  # the window moved past an event left to it
    if reason is not None:
        restart = Cursor(hub.feed_id, oldest - 1)
        sub.position, sub.last = restart.position, restart
        yield Reset(reason, restart)
