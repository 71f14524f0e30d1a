"""The durable local spool: where events wait while their backend is unreachable.

One SQLite file (WAL) shared by every dispatcher of the process, and safe to share between
processes on one host. Rows are kept per destination (``sink``: backend URI and role) in arrival
order and replayed oldest first. What can never be stored moves to the ``dead`` table with its
reason, kept for inspection and retry (``logkit spool dead-letters | replay``) instead of
blocking anything: events a backend refuses outright, events that cannot be serialised, and
spool rows that no longer parse (``raw`` keeps their exact stored value).

A spool file that is not a usable database any more (overwritten, truncated, corrupt) is moved
aside as ``<name>.broken-<UTC time>`` (reported once, in the log and by ``logkit spool show``)
and a fresh one takes its place, so a broken file never stops events from being kept.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from logkit._sqlite import Residue, ThreadConnections, immediate
from logkit.envelope import Event
from logkit.errors import ContractError, SinkUnavailable

log = logging.getLogger("logkit.spool")
T = TypeVar("T")

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
    failed_at REAL NOT NULL,
    raw BLOB  -- the stored value exactly, when it was not a clean event body
);
"""
BROKEN_MARK = ".broken-"
_REASON_MAX = 500


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One row of the dead-letter table (the body is shown only on request: it is data)."""

    id: int
    sink: str
    reason: str
    failed_at: float
    body: str
    raw: bytes | None

    @property
    def event_id(self) -> str | None:
        """The event id, when the body still says one (for reports)."""
        try:
            value = json.loads(self.body).get("event_id")
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, str) else None


def _setup(conn: sqlite3.Connection) -> None:
    conn.executescript(_SCHEMA)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(dead)")}
    if "raw" not in columns:  # a spool written by an older logkit
        conn.execute("ALTER TABLE dead ADD COLUMN raw BLOB")


def _is_corrupt(exc: sqlite3.Error) -> bool:
    """Not a database, or a damaged one (SQLITE_NOTADB / SQLITE_CORRUPT): only moving the file
    aside helps. Busy, locked, I/O and permission errors are OperationalErrors: they pass."""
    return type(exc) is sqlite3.DatabaseError


def _lacks_schema(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and (
        "no such table" in text or "no such column" in text or "has no column" in text
    )


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._repair = threading.Lock()
        self._connections = self._open()
        self._inode: int | None = None
        self.unreadable: dict[str, int] = {}  # rows set aside by peek(), per sink

    def _open(self) -> ThreadConnections:
        return ThreadConnections(
            self.path,
            timeout=30.0,
            pragmas=(
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=NORMAL",
                # Acknowledged events and purged dead letters are zeroed, not left in free
                # pages: DSAR erasure reaches the spool file too (see scrub).
                "PRAGMA secure_delete=ON",
            ),
            setup=_setup,
        )

    # --- the guard around every use: map, repair, quarantine ---------------------------------

    def _guarded(self, action: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``action`` on this thread's connection; a missing schema is recreated and a
        corrupt file moved aside, then the action runs once more on the repaired spool."""
        for attempt in (1, 2):
            connections = self._connections
            if self._inode is None:
                self._inode = inode_of(self.path)  # the file this spool opens (None: a new one)
            try:
                return action(connections.get())
            except sqlite3.ProgrammingError as exc:  # closed under us (a repair, close())
                if attempt == 2:
                    raise SinkUnavailable(f"spool {self.path} unusable: {exc}") from exc
            except sqlite3.Error as exc:
                if attempt == 2 or not (_is_corrupt(exc) or _lacks_schema(exc)):
                    raise SinkUnavailable(f"spool {self.path} unusable: {exc}") from exc
                self._repair_after(connections, exc)
            except OSError as exc:
                raise SinkUnavailable(f"spool {self.path} unusable: {exc}") from exc
        raise AssertionError("unreachable")

    def _repair_after(self, broken: ThreadConnections, exc: sqlite3.Error) -> None:
        with self._repair:
            if self._connections is not broken:  # another thread repaired it meanwhile
                return
            broken.close()
            current = inode_of(self.path)
            if _is_corrupt(exc) and current is not None and current == self._inode:
                self._move_aside(exc)  # unless another process already replaced it
            self._inode = None
            self._connections = self._open()

    def _move_aside(self, exc: sqlite3.Error) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        aside = self.path.with_name(f"{self.path.name}{BROKEN_MARK}{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            try:
                source.rename(Path(f"{aside}{suffix}"))
            except FileNotFoundError:
                continue
            except OSError as move_error:  # cannot move it: delete it rather than stay stuck
                log.error("logkit spool: cannot move %s aside (%s)", source, move_error)
                source.unlink(missing_ok=True)
        log.error(
            "logkit spool %s is unusable (%s): moved aside to %s, a fresh spool is used; "
            "`logkit spool show` lists it",
            self.path,
            type(exc).__name__ + ": " + str(exc)[:80],
            aside.name,
        )

    def _write(self, body: Callable[[sqlite3.Connection], T]) -> T:
        def run(conn: sqlite3.Connection) -> T:
            with immediate(conn):
                return body(conn)

        return self._guarded(run)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._guarded(lambda conn: conn.execute(sql, params).fetchall())

    # --- writing ------------------------------------------------------------------------------

    def put(self, sink: str, events: Sequence[Event]) -> int:
        """Keep ``events`` for ``sink``, in order. An event that cannot be serialised goes to
        the dead-letter table instead; returns how many did."""
        now = time.time()
        rows, dead = [], []
        for event in events:
            try:
                rows.append((sink, event.to_json(), now))
            except Exception as exc:  # any failure to serialise makes the event poison
                dead.append((sink, _safe_body(event), _reason(exc), now, None))

        def insert(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT INTO spool (sink, body, spooled_at) VALUES (?, ?, ?)", rows)
            _insert_dead(conn, dead)

        self._write(insert)
        return len(dead)

    def ack(self, ids: Sequence[int]) -> None:
        self._write(
            lambda conn: conn.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i in ids])
        )

    def bury(self, sink: str, events: Sequence[Event], reason: str) -> None:
        """Keep events a backend rejected (not an outage) in the dead-letter table."""
        now = time.time()
        dead = [(sink, _safe_body(e), reason[:_REASON_MAX], now, None) for e in events]
        self._write(lambda conn: _insert_dead(conn, dead))

    def put_rows(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Rows copied as stored from another spool file (``spool``: sink, body, spooled_at;
        ``dead``: sink, body, reason, failed_at). Bad ones are set aside when replayed."""
        now = time.time()
        values: list[tuple[object, ...]]
        if table == "spool":
            sql = "INSERT INTO spool (sink, body, spooled_at) VALUES (?, ?, ?)"
            values = [(_text(r[0]), _stored(r[1]), _number(r[2], now)) for r in rows]
        else:
            sql = "INSERT INTO dead (sink, body, reason, failed_at, raw) VALUES (?, ?, ?, ?, ?)"
            values = [
                (_text(r[0]), _text(r[1]), _text(r[2]), _number(r[3], now), _raw(r[1]))
                for r in rows
            ]
        self._write(lambda conn: conn.executemany(sql, values))

    # --- replaying ----------------------------------------------------------------------------

    def peek(self, sink: str, limit: int) -> list[tuple[int, Event]]:
        """The oldest rows of ``sink`` as events. Rows that are not (any more) a valid event
        move to the dead-letter table with their raw value, and the peek goes on past them."""
        while True:
            rows = self._read(
                "SELECT id, body FROM spool WHERE sink = ? ORDER BY id LIMIT ?", (sink, limit)
            )
            good: list[tuple[int, Event]] = []
            bad: list[tuple[int, Any, str]] = []
            for row_id, body in rows:
                try:
                    good.append((row_id, _decode(body)))
                except (ContractError, ValueError, TypeError) as exc:
                    bad.append((row_id, body, _reason(exc)))
            if bad:
                self._move_to_dead(sink, bad)
                self.unreadable[sink] = self.unreadable.get(sink, 0) + len(bad)
                log.error(
                    "logkit spool: %d unreadable row(s) of %s moved to the dead letters",
                    len(bad),
                    sink,
                )
            if good or not rows:
                return good

    def _move_to_dead(self, sink: str, bad: list[tuple[int, Any, str]]) -> None:
        now = time.time()
        dead = [(sink, _text(body), reason, now, _raw(body)) for _, body, reason in bad]

        def move(conn: sqlite3.Connection) -> None:
            _insert_dead(conn, dead)
            conn.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i, _, _ in bad])

        self._write(move)

    # --- operator views -----------------------------------------------------------------------

    def count(self, sink: str | None = None) -> int:
        if sink is None:
            return int(self._read("SELECT COUNT(*) FROM spool")[0][0])
        return int(self._read("SELECT COUNT(*) FROM spool WHERE sink = ?", (sink,))[0][0])

    def sinks(self) -> dict[str, int]:
        """Rows waiting per sink."""
        rows = self._read("SELECT sink, COUNT(*) FROM spool GROUP BY sink ORDER BY sink")
        return {str(sink): int(n) for sink, n in rows}

    def dead_count(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM dead")[0][0])

    def dead_letters(self, *, sink: str | None = None, limit: int = 100) -> list[DeadLetter]:
        where, params = ("WHERE sink = ?", [sink]) if sink is not None else ("", [])
        rows = self._read(
            f"SELECT id, sink, reason, failed_at, body, raw FROM dead {where} ORDER BY id LIMIT ?",
            [*params, limit],
        )
        return [
            DeadLetter(int(i), str(s), str(r), float(f), _text(b), _raw(raw) or _raw(b))
            for i, s, r, f, b, raw in rows
        ]

    def requeue(self, ids: Sequence[int] | None = None, *, sink: str | None = None) -> int:
        """Move dead letters back into the spool, to be tried again; returns how many."""
        clauses: list[str] = ["1 = 1"]
        params: list[object] = []
        if ids is not None:
            clauses.append(f"id IN ({', '.join('?' * len(ids))})")
            params += list(ids)
        if sink is not None:
            clauses.append("sink = ?")
            params.append(sink)
        where = " AND ".join(clauses)

        def move(conn: sqlite3.Connection) -> int:
            conn.execute(
                "INSERT INTO spool (sink, body, spooled_at) "
                f"SELECT sink, body, failed_at FROM dead WHERE {where} ORDER BY id",
                params,
            )
            return int(conn.execute(f"DELETE FROM dead WHERE {where}", params).rowcount)

        return self._write(move) if ids is None or ids else 0

    def purge_dead(self, tenant_id: str, user_id: str, *, dry_run: bool = False) -> int:
        """Delete (or count) a subject's dead letters: DSAR erasure reaches them too."""
        where = (
            "json_valid(body) AND json_extract(body, '$.tenant_id') = ? "
            "AND json_extract(body, '$.user_id') = ?"
        )
        if dry_run:
            sql = f"SELECT COUNT(*) FROM dead WHERE {where}"
            return int(self._read(sql, (tenant_id, user_id))[0][0])
        return self._write(
            lambda conn: int(
                conn.execute(f"DELETE FROM dead WHERE {where}", (tenant_id, user_id)).rowcount
            )
        )

    def scrub(self, wait_s: float) -> list[Residue]:
        """Checkpoint and truncate the spool's WAL (after an erasure); what a reader kept."""
        try:
            residue = self._connections.scrub(wait_s)
        except (OSError, sqlite3.Error) as exc:
            raise SinkUnavailable(f"spool {self.path} unusable: {exc}") from exc
        return [] if residue is None else [residue]

    def broken_files(self) -> list[Path]:
        """Spool files moved aside as unusable (by any process), oldest first."""
        return broken_files(self.path)

    def close(self) -> None:
        self._connections.close()


# --- helpers ----------------------------------------------------------------------------------


def broken_files(path: Path) -> list[Path]:
    """The files the spool at ``path`` moved aside as unusable, oldest first (no spool needs
    to be open for this: it only lists the directory)."""
    found = path.parent.glob(f"{path.name}{BROKEN_MARK}*")
    return sorted(p for p in found if not p.name.endswith(("-wal", "-shm")))


def _insert_dead(conn: sqlite3.Connection, dead: list[tuple[Any, ...]]) -> None:
    if dead:
        conn.executemany(
            "INSERT INTO dead (sink, body, reason, failed_at, raw) VALUES (?, ?, ?, ?, ?)", dead
        )


def _decode(body: object) -> Event:
    if isinstance(body, bytes):
        body = body.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if not isinstance(body, str):
        raise TypeError(f"the stored body is {type(body).__name__}, not JSON text")
    return Event.model_validate_json(body)


def _text(value: object) -> str:
    """A stored value as text for the ``body`` column (never fails)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return "" if value is None else str(value)


def _raw(value: object) -> bytes | None:
    """The exact stored bytes, kept when the value was not clean text."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogatepass")
        return None
    return None if value is None else repr(value).encode()


def _stored(value: object) -> str | bytes:
    """A body as SQLite can keep it in a TEXT NOT NULL column (bytes stay bytes)."""
    return value if isinstance(value, str | bytes) else _text(value)


def _number(value: object, default: float) -> float:
    return float(value) if isinstance(value, int | float) else default


def _safe_body(event: Event) -> str:
    """The event as JSON text even when it cannot be encoded as UTF-8: bad characters are
    escaped (``\\ud800``), so the dead letter keeps everything for inspection."""
    try:
        return event.to_json()
    except Exception:  # the reason it is a dead letter: fall back to an escaping encoder
        return json.dumps(event.model_dump(mode="python"), ensure_ascii=True, default=str)


def _reason(exc: BaseException) -> str:
    # The type and a bounded message: drivers' messages name positions, not values.
    text = _text(str(exc)).replace("\n", " ")
    return f"{type(exc).__name__}: {text}"[:_REASON_MAX]


def inode_of(path: Path) -> int | None:
    """The inode of the file at ``path`` now (None: no file there)."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None
