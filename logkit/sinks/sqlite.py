"""SQLite backend: the embedded default. One file, WAL, all three roles.

URI: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (SQLAlchemy's rule).
Each role is one table; ``pos`` (autoincrement) records the order events were stored in.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, TypeVar

from logkit._sqlite import Residue, ThreadConnections, immediate, mapped, snapshot
from logkit.envelope import Event
from logkit.errors import ConfigError
from logkit.sinks import cursor
from logkit.sinks.protocols import (
    ROLE_TABLES,
    FeedRow,
    Page,
    Query,
    Role,
    Selector,
    clamp_limit,
)
from logkit.sinks.sql import feed_where, query_where, selector_where
from logkit.sinks.sqlite_audit import AUDIT_SCHEMA, SQLiteAuditStore

T = TypeVar("T")

_COLUMNS = ("event_id", "tenant_id", "run_id", "user_id", "event_type", "ts_us", "body")
_ROW_PLACEHOLDER = "(" + ", ".join("?" * len(_COLUMNS)) + ")"
# 7 x 2,000 = 14,000 bound values: under SQLite's default limit of 32,766 (3.32+).
_ROWS_PER_STATEMENT = 2_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    pos INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    run_id TEXT,
    user_id TEXT,
    event_type TEXT NOT NULL,
    ts_us INTEGER NOT NULL,
    body TEXT NOT NULL,
    -- idempotence per tenant: another tenant's event never shadows this one
    UNIQUE (tenant_id, event_id)
);
-- Secondary indexes are what an insert pays for (the benchmark's largest cost), so they are
-- kept narrow: ORDER BY ts_us, event_id sorts the rare equal-ts ties itself.
CREATE INDEX IF NOT EXISTS {table}_tenant_ts ON {table} (tenant_id, ts_us);
CREATE INDEX IF NOT EXISTS {table}_run_ts ON {table} (tenant_id, run_id, ts_us);
CREATE INDEX IF NOT EXISTS {table}_user ON {table} (tenant_id, user_id) WHERE user_id IS NOT NULL;
"""
# The database's identity: stream cursors carry it, so a cursor from another (or a recreated)
# database is recognised as unknown instead of resuming at somebody else's position.
_META_SCHEMA = """
CREATE TABLE IF NOT EXISTS logkit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO logkit_meta (key, value) VALUES ('database_id', lower(hex(randomblob(8))));
"""


def path_from_uri(uri: str) -> Path:
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri == prefix:
        raise ConfigError(f"a SQLite URI looks like sqlite:///path/logkit.db, got {uri!r}")
    return Path(uri[len(prefix) :].split("?", 1)[0])


def timeout_from_uri(uri: str) -> float:
    """``?timeout=SECONDS``: how long a write waits for another writer's lock (default 10)."""
    from urllib.parse import parse_qsl

    options = dict(parse_qsl(uri.partition("?")[2]))
    try:
        seconds = float(options.get("timeout", "10"))
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise ConfigError(f"timeout must be a positive number of seconds (in {uri!r})")
    return seconds


class SQLiteBackend:
    scheme: ClassVar[str] = "sqlite"
    durable: ClassVar[bool] = True
    roles: ClassVar[frozenset[Role]] = frozenset(Role)
    chains: ClassVar[bool] = True  # keeps an audit chain of record (compare-and-append)

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self._connections = ThreadConnections(
            path,
            timeout=timeout,
            pragmas=(
                "PRAGMA journal_mode=WAL",
                # NORMAL is durable across application crashes in WAL mode; only a power
                # loss can take the last commits (documented in docs/sinks.md).
                "PRAGMA synchronous=NORMAL",
                # Fewer, larger checkpoints: each one fsyncs, and at 1,000 pages they
                # dominate the cost of a sustained insert stream.
                "PRAGMA wal_autocheckpoint=10000",
                # Deleted rows and erased payloads are overwritten with zeros, not left in free
                # pages where a file carver would find them (DSAR erasure, retention).
                "PRAGMA secure_delete=ON",
            ),
            setup=_create_schema,
        )

    @classmethod
    def from_uri(cls, uri: str) -> SQLiteBackend:
        return cls(path_from_uri(uri), timeout_from_uri(uri))

    def describe(self) -> str:
        return f"sqlite {self.path}"

    @mapped
    def connection(self) -> sqlite3.Connection:
        """This thread's connection (SQLite connections are not shared across threads)."""
        return self._connections.get()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT on this thread's connection (rolled back on error)."""
        with immediate(self.connection()) as conn:
            yield conn

    def store(self, role: Role) -> SQLiteStore | SQLiteAuditStore:
        if Role(role) is Role.AUDIT:
            return SQLiteAuditStore(self)
        return SQLiteStore(self, ROLE_TABLES[Role(role)])

    @mapped
    def check_schema(self, *, create: bool = False) -> list[str]:
        conn = self.connection()  # creates the schema on first use
        problems = []
        expected = {
            ROLE_TABLES[Role.TIMELINE]: _COLUMNS,
            ROLE_TABLES[Role.COST]: _COLUMNS,
            "audit_chain": (*_COLUMNS[:-1], "chain_id", "seq", "hash", "record"),
        }
        for table, wanted in expected.items():
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            missing = [c for c in wanted if c not in columns]
            if missing:
                problems.append(f"table {table} lacks columns {', '.join(missing)}")
        return problems

    def forget_old_pages(self) -> None:
        """After a delete or erasure: checkpoint and truncate the WAL if nobody is in the way.

        The WAL holds the page images from before the change until a checkpoint copies the
        zeroed pages into the database. This attempt does not wait for readers; the erasures
        (dsar delete, retention apply) call :meth:`scrub` once at the end, which waits within a
        bound and reports what it could not clear.
        """
        self._connections.scrub(0.0)

    @mapped
    def scrub(self, wait_s: float) -> list[Residue]:
        """Checkpoint and truncate the WAL, waiting up to ``wait_s`` for older snapshots;
        what may be left on disk (and who holds the file open) when a reader kept it."""
        residue = self._connections.scrub(wait_s)
        return [] if residue is None else [residue]

    def close(self) -> None:
        self._connections.close()


