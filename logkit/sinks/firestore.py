"""Google Firestore backend: all three roles, one collection per tenant and role.

URI: ``firestore://PROJECT?root=logkit&database=(default)&timeout=10&lanes=writer`` (every
parameter optional; ``timeout`` is seconds per RPC; ``lanes=writer`` spreads each tenant's
run-less audit chain over one lane per writer, and ``append=record`` selects the former
one-record-per-commit audit append: see logkit.sinks.firestore_append). With
``FIRESTORE_EMULATOR_HOST`` set, the client talks to that emulator with anonymous credentials;
otherwise Application Default Credentials are used.

Layout (timeline and cost): ``{root}/{tenant_id}/{role collection}/{event_id}``, i.e.
``collection(root).document(tenant_id).collection("timeline_events").document(event_id)``,
with the role collections of ``ROLE_TABLES``. A tenant is one collection per role, so reads and
deletes never need collection-group queries, and the document id makes writes idempotent.
Each document has top-level fields only: ``event_id``, ``tenant_id``, ``run_id``, ``user_id``,
``event_type``, ``ts_us`` (int, microseconds since the epoch) and ``body`` (the event's JSON,
the only thing reads rebuild the event from). The audit role is a hash chain of record instead,
with its own layout and compare-and-append: see logkit.sinks.firestore_audit.

Queries are equality filters on ``run_id`` / ``user_id`` / ``event_type`` (``in``) plus a range
on ``ts_us``, ordered by ``ts_us, event_id``; each combination needs a composite index in real
Firestore: ``FIRESTORE_INDEXES`` lists them in the ``firestore.indexes.json`` shape (deploy with
``firebase deploy --only firestore:indexes``). It also exempts ``body`` from single-field
indexing: it is never queried and indexing large strings only costs write time and storage.

Paging is keyset paging on ``(ts_us, event_id)``, never Firestore cursors or offsets (which the
emulator ignores): after a position ``(T, E)``, first the rows with ``ts_us == T and event_id > E``,
then those with ``ts_us > T``. This stays correct however many events share one timestamp.

No retries here: the dispatcher retries ``SinkUnavailable`` with backoff and spools, so each RPC
is tried once and bounded by ``timeout``.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import orjson

from logkit.envelope import Event
from logkit.errors import ConfigError, SinkError, SinkUnavailable, SinkWriteError
from logkit.sinks import cursor
from logkit.sinks.protocols import (
    ROLE_TABLES,
    Page,
    Query,
    Role,
    Selector,
    body_selected,
    clamp_limit,
    query_columns,
    selected,
    sequence,
)

if TYPE_CHECKING:
    from logkit.sinks.firestore_audit import FirestoreAuditStore

T = TypeVar("T")

DEFAULT_ROOT = "logkit"
DEFAULT_DATABASE = "(default)"
DEFAULT_TIMEOUT_S = 10.0
MAX_BATCH_WRITES = 500  # Firestore's limit of writes per commit
MAX_BATCH_BYTES = 8 * 1024 * 1024  # bodies per commit: under the 10 MiB request limit
MAX_IN_VALUES = 30  # Firestore's limit of values in one `in` filter
FETCH_SIZE = 1000  # documents per RunQuery, so that one RPC stays well inside the timeout

_EQUALITY_FIELDS = ("run_id", "user_id", "event_type")
_ORDER = ("ts_us", "event_id")

FIRESTORE_INDEXES: dict[str, list[dict[str, Any]]] = {
    "indexes": [
        {
            "collectionGroup": collection,
            "queryScope": "COLLECTION",
            "fields": [{"fieldPath": f, "order": "ASCENDING"} for f in (*equal, *_ORDER)],
        }
        for collection in ROLE_TABLES.values()
        for size in range(len(_EQUALITY_FIELDS) + 1)
        for equal in itertools.combinations(_EQUALITY_FIELDS, size)
    ],
    "fieldOverrides": [
        {"collectionGroup": collection, "fieldPath": "body", "indexes": []}
        for collection in ROLE_TABLES.values()
    ],
}
"""Composite indexes real Firestore needs (``firestore.indexes.json``); the emulator needs none."""

_PROJECT = re.compile(r"^(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_RULES = {  # what each URI parameter must look like, and how to say so
    "root": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$"), "letters, digits, _ and -"),
    "database": (
        re.compile(r"^(?:\(default\)|[a-z][a-z0-9-]{2,61}[a-z0-9])$"),
        "(default) or a Firestore database id",
    ),
    "lanes": (re.compile(r"^(?:off|writer)$"), "off or writer"),
    "append": (re.compile(r"^(?:block|record)$"), "block or record"),
}
_EXAMPLE = "firestore://my-project?root=logkit"


@dataclass(frozen=True, slots=True)
class Settings:
    project: str
    root: str = DEFAULT_ROOT
    database: str = DEFAULT_DATABASE
    timeout: float = DEFAULT_TIMEOUT_S
    lanes: bool = False  # run-less audit events on a lane per writer (firestore_append)
    append: str = "block"  # block | record


def parse_uri(uri: str) -> Settings:
    from urllib.parse import parse_qsl

    scheme, sep, rest = uri.partition("://")
    project, _, query = rest.partition("?")
    # Errors quote the URI, but never a user:password@ someone may have put in it.
    uri = re.sub(r"//[^/?]*@", "//***@", uri)
    if scheme.lower() != "firestore" or not sep:
        raise ConfigError(f"a Firestore URI looks like {_EXAMPLE}, got {uri!r}")
    if not _PROJECT.fullmatch(project):
        raise ConfigError(f"{uri!r} does not name a Google Cloud project id (e.g. {_EXAMPLE})")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise ConfigError(f"{uri!r}: parameters must look like ?root=logkit&timeout=10") from exc
    params = dict(pairs)
    if len(params) < len(pairs) or not params.keys() <= set(_RULES) | {"timeout"}:
        raise ConfigError(
            f"{uri!r}: the parameters are root, database, timeout, lanes and append, once each"
        )
    for key, (pattern, rule) in _RULES.items():
        if key in params and not pattern.fullmatch(params[key]):
            raise ConfigError(f"{uri!r}: {key} must be {rule}")
    root, database = params.get("root", DEFAULT_ROOT), params.get("database", DEFAULT_DATABASE)
    lanes, append = params.get("lanes") == "writer", params.get("append", "block")
    if lanes and append == "record":
        raise ConfigError(f"{uri!r}: lanes need the block append (drop append=record)")
    return Settings(project, root, database, _timeout(uri, params.get("timeout")), lanes, append)


def _timeout(uri: str, raw: str | None) -> float:
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{uri!r}: timeout must be a positive number of seconds")
    return value


def is_document_id(value: str) -> bool:
    """Whether Firestore accepts ``value`` as one document id (a '/' would nest the path)."""
    return (
        bool(value)
        and "/" not in value
        and value not in (".", "..")
        and not (value.startswith("__") and value.endswith("__"))
        and len(value.encode()) <= 1500
    )


# Credentials count as unavailable (see logkit.errors): the dispatcher spools and retries
# rather than burying events that a fixed credential would have let through.
_UNAVAILABLE = (
    "ServiceUnavailable DeadlineExceeded InternalServerError ResourceExhausted Aborted Cancelled"
    " Unauthenticated PermissionDenied RetryError"
)


def _translate(action: str, exc: Exception) -> SinkError | None:
    """The logkit error for a client exception, or None for anything that is not the client's."""
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    from logkit.sinks.credentials import credentials_problem

    name = type(exc).__name__
    problem = credentials_problem(exc)
    if problem is not None:
        return SinkUnavailable(f"Firestore {action} failed: {problem}")
    unavailable = (auth.GoogleAuthError, *(getattr(api, n) for n in _UNAVAILABLE.split()))
    if isinstance(exc, unavailable):
        return SinkUnavailable(
            f"Firestore {action} failed: unreachable, overloaded or not authorised ({name})"
        )
    if isinstance(exc, api.FailedPrecondition):
        return SinkWriteError(
            f"Firestore refused the {action} ({name}): a composite index is "
            "probably missing; deploy logkit.sinks.firestore.FIRESTORE_INDEXES"
        )
    if isinstance(exc, api.GoogleAPICallError):
        return SinkWriteError(f"Firestore refused the {action} ({name})")
    return None


