"""The Firestore audit chain of record: compare-and-append on ``create()`` preconditions.

Layout, under the tenant document ``{root}/{tenant_id}`` of logkit.sinks.firestore:

- ``audit_chains/{run_key}``: one document per chain, ``{chain_id, tenant_id, run_id}``, where
  ``run_id`` is the chain's run as in its chain_id (``"_tenant"`` for the tenant chain) and
  ``run_key`` is :func:`document_key` of it. It is written with the chain's first record, so
  ``chain_ids`` reads one collection, never a collection-group query.
- ``audit_chains/{run_key}/records/{seq:012d}``: one document per record: ``chain_id``, ``seq``,
  ``hash``, ``record`` (bytes: the exact JCS bytes hashed), ``payload`` (JCS bytes; None once
  erased), ``payload_salt`` (None once erased) and the query columns ``event_id``,
  ``tenant_id``, ``run_id``, ``user_id``, ``event_type``, ``ts_us``.
- ``audit_chains/{run_key}/checkpoints/{n:012d}``: ``{chain_id, seq, n, document}``; ``n`` counts
  0, 1, ... and is allocated like a seq (create, and on a conflict take the next), so oldest
  first is ``order_by(n)`` with no clock involved.
- ``audit_events/{event_key}``: the event-id index, one document per chained event: its query
  columns plus the ``chain_id`` and ``seq`` of its record (``event_key`` = :func:`document_key`
  of the event id). It makes ``append`` idempotent without a collection-group query, and it is
  the collection ``query`` scans: the timeline store's filters, composite indexes (the
  ``audit_events`` entries of FIRESTORE_INDEXES) and keyset paging, then one batched read of
  the page's records. Reads scale with the page, not with the tenant's number of chains.

Compare-and-append. Chaining a block of events (one or many records of one chain, placed by
logkit.sinks.firestore_append) is one commit of these writes, in this order:

1. when the block starts at seq 0, ``set`` of the chain document (no precondition; always the
   same content);
2. for each record in seq order: ``create`` of ``records/{seq}`` (precondition: the document is
   absent), then ``create`` of the event's index document (precondition: absent).

A commit is atomic in Firestore: all of its writes are applied or none. So:

- a chain cannot fork: a seq's document is created at most once, by exactly one writer. The
  writer knew the head (read with ``seq`` DESC, limit 1, or remembered from its own last
  commit) and links to its hash; records are never updated, so that hash is still the hash at
  the block's first seq - 1 when the commit lands. A stale head makes the create fail, never
  succeed at the wrong place, and seq N is only tried once seq N-1 is known, so there are no
  gaps either;
- an event is chained at most once: its record and its index entry exist together or not at
  all. That is why the index entry is neither a separate claim written first (a writer dying
  between claim and record would leave the event id claimed with no record, and nobody could
  tell a dead claimer from a slow one) nor a separate write after the record (a crash or a
  concurrent writer in between would chain the event twice);
- on AlreadyExists the commit changed nothing; reading the block's index entries tells which
  precondition failed: present, the event is already chained and its stored record is the
  answer; absent, another writer took the seq, so the head is read again and the rest relinked
  (after a short jittered pause, up to MAX_APPEND_ATTEMPTS times, then SinkUnavailable). This
  loop is the algorithm, not an error retry: failed RPCs are still never retried (see
  logkit.sinks.firestore).

No transaction is used: preconditions on single documents are all it takes, and the emulator
does not isolate transactions anyway.

On the emulator commits are not atomic: writes are applied in order up to the first that fails.
The interleaved order above keeps that safe from forks and from lost index entries, since a
lost seq fails before anything after it is written and every record written before it has its
index entry. What the emulator can do that Firestore cannot: when two writers chain the *same*
event id at the same moment, the loser's record stays (its index create fails after it), so the
chain holds that event twice, at two seqs, still correctly linked; the index (so ``query``)
knows only one of them.

The event-id index is per tenant: the same event id in two tenants is two events (the SQLite
store's event_id is unique across tenants, so there the second tenant would get the first's
record back).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from logkit.chain import (
    GENESIS,
    LANE_MARK,
    TENANT_CHAIN_RUN,
    ChainedRecord,
    chain_id_of,
    event_from_bytes,
)
from logkit.envelope import Event
from logkit.errors import SinkUnavailable, SinkWriteError
from logkit.sinks import cursor
from logkit.sinks.firestore import (
    FETCH_SIZE,
    MAX_BATCH_WRITES,
    FirestoreStore,
    _body_selected,
    _micros,
    _Range,
    _where,
    is_document_id,
    mapped,
)
from logkit.sinks.firestore_append import (
    MAX_APPEND_ATTEMPTS,
    BlockAppender,
    RecordAppender,
    pause,
)
from logkit.sinks.protocols import (
    ROLE_TABLES,
    Page,
    Query,
    Role,
    Selector,
    StoredRecord,
    clamp_limit,
    query_columns,
)

if TYPE_CHECKING:
    from logkit.sinks.firestore import FirestoreBackend

CHAINS = "audit_chains"
RECORDS = "records"
CHECKPOINTS = "checkpoints"
INDEX = ROLE_TABLES[Role.AUDIT]  # "audit_events": the event-id index, which query scans
WAIT_FACTOR = 30  # a thread waits this many RPC timeouts for its chain's leader

_ESCAPES = {"%": "%25", "/": "%2F"}


def document_key(value: str) -> str:
    """``value`` as one Firestore document id, injectively (``urllib.parse.unquote`` inverts it).

    ``%`` and ``/`` are escaped, and so is the first character of an id Firestore reserves
    (``.``, ``..``, ``__...__``). A run id (at most 256 characters) stays under the 1500-byte
    limit: at most 4 bytes per character.
    """
    key = "".join(_ESCAPES.get(ch, ch) for ch in value)
    if key in (".", "..") or (key.startswith("__") and key.endswith("__")):
        key = f"%{ord(key[0]):02X}{key[1:]}"
    return key


def seq_key(seq: int) -> str:
    return f"{seq:012d}"


def split_chain_id(chain_id: str) -> tuple[str, str] | None:
    """(tenant_id, run) of a chain id, or None when it cannot name a chain here."""
    tenant_id, sep, run = chain_id.partition("/")
    return (tenant_id, run) if sep and run and is_document_id(tenant_id) else None


def _stored(data: dict[str, Any]) -> StoredRecord:
    # The values as stored, not coerced: a type a writer never uses is tampering, and
    # `audit verify` checks every field's type (a seq stored as 2.0 must not read as 2).
    return StoredRecord(
        chain_id=data.get("chain_id"),  # type: ignore[arg-type]
        seq=data.get("seq"),  # type: ignore[arg-type]
        hash=data.get("hash"),  # type: ignore[arg-type]
        record_bytes=data.get("record"),  # type: ignore[arg-type]
        payload_bytes=data.get("payload"),
        payload_salt=data.get("payload_salt"),
        event_id=data.get("event_id"),  # type: ignore[arg-type]  # checked by verify
        tenant_id=data.get("tenant_id"),  # type: ignore[arg-type]
        run_id=data.get("run_id"),
        user_id=data.get("user_id"),
        event_type=data.get("event_type"),  # type: ignore[arg-type]
        ts_us=data.get("ts_us"),  # type: ignore[arg-type]
    )


def _event(record: StoredRecord) -> Event:
    return event_from_bytes(
        record.record_bytes, record.payload_bytes, record.payload_salt, record.hash
    )


class FirestoreAuditStore:
    def __init__(self, backend: FirestoreBackend) -> None:
        self.backend = backend
        self._index = FirestoreStore(backend, INDEX)
        settings = backend.settings
        self.appender: BlockAppender | RecordAppender = (
            RecordAppender(self)
            if settings.append == "record"
            else BlockAppender(self, lanes=settings.lanes, wait_s=settings.timeout * WAIT_FACTOR)
        )

    # --- references ---------------------------------------------------------------------------

    def chain_ref(self, chain_id: str) -> Any:
        parts = split_chain_id(chain_id)
        if parts is None:
            raise SinkWriteError(f"{chain_id!r} is not an audit chain id (tenant_id/run)")
        tenant_id, run = parts
        return self.backend.tenant(tenant_id, CHAINS).document(document_key(run))

    def record_ref(self, chain_id: str, seq: int) -> Any:
        return self.chain_ref(chain_id).collection(RECORDS).document(seq_key(seq))

    def index_ref(self, tenant_id: str, event_id: str) -> Any:
        return self.backend.tenant(tenant_id, INDEX).document(document_key(event_id))

    # --- the chain ----------------------------------------------------------------------------

    @mapped
    def append(self, events: Sequence[Event]) -> list[Event]:
        self.backend.mark_tenants(e.tenant_id for e in events if is_document_id(e.tenant_id))
        return self.appender.append(events)

    def write(self, events: Sequence[Event]) -> None:
        self.append(events)

    def delete(self, selector: Selector) -> int:
        raise SinkWriteError("audit records are append-only: erase payloads, never delete")

    @mapped
    def count(self, selector: Selector) -> int:
        return sum(1 for _ in self._selected(selector))

    @mapped
    def tenant_ids(self) -> list[str]:
        return self.backend.tenant_ids()

    @mapped
    def erase_payloads(self, selector: Selector, *, dry_run: bool = False) -> int:
        """Set ``payload`` and ``payload_salt`` of the selected records to None, in batches.

        Only those two fields are written (``update``), so a concurrent append, which only
        ever creates documents, cannot conflict with an erasure.
        """
        doomed = (ref for ref, data in self._selected(selector) if data.get("payload") is not None)
        count = 0
        while chunk := list(itertools.islice(doomed, MAX_BATCH_WRITES)):
            if not dry_run:
                writes = self.backend.client().batch()
                for ref in chunk:
                    writes.update(ref, {"payload": None, "payload_salt": None})
                writes.commit(**self.backend.rpc)
            count += len(chunk)
        return count

    def _selected(self, selector: Selector) -> Iterator[tuple[Any, dict[str, Any]]]:
        """(reference, data) of the records a Selector picks: the index narrows by its query
        columns, the records themselves answer the rest (app and storage class)."""
        if not is_document_id(selector.tenant_id):
            return
        index = self._index._filtered(selector.tenant_id, selector.run_id, selector.user_id, None)
        rows = (
            data
            for data, _ in self._index._scan(
                _Range(index, None, _micros(selector.before)), None, None, None
            )
            if selector.event_ids is None or data["event_id"] in selector.event_ids
        )
        while chunk := list(itertools.islice(rows, MAX_BATCH_WRITES)):
            refs = [self.record_ref(str(row["chain_id"]), int(row["seq"])) for row in chunk]
            for snap in self.backend.client().get_all(refs, **self.backend.rpc):
                data = snap.to_dict() if snap.exists else None
                if data and (not selector.by_body or _body_selected(data["record"], selector)):
                    yield snap.reference, data

    @mapped
    def head(self, chain_id: str) -> tuple[int, str] | None:
        """(seq, hash) of the chain's last record, None for an empty chain."""
        seq, hash_hex = self.read_head(chain_id)
        return None if seq < 0 else (seq, hash_hex)

    def read_head(self, chain_id: str) -> tuple[int, str]:
        """(seq, hash) of the chain's last record; (-1, GENESIS) for an empty chain."""
        from google.cloud import firestore

        records = self.chain_ref(chain_id).collection(RECORDS)
        read = records.order_by("seq", direction=firestore.Query.DESCENDING).limit(1)
        snaps = list(read.stream(**self.backend.rpc))
        if not snaps:
            return -1, GENESIS
        data = snaps[0].to_dict()
        return int(data["seq"]), str(data["hash"])

    def commit(self, chain_id: str, records: Sequence[ChainedRecord]) -> None:
        """One atomic commit of a block: (the chain document,) each record and its index entry.

        See the module doc for the order and why it is safe.
        """
        chain = self.chain_ref(chain_id)
        writes = self.backend.client().batch()
        if records[0].event.seq == 0:
            tenant_id, _, run = chain_id.partition("/")
            writes.set(chain, {"chain_id": chain_id, "tenant_id": tenant_id, "run_id": run})
        for record in records:
            e = record.event
            seq = e.seq if e.seq is not None else -1
            columns = query_columns(e)
            writes.create(
                chain.collection(RECORDS).document(seq_key(seq)),
                {
                    "chain_id": chain_id,
                    "seq": seq,
                    "hash": e.hash,
                    "record": record.record_bytes,
                    "payload": record.payload_bytes,
                    "payload_salt": e.payload_salt,
                    **columns,
                },
            )
            writes.create(
                self.index_ref(e.tenant_id, e.event_id),
                {**columns, "chain_id": chain_id, "seq": seq},
            )
        writes.commit(**self.backend.rpc)

    def lookup(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Event]:
        """The stored events of those (tenant_id, event_id) that are chained already."""
        wanted = {key: self.index_ref(*key) for key in dict.fromkeys(keys)}
        by_path = {ref.path: key for key, ref in wanted.items()}
        found: dict[tuple[str, str], dict[str, Any]] = {}
        refs = list(wanted.values())
        for start in range(0, len(refs), MAX_BATCH_WRITES):
            chunk = refs[start : start + MAX_BATCH_WRITES]
            for snap in self.backend.client().get_all(chunk, **self.backend.rpc):
                if snap.exists:
                    found[by_path[snap.reference.path]] = snap.to_dict()
        keys_found = list(found)
        return dict(zip(keys_found, self._read([found[k] for k in keys_found]), strict=True))

    def _read(self, rows: Sequence[dict[str, Any]]) -> list[Event]:
        """The events of index rows, in their order, rebuilt from the records they point at."""
        refs = [self.record_ref(str(row["chain_id"]), int(row["seq"])) for row in rows]
        records: dict[str, StoredRecord] = {}
        for start in range(0, len(refs), MAX_BATCH_WRITES):
            chunk = refs[start : start + MAX_BATCH_WRITES]
            for snap in self.backend.client().get_all(chunk, **self.backend.rpc):
                if snap.exists:
                    records[snap.reference.path] = _stored(snap.to_dict())
        missing = sum(ref.path not in records for ref in refs)
        if missing:
            raise SinkWriteError(
                f"{missing} audit index entries point at missing records: "
                "the chain was altered outside logkit"
            )
        return [_event(records[ref.path]) for ref in refs]

    # --- reads ----------------------------------------------------------------------------

    @mapped
    def query(self, query: Query) -> Page:
        limit = clamp_limit(query.limit)
        rows = self._index.matching(query, limit + 1)
        events = self._read(rows)
        more = len(events) > limit
        return Page(events[:limit], cursor.encode(events[limit - 1]) if more else None)

    @mapped
    def chain_ids(self, tenant_id: str, run_id: str | None = None) -> list[str]:
        if not is_document_id(tenant_id):
            return []
        if run_id is not None:
            chain_id = chain_id_of(tenant_id, run_id)
            exists = self.chain_ref(chain_id).get(**self.backend.rpc).exists
            lanes = self._lanes(tenant_id) if run_id == TENANT_CHAIN_RUN else []
            return [chain_id] * exists + lanes
        chains = self.backend.tenant(tenant_id, CHAINS)
        return sorted(str(data["chain_id"]) for data in self._keyset(chains, "chain_id", None))

    def _lanes(self, tenant_id: str) -> list[str]:
        """The lanes of the tenant chain: chain ids from ``T/_tenant~`` up to the next code
        point after ``~``, one range read of the chain documents."""
        low = f"{tenant_id}/{TENANT_CHAIN_RUN}{LANE_MARK}"
        high = low[:-1] + chr(ord(LANE_MARK) + 1)
        chains = _where(self.backend.tenant(tenant_id, CHAINS), "chain_id", "<", high)
        return [str(data["chain_id"]) for data in self._keyset(chains, "chain_id", low)]

    @mapped
    def records(
        self, chain_id: str, *, after_seq: int = -1, limit: int = 1000
    ) -> list[StoredRecord]:
        if split_chain_id(chain_id) is None or limit <= 0:
            return []
        records = self.chain_ref(chain_id).collection(RECORDS)
        return [_stored(data) for data in self._keyset(records, "seq", after_seq, limit)]

    @mapped
    def put_checkpoint(self, chain_id: str, seq: int, document: str) -> None:
        from google.api_core.exceptions import AlreadyExists
        from google.cloud import firestore

        checkpoints = self.chain_ref(chain_id).collection(CHECKPOINTS)
        last = checkpoints.order_by("n", direction=firestore.Query.DESCENDING).limit(1)
        for attempt in range(MAX_APPEND_ATTEMPTS):
            snaps = list(last.stream(**self.backend.rpc))
            n = int(snaps[0].get("n")) + 1 if snaps else 0
            data = {"chain_id": chain_id, "seq": seq, "n": n, "document": document}
            try:
                checkpoints.document(seq_key(n)).create(data, **self.backend.rpc)
            except AlreadyExists:  # a concurrent checkpoint took n: take the next one
                pause(attempt)
                continue
            return
        raise SinkUnavailable(f"audit chain {chain_id!r}: could not file a checkpoint")

    @mapped
    def checkpoints(self, chain_id: str) -> list[str]:
        if split_chain_id(chain_id) is None:
            return []
        checkpoints = self.chain_ref(chain_id).collection(CHECKPOINTS)
        return [str(data["document"]) for data in self._keyset(checkpoints, "n", -1)]

    def _keyset(
        self, collection: Any, field: str, after: Any, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Documents in ``field`` order with ``field > after`` (None: from the start), read in
        keyset pages of at most FETCH_SIZE (never cursors or offsets), up to ``limit``."""
        while limit is None or limit > 0:
            size = FETCH_SIZE if limit is None else min(FETCH_SIZE, limit)
            read = collection if after is None else _where(collection, field, ">", after)
            snaps = list(read.order_by(field).limit(size).stream(**self.backend.rpc))
            for snap in snaps:
                data = snap.to_dict()
                after = data[field]
                yield data
            if limit is not None:
                limit -= len(snaps)
            if len(snaps) < size:
                return
