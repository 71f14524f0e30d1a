"""The SQLite audit chain of record: compare-and-append inside BEGIN IMMEDIATE transactions.

``BEGIN IMMEDIATE`` takes SQLite's write lock before the head is read, so threads and processes
appending to one file are serialised: no two can read the same head. ``UNIQUE(chain_id, seq)``
makes a fork impossible even if that reasoning were wrong.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from logkit._sqlite import mapped
from logkit.chain import GENESIS, ChainedRecord, chain_id_of, event_from_bytes, link
from logkit.envelope import Event
from logkit.errors import SinkUnavailable, SinkWriteError
from logkit.sinks import cursor
from logkit.sinks.protocols import Page, Query, Selector, StoredRecord, clamp_limit
from logkit.sinks.sql import query_where, selector_where

if TYPE_CHECKING:
    from logkit.sinks.sqlite import SQLiteBackend

AUDIT_SCHEMA = """
-- Each synchronous append is its own commit, and a commit writes every page it touched to the
-- WAL: the table carries as few indexes as its reads need (no AUTOINCREMENT counter either).
CREATE TABLE IF NOT EXISTS audit_chain (
    chain_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    run_id TEXT,
    user_id TEXT,
    event_type TEXT NOT NULL,
    ts_us INTEGER NOT NULL,
    hash TEXT NOT NULL,
    record BLOB NOT NULL,       -- the exact bytes hashed: JCS of the record
    payload BLOB,               -- JCS of the payload; NULL once erased
    payload_salt TEXT,          -- NULL once erased
    UNIQUE (chain_id, seq),
    UNIQUE (tenant_id, event_id)
);
CREATE INDEX IF NOT EXISTS audit_chain_tenant_ts ON audit_chain (tenant_id, ts_us);
CREATE INDEX IF NOT EXISTS audit_chain_user ON audit_chain (tenant_id, user_id)
    WHERE user_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chain_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_checkpoints_chain ON audit_checkpoints (chain_id, id);
