"""The durable local spool: where events wait while their backend is unreachable.

One SQLite file (WAL) shared by every dispatcher of the process, and safe to share between
processes. Rows are kept per destination (``sink``: backend URI and role) in arrival order and
replayed oldest first. Events a backend refuses outright (not an outage: the write itself is
rejected) move to the ``dead`` table, kept for inspection instead of blocking the replay.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from logkit._sqlite import Residue, ThreadConnections, immediate
from logkit.envelope import Event
from logkit.errors import SinkUnavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    body TEXT NOT NULL,
    spooled_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS spool_sink ON spool (sink, id);
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    body TEXT NOT NULL,
    reason TEXT NOT NULL,
    failed_at REAL NOT NULL
);
"""


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._connections = ThreadConnections(
            path,
            timeout=30.0,
            pragmas=(
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=NORMAL",
                # Acknowledged events and purged dead letters are zeroed, not left in free
                # pages: DSAR erasure reaches the spool file too (see scrub).
                "PRAGMA secure_delete=ON",
            ),
            setup=lambda conn: conn.executescript(_SCHEMA),
        )

    def _conn(self) -> sqlite3.Connection:
        try:
            return self._connections.get()
        except (OSError, sqlite3.Error) as exc:
            raise SinkUnavailable(f"spool {self.path} unusable: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            with immediate(self._conn()) as conn:
                yield conn
        except sqlite3.Error as exc:
            raise SinkUnavailable(f"spool {self.path} unusable: {exc}") from exc

    def put(self, sink: str, events: Sequence[Event]) -> None:
        now = time.time()
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO spool (sink, body, spooled_at) VALUES (?, ?, ?)",
                [(sink, e.to_json(), now) for e in events],
            )

    def peek(self, sink: str, limit: int) -> list[tuple[int, Event]]:
        rows = (
            self._conn()
            .execute("SELECT id, body FROM spool WHERE sink = ? ORDER BY id LIMIT ?", (sink, limit))
            .fetchall()
        )
        return [(row_id, Event.model_validate_json(body)) for row_id, body in rows]

    def ack(self, ids: Sequence[int]) -> None:
        with self._transaction() as conn:
            conn.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i in ids])

    def bury(self, sink: str, events: Sequence[Event], reason: str) -> None:
        """Keep events a backend rejected (not an outage) in the dead-letter table."""
        now = time.time()
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO dead (sink, body, reason, failed_at) VALUES (?, ?, ?, ?)",
                [(sink, e.to_json(), reason, now) for e in events],
            )

    def count(self, sink: str | None = None) -> int:
        if sink is None:
            row = self._conn().execute("SELECT COUNT(*) FROM spool").fetchone()
        else:
            row = (
                self._conn()
                .execute("SELECT COUNT(*) FROM spool WHERE sink = ?", (sink,))
                .fetchone()
            )
        return int(row[0])

    def purge_dead(self, tenant_id: str, user_id: str, *, dry_run: bool = False) -> int:
        """Delete (or count) a subject's dead letters: DSAR erasure reaches them too."""
        where = "json_extract(body, '$.tenant_id') = ? AND json_extract(body, '$.user_id') = ?"
        if dry_run:
            sql = f"SELECT COUNT(*) FROM dead WHERE {where}"
            return int(self._conn().execute(sql, (tenant_id, user_id)).fetchone()[0])
        with self._transaction() as conn:
            return int(
                conn.execute(f"DELETE FROM dead WHERE {where}", (tenant_id, user_id)).rowcount
            )

    def scrub(self, wait_s: float) -> list[Residue]:
        """Checkpoint and truncate the spool's WAL (after an erasure); what a reader kept."""
        try:
            residue = self._connections.scrub(wait_s)
        except (OSError, sqlite3.Error) as exc:
            raise SinkUnavailable(f"spool {self.path} unusable: {exc}") from exc
        return [] if residue is None else [residue]

    def dead_count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM dead").fetchone()[0])

    def close(self) -> None:
        self._connections.close()
