"""The feed writer: every timeline and stream-class event to the live feed, beside the stores.

The router hands each such event to :meth:`FeedWriter.submit` as it hands it to the store
dispatchers: an append to a bounded in-memory queue, nothing else on the caller's thread. A
worker thread appends whatever has queued up to the feed at once (while one append is in
flight the next batch gathers), so an event reaches Redis about a millisecond after ``emit``,
without waiting for the stores' flush interval.

The feed is a live view, never a second store: the timeline store gets every event through its
own dispatcher (spool and retries included) whatever happens here. When Redis is unreachable,
or the queue is full, events are dropped from the feed, counted, and the tenant's next append
starts with a gap marker, so subscribers are told (a ``reset`` with reason ``feed_gap``)
instead of silently missing them. Attempts back off while Redis stays down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from logkit.config import StreamConfig
from logkit.envelope import Event, StorageClass
from logkit.errors import LogkitError
from logkit.sinks.cursor import to_micros
from logkit.sinks.protocols import LiveFeed

log = logging.getLogger("logkit.feed")

_BATCH = 2_000
_BACKOFF_MIN_S = 0.05
_BACKOFF_MAX_S = 1.0


@dataclass
class FeedStats:
    appended: int = 0
    dropped: int = 0  # dropped from the feed (Redis down, queue full); the stores have them
    failures: int = 0  # appends that failed
    last_error: str | None = None


class FeedWriter:
    def __init__(self, feed: LiveFeed, config: StreamConfig) -> None:
        self.feed = feed
        self.stats = FeedStats()
        self._bound = config.feed_queue
        self._queue: deque[Event] = deque()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self._closed = False
        # Per tenant: stored-class events dropped since the tenant's last append (how many, the
        # earliest ts in microseconds).
        self._gaps: dict[str, tuple[int, int]] = {}
        self._gap_lock = threading.Lock()
        self._retry_at = 0.0
        self._backoff = _BACKOFF_MIN_S
        self._thread = threading.Thread(target=self._run, name="logkit-feed", daemon=True)
        self._thread.start()

    # --- caller side ------------------------------------------------------------------------

    def submit(self, event: Event) -> None:
        """Queue one event for the feed; never blocks, never raises."""
        if len(self._queue) < self._bound and not self._closed:
            self._queue.append(event)  # atomic under the GIL
            if not self._wake.is_set():
                self._wake.set()
            return
        self._drop([event])

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued was appended (or dropped); False if ``timeout`` passed."""
        self._wake.set()
        with self._idle:
            return self._idle.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self, timeout: float = 1.0) -> bool:
        """Append what is queued within ``timeout`` (the feed is best effort), then stop."""
        flushed = self.flush(timeout)
        self._closed = True
        self._wake.set()
        self._thread.join(min(timeout, 0.5))
        return flushed

    # --- worker side ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait()
            self._wake.clear()
            while self._queue:
                with self._idle:
                    self._busy = True
                queue = self._queue
                batch = [queue.popleft() for _ in range(min(len(queue), _BATCH))]
                try:
                    self._append(batch)
                except Exception as exc:  # the worker must outlive anything
                    log.error("logkit feed: %s", type(exc).__name__)
                    self._drop(batch)
            with self._idle:
                self._busy = False
                self._idle.notify_all()

    def _append(self, batch: list[Event]) -> None:
        if time.monotonic() < self._retry_at:
            self._drop(batch)  # Redis was down a moment ago: do not wait on it per batch
            return
        with self._gap_lock:
            gaps = {t: self._gaps.pop(t) for t in {e.tenant_id for e in batch} if t in self._gaps}
        try:
            self.feed.append(batch, gaps)
        except LogkitError as exc:
            self.stats.failures += 1
            if self.stats.last_error is None or self._backoff == _BACKOFF_MIN_S:
                log.warning("logkit feed: append failed, dropping from the feed: %s", exc)
            self.stats.last_error = str(exc)[:200]
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, _BACKOFF_MAX_S)
            with self._gap_lock:
                for tenant, gap in gaps.items():
                    self._gaps[tenant] = _merge(self._gaps.get(tenant), gap)
            self._drop(batch)
            return
        self.stats.appended += len(batch)
        self._backoff = _BACKOFF_MIN_S

    def _drop(self, events: list[Event]) -> None:
        with self._gap_lock:
            self.stats.dropped += len(events)
            for event in events:
                if event.storage_class is not StorageClass.STREAM:  # gestures leave no gap
                    gap = (1, to_micros(event.ts))
                    self._gaps[event.tenant_id] = _merge(self._gaps.get(event.tenant_id), gap)


def _merge(gap: tuple[int, int] | None, more: tuple[int, int]) -> tuple[int, int]:
    return more if gap is None else (gap[0] + more[0], min(gap[1], more[1]))
