"""In-memory backend, for tests only: refused outside ``dev`` by configure and check-sinks."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import ClassVar

from logkit.chain import GENESIS, chain_id_of, event_from_bytes, link
from logkit.envelope import Event
from logkit.errors import SinkWriteError
from logkit.sinks import cursor
from logkit.sinks.protocols import (
    FeedRow,
    Page,
    Query,
    Role,
    Selector,
    StoredRecord,
    clamp_limit,
    matches,
    query_columns,
    selected,
)


class MemoryBackend:
    scheme: ClassVar[str] = "memory"
    durable: ClassVar[bool] = False
    roles: ClassVar[frozenset[Role]] = frozenset(Role)
    chains: ClassVar[bool] = True  # keeps an audit chain of record (compare-and-append)

    def __init__(self) -> None:
        self._stores: dict[Role, MemoryStore | MemoryAuditStore] = {
            Role.TIMELINE: MemoryStore(),
            Role.COST: MemoryStore(),
            Role.AUDIT: MemoryAuditStore(),
        }

    @classmethod
    def from_uri(cls, uri: str) -> MemoryBackend:
        return cls()

    def store(self, role: Role) -> MemoryStore | MemoryAuditStore:
        return self._stores[Role(role)]

    def check_schema(self, *, create: bool = False) -> list[str]:
        return []

    def describe(self) -> str:
        return "memory (tests only, not durable)"

    def close(self) -> None:
        pass


class MemoryStore:
    def __init__(self) -> None:
        self._events: dict[tuple[str, str], Event] = {}  # by (tenant_id, event_id)
        # The feed: per tenant, each stored event_id's position, in the order of storing.
        self._positions: dict[str, dict[str, int]] = {}
        self._newest: dict[str, int] = {}  # per tenant, never lowered by a delete
        self._feed_id = uuid.uuid4().hex[:12]
        self._lock = threading.Lock()

    def write(self, events: Sequence[Event]) -> None:
        with self._lock:
            for event in events:
                key = (event.tenant_id, event.event_id)
                if key not in self._events:
                    self._events[key] = event
                    newest = self._newest[event.tenant_id] = self._newest.get(key[0], 0) + 1
                    self._positions.setdefault(key[0], {})[key[1]] = newest

    def query(self, query: Query) -> Page:
        position = cursor.decode(query.cursor) if query.cursor else None
        with self._lock:
            hits = [e for e in self._events.values() if matches(e, query)]
        hits.sort(key=lambda e: (e.ts, e.event_id))
        if position is not None:
            hits = [e for e in hits if cursor.after(e, position)]
        limit = clamp_limit(query.limit)
        page = hits[:limit]
        return Page(page, cursor.encode(page[-1]) if len(hits) > limit else None)

    def delete(self, selector: Selector) -> int:
        with self._lock:
            doomed = [k for k, e in self._events.items() if selected(e, selector)]
            for key in doomed:
                del self._events[key]
                del self._positions[key[0]][key[1]]
        return len(doomed)

    def count(self, selector: Selector) -> int:
        with self._lock:
            return sum(selected(e, selector) for e in self._events.values())

    def tenant_ids(self) -> list[str]:
        with self._lock:
            return sorted({tenant for tenant, _ in self._events})

    def feed_id(self) -> str:
        return self._feed_id

    def feed_bounds(self, tenant_id: str) -> tuple[int, int]:
        with self._lock:
            newest = self._newest.get(tenant_id, 0)
            # dicts keep insertion order, and positions are assigned in insertion order
            oldest = next(iter(self._positions.get(tenant_id, {}).values()), newest + 1)
            return oldest, newest

    def feed_after(
        self,
        tenant_id: str,
        position: int,
        *,
        run_id: str | None = None,
        event_types: tuple[str, ...] | None = None,
        limit: int = 1000,
    ) -> tuple[list[FeedRow], int]:
        limit = clamp_limit(limit)
        rows: list[FeedRow] = []
        with self._lock:
            scanned = max(self._newest.get(tenant_id, 0), position)
            for event_id, pos in self._positions.get(tenant_id, {}).items():
                event = self._events[(tenant_id, event_id)]
                if pos <= position or (run_id is not None and event.run_id != run_id):
                    continue
                if event_types is not None and event.event_type.value not in event_types:
                    continue
                rows.append(FeedRow(pos, tenant_id, event.to_json()))
                if len(rows) == limit:
                    scanned = pos
                    break
        return rows, scanned


class MemoryAuditStore:
    """The audit chain in memory (tests and dev): the same semantics as the SQLite store."""

    def __init__(self) -> None:
        self._chains: dict[str, list[StoredRecord]] = {}
        self._by_event: dict[tuple[str, str], StoredRecord] = {}
        self._checkpoints: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def append(self, events: Sequence[Event]) -> list[Event]:
        chained = []
        with self._lock:  # compare-and-append: one appender at a time
            for event in events:
                known = self._by_event.get((event.tenant_id, event.event_id))
                if known is not None:
                    chained.append(_rebuild(known))
                    continue
                chain_id = chain_id_of(event.tenant_id, event.run_id)
                records = self._chains.setdefault(chain_id, [])
                head = records[-1] if records else None
                link_ = link(event, seq=len(records), prev_hash=head.hash if head else GENESIS)
                e = link_.event
                stored = StoredRecord(
                    chain_id=chain_id,
                    seq=len(records),
                    hash=e.hash or "",
                    record_bytes=link_.record_bytes,
                    payload_bytes=link_.payload_bytes,
                    payload_salt=e.payload_salt,
                    **query_columns(e),
                )
                records.append(stored)
                self._by_event[(e.tenant_id, e.event_id)] = stored
                chained.append(e)
        return chained

    def write(self, events: Sequence[Event]) -> None:
        self.append(events)

    def query(self, query: Query) -> Page:
        with self._lock:
            events = [_rebuild(r) for records in self._chains.values() for r in records]
        view = MemoryStore()
        view.write(events)
        return view.query(query)

    def delete(self, selector: Selector) -> int:
        raise SinkWriteError("audit records are append-only: erase payloads, never delete")

    def count(self, selector: Selector) -> int:
        with self._lock:
            return sum(selected(_rebuild(r), selector) for r in self._by_event.values())

    def tenant_ids(self) -> list[str]:
        with self._lock:
            return sorted({tenant for tenant, _ in self._by_event})

    def erase_payloads(self, selector: Selector, *, dry_run: bool = False) -> int:
        with self._lock:
            doomed = [
                r
                for r in self._by_event.values()
                if r.payload_bytes is not None and selected(_rebuild(r), selector)
            ]
            if not dry_run:
                for record in doomed:
                    erased = record._replace(payload_bytes=None, payload_salt=None)
                    self._chains[record.chain_id][record.seq] = erased
                    self._by_event[(record.tenant_id, record.event_id)] = erased
        return len(doomed)

    def chain_ids(self, tenant_id: str, run_id: str | None = None) -> list[str]:
        with self._lock:
            ids = [c for c, rs in self._chains.items() if rs and rs[0].tenant_id == tenant_id]
        if run_id is not None:
            ids = [c for c in ids if c == chain_id_of(tenant_id, run_id)]
        return sorted(ids)

    def records(
        self, chain_id: str, *, after_seq: int = -1, limit: int = 1000
    ) -> list[StoredRecord]:
        with self._lock:
            records = list(self._chains.get(chain_id, []))
        return [r for r in records if r.seq > after_seq][:limit]

    def head(self, chain_id: str) -> tuple[int, str] | None:
        with self._lock:
            records = self._chains.get(chain_id)
            return (records[-1].seq, records[-1].hash) if records else None

    def put_checkpoint(self, chain_id: str, seq: int, document: str) -> None:
        with self._lock:
            self._checkpoints.setdefault(chain_id, []).append(document)

    def checkpoints(self, chain_id: str) -> list[str]:
        with self._lock:
            return list(self._checkpoints.get(chain_id, []))


def _rebuild(record: StoredRecord) -> Event:
    return event_from_bytes(
        record.record_bytes, record.payload_bytes, record.payload_salt, record.hash
    )
