"""The store roles as small Protocols, and the value types they take and return."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

from logkit.envelope import Event
from logkit.sinks.cursor import to_micros


class Role(StrEnum):
    TIMELINE = "timeline"
    AUDIT = "audit"
    COST = "cost"


@dataclass(frozen=True, slots=True)
class Query:
    """Events of one tenant, optionally narrowed; always ordered by (ts, event_id)."""

    tenant_id: str
    run_id: str | None = None
    user_id: str | None = None
    event_types: tuple[str, ...] | None = None
    since: dt.datetime | None = None  # inclusive
    until: dt.datetime | None = None  # exclusive
    limit: int = 500
    cursor: str | None = None  # opaque, from a previous Page


@dataclass(frozen=True, slots=True)
class Page:
    events: list[Event]
    next_cursor: str | None  # None: nothing after this page


@dataclass(frozen=True, slots=True)
class Selector:
    """Which events a delete, count or erasure touches: always one tenant, narrowed by the rest.

    ``app_id``, ``other_apps`` and ``storage_classes`` are what retention rules are written in
    (per app and storage class); stores without columns for them filter on the stored body.
    """

    tenant_id: str
    user_id: str | None = None
    run_id: str | None = None
    event_ids: tuple[str, ...] | None = None
    before: dt.datetime | None = None  # ts strictly before
    app_id: str | None = None
    other_apps: tuple[str, ...] = ()  # every app except these (apps with rules of their own)
    storage_classes: tuple[str, ...] | None = None

    @property
    def by_body(self) -> bool:
        """Whether the selector reads fields only the stored body holds (not a query column)."""
        return self.app_id is not None or bool(self.other_apps) or self.storage_classes is not None


@runtime_checkable
class EventStore(Protocol):
    """One role's events on one backend. Writing an event_id twice stores it once."""

    def write(self, events: Sequence[Event]) -> None:
        """Store ``events`` durably; idempotent on ``event_id``. Raises SinkError subclasses."""
        ...

    def query(self, query: Query) -> Page:
        """One page of matching events in (ts, event_id) order."""
        ...

    def delete(self, selector: Selector) -> int:
        """Remove matching events; returns how many were removed."""
        ...

    def count(self, selector: Selector) -> int:
        """How many events ``delete`` would remove (a dry run changes nothing)."""
        ...

    def tenant_ids(self) -> list[str]:
        """Every tenant with events in this store, sorted (retention walks them)."""
        ...


ROW_EVENT = "event"
ROW_EPHEMERAL = "ephemeral"  # a stream-class event: live only, never stored, never replayed
ROW_GAP = "gap"  # events of the tenant are missing from the feed here (its writer dropped them)


class FeedRow(NamedTuple):
    """One stored event at its position in its tenant's feed: what the live stream sends."""

    position: int  # in the tenant's own position space
    tenant_id: str
    body: str  # the event's JSON as stored (already through the redaction gate)
    # The event's (ts, event_id) as the stores' paging cursor (logkit.sinks.cursor), when the
    # feed is not the store: a stream cursor that outlives the feed's window resumes from the
    # timeline store with it. None from a feed that is the store (SQLite, memory).
    hint: str | None = None
    kind: str = ROW_EVENT


@runtime_checkable
class Feed(Protocol):
    """A store that numbers what it stores, per tenant: the durable cursor of the live stream.

    Every tenant has its own position space (1, 2, 3, ... in the order its events were
    stored), so a tenant's positions and bounds say nothing about other tenants: not their
    volume, not their retention. Positions only grow, are never reused (not even after the
    events at them are removed), and a reader never sees a position appear below one it has
    already seen. ``feed_id`` names the store's position spaces, so a cursor from another
    database (or a recreated one) is recognised as unknown rather than silently resumed at a
    wrong place.
    """

    def feed_id(self) -> str:
        """A stable identity of this store's position spaces."""
        ...

    def feed_bounds(self, tenant_id: str) -> tuple[int, int]:
        """(oldest, newest) of one tenant's feed.

        ``newest`` is the newest position ever assigned to the tenant (0 when none).
        ``oldest`` is the oldest position still stored (``newest + 1`` when none is): a cursor
        before ``oldest - 1`` has lost events to retention or erasure. A store whose positions
        are not contiguous reports one past the newest position removed instead.
        """
        ...

    def feed_after(
        self,
        tenant_id: str,
        position: int,
        *,
        run_id: str | None = None,
        event_types: tuple[str, ...] | None = None,
        limit: int = 1000,
    ) -> tuple[list[FeedRow], int]:
        """The tenant's rows after ``position`` in position order, narrowed by the filters.

        Returns the rows and the position scanned up to: the filters may skip rows, and a
        reader resumes from the scanned position rather than re-reading the skipped ones.
        At most ``limit`` rows are returned; with fewer, everything up to the tenant's newest
        position was scanned.
        """
        ...


