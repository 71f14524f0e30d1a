"""The dispatcher: batching, retry with backoff, durable spooling, replay, flush and shutdown.

One dispatcher wraps one store (one role on one backend). ``submit`` only appends to a bounded
in-memory queue, so the caller never waits on the network; a worker thread writes batches.
When the backend is unreachable (SinkUnavailable after the retries), batches go to the durable
spool and, while anything is spooled, later batches follow them there, so order is kept. The
worker replays the spool oldest first once the backend answers again.

Nothing is lost and nothing gets stuck:

- a batch the store fails for any other reason is split in halves until the events at fault are
  found; those go to the spool's dead-letter table with the reason, every other one is stored;
- a queue that is full makes ``submit`` wait at most ``max_block_s``, then spool the event;
- a spool that cannot be used never stops writes to a backend that answers;
- closing (logkit.closing: exit, SIGTERM) puts everything not acknowledged into the spool
  within ``shutdown_spool_s`` whatever the backends do (an attempt still hanging on a backend is
  spooled too, and its late outcome ignored), then drains with what is left of the timeout.

With ``durability = "spool"``, ``submit`` returns only once the event is committed to the spool:
concurrent callers share one commit (group commit), and the worker replays from the spool.
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
from logkit.errors import SinkUnavailable
from logkit.sinks.protocols import EventStore
from logkit.spool import Spool

log = logging.getLogger("logkit.dispatch")

_MAX_REPLAY_DELAY_S = 30.0


@dataclass
class DispatchStats:
    written: int = 0
    spooled: int = 0
    replayed: int = 0
    dead: int = 0
    dropped: int = 0  # only when the backend and the spool both failed: logged as critical
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
        self._inflight: list[Event] = []
        # Bumped when close_all() takes the worker's batch over: the late outcome is ignored.
        self._generation = 0
        self._handoff = threading.Lock()  # a worker spooling its batch vs close_all()
        self._flush_requested = False
        self._stopping = False  # close_all() owns the queue: the worker takes no batches
        self._drain_requested = False
        self._drain_done = False
        self._abandoned = False  # close_all() took over an attempt hanging on the backend
        self._closed = False
        # Something of ours may already be in the spool (an earlier process, an outage).
        self._backlog = True
        self._next_replay = 0.0
        self._replay_delay = config.replay_interval_s
        self._spool_failing = False
        # durability = "spool": group commit of submitted events to the spool.
        self._durable = config.durability == "spool"
        self._commit = threading.Condition(threading.Lock())
        self._staged: list[Event] = []
        self._tickets = 0
        self._committed = 0
        self._committing = False
        self._fresh = 0  # committed since the last replay
        # Called (on the worker thread) after events reach the store: the live stream's
        # in-process wake-up. A listener must be quick and must not raise.
        self.on_stored: list[Callable[[], None]] = []
        self._announced = 0
        self._thread = threading.Thread(
            target=self._run, name=f"logkit-dispatch[{sink}]", daemon=True
        )
        self._thread.start()

    # --- caller side ------------------------------------------------------------------------

    def submit(self, event: Event) -> None:
        """Queue one event; never blocks longer than ``max_block_s``, never drops it.

        With ``durability = "spool"`` it returns once the event is committed to the spool.
        """
        if self._durable:
            self._submit_durable(event)
            return
        queue = self._queue
        if len(queue) < self._queue_size and not self._stopping:
            # deque.append is atomic under the GIL: the common path takes no lock at all.
            queue.append(event)
            if len(queue) % self._batch_size == 0:
                with self._cond:
                    self._cond.notify_all()
            return
        if not self._stopping:
            with self._cond:
                self._cond.wait_for(
                    lambda: len(queue) < self._queue_size or self._stopping,
                    timeout=self.config.max_block_s,
                )
                if len(queue) < self._queue_size and not self._stopping:
                    queue.append(event)
                    return
        # The queue is full, or shutdown owns it: the caller pays one spool write.
        if not self._keep([event]):
            self._drop([event], "the queue is full and the spool is unusable")

    def spool_now(self, events: Sequence[Event]) -> None:
        """Commit ``events`` to the spool on the caller's thread (replayed in order later).

        Raises SinkUnavailable when the spool cannot take them.
        """
        buried = self.spool.put(self.sink, events)
        self.stats.spooled += len(events) - buried
        self.stats.dead += buried
        self._backlog = True
        with self._cond:
            self._cond.notify_all()

    def wake_replay(self) -> None:
        """Something was added to the spool from outside (an adopted file): replay it soon."""
        with self._cond:
            self._backlog, self._next_replay = True, 0.0
            self._flush_requested = True
            self._cond.notify_all()

    def _submit_durable(self, event: Event) -> None:
        """Group commit: the first waiter commits everything staged, the others wait for it."""
        commit = self._commit
        with commit:
            self._staged.append(event)
            self._tickets += 1
            ticket = self._tickets
            while self._committed < ticket:
                if self._committing:
                    commit.wait()
                    continue
                batch, upto = self._staged, self._tickets
                self._staged, self._committing = [], True
                commit.release()
                try:
                    self._commit_staged(batch)
                finally:
                    commit.acquire()
                    self._committing, self._committed = False, upto
                    commit.notify_all()

    def _commit_staged(self, batch: list[Event]) -> None:
        try:
            self.spool_now(batch)
        except Exception as exc:  # emit must not fail: degrade, never lose
            # The worker delivers them from memory, as with durability = "memory".
            self._report_spool_failure(
                exc if isinstance(exc, SinkUnavailable) else SinkUnavailable(type(exc).__name__)
            )
            self._queue.extend(batch)
        else:
            self._fresh += len(batch)
            return
        with self._cond:
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event is stored or spooled; try a replay of the spool too.

        With a ``timeout``, whatever the backend has not taken half-way through it (queued, or
        in an attempt still waiting on the backend) is spooled by the caller, so this returns
        True within ``timeout`` unless the spool is unusable too.
        """
        idle = self._idle
        with self._cond:
            self._flush_requested = True
            self._next_replay = 0.0
            self._cond.notify_all()
            if timeout is None:
                return self._cond.wait_for(idle)
            if self._cond.wait_for(idle, timeout=timeout / 2):
                return True
        return self.hand_over(timeout / 2, stop=False)

    def _idle(self) -> bool:
        return not self._queue and not self._busy and not self._flush_requested

    def close(self, timeout: float | None = None) -> bool:
        """Spool what is not stored (within ``shutdown_spool_s``), drain, stop the worker."""
        from logkit.closing import close_all

        return close_all([self], timeout)

    def pending(self) -> int:
        """Events queued in memory plus events waiting in the spool for this sink."""
        with self._cond:
            queued = len(self._queue) + len(self._inflight)
        return queued + self.spool.count(self.sink)

    # --- shutdown (driven by logkit.closing) ------------------------------------------------

    def secure(self, timeout: float) -> bool:
        """From now on ``submit`` returns once the event is in the spool, and what is queued
        or in flight is spooled now (the process is about to end in a way it cannot see)."""
        self._durable = True
        return self.hand_over(timeout, stop=False)

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            return self._cond.wait_for(self._idle, timeout=max(0.0, timeout))

    def hand_over(self, lock_timeout: float, *, stop: bool) -> bool:
        """Spool, on this thread, the queue and a batch still in flight (the worker's late
        outcome for it is ignored); with ``stop`` the worker takes no more batches. False
        when some of it could be kept nowhere."""
        with self._cond:
            self._stopping = self._stopping or stop
            taken = list(self._queue)
            self._queue.clear()
            if self._busy and self._inflight:
                taken = self._inflight + taken
                self._inflight = []
                self._generation += 1  # whatever the hanging attempt does later is ignored
            if stop and self._busy:  # at exit: draining would only wait on that backend
                self._abandoned = True
            self._cond.notify_all()
        if taken and not self._keep(taken, lock_timeout=max(0.0, lock_timeout)):
            self._drop(taken, "the backend did not take them and the spool is unusable")
            return False
        return True

    def start_drain(self) -> None:
        # The replay backoff stays: a backend that just failed is not tried again at exit.
        with self._cond:
            self._drain_requested, self._drain_done = True, False
            self._backlog = True
            self._cond.notify_all()

    def wait_drained(self, timeout: float | None) -> None:
        if not self._abandoned:  # never wait on a backend that hangs: it is all spooled
            with self._cond:
                self._cond.wait_for(lambda: self._drain_done, timeout=timeout)

    def finish(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(0.05)  # a worker stuck on a hung backend is a daemon: not waited

    # --- worker side ------------------------------------------------------------------------

    def _has_work(self) -> bool:
        if self._closed or self._drain_requested:
            return True
        if self._stopping:
            return False
        return (
            len(self._queue) >= self._batch_size
            or self._flush_requested
            or self._fresh >= self._batch_size
        )

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(self._has_work, timeout=self.config.flush_interval_s)
                if self._closed:
                    return
                draining, self._drain_requested = self._drain_requested, False
                self._fresh = 0  # durability=spool: woken for what was committed
                if self._stopping and not draining:
                    continue
                batch = [
                    self._queue.popleft() for _ in range(min(len(self._queue), self._batch_size))
                ]
                flushing = self._flush_requested and not self._queue
                self._busy, self._inflight = bool(batch), batch
                generation = self._generation
                self._cond.notify_all()  # room in the queue for blocked submitters
            try:
                if self._backlog and time.monotonic() >= self._next_replay:
                    self._replay()
                if batch:
                    self._deliver(batch, generation)
                self._announce()
            except Exception as exc:  # the worker must survive anything and lose nothing
                log.error("logkit dispatcher %s: %s", self.sink, type(exc).__name__)
                self._park(batch, generation)
            finally:
                with self._cond:
                    self._busy, self._inflight = False, []
                    if flushing:
                        self._flush_requested = False
                    if draining:
                        self._drain_done = True
                    self._cond.notify_all()

    def _announce(self) -> None:
        written = self.stats.written + self.stats.replayed
        if written != self._announced:
            self._announced = written
            for listener in list(self.on_stored):
                listener()

    def _park(self, batch: list[Event], generation: int) -> None:
        """Neither the store nor the spool took a batch: keep it first in line, back off."""
        with self._cond:
            if batch and generation == self._generation and not self._stopping:
                self._queue.extendleft(reversed(batch))
            elif batch and generation == self._generation:
                self._drop(batch, "the backend and the spool both failed at shutdown")
            # Back off instead of spinning on a broken disk; flush() callers time out honestly.
            self._cond.wait(self.config.replay_interval_s)

    def _deliver(self, batch: list[Event], generation: int) -> None:
        # While anything waits in the spool, join it there: order is kept. A spool that cannot
        # be used is skipped: it never stops writes to a backend that answers.
        if self._backlog and not self._spool_failing and self._keep(batch, generation):
            return
        try:
            self._write_with_retry(batch)
            self.stats.written += len(batch)
        except SinkUnavailable as exc:
            self.stats.last_error = str(exc)
            if not self._keep(batch, generation):
                raise
        except Exception as exc:  # refused, or cannot be written at all: find the culprits
            stored, left = self._split(batch, exc)
            self.stats.written += stored
            if left and not self._keep(left, generation):
                raise SinkUnavailable("backend and spool both unavailable") from exc

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

    def _split(self, events: list[Event], exc: Exception) -> tuple[int, list[Event]]:
        """Bisect a batch the store failed: write what it takes, bury each single event it
        refuses. Returns how many it stored (the caller counts them as written or replayed;
        the buried ones are counted dead) and the events left when the store became
        unreachable (a suffix)."""
        if len(events) == 1:
            self._bury(events[0], exc)
            return 0, []
        mid = len(events) // 2
        halves = [events[:mid], events[mid:]]
        stored = 0
        for index, half in enumerate(halves):
            try:
                self.store.write(half)
                stored += len(half)
            except SinkUnavailable as unavailable:
                self.stats.last_error = str(unavailable)
                return stored, [e for rest in halves[index:] for e in rest]
            except Exception as failure:
                more, left = self._split(half, failure)
                stored += more
                if left:
                    return stored, left + [e for rest in halves[index + 1 :] for e in rest]
        return stored, []

    def _bury(self, event: Event, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        self.stats.last_error = reason[:200]
        # The log line names the event, never its values (they may be what failed).
        log.error("logkit: %s refused event %s (%s)", self.sink, event.event_id, type(exc).__name__)
        try:
            self.spool.bury(self.sink, [event], reason)
            self.stats.dead += 1
        except SinkUnavailable as spool_error:
            self._report_spool_failure(spool_error)
            self._drop([event], "refused by the backend, and the spool is unusable")

    def _keep(
        self, events: Sequence[Event], generation: int | None = None, lock_timeout: float = -1
    ) -> bool:
        """Spool ``events``; False when the spool cannot be used. A batch close_all() has
        taken over (another generation) counts as kept: it already is."""
        locked = self._handoff.acquire(timeout=lock_timeout)
        try:
            if generation is not None and generation != self._generation:
                return True
            self.spool_now(events)
        except SinkUnavailable as exc:
            self._report_spool_failure(exc)
            return False
        finally:
            if locked:
                self._handoff.release()
        self._spool_failing = False
        return True

    def _report_spool_failure(self, exc: SinkUnavailable) -> None:
        if not self._spool_failing:  # once per streak, not once per batch
            log.error(
                "logkit dispatcher %s: the spool is unusable (%s); events go straight to the "
                "backend, or wait in memory while it is down",
                self.sink,
                exc,
            )
        self._spool_failing = True

    def _drop(self, events: Sequence[Event], why: str) -> None:
        self.stats.dropped += len(events)
        log.critical("logkit dispatcher %s: %d event(s) lost: %s", self.sink, len(events), why)

    def _replay(self) -> None:
        """Write spooled events back oldest first; stop at the first outage and back off."""
        while True:
            unreadable = self.spool.unreadable.get(self.sink, 0)
            try:
                rows = self.spool.peek(self.sink, self._batch_size)
                self.stats.dead += self.spool.unreadable.get(self.sink, 0) - unreadable
            except SinkUnavailable as exc:  # nothing can be read back: deliver directly
                self._report_spool_failure(exc)
                self._backlog = False
                return
            if not rows:
                self._backlog = False
                self._replay_delay = self.config.replay_interval_s
                return
            events = [event for _, event in rows]
            try:
                self.store.write(events)
                stored, left = len(events), []
            except SinkUnavailable as exc:
                self.stats.last_error = str(exc)
                stored, left = 0, events
            except Exception as exc:
                stored, left = self._split(events, exc)
            done = len(events) - len(left)  # stored, or buried in the dead letters
            if done:
                self.spool.ack([row_id for row_id, _ in rows[:done]])
                self.stats.replayed += stored
            if left:
                self._next_replay = time.monotonic() + self._replay_delay
                self._replay_delay = min(self._replay_delay * 2, _MAX_REPLAY_DELAY_S)
                return
