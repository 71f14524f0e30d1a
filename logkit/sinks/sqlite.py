"""SQLite backend: the embedded default. One file, WAL, all three roles.

URI: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (SQLAlchemy's rule).
Each role is one table; ``pos`` (autoincrement) records the order events were stored in, and
``tpos`` the same order within the event's tenant: the tenant's stream position (1, 2, 3, ...
with no gaps), assigned in the write transaction from ``logkit_feed_heads``, which keeps each
tenant's newest position so that none is reused after a delete.
"""

from __future__ import annotations

import hashlib
import itertools
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
    COLUMN_NAMES,
    ROLE_TABLES,
    FeedRow,
    Page,
    Query,
    Role,
    Selector,
    clamp_limit,
)
from logkit.sinks.sql import feed_where, marks, query_where, selector_where
from logkit.sinks.sqlite_audit import AUDIT_SCHEMA, SQLiteAuditStore

T = TypeVar("T")

_COLUMNS = ("event_id", "tenant_id", "run_id", "user_id", "event_type", "ts_us", "body", "tpos")
_ROW_PLACEHOLDER = "(" + ", ".join("?" * len(_COLUMNS)) + ")"
# 8 x 2,000 = 16,000 bound values: under SQLite's default limit of 32,766 (3.32+).
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
    -- the tenant's stream position (added to older databases by _add_feed_positions)
    tpos INTEGER,
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
CREATE TABLE IF NOT EXISTS logkit_feed_heads (
    tbl TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    newest INTEGER NOT NULL,
    PRIMARY KEY (tbl, tenant_id)
) WITHOUT ROWID;
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
            "audit_chain": (*COLUMN_NAMES, "chain_id", "seq", "hash", "record"),
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
        _add_feed_positions(conn, ROLE_TABLES[role])
    conn.executescript(AUDIT_SCHEMA)


def _add_feed_positions(conn: sqlite3.Connection, table: str) -> None:
    """Give a table from before per-tenant positions its ``tpos`` (numbered in store order per
    tenant) and its heads, in one transaction; then make sure the position index exists."""
    with immediate(conn):
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if "tpos" not in columns:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN tpos INTEGER")
            conn.execute(
                f"UPDATE {table} SET tpos = numbered.n FROM (SELECT pos, row_number() OVER "
                f"(PARTITION BY tenant_id ORDER BY pos) AS n FROM {table}) AS numbered "
                f"WHERE {table}.pos = numbered.pos"
            )
            conn.execute(
                "INSERT OR REPLACE INTO logkit_feed_heads (tbl, tenant_id, newest) "
                f"SELECT ?, tenant_id, max(tpos) FROM {table} GROUP BY tenant_id",
                (table,),
            )
        conn.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {table}_feed ON {table} (tenant_id, tpos)")