"""

_MAX_ATTEMPTS = 100
_INSERT = (
    "INSERT INTO audit_chain (chain_id, seq, event_id, tenant_id, run_id, user_id, event_type, "
    "ts_us, hash, record, payload, payload_salt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The hashed record is JSON text stored as a BLOB: app and storage class are read from it.
_RECORD_JSON = "CAST(record AS TEXT)"
_RECORD_COLUMNS = (
    "chain_id, seq, hash, record, payload, payload_salt, event_id, tenant_id, "
    "run_id, user_id, event_type, ts_us"
)


class SQLiteAuditStore:
    def __init__(self, backend: SQLiteBackend) -> None:
        self.backend = backend
        # Last known head per chain. Only a hint: the insert's UNIQUE (chain_id, seq) is the
        # precondition, so a head another process moved on is found out and re-read.
        self._heads: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()

    @mapped
    def append(self, events: Sequence[Event]) -> list[Event]:
        with self._lock:
            if len(events) == 1:
                return [self._append_one(events[0])]
            return self._append_batch(events)

    def _append_one(self, event: Event) -> Event:
        """One event in its own implicit transaction: INSERT at the known head + 1.

        Success proves the head was current (seqs are contiguous and never deleted); a
        UNIQUE (chain_id, seq) conflict means another writer appended first: re-read, retry.
        """
        conn = self.backend.connection()
        chain_id = chain_id_of(event.tenant_id, event.run_id)
        for _ in range(_MAX_ATTEMPTS):
            seq, prev_hash = self._heads.get(chain_id) or _head(conn, chain_id)
            record = link(event, seq=seq + 1, prev_hash=prev_hash)
            try:
                conn.execute(_INSERT, _row(record))
            except sqlite3.IntegrityError as exc:
                if "event_id" in str(exc):  # already chained (a retry, a replay): idempotent
                    return _event(self._stored_by_event_id(conn, event))
                self._heads.pop(chain_id, None)
                continue
            self._heads[chain_id] = (seq + 1, record.event.hash or "")
            return record.event
        raise SinkUnavailable(
            f"could not append to {chain_id}: {_MAX_ATTEMPTS} writers won the race first"
        )

    def _append_batch(self, events: Sequence[Event]) -> list[Event]:
        """Many events in one BEGIN IMMEDIATE transaction: the write lock is held from the
        head read to the commit, so no other writer can move the heads meanwhile."""
        chained: list[Event] = []
        heads: dict[str, tuple[int, str]] = {}
        with self.backend.transaction() as conn:
            for event in events:
                chain_id = chain_id_of(event.tenant_id, event.run_id)
                if chain_id not in heads:
                    heads[chain_id] = _head(conn, chain_id)
                seq, prev_hash = heads[chain_id]
                record = link(event, seq=seq + 1, prev_hash=prev_hash)
                try:
                    conn.execute(_INSERT, _row(record))
                except sqlite3.IntegrityError:
                    # The event_id is already chained (a retry, a replay): idempotent. Trying
                    # the insert first spares every append a lookup.
                    chained.append(_event(self._stored_by_event_id(conn, event)))
                    continue
                heads[chain_id] = (seq + 1, record.event.hash or "")
                chained.append(record.event)
        self._heads.update(heads)  # committed: the new heads are facts
        return chained

    @staticmethod
    def _stored_by_event_id(conn: sqlite3.Connection, event: Event) -> StoredRecord:
        row = conn.execute(
            f"SELECT {_RECORD_COLUMNS} FROM audit_chain WHERE tenant_id = ? AND event_id = ?",
            (event.tenant_id, event.event_id),
        ).fetchone()
        if row is None:  # the conflict was not the event id: something is badly wrong
            raise SinkWriteError("audit append conflicted on (chain_id, seq) inside its lock")
        return _stored(row)

    def write(self, events: Sequence[Event]) -> None:
        self.append(events)

    @mapped
    def query(self, query: Query) -> Page:
        where, params = query_where(query)
        limit = clamp_limit(query.limit)
        rows = (
            self.backend.connection()
            .execute(
                f"SELECT {_RECORD_COLUMNS} FROM audit_chain WHERE {where} "
                f"ORDER BY ts_us, event_id LIMIT {limit + 1}",
                params,
            )
            .fetchall()
        )
        events = [_event(_stored(row)) for row in rows[:limit]]
        return Page(events, cursor.encode(events[-1]) if len(rows) > limit else None)

    def delete(self, selector: Selector) -> int:
        raise SinkWriteError("audit records are append-only: erase payloads, never delete")

    @mapped
    def count(self, selector: Selector) -> int:
        where, params = selector_where(selector, body=_RECORD_JSON)
        sql = f"SELECT COUNT(*) FROM audit_chain WHERE {where}"
        return int(self.backend.connection().execute(sql, params).fetchone()[0])

    @mapped
    def tenant_ids(self) -> list[str]:
        rows = self.backend.connection().execute("SELECT DISTINCT tenant_id FROM audit_chain")
        return sorted(str(r[0]) for r in rows)

    @mapped
    def erase_payloads(self, selector: Selector, *, dry_run: bool = False) -> int:
        where, params = selector_where(selector, body=_RECORD_JSON)
        where += " AND payload IS NOT NULL"
        if dry_run:
            sql = f"SELECT COUNT(*) FROM audit_chain WHERE {where}"
            return int(self.backend.connection().execute(sql, params).fetchone()[0])
        with self.backend.transaction() as conn:
            erased = conn.execute(
                f"UPDATE audit_chain SET payload = NULL, payload_salt = NULL WHERE {where}", params
            ).rowcount
        if erased:
            self.backend.forget_old_pages()
        return int(erased)

    @mapped
    def chain_ids(self, tenant_id: str, run_id: str | None = None) -> list[str]:
        if run_id is not None:
            chain_id = chain_id_of(tenant_id, run_id)
            row = (
                self.backend.connection()
                .execute("SELECT 1 FROM audit_chain WHERE chain_id = ? LIMIT 1", (chain_id,))
                .fetchone()
            )
            return [chain_id] if row else []
        rows = (
            self.backend.connection()
            .execute(
                "SELECT DISTINCT chain_id FROM audit_chain WHERE tenant_id = ? ORDER BY chain_id",
                (tenant_id,),
            )
            .fetchall()
        )
        return [str(r[0]) for r in rows]

    @mapped
    def records(
        self, chain_id: str, *, after_seq: int = -1, limit: int = 1000
    ) -> list[StoredRecord]:
        rows = (
            self.backend.connection()
            .execute(
                f"SELECT {_RECORD_COLUMNS} FROM audit_chain WHERE chain_id = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (chain_id, after_seq, limit),
            )
            .fetchall()
        )
        return list(map(StoredRecord._make, rows))

    @mapped
    def head(self, chain_id: str) -> tuple[int, str] | None:
        """(seq, hash) of the chain's last record, None for an empty chain."""
        seq, hash_hex = _head(self.backend.connection(), chain_id)
        return None if seq < 0 else (seq, hash_hex)

    @mapped
    def put_checkpoint(self, chain_id: str, seq: int, document: str) -> None:
        with self.backend.transaction() as conn:
            conn.execute(
                "INSERT INTO audit_checkpoints (chain_id, seq, document) VALUES (?, ?, ?)",
                (chain_id, seq, document),
            )

    @mapped
    def checkpoints(self, chain_id: str) -> list[str]:
        rows = (
            self.backend.connection()
            .execute(
                "SELECT document FROM audit_checkpoints WHERE chain_id = ? ORDER BY id", (chain_id,)
            )
            .fetchall()
        )
        return [r[0] for r in rows]


def _row(record: ChainedRecord) -> tuple[Any, ...]:
    e = record.event
    return (
        e.chain_id,
        e.seq,
        e.event_id,
        e.tenant_id,
        e.run_id,
        e.user_id,
        e.event_type,
        cursor.to_micros(e.ts),
        e.hash,
        record.record_bytes,
        record.payload_bytes,
        e.payload_salt,
    )


def _head(conn: sqlite3.Connection, chain_id: str) -> tuple[int, str]:
    row = conn.execute(
        "SELECT seq, hash FROM audit_chain WHERE chain_id = ? ORDER BY seq DESC LIMIT 1",
        (chain_id,),
    ).fetchone()
    return (int(row[0]), str(row[1])) if row else (-1, GENESIS)


def _stored(row: tuple[Any, ...]) -> StoredRecord:
    # _RECORD_COLUMNS lists the columns in StoredRecord's field order.
    return StoredRecord._make(row)


def _event(record: StoredRecord) -> Event:
    return event_from_bytes(
        record.record_bytes, record.payload_bytes, record.payload_salt, record.hash
    )
