"""Per-thread SQLite connections with one-time set-up: shared by the SQLite backend and spool.

Also what makes a deletion reach the disk: :meth:`ThreadConnections.scrub` checkpoints the
write-ahead log into the database and truncates it, and when a reader's snapshot prevents that,
returns a :class:`Residue` naming the processes that hold the file open.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from logkit.errors import SinkUnavailable, SinkWriteError

T = TypeVar("T")

# Switching a new file to WAL needs a lock that SQLite's busy handler does not wait for, so
# threads or processes opening the same new file at once can see "database is locked".
_SETUP_ATTEMPTS = 50
_SETUP_PAUSE_S = 0.02


class ThreadConnections:
    """One connection per thread to one file; ``setup`` runs once, before any other use."""

    def __init__(
        self,
        path: Path,
        *,
        timeout: float,
        pragmas: tuple[str, ...],
        setup: Callable[[sqlite3.Connection], object],
    ) -> None:
        self.path = path
        self.timeout = timeout
        self.pragmas = pragmas
        self.setup = setup
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[sqlite3.Connection] = []
        self._ready = False
        with _OPENERS_LOCK:
            _OPENERS.add(self)

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            conn = self._connect()
            if not self._ready:
                self._with_retry(lambda: self.setup(conn))
                self._ready = True
            self._open.append(conn)
        self._local.conn = conn
        return conn

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        for pragma in self.pragmas:
            self._with_retry(lambda p=pragma: conn.execute(p))  # type: ignore[misc]
        return conn

    @staticmethod
    def _with_retry(action: Callable[[], object]) -> None:
        for attempt in range(_SETUP_ATTEMPTS):
            try:
                action()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == _SETUP_ATTEMPTS - 1:
                    raise
                time.sleep(_SETUP_PAUSE_S)  # another opener holds the lock for a moment

    def close(self) -> None:
        with self._lock:
            for conn in self._open:
                conn.close()
            self._open.clear()
            self._local = threading.local()

    def scrub(self, wait_s: float) -> Residue | None:
        """Checkpoint the WAL into the database and truncate it, waiting up to ``wait_s`` for
        readers on an older snapshot; None when done, else what may be left and who holds it.

        Deleted rows are zeroed in the database pages (``secure_delete``), but until this runs
        the WAL still holds the page images from before the delete, and while a reader keeps an
        older snapshot the checkpoint can neither copy the zeroed pages over the old ones in the
        database file nor truncate the WAL.
        """
        conn = self.get()
        # The busy handler is what retries, sleeping between attempts, while readers finish.
        conn.execute(f"PRAGMA busy_timeout = {max(0, int(wait_s * 1000))}")
        try:
            busy, log, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        if not busy and log <= 0:  # truncated (or not in WAL mode: -1)
            return None
        return Residue(self.path, int(log), int(done), holders(self.path, _own_count(self.path)))

    def in_transaction(self) -> bool:
        """Whether one of these connections holds a transaction open."""
        with self._lock:
            return any(c.in_transaction for c in self._open)


# Every ThreadConnections of the process, to tell logkit's own connections to a file apart
# from others when naming who holds it open.
_OPENERS: weakref.WeakSet[ThreadConnections] = weakref.WeakSet()
_OPENERS_LOCK = threading.Lock()


def _openers_of(path: Path) -> list[ThreadConnections]:
    with _OPENERS_LOCK:
        openers = list(_OPENERS)
    return [t for t in openers if _same_file(t.path, path)]


def _own_count(path: Path) -> int:
    """Connections logkit itself has open on ``path`` in this process."""
    return sum(len(t._open) for t in _openers_of(path))


def _same_file(one: Path, other: Path) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False


# --- what a deletion may leave on disk, and who holds it -----------------------------------


@dataclass(frozen=True, slots=True)
class Holder:
    """A process with the database file open."""

    pid: int
    command: str
    this_process: bool = False

    def describe(self) -> str:
        if self.this_process:
            return f"pid {self.pid} ({self.command}: another connection in this process)"
        return f"pid {self.pid} ({self.command})"


@dataclass(frozen=True, slots=True)
class Holders:
    found: tuple[Holder, ...] = ()
    # Processes whose open files could not be read (another user's), or no /proc at all.
    unseen: str | None = None

    def describe(self) -> str:
        named = "; ".join(h.describe() for h in self.found)
        if self.unseen:
            return f"{named}; {self.unseen}" if named else self.unseen
        return named or "no process found (the reader may have just closed)"


@dataclass(frozen=True, slots=True)
class Residue:
    """Erased values that may still be on disk: a reader's snapshot kept the WAL."""

    path: Path
    wal_frames: int  # frames in the WAL when the checkpoint gave up (busy)
    checkpointed: int  # of which copied into the database
    holders: Holders = field(default_factory=Holders)

    @property
    def files(self) -> list[str]:
        return [f"{self.path}-wal", str(self.path)]

    def message(self, rerun: str) -> str:
        return (
            f"erased values may remain in {self.path}-wal (and {self.path}) until the "
            f"connections holding the database open end their transactions: "
            f"{self.holders.describe()}. Then {rerun}: it checkpoints and truncates the WAL."
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "wal_frames": self.wal_frames,
            "checkpointed": self.checkpointed,
            "holders": [
                {"pid": h.pid, "command": h.command, "this_process": h.this_process}
                for h in self.holders.found
            ],
            "unseen": self.holders.unseen,
        }


def holders(path: Path, own_connections: int = 0) -> Holders:
    """The processes with ``path`` open (Linux /proc). This process is named only when it has
    more connections to the file than logkit's own, or one of logkit's is in a transaction."""
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        return Holders(unseen="the processes cannot be listed here (no /proc)")
    target = os.path.realpath(path)
    found: list[Holder] = []
    hidden = 0
    me = os.getpid()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            opened = sum(1 for fd in (entry / "fd").iterdir() if _link(fd) == target)
        except PermissionError:
            hidden += 1
            continue
        except FileNotFoundError:  # the process ended meanwhile
            continue
        if opened == 0:
            continue
        if pid == me:
            busy_here = any(t.in_transaction() for t in _openers_of(path))
            if opened <= own_connections and not busy_here:
                continue
        found.append(Holder(pid, _command(entry), pid == me))
    unseen = f"{hidden} process(es) of other users could not be inspected" if hidden else None
    return Holders(tuple(found), unseen)


def _link(fd: Path) -> str | None:
    try:
        return os.readlink(fd)
    except OSError:  # closed meanwhile
        return None


def _command(entry: Path) -> str:
    try:
        return (entry / "comm").read_text().strip() or "?"
    except OSError:
        return "?"


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any error): the write lock for the whole block."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN DEFERRED ... COMMIT: a read transaction, every statement in it sees one snapshot."""
    conn.execute("BEGIN DEFERRED")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def mapped(fn: Callable[..., T]) -> Callable[..., T]:
    """Map sqlite3 errors onto logkit's tree at the boundary."""

    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except (sqlite3.OperationalError, OSError) as exc:
            raise SinkUnavailable(f"SQLite unavailable: {exc}") from exc
        except sqlite3.Error as exc:
            raise SinkWriteError(f"SQLite error: {exc}") from exc

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper
