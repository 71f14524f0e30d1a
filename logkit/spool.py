"""The durable local spool: where events wait while their backend is unreachable.

One SQLite file (WAL) shared by every dispatcher of the process, and safe to share between
processes. Rows are kept per destination (``sink``: backend URI and role) in arrival order and
replayed oldest first. Events a backend refuses outright (not an outage: the write itself is
rejected) move to the ``dead`` table, kept for inspection instead of blocking the replay.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from logkit.envelope import Event
from logkit.errors import SinkUnavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    body TEXT NOT NULL,
    spooled_at REAL NOT NULL DEFAULT (unixepoch('subsec'))
);
CREATE INDEX IF NOT EXISTS spool_sink ON spool (sink, id);
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    body TEXT NOT NULL,
    reason TEXT NOT NULL,
    failed_at REAL NOT NULL DEFAULT (unixepoch('subsec'))
);
"""


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                       check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
            except (OSError, sqlite3.Error) as exc:
                raise SinkUnavailable(f"spool {self.path} unusable: {exc}") from exc
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def put(self, sink: str, events: Sequence[Event]) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO spool (sink, body) VALUES (?, ?)",
                         [(sink, e.model_dump_json()) for e in events])
        conn.execute("COMMIT")

    def peek(self, sink: str, limit: int) -> list[tuple[int, Event]]:
        rows = self._conn().execute(
            "SELECT id, body FROM spool WHERE sink = ? ORDER BY id LIMIT ?", (sink, limit)
        ).fetchall()
        return [(row_id, Event.model_validate_json(body)) for row_id, body in rows]

    def ack(self, ids: Sequence[int]) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i in ids])
        conn.execute("COMMIT")

    def bury(self, sink: str, events: Sequence[Event], reason: str) -> None:
        """Keep events a backend rejected (not an outage) in the dead-letter table."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO dead (sink, body, reason) VALUES (?, ?, ?)",
                         [(sink, e.model_dump_json(), reason) for e in events])
        conn.execute("COMMIT")

    def count(self, sink: str | None = None) -> int:
        sql, params = "SELECT COUNT(*) FROM spool", ()
        if sink is not None:
            sql, params = sql + " WHERE sink = ?", (sink,)
        return int(self._conn().execute(sql, params).fetchone()[0])

    def dead_count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM dead").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
