"""Per-thread SQLite connections with one-time set-up: shared by the SQLite backend and spool."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