def _create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(_META_SCHEMA)
    for role in (Role.TIMELINE, Role.COST):
        conn.executescript(_SCHEMA.format(table=ROLE_TABLES[role]))
    conn.executescript(AUDIT_SCHEMA)


class SQLiteStore:
    def __init__(self, backend: SQLiteBackend, table: str) -> None:
        self.backend = backend
        self.table = table

    @mapped
    def write(self, events: Sequence[Event]) -> None:
        # INSERT OR IGNORE keeps the first of repeated event_ids, within a batch and across
        # batches: the idempotence the contract asks for.
        values: list[object] = []
        for e in events:
            values += (
                e.event_id,
                e.tenant_id,
                e.run_id,
                e.user_id,
                e.event_type,
                cursor.to_micros(e.ts),
                e.to_json(),
            )
        width = len(_COLUMNS)
        chunk = _ROWS_PER_STATEMENT * width
        with self.backend.transaction() as conn:
            for start in range(0, len(values), chunk):
                part = values[start : start + chunk]
                conn.execute(self._insert_sql(len(part) // width), part)

    def _insert_sql(self, rows: int) -> str:
        # One multi-row statement per chunk instead of executemany: sqlite3 releases the GIL
        # for the whole statement rather than once per row, so the emitting threads keep
        # running on the other core while SQLite updates the indexes.
        placeholders = ", ".join([_ROW_PLACEHOLDER] * rows)
        return f"INSERT OR IGNORE INTO {self.table} ({', '.join(_COLUMNS)}) VALUES {placeholders}"

    @mapped
    def query(self, query: Query) -> Page:
        where, params = query_where(query)
        limit = clamp_limit(query.limit)
        sql = (
            f"SELECT body FROM {self.table} WHERE {where}"
            f" ORDER BY ts_us, event_id LIMIT {limit + 1}"
        )
        rows = self.backend.connection().execute(sql, params).fetchall()
        events = [Event.model_validate_json(body) for (body,) in rows[:limit]]
        more = len(rows) > limit
        return Page(events, cursor.encode(events[-1]) if more else None)

    @mapped
    def tenant_of_run(self, run_id: str) -> str | None:
        """The tenant a run belongs to (a scan: for the CLI, which may not know the tenant)."""
        row = (
            self.backend.connection()
            .execute(f"SELECT tenant_id FROM {self.table} WHERE run_id = ? LIMIT 1", (run_id,))
            .fetchone()
        )
        return None if row is None else str(row[0])

    @mapped
    def delete(self, selector: Selector) -> int:
        where, params = selector_where(selector)
        with self.backend.transaction() as conn:
            removed = conn.execute(f"DELETE FROM {self.table} WHERE {where}", params).rowcount
        if removed:
            self.backend.forget_old_pages()
        return int(removed)

    @mapped
    def count(self, selector: Selector) -> int:
        where, params = selector_where(selector)
        sql = f"SELECT COUNT(*) FROM {self.table} WHERE {where}"
        return int(self.backend.connection().execute(sql, params).fetchone()[0])

    @mapped
    def tenant_ids(self) -> list[str]:
        rows = self.backend.connection().execute(f"SELECT DISTINCT tenant_id FROM {self.table}")
        return sorted(str(r[0]) for r in rows)

    # --- the stream's feed: ``pos`` is the durable position --------------------------------

    @mapped
    def feed_id(self) -> str:
        row = (
            self.backend.connection()
            .execute("SELECT value FROM logkit_meta WHERE key = 'database_id'")
            .fetchone()
        )
        return hashlib.sha256(f"{row[0]}/{self.table}".encode()).hexdigest()[:12]

    @mapped
    def feed_bounds(self) -> tuple[int, int]:
        conn = self.backend.connection()
        with snapshot(conn):
            newest = self._newest(conn)
            (oldest,) = conn.execute(f"SELECT min(pos) FROM {self.table}").fetchone()
        return (newest + 1 if oldest is None else int(oldest)), newest

    @mapped
    def feed_after(
        self,
        position: int,
        *,
        tenant_id: str | None = None,
        run_id: str | None = None,
        event_types: tuple[str, ...] | None = None,
        limit: int = 1000,
    ) -> tuple[list[FeedRow], int]:
        where, params = feed_where(position, tenant_id, run_id, event_types)
        limit = clamp_limit(limit)
        sql = (
            f"SELECT pos, tenant_id, body FROM {self.table} WHERE {where}"
            f" ORDER BY pos LIMIT {limit}"
        )
        conn = self.backend.connection()
        # One read snapshot for the rows and the newest position: "scanned up to newest" is
        # only true of the same snapshot the rows came from.
        with snapshot(conn):
            newest = self._newest(conn)
            rows = [FeedRow(*row) for row in conn.execute(sql, params)]
        scanned = rows[-1].position if len(rows) == limit else max(newest, position)
        return rows, scanned

    def _newest(self, conn: sqlite3.Connection) -> int:
        sql = "SELECT seq FROM sqlite_sequence WHERE name = ?"
        row = conn.execute(sql, (self.table,)).fetchone()
        return 0 if row is None else int(row[0])
