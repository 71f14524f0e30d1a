"""SQLite backend: the embedded default. One file, WAL, all three roles.

URI: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (SQLAlchemy's rule).
Each role is one table; ``pos`` (autoincrement) records the order events were stored in.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from logkit.envelope import Event
from logkit.errors import ConfigError, SinkUnavailable, SinkWriteError
from logkit.sinks import cursor
from logkit.sinks.protocols import (
    ROLE_TABLES,
    Page,
    Query,
    Role,
    Selector,
    clamp_limit,
    sequence,
)

T = TypeVar("T")

_COLUMNS = ("event_id", "tenant_id", "run_id", "user_id", "event_type", "ts_us", "body")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    pos INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    run_id TEXT,
    user_id TEXT,
    event_type TEXT NOT NULL,
    ts_us INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {table}_tenant_ts ON {table} (tenant_id, ts_us, event_id);
CREATE INDEX IF NOT EXISTS {table}_run_ts ON {table} (tenant_id, run_id, ts_us, event_id);
CREATE INDEX IF NOT EXISTS {table}_user ON {table} (tenant_id, user_id);
"""


def path_from_uri(uri: str) -> Path:
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri == prefix:
        raise ConfigError(f"a SQLite URI looks like sqlite:///path/logkit.db, got {uri!r}")
    return Path(uri[len(prefix) :].split("?", 1)[0])


def mapped(fn: Callable[..., T]) -> Callable[..., T]:
    """Map sqlite3 errors onto logkit's tree at the boundary."""

    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            raise SinkUnavailable(f"SQLite unavailable: {exc}") from exc
        except sqlite3.Error as exc:
            raise SinkWriteError(f"SQLite error: {exc}") from exc

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


class SQLiteBackend:
    scheme: ClassVar[str] = "sqlite"
    durable: ClassVar[bool] = True
    roles: ClassVar[frozenset[Role]] = frozenset(Role)

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._schema_ready = False

    @classmethod
    def from_uri(cls, uri: str) -> SQLiteBackend:
        return cls(path_from_uri(uri))

    def describe(self) -> str:
        return f"sqlite {self.path}"

    @mapped
    def connection(self) -> sqlite3.Connection:
        """This thread's connection (SQLite connections are not shared across threads)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across application crashes in WAL mode; only a power loss
            # can take the last commits (documented in docs/sinks.md).
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
            if not self._schema_ready:
                self._create_schema(conn)
        return conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            for table in ROLE_TABLES.values():
                conn.executescript(_SCHEMA.format(table=table))
            self._schema_ready = True

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT on this thread's connection (rolled back on error)."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def store(self, role: Role) -> SQLiteStore:
        return SQLiteStore(self, ROLE_TABLES[Role(role)])

    @mapped
    def check_schema(self, *, create: bool = False) -> list[str]:
        conn = self.connection()  # creates the schema on first use
        problems = []
        for table in ROLE_TABLES.values():
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            missing = [c for c in _COLUMNS if c not in columns]
            if missing:
                problems.append(f"table {table} lacks columns {', '.join(missing)}")
        return problems

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()


class SQLiteStore:
    def __init__(self, backend: SQLiteBackend, table: str) -> None:
        self.backend = backend
        self.table = table
        self._insert = (
            f"INSERT OR IGNORE INTO {table} ({', '.join(_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )

    @mapped
    def write(self, events: Sequence[Event]) -> None:
        rows = [
            (e.event_id, e.tenant_id, e.run_id, e.user_id, e.event_type.value,
             cursor.to_micros(e.ts), e.model_dump_json())
            for e in sequence(events)
        ]
        with self.backend.transaction() as conn:
            conn.executemany(self._insert, rows)

    @mapped
    def query(self, query: Query) -> Page:
        where, params = _where(query.tenant_id, query.run_id, query.user_id)
        if query.event_types is not None:
            where.append(f"event_type IN ({', '.join('?' * len(query.event_types))})")
            params.extend(query.event_types)
        if query.since is not None:
            where.append("ts_us >= ?")
            params.append(cursor.to_micros(query.since))
        if query.until is not None:
            where.append("ts_us < ?")
            params.append(cursor.to_micros(query.until))
        if query.cursor is not None:
            ts_us, event_id = cursor.decode(query.cursor)
            where.append("(ts_us > ? OR (ts_us = ? AND event_id > ?))")
            params.extend((ts_us, ts_us, event_id))
        limit = clamp_limit(query.limit)
        sql = (
            f"SELECT body FROM {self.table} WHERE {' AND '.join(where)}"
            f" ORDER BY ts_us, event_id LIMIT {limit + 1}"
        )
        rows = self.backend.connection().execute(sql, params).fetchall()
        events = [Event.model_validate_json(body) for (body,) in rows[:limit]]
        more = len(rows) > limit
        return Page(events, cursor.encode(events[-1]) if more else None)

    @mapped
    def delete(self, selector: Selector) -> int:
        where, params = _where(selector.tenant_id, selector.run_id, selector.user_id)
        if selector.event_ids is not None:
            where.append(f"event_id IN ({', '.join('?' * len(selector.event_ids))})")
            params.extend(selector.event_ids)
        if selector.before is not None:
            where.append("ts_us < ?")
            params.append(cursor.to_micros(selector.before))
        with self.backend.transaction() as conn:
            return conn.execute(f"DELETE FROM {self.table} WHERE {' AND '.join(where)}",
                                params).rowcount


def _where(tenant_id: str, run_id: str | None, user_id: str | None) -> tuple[list[str], list[Any]]:
    where, params = ["tenant_id = ?"], [tenant_id]
    if run_id is not None:
        where.append("run_id = ?")
        params.append(run_id)
    if user_id is not None:
        where.append("user_id = ?")
        params.append(user_id)
    return where, params