class Tail(Protocol):
    """A blocking reader of several tenants' feeds at once (one per stream server)."""

    def wait(
        self, heads: Mapping[str, int], *, limit: int, timeout_s: float
    ) -> dict[str, list[FeedRow]]:
        """Rows after each tenant's head, at most ``limit`` per tenant, in position order;
        blocks until there is one or ``timeout_s`` passed (then ``{}``), or :meth:`interrupt`.

        Returns stream-class events (``kind="ephemeral"``) and gap markers too.
        """
        ...

    def interrupt(self) -> None:
        """Make a ``wait`` in progress (or the next one) return at once. Any thread may call."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class LiveFeed(Feed, Protocol):
    """A feed of its own beside the stores (Redis Streams), written by every writing process.

    It keeps a window of each tenant's events (trimmed by length and age), carries stream-class
    events and gap markers beside stored events, and is tailed by blocking reads instead of
    polling. Rows carry the event's store ``hint``, so a cursor older than the window resumes
    from the timeline store, which stays the source of truth.
    """

    def append(
        self, events: Sequence[Event], gaps: Mapping[str, tuple[int, int]] | None = None
    ) -> None:
        """Append ``events`` to their tenants' feeds; an event_id the tenant's window holds is
        not appended again. ``gaps``: per tenant, (how many events were dropped before these,
        the earliest ts of them in microseconds): a gap marker goes first, its body
        ``{"dropped": n, "since_us": ts}``. Raises SinkUnavailable / SinkWriteError."""
        ...

    def feed_positions(self, tenant_id: str, event_ids: Sequence[str]) -> dict[str, int]:
        """The positions of those of ``event_ids`` the tenant's window still holds."""
        ...

    def tail(self) -> Tail:
        """A new blocking reader (its own connection)."""
        ...

    def delete(self, selector: Selector) -> int:
        """Remove the selected events from the window (DSAR erasure reaches the feed too)."""
        ...

    def count(self, selector: Selector) -> int:
        """How many events ``delete`` would remove."""
        ...

    def describe(self) -> str:
        """A one-line, credential-free description."""
        ...

    def close(self) -> None: ...


COLUMN_NAMES = ("event_id", "tenant_id", "run_id", "user_id", "event_type", "ts_us")


def query_columns(event: Event) -> dict[str, Any]:
    """The columns every store keeps beside an event for its queries (COLUMN_NAMES)."""
    return {
        "event_id": event.event_id,
        "tenant_id": event.tenant_id,
        "run_id": event.run_id,
        "user_id": event.user_id,
        "event_type": event.event_type.value,
        "ts_us": to_micros(event.ts),
    }


class StoredRecord(NamedTuple):
    """One audit record as stored: the bytes its hash and digest cover, for verification.

    A named tuple in the column order stores read them in, so a row becomes a record without
    per-field work: verification touches a million of these.
    """

    chain_id: str  # the chain the store files it under
    seq: int  # the position the store files it at
    hash: str
    record_bytes: bytes  # JCS of the record without hash, payload, payload_salt
    payload_bytes: bytes | None  # JCS of the payload; None once erased
    payload_salt: str | None  # None once erased
    # The store's own query columns, which must say what the hashed record says.
    event_id: str
    tenant_id: str
    run_id: str | None
    user_id: str | None
    event_type: str
    ts_us: int

    @property
    def columns(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in COLUMN_NAMES}