def mapped(fn: Callable[..., T]) -> Callable[..., T]:
    """Map client errors onto logkit's tree at the boundary."""

    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except SinkError:
            raise
        except Exception as exc:
            error = _translate(fn.__name__.replace("_", " "), exc)
            if error is None:
                raise
            raise error from exc

    return functools.wraps(fn)(wrapper)


class FirestoreBackend:
    scheme: ClassVar[str] = "firestore"
    durable: ClassVar[bool] = True
    roles: ClassVar[frozenset[Role]] = frozenset(Role)
    chains: ClassVar[bool] = True  # keeps an audit chain of record (compare-and-append)

    def __init__(self, settings: Settings) -> None:
        try:
            from google.api_core.retry import Retry
            from google.cloud import firestore  # noqa: F401 - fail here, not on first write
        except ImportError as exc:
            raise ConfigError(
                "the Firestore backend needs google-cloud-firestore: pip install 'logkit[gcp]'"
            ) from exc
        self.settings = settings
        # retry=None would crash Query.stream on a mid-stream error; a never-true predicate
        # means "try once" everywhere.
        self.rpc: dict[str, Any] = {
            "retry": Retry(predicate=lambda _exc: False),
            "timeout": settings.timeout,
        }
        self._client: Any = None
        self._lock = threading.Lock()
        self._marked: set[str] = set()  # tenants whose marker document this process wrote
        self._audit: FirestoreAuditStore | None = None

    @classmethod
    def from_uri(cls, uri: str) -> FirestoreBackend:
        return cls(parse_uri(uri))

    def describe(self) -> str:
        s = self.settings
        where = f" via emulator {os.environ['FIRESTORE_EMULATOR_HOST']}" if _emulated() else ""
        return f"firestore project {s.project} database {s.database} root {s.root}{where}"

    def client(self) -> Any:
        """The shared client, created on first use (it finds credentials then, not at configure)."""
        with self._lock:
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def _new_client(self) -> Any:
        from google.cloud import firestore

        s = self.settings
        credentials = None
        if _emulated():
            from google.auth.credentials import AnonymousCredentials

            credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        return firestore.Client(project=s.project, database=s.database, credentials=credentials)

    def tenant(self, tenant_id: str, collection: str) -> Any:
        return (
            self.client().collection(self.settings.root).document(tenant_id).collection(collection)
        )

    def mark_tenants(self, tenant_ids: Iterable[str]) -> None:
        """Write ``{root}/{tenant_id}`` (``{tenant_id}``) before a tenant's first events.

        Retention walks every tenant, and the root's documents are the only way to list them
        without a collection-group query or ListDocuments (the emulator has neither). Written
        before the events, so a tenant with events always has its marker; once per process.
        """
        fresh = sorted(set(tenant_ids) - self._marked)
        if not fresh:
            return
        writes = self.client().batch()
        root = self.client().collection(self.settings.root)
        for tenant_id in fresh:
            writes.set(root.document(tenant_id), {"tenant_id": tenant_id})
        writes.commit(**self.rpc)
        self._marked.update(fresh)

    @mapped
    def tenant_ids(self) -> list[str]:
        root = self.client().collection(self.settings.root)
        return sorted(snap.id for snap in root.select(["tenant_id"]).stream(**self.rpc))

    def store(self, role: Role) -> FirestoreStore | FirestoreAuditStore:
        if Role(role) is Role.AUDIT:
            from logkit.sinks.firestore_audit import FirestoreAuditStore  # imports this module

            # One per backend: its appender's group commit and cached heads are per writer.
            with self._lock:
                if self._audit is None:
                    self._audit = FirestoreAuditStore(self)
                return self._audit
        return FirestoreStore(self, ROLE_TABLES[Role(role)])

    @mapped
    def check_schema(self, *, create: bool = False) -> list[str]:
        """Firestore has no schema: one cheap query proves the database answers in time.

        Nothing to create either: indexes are deployed from FIRESTORE_INDEXES, not by a client.
        """
        list(self.client().collection(self.settings.root).limit(1).stream(**self.rpc))
        return []

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        # Client.close() only closes HTTP sessions; the gRPC channel lives on the transport.
        for closable in (client, getattr(client, "_transport", None)):
            if closable is not None:
                closable.close()