class SQLiteStore:
    def __init__(self, backend: SQLiteBackend, table: str) -> None:
        self.backend = backend
        self.table = table

    @mapped
    def write(self, events: Sequence[Event]) -> None:
        # The first of repeated event_ids is kept, within a batch and across batches: the
        # idempotence the contract asks for. Only events really stored get a position.
        with self.backend.transaction() as conn:
            heads = self._heads(conn, {e.tenant_id for e in events})
            numbered = dict(heads)
            if self._insert(conn, events, numbered) != len(events):
                # Some were stored before (a replay from the spool) or repeat in the batch:
                # take back this batch's rows (each is past its tenant's head) and number the
                # new ones only. Cheaper than a savepoint, whose journal every batch would pay.
                for tenant, head in heads.items():
                    sql = f"DELETE FROM {self.table} WHERE tenant_id = ? AND tpos > ?"
                    conn.execute(sql, (tenant, head))
                numbered = dict(heads)
                self._insert(conn, self._not_stored(conn, events), numbered)
            conn.executemany(
                "INSERT INTO logkit_feed_heads (tbl, tenant_id, newest) VALUES (?, ?, ?) "
                "ON CONFLICT (tbl, tenant_id) DO UPDATE SET newest = excluded.newest",
                [(self.table, t, n) for t, n in numbered.items() if n != heads[t]],
            )

    def _insert(
        self, conn: sqlite3.Connection, events: Sequence[Event], heads: dict[str, int]
    ) -> int:
        """Insert ``events`` after their tenants' ``heads`` (advanced in place); how many rows
        were inserted."""
        following = {tenant: itertools.count(head + 1).__next__ for tenant, head in heads.items()}
        values: list[object] = []
        for e in events:
            tenant = e.tenant_id
            values += (
                e.event_id,
                tenant,
                e.run_id,
                e.user_id,
                e.event_type,
                cursor.to_micros(e.ts),
                e.to_json(),
                following[tenant](),
            )
        for tenant, position in following.items():
            heads[tenant] = position() - 1
        width = len(_COLUMNS)
        chunk = _ROWS_PER_STATEMENT * width
        before = conn.total_changes
        for start in range(0, len(values), chunk):
            part = values[start : start + chunk]
            conn.execute(self._insert_sql(len(part) // width), part)
        return conn.total_changes - before

    def _heads(self, conn: sqlite3.Connection, tenants: set[str]) -> dict[str, int]:
        names = tuple(tenants)
        sql = (
            f"SELECT tenant_id, newest FROM logkit_feed_heads WHERE tbl = ?"
            f" AND tenant_id IN ({marks(names)})"
        )
        heads = dict.fromkeys(names, 0)
        heads.update(conn.execute(sql, (self.table, *names)).fetchall())
        return heads

    def _not_stored(self, conn: sqlite3.Connection, events: Sequence[Event]) -> list[Event]:
        """The first of each (tenant, event_id) in ``events`` that the table does not hold."""
        first: dict[tuple[str, str], Event] = {}
        for e in events:
            first.setdefault((e.tenant_id, e.event_id), e)
        events = list(first.values())
        stored: set[tuple[str, str]] = set()
        for start in range(0, len(events), _ROWS_PER_STATEMENT):
            part = events[start : start + _ROWS_PER_STATEMENT]
            pairs = [value for e in part for value in (e.tenant_id, e.event_id)]
            sql = (
                f"SELECT tenant_id, event_id FROM {self.table} WHERE (tenant_id, event_id)"
                f" IN (VALUES {', '.join(['(?, ?)'] * len(part))})"
            )
            stored.update(conn.execute(sql, pairs).fetchall())
        return [e for e in events if (e.tenant_id, e.event_id) not in stored]

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

    # --- the stream's feed: ``tpos`` is the tenant's durable position ---------------------

    @mapped
    def feed_id(self) -> str:
        row = (
            self.backend.connection()
            .execute("SELECT value FROM logkit_meta WHERE key = 'database_id'")
            .fetchone()
        )
        # "tenant": cursors from before per-tenant positions (global ones) read as unknown.
        return hashlib.sha256(f"{row[0]}/{self.table}/tenant".encode()).hexdigest()[:12]

    @mapped
    def feed_bounds(self, tenant_id: str) -> tuple[int, int]:
        conn = self.backend.connection()
        with snapshot(conn):
            newest = self._newest(conn, tenant_id)
            sql = f"SELECT min(tpos) FROM {self.table} WHERE tenant_id = ?"
            (oldest,) = conn.execute(sql, (tenant_id,)).fetchone()
        return (newest + 1 if oldest is None else int(oldest)), newest

    @mapped
    def feed_after(
        self,
        tenant_id: str,
        position: int,
        *,
        run_id: str | None = None,
        event_types: tuple[str, ...] | None = None,
        limit: int = 1000,
    ) -> tuple[list[FeedRow], int]:
        where, params = feed_where(tenant_id, position, run_id, event_types)
        limit = clamp_limit(limit)
        sql = (
            f"SELECT tpos, tenant_id, body FROM {self.table} WHERE {where}"
            f" ORDER BY tpos LIMIT {limit}"
        )
        conn = self.backend.connection()
        # One read snapshot for the rows and the newest position: "scanned up to newest" is
        # only true of the same snapshot the rows came from.
        with snapshot(conn):
            newest = self._newest(conn, tenant_id)
            rows = [FeedRow(*row) for row in conn.execute(sql, params)]
        scanned = rows[-1].position if len(rows) == limit else max(newest, position)
        return rows, scanned

    def _newest(self, conn: sqlite3.Connection, tenant_id: str) -> int:
        sql = "SELECT newest FROM logkit_feed_heads WHERE tbl = ? AND tenant_id = ?"
        row = conn.execute(sql, (self.table, tenant_id)).fetchone()
        return 0 if row is None else int(row[0])
