"""In-memory backend, for tests only: refused outside ``dev`` by configure and check-sinks."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import ClassVar

from logkit.envelope import Event
from logkit.sinks import cursor
from logkit.sinks.protocols import Page, Query, Role, Selector, clamp_limit, matches, selected


class MemoryBackend:
    scheme: ClassVar[str] = "memory"
    durable: ClassVar[bool] = False
    roles: ClassVar[frozenset[Role]] = frozenset(Role)

    def __init__(self) -> None:
        self._stores = {role: MemoryStore() for role in Role}

    @classmethod
    def from_uri(cls, uri: str) -> MemoryBackend:
        return cls()

    def store(self, role: Role) -> MemoryStore:
        return self._stores[Role(role)]

    def check_schema(self, *, create: bool = False) -> list[str]:
        return []

    def describe(self) -> str:
        return "memory (tests only, not durable)"

    def close(self) -> None:
        pass


class MemoryStore:
    def __init__(self) -> None:
        self._events: dict[str, Event] = {}
        self._lock = threading.Lock()

    def write(self, events: Sequence[Event]) -> None:
        with self._lock:
            for event in events:
                self._events.setdefault(event.event_id, event)

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
        return len(doomed)

    def all(self) -> list[Event]:
        """Every stored event in (ts, event_id) order (test helper)."""
        with self._lock:
            return sorted(self._events.values(), key=lambda e: (e.ts, e.event_id))