def _emulated() -> bool:
    return bool(os.environ.get("FIRESTORE_EMULATOR_HOST"))


def _document(event: Event) -> dict[str, Any]:
    return {**query_columns(event), "body": event.model_dump_json()}


def _batches(events: Iterable[Event]) -> Iterator[list[dict[str, Any]]]:
    """Commits of at most MAX_BATCH_WRITES documents and MAX_BATCH_BYTES of bodies."""
    batch: list[dict[str, Any]] = []
    size = 0
    for doc in map(_document, events):
        cost = len(doc["body"].encode())
        if batch and (len(batch) == MAX_BATCH_WRITES or size + cost > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(doc)
        size += cost
    if batch:
        yield batch


def _body_selected(body: str | bytes, selector: Selector) -> bool:
    fields = orjson.loads(body)
    return body_selected(fields.get("app_id"), fields.get("storage_class"), selector)


def _micros(ts: dt.datetime | None) -> int | None:
    return None if ts is None else cursor.to_micros(ts)


def _where(read: Any, field: str, op: str, value: Any) -> Any:
    from google.cloud.firestore_v1.base_query import FieldFilter

    return read.where(filter=FieldFilter(field, op, value))


@dataclass(frozen=True, slots=True)
class _Range:
    """One keyset scan: the filtered collection and its ts_us bounds."""

    base: Any
    low: int | None  # inclusive
    high: int | None  # exclusive

    def holds(self, ts_us: int) -> bool:
        return (self.low is None or ts_us >= self.low) and (self.high is None or ts_us < self.high)

    def ties(self, position: tuple[int, str], size: int) -> Any:
        """The rest of the position's timestamp: an equality on ts_us, a range on event_id."""
        read = _where(self.base, "ts_us", "==", position[0])
        return _where(read, "event_id", ">", position[1]).order_by("event_id").limit(size)

    def later(self, position: tuple[int, str] | None, size: int) -> Any:
        """Rows with a later timestamp than the position, in bounds (None: there are none)."""
        low = self.low
        if position is not None:
            low = position[0] + 1 if low is None else max(low, position[0] + 1)
        if low is not None and self.high is not None and low >= self.high:
            return None
        read = self.base if low is None else _where(self.base, "ts_us", ">=", low)
        if self.high is not None:
            read = _where(read, "ts_us", "<", self.high)
        return read.order_by("ts_us").order_by("event_id").limit(size)


class FirestoreStore:
    def __init__(self, backend: FirestoreBackend, collection: str) -> None:
        self.backend = backend
        self.collection = collection

    @mapped
    def write(self, events: Sequence[Event]) -> None:
        unique = sequence(events)
        bad = [e for e in unique if not is_document_id(e.event_id)]
        if bad:  # checked before any commit, so the dispatcher can isolate just these events
            raise SinkWriteError(f"{len(bad)} event id(s) cannot be Firestore document ids")
        self.backend.mark_tenants(e.tenant_id for e in unique if is_document_id(e.tenant_id))
        for batch in _batches(unique):
            writes = self.backend.client().batch()
            for doc in batch:
                tenant = self.backend.tenant(doc["tenant_id"], self.collection)
                writes.set(tenant.document(doc["event_id"]), doc)
            writes.commit(**self.backend.rpc)

    @mapped
    def query(self, query: Query) -> Page:
        limit = clamp_limit(query.limit)
        rows = self.matching(query, limit + 1)
        events = [Event.model_validate_json(data["body"]) for data in rows]
        more = len(events) > limit
        return Page(events[:limit], cursor.encode(events[limit - 1]) if more else None)

    def matching(self, query: Query, want: int) -> list[dict[str, Any]]:
        """Up to ``want`` documents matching ``query`` after its cursor, in (ts_us, event_id)."""
        position = cursor.decode(query.cursor) if query.cursor is not None else None
        types = None if query.event_types is None else sorted(set(query.event_types))
        if not is_document_id(query.tenant_id) or types == []:
            return []
        # Beyond Firestore's `in` limit the type filter runs here; the scan just reads further.
        keep = set(types) if types is not None and len(types) > MAX_IN_VALUES else None
        base = self._filtered(query.tenant_id, query.run_id, query.user_id, None if keep else types)
        scan = _Range(base, _micros(query.since), _micros(query.until))
        return [data for data, _ in self._scan(scan, position, keep, want)]

    @mapped
    def delete(self, selector: Selector) -> int:
        return self._delete_refs(self._selected_refs(selector))

    @mapped
    def count(self, selector: Selector) -> int:
        return sum(1 for _ in self._selected_refs(selector))

    @mapped
    def tenant_ids(self) -> list[str]:
        return self.backend.tenant_ids()

    def _selected_refs(self, selector: Selector) -> Iterator[Any]:
        """References of the documents a Selector picks (app and class read from the body)."""
        if not is_document_id(selector.tenant_id):
            return iter(())
        if selector.event_ids is not None:
            return self._by_ids(selector)
        base = self._filtered(selector.tenant_id, selector.run_id, selector.user_id, None)
        rows = self._scan(_Range(base, None, _micros(selector.before)), None, None, None)
        if not selector.by_body:
            return (ref for _, ref in rows)
        return (ref for data, ref in rows if _body_selected(data["body"], selector))

    def _filtered(
        self, tenant_id: str, run_id: str | None, user_id: str | None, types: list[str] | None
    ) -> Any:
        read = self.backend.tenant(tenant_id, self.collection)
        for field, value in (("run_id", run_id), ("user_id", user_id)):
            if value is not None:
                read = _where(read, field, "==", value)
        return read if types is None else _where(read, "event_type", "in", types)

    def _by_ids(self, selector: Selector) -> Iterator[Any]:
        """Documents named by id (read directly, no query), kept if the selector holds."""
        ids = [i for i in dict.fromkeys(selector.event_ids or ()) if is_document_id(i)]
        tenant = self.backend.tenant(selector.tenant_id, self.collection)
        for start in range(0, len(ids), MAX_BATCH_WRITES):
            refs = [tenant.document(i) for i in ids[start : start + MAX_BATCH_WRITES]]
            for snap in self.backend.client().get_all(refs, **self.backend.rpc):
                data = snap.to_dict() if snap.exists else None
                if data and selected(Event.model_validate_json(data["body"]), selector):
                    yield snap.reference

    def _delete_refs(self, refs: Iterable[Any]) -> int:
        count = 0
        iterator = iter(refs)
        while chunk := list(itertools.islice(iterator, MAX_BATCH_WRITES)):
            writes = self.backend.client().batch()
            for ref in chunk:
                writes.delete(ref)
            writes.commit(**self.backend.rpc)
            count += len(chunk)
        return count

    def _scan(
        self,
        scan: _Range,
        position: tuple[int, str] | None,
        keep: set[str] | None,
        want: int | None,
    ) -> Iterator[tuple[dict[str, Any], Any]]:
        """(data, reference) of up to ``want`` matches after ``position`` in (ts_us, event_id).

        A full read may stop inside a run of equal timestamps, so the next read finishes that
        timestamp (``ts_us == T and event_id > E``) before moving on to ``ts_us > T``.
        """
        ties = position is not None
        while want is None or want > 0:
            size = FETCH_SIZE if want is None else min(FETCH_SIZE, want)
            ties = ties and position is not None and scan.holds(position[0])
            read = scan.ties(position, size) if ties and position else scan.later(position, size)
            if read is None:
                return
            snaps = list(read.stream(**self.backend.rpc))
            for snap in snaps:
                data = snap.to_dict()
                position = int(data["ts_us"]), str(data["event_id"])
                if keep is None or data["event_type"] in keep:
                    yield data, snap.reference
                    want = None if want is None else want - 1
            if len(snaps) < size and not ties:
                return
            ties = len(snaps) == size