@runtime_checkable
class AuditStore(EventStore, Protocol):
    """The audit chain of record: compare-and-append, never update or delete.

    ``write`` chains events like ``append`` (so the dispatcher can replay into it); ``delete``
    refuses (erasure of payloads is its own operation).
    """

    def append(self, events: Sequence[Event]) -> list[Event]:
        """Chain ``events`` in order, each at the head of its (tenant, run) chain.

        Concurrent appenders never fork a chain or reuse a seq; an event_id already chained is
        not chained again (its stored record is returned).
        """
        ...

    def chain_ids(self, tenant_id: str, run_id: str | None = None) -> list[str]:
        """The tenant's chains (just the run's chain when ``run_id`` is given), sorted."""
        ...

    def head(self, chain_id: str) -> tuple[int, str] | None:
        """(seq, hash) of the chain's last record, None for an empty chain."""
        ...

    def records(
        self, chain_id: str, *, after_seq: int = -1, limit: int = 1000
    ) -> list[StoredRecord]:
        """Stored records of one chain with seq > ``after_seq``, in seq order."""
        ...

    def erase_payloads(self, selector: Selector, *, dry_run: bool = False) -> int:
        """Erase payload and salt of matching records (DSAR, audit retention); keep the rest.

        The hashed record and its ``payload_digest`` stay, so the chain still verifies and the
        digest confirms nothing without the salt. Returns how many records were (with
        ``dry_run``: would be) erased; records erased before are not counted again.
        """
        ...

    def put_checkpoint(self, chain_id: str, seq: int, document: str) -> None:
        """Keep a signed checkpoint (a JSON document) beside the chain."""
        ...

    def checkpoints(self, chain_id: str) -> list[str]:
        """The chain's stored checkpoint documents, oldest first."""
        ...


class Backend(Protocol):
    """A storage backend: built from a URI, it hands out one store per role it supports."""

    scheme: ClassVar[str]
    durable: ClassVar[bool]
    roles: ClassVar[frozenset[Role]]
    chains: ClassVar[bool]  # can be the audit chain of record (compare-and-append)

    @classmethod
    def from_uri(cls, uri: str) -> Backend: ...

    def store(self, role: Role) -> EventStore: ...

    def check_schema(self, *, create: bool = False) -> list[str]:
        """Problems with the backend's tables/collections (created when ``create``)."""
        ...

    def describe(self) -> str:
        """A one-line, credential-free description for tables and errors."""
        ...

    def close(self) -> None: ...


AUDIT_NEEDS_CHAINS = (
    "the audit role needs a chain of record with compare-and-append (sqlite, firestore); "
    "{scheme} can hold an audit mirror, not the chain"
)

DEFAULT_QUERY_LIMIT = 500
MAX_QUERY_LIMIT = 10_000


def clamp_limit(limit: int) -> int:
    return max(1, min(limit, MAX_QUERY_LIMIT))


def matches(event: Event, query: Query) -> bool:
    """The reference semantics of a Query, for backends that filter in Python."""
    return (
        event.tenant_id == query.tenant_id
        and (query.run_id is None or event.run_id == query.run_id)
        and (query.user_id is None or event.user_id == query.user_id)
        and (query.event_types is None or event.event_type.value in query.event_types)
        and (query.since is None or event.ts >= query.since)
        and (query.until is None or event.ts < query.until)
    )


def selected(event: Event, selector: Selector) -> bool:
    """The reference semantics of a Selector, for backends that filter in Python."""
    return (
        event.tenant_id == selector.tenant_id
        and (selector.user_id is None or event.user_id == selector.user_id)
        and (selector.run_id is None or event.run_id == selector.run_id)
        and (selector.event_ids is None or event.event_id in selector.event_ids)
        and (selector.before is None or event.ts < selector.before)
        and body_selected(event.app_id, event.storage_class, selector)
    )


def body_selected(app_id: object, storage_class: object, selector: Selector) -> bool:
    """The Selector's body-only conditions (app, storage class) on an event's values."""
    return (
        (selector.app_id is None or app_id == selector.app_id)
        and app_id not in selector.other_apps
        and (selector.storage_classes is None or storage_class in selector.storage_classes)
    )


ROLE_TABLES: dict[Role, str] = {
    Role.TIMELINE: "timeline_events",
    Role.AUDIT: "audit_events",
    Role.COST: "cost_events",
}
"""Table (SQLite, BigQuery) or collection (Firestore) name of each role."""


def sequence(events: Sequence[Event]) -> list[Event]:
    """One event per (tenant_id, event_id), last write wins, order kept.

    Idempotence is per tenant: another tenant's event that happens to reuse an id is its own.
    """
    unique: dict[tuple[str, str], Event] = {}
    for event in events:
        unique[(event.tenant_id, event.event_id)] = event
    return list(unique.values())
