"""The dispatcher: batching, retry with backoff, durable spooling, replay and flush.

One dispatcher wraps one store (one role on one backend). ``submit`` only appends to a bounded
in-memory queue, so the caller never waits on the network; a worker thread writes batches.
When the backend is unreachable (SinkUnavailable after the retries), batches go to the durable
spool and, while anything is spooled, later batches follow them there, so order is kept. The
worker replays the spool oldest first once the backend answers again. An event is never dropped:
if the queue is full, ``submit`` waits at most ``max_block_s`` and then spools the event itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from logkit.config import DispatchConfig
from logkit.envelope import Event
from logkit.errors import SinkError, SinkUnavailable
from logkit.sinks.protocols import EventStore
from logkit.spool import Spool

log = logging.getLogger("logkit.dispatch")


@dataclass
class DispatchStats:
    written: int = 0
    spooled: int = 0
    replayed: int = 0
    dead: int = 0
    last_error: str | None = None


class Dispatcher:
    def __init__(self, sink: str, store: EventStore, spool: Spool, config: DispatchConfig) -> None:
        self.sink = sink
        self.store = store
        self.spool = spool
        self.config = config
        self.stats = DispatchStats()
        # Plain attributes: submit() runs once per event on the caller's thread.
        self._queue_size = config.queue_size
        self._batch_size = config.batch_size
        self._queue: deque[Event] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._flush_requested = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        # Something of ours may already be in the spool (an earlier process, an outage).
        self._backlog = True
        self._next_replay = 0.0
        self._replay_delay = config.replay_interval_s
        # Called (on the worker thread) after events reach the store: the live stream's
        # in-process wake-up. A listener must be quick and must not raise.
        self.on_stored: list[Callable[[], None]] = []
        self._announced = 0
        self._start()

    # --- caller side ------------------------------------------------------------------------

    def submit(self, event: Event) -> None:
        """Queue one event; never blocks longer than ``max_block_s``, never drops it."""
        queue = self._queue
        if len(queue) < self._queue_size:
            # deque.append is atomic under the GIL: the common path takes no lock at all.
            queue.append(event)
            if len(queue) % self._batch_size == 0:
                with self._cond:
                    self._cond.notify_all()
            return
        with self._cond:
            self._cond.wait_for(
                lambda: len(queue) < self._queue_size, timeout=self.config.max_block_s
            )
            if len(queue) < self._queue_size:
                queue.append(event)
                return
        self._spool([event])  # queue still full: the caller pays one spool write, nothing lost

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event is stored or spooled; try a replay of the spool too.

        Returns False if ``timeout`` passed first.
        """
        with self._cond:
            self._flush_requested = True
            self._next_replay = 0.0
            self._cond.notify_all()
            return self._cond.wait_for(
                lambda: not self._queue and not self._busy and not self._flush_requested,
                timeout=timeout,
            )

    def close(self, timeout: float | None = None) -> bool:
        drained = self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        return drained

    def pending(self) -> int:
        """Events queued in memory plus events waiting in the spool for this sink."""
        with self._cond:
            queued = len(self._queue) + (1 if self._busy else 0)
        return queued + self.spool.count(self.sink)

    # --- worker side ------------------------------------------------------------------------

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"logkit-dispatch[{self.sink}]", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(self._has_work, timeout=self.config.flush_interval_s)
                if self._stopping and not self._queue:
                    return
                batch = [
                    self._queue.popleft()
                    for _ in range(min(len(self._queue), self.config.batch_size))
                ]
                flushing = self._flush_requested and not self._queue
                self._busy = bool(batch)
                self._cond.notify_all()  # room in the queue for blocked submitters
            try:
                if self._backlog and time.monotonic() >= self._next_replay:
                    self._replay()
                if batch:
                    self._deliver(batch)
                self._announce()
            except Exception as exc:  # the worker must survive anything and lose nothing
                log.error("logkit dispatcher %s: %s: %s", self.sink, type(exc).__name__, exc)
                self._hold(batch)
            finally:
                with self._cond:
                    self._busy = False
                    if flushing:
                        self._flush_requested = False
                    self._cond.notify_all()

    def _announce(self) -> None:
        written = self.stats.written + self.stats.replayed
        if written != self._announced:
            self._announced = written
            for listener in list(self.on_stored):
                listener()

    def _hold(self, batch: list[Event]) -> None:
        """Nowhere to put a batch (store and spool both failing): keep it first in line."""
        try:
            if batch:
                self._spool(batch)
            return
        except Exception as exc:
            log.critical(
                "logkit dispatcher %s: spool failed too (%s); holding %d events in memory",
                self.sink,
                exc,
                len(batch),
            )
        with self._cond:
            self._queue.extendleft(reversed(batch))
            # Back off instead of spinning on a broken disk; flush() callers time out honestly.
            self._cond.wait(self.config.replay_interval_s)

    def _has_work(self) -> bool:
        return len(self._queue) >= self.config.batch_size or self._flush_requested or self._stopping

    def _deliver(self, batch: list[Event]) -> None:
        if self._backlog:  # keep order: while anything waits in the spool, join the queue
            self._spool(batch)
            return
        try:
            self._write_with_retry(batch)
            self.stats.written += len(batch)
        except SinkUnavailable as exc:
            self.stats.last_error = str(exc)
            self._spool(batch)
        except SinkError as exc:
            self._isolate_rejects(batch, exc)

    def _write_with_retry(self, batch: Sequence[Event]) -> None:
        retrying = Retrying(
            retry=retry_if_exception_type(SinkUnavailable),
            stop=stop_after_attempt(self.config.retry_attempts),
            # Exponential backoff with jitter, so many writers do not retry in lockstep.
            wait=wait_exponential(
                multiplier=self.config.retry_initial_s, max=self.config.retry_max_s
            )
            + wait_random(0, self.config.retry_initial_s),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                self.store.write(batch)

    def _isolate_rejects(self, batch: list[Event], exc: SinkError) -> None:
        """A batch the backend rejected: write event by event, bury only what still fails."""
        self.stats.last_error = str(exc)
        for event in batch:
            try:
                self.store.write([event])
                self.stats.written += 1
            except SinkUnavailable:
                self._spool([event])
            except SinkError as single:
                self.spool.bury(self.sink, [event], str(single))
                self.stats.dead += 1
                log.error("logkit: %s rejected event %s: %s", self.sink, event.event_id, single)

    def _spool(self, events: Sequence[Event]) -> None:
        self.spool.put(self.sink, events)
        self.stats.spooled += len(events)
        self._backlog = True

    def _replay(self) -> None:
        """Write spooled events back oldest first; stop at the first failure and back off."""
        while True:
            rows = self.spool.peek(self.sink, self.config.batch_size)
            if not rows:
                self._backlog = False
                self._replay_delay = self.config.replay_interval_s
                return
            try:
                self.store.write([event for _, event in rows])
            except SinkUnavailable as exc:
                self.stats.last_error = str(exc)
                self._next_replay = time.monotonic() + self._replay_delay
                self._replay_delay = min(self._replay_delay * 2, 30.0)
                return
            except SinkError as exc:
                self._isolate_rejects([event for _, event in rows], exc)
            self.spool.ack([row_id for row_id, _ in rows])
            self.stats.replayed += len(rows)
