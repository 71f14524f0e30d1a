"""How the Firestore audit store places events on their chains: blocks, group commit, lanes.

``BlockAppender`` (the default) makes a chain's appends cost one round trip per *block*, not
per record, and lets writers on many instances stop queueing behind one tenant chain:

- **Blocks.** Events waiting for the same chain are linked in order (seq h+1, h+2, ...) and go
  in one commit: for each record a ``create`` of ``records/{seq}`` and of its event-id index
  entry, in that interleaved order. The commit is atomic on Firestore, and every ``create`` is a
  precondition, so the block lands whole or not at all; if another writer took seq h+1 first,
  nothing was written, the head is read again and the block relinked. A block is at most
  MAX_BLOCK_RECORDS records (two writes each, under Firestore's 500 writes per commit).
- **Group commit.** Threads of one process appending to the same chain do not race each other:
  the first becomes the chain's leader and commits what has queued up meanwhile, block after
  block, while the others wait for their records. Under load blocks grow by themselves.
- **Cached heads.** After a commit the writer knows the chain's new head, so the next block
  needs no head read: a block is one commit round trip unless another writer interleaved.
- **Lanes** (URI ``lanes=writer``). Events outside a run go to the writer's own lane of the
  tenant chain, ``{tenant}/_tenant~{writer}``, instead of the one ``{tenant}/_tenant``: N
  instances stop contending on one chain head at all. A lane is an ordinary chain (every rule of
  logkit.chain holds in it); signed checkpoints list the lanes, so a whole lane deleted between
  two checkpoints is reported missing (docs/audit-chain.md has the design and the arithmetic).

``RecordAppender`` (URI ``append=record``) is the algorithm logkit used before: every record its
own commit after a head read. It is kept as the reference the scale benchmark measures against.

On the emulator commits are not atomic (writes apply in order up to the first that fails). The
interleaved order keeps that safe: a block cut short leaves a chained prefix whose index entries
exist, so the retry's lookup finds them chained and relinks only the rest.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

from logkit.chain import ChainedRecord, chain_id_of, lane_chain_id, link
from logkit.envelope import Event
from logkit.errors import LogkitError, SinkUnavailable

if TYPE_CHECKING:
    from logkit.sinks.firestore_audit import FirestoreAuditStore

MAX_APPEND_ATTEMPTS = 100  # lost compare-and-appends per block before giving up
MAX_BLOCK_RECORDS = 200  # two writes each: well under 500 writes per commit
MAX_BLOCK_BYTES = 4 * 1024 * 1024  # record + payload bytes per commit, under the 10 MiB limit
_MAX_PAUSE_S = 0.02  # cap of the random pause after a lost compare-and-append

Key = tuple[str, str]  # (tenant_id, event_id)


def new_writer_id() -> str:
    return uuid.uuid4().hex[:12]


def pause(attempt: int) -> None:
    """A short random pause after a lost compare-and-append, so contenders spread out."""
    time.sleep(random.uniform(0, min(_MAX_PAUSE_S, 0.001 * 2**attempt)))


def _lost(chain_id: str) -> SinkUnavailable:
    return SinkUnavailable(
        f"audit chain {chain_id!r}: lost the compare-and-append "
        f"{MAX_APPEND_ATTEMPTS} times in a row to concurrent writers"
    )


class RecordAppender:
    """One record per commit, the head read for every call (logkit's former algorithm)."""

    def __init__(self, store: FirestoreAuditStore) -> None:
        self.store = store

    def append(self, events: Sequence[Event]) -> list[Event]:
        from google.api_core.exceptions import AlreadyExists

        store = self.store
        known = store.lookup((e.tenant_id, e.event_id) for e in events)
        heads: dict[str, tuple[int, str]] = {}  # chain_id -> (seq, hash) of its head, as known
        chained: list[Event] = []
        for event in events:
            key = (event.tenant_id, event.event_id)
            if key in known:  # already chained (possibly earlier in this batch): idempotent
                chained.append(known[key])
                continue
            chain_id = chain_id_of(event.tenant_id, event.run_id)
            for attempt in range(MAX_APPEND_ATTEMPTS):
                head = heads.pop(chain_id, None)
                seq, prev_hash = head if head is not None else store.read_head(chain_id)
                record = link(event, seq=seq + 1, prev_hash=prev_hash)
                try:
                    store.commit(chain_id, [record])
                except AlreadyExists:  # nothing was written: which precondition failed?
                    found = store.lookup([key]).get(key)
                    if found is not None:  # a concurrent writer chained this event
                        known[key] = found
                        break
                    pause(attempt)  # another writer took seq + 1: read the head again
                    continue
                heads[chain_id] = (seq + 1, record.event.hash or "")
                known[key] = record.event
                break
            else:
                raise _lost(chain_id)
            chained.append(known[key])
        return chained


@dataclass(eq=False)
class _Waiter:
    """One event waiting for its chain's leader to commit it."""

    event: Event
    done: threading.Event = field(default_factory=threading.Event)
    result: Event | None = None
    error: LogkitError | None = None

    @property
    def key(self) -> Key:
        return (self.event.tenant_id, self.event.event_id)

    def finish(self, result: Event) -> None:
        self.result = result
        self.done.set()

    def fail(self, error: LogkitError) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()


class BlockAppender:
    """Blocks, group commit, cached heads and (optionally) lanes: see the module doc."""

    def __init__(self, store: FirestoreAuditStore, *, lanes: bool, wait_s: float) -> None:
        self.store = store
        self.writer = new_writer_id()
        self.lanes = lanes
        self.wait_s = wait_s  # how long a waiting thread trusts the leader
        self._lock = threading.Lock()
        self._queues: dict[str, list[_Waiter]] = {}
        self._leading: set[str] = set()
        self._heads: dict[str, tuple[int, str]] = {}  # only the chain's leader touches its head

    def chain_of(self, event: Event) -> str:
        if event.run_id is None and self.lanes:
            return lane_chain_id(event.tenant_id, self.writer)
        return chain_id_of(event.tenant_id, event.run_id)

    def append(self, events: Sequence[Event]) -> list[Event]:
        waiters: dict[Key, _Waiter] = {}
        for event in events:
            waiters.setdefault((event.tenant_id, event.event_id), _Waiter(event))
        by_chain: dict[str, list[_Waiter]] = {}
        for waiter in waiters.values():
            by_chain.setdefault(self.chain_of(waiter.event), []).append(waiter)
        for chain_id, queued in by_chain.items():
            self._submit(chain_id, queued)
        results = {key: self._wait(waiter) for key, waiter in waiters.items()}
        return [results[(e.tenant_id, e.event_id)] for e in events]

    # --- group commit -------------------------------------------------------------------------

    def _submit(self, chain_id: str, waiters: list[_Waiter]) -> None:
        with self._lock:
            self._queues.setdefault(chain_id, []).extend(waiters)
            lead = chain_id not in self._leading
            if lead:
                self._leading.add(chain_id)
        if lead:
            self._drain(chain_id)

    def _drain(self, chain_id: str) -> None:
        """Commit the chain's queue block by block until it is empty, then step down."""
        block: list[_Waiter] = []
        stepped_down = False
        try:
            while True:
                with self._lock:
                    block = self._take(chain_id)
                    if not block:
                        self._leading.discard(chain_id)
                        stepped_down = True
                        return
                try:
                    self._commit_block(chain_id, block)
                except Exception as exc:
                    error = _as_logkit_error(exc)
                    for waiter in block:
                        waiter.fail(error)
        finally:
            if not stepped_down:  # left by an exception we could not handle (an interrupt)
                with self._lock:
                    orphans = [*block, *self._queues.pop(chain_id, [])]
                    self._leading.discard(chain_id)
                for waiter in orphans:
                    waiter.fail(SinkUnavailable(f"audit chain {chain_id!r}: append interrupted"))

    def _take(self, chain_id: str) -> list[_Waiter]:
        queue = self._queues.get(chain_id, [])
        size, count = 0, 0
        for waiter in queue[:MAX_BLOCK_RECORDS]:
            # The payload's JSON and a generous allowance for the rest of the record.
            size += len(orjson.dumps(waiter.event.payload)) + 4096
            if count and size > MAX_BLOCK_BYTES:
                break
            count += 1
        block, queue[:count] = queue[:count], []
        return block

    def _wait(self, waiter: _Waiter) -> Event:
        if not waiter.done.wait(self.wait_s):
            waiter.fail(SinkUnavailable("audit append: no answer from the chain's writer in time"))
        if waiter.error is not None:
            raise type(waiter.error)(str(waiter.error)) from waiter.error
        assert waiter.result is not None
        return waiter.result

    # --- one block ----------------------------------------------------------------------------

    def _commit_block(self, chain_id: str, block: list[_Waiter]) -> None:
        """Chain the block's events: one lookup of the whole block (those chained already are
        answered from the store), then one commit, repeated only if another writer got there
        first. The same event queued by two callers is chained once and answers both."""
        firsts: dict[Key, _Waiter] = {}
        for waiter in block:
            firsts.setdefault(waiter.key, waiter)
        found = self.store.lookup(firsts)
        fresh = [w for w in firsts.values() if w.key not in found]
        try:
            if fresh:
                self._place(chain_id, fresh)
        finally:
            for waiter in block:
                result = found.get(waiter.key) or firsts[waiter.key].result
                if result is not None:
                    waiter.finish(result)

    def _place(self, chain_id: str, block: list[_Waiter]) -> None:
        from google.api_core.exceptions import AlreadyExists

        store = self.store
        for attempt in range(MAX_APPEND_ATTEMPTS):
            head = self._heads.pop(chain_id, None) or store.read_head(chain_id)
            records = self._link(chain_id, head, [w.event for w in block])
            try:
                store.commit(chain_id, records)
            except AlreadyExists:  # nothing was written (on Firestore): who got there first?
                found = store.lookup(w.key for w in block)
                for waiter in block:
                    if waiter.key in found:  # chained by a concurrent writer (or, on the
                        waiter.finish(found[waiter.key])  # emulator, by our cut-short block)
                block = [w for w in block if not w.done.is_set()]
                if not block:
                    return
                pause(attempt)  # another writer took the next seq: read the head again
                continue
            last = records[-1].event
            self._heads[chain_id] = (last.seq or 0, last.hash or "")
            for waiter, record in zip(block, records, strict=True):
                waiter.finish(record.event)
            return
        raise _lost(chain_id)

    @staticmethod
    def _link(chain_id: str, head: tuple[int, str], events: list[Event]) -> list[ChainedRecord]:
        seq, prev_hash = head
        records = []
        for event in events:
            seq += 1
            record = link(event, seq=seq, prev_hash=prev_hash, chain_id=chain_id)
            prev_hash = record.event.hash or ""
            records.append(record)
        return records


def _as_logkit_error(exc: Exception) -> LogkitError:
    """The error a waiting thread re-raises: a driver error mapped, a logkit error as is."""
    if isinstance(exc, LogkitError):
        return exc
    from logkit.sinks.firestore import _translate

    mapped = _translate("append", exc)
    if mapped is None:
        return SinkUnavailable(f"audit append failed ({type(exc).__name__})")
    return mapped
