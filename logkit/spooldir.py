"""A spool directory shared by several processes or instances (``dispatch.spool_dir``).

Each process writes its own spool file, ``spool-<host>-<pid>-<random>.db``, and holds an
exclusive lock on ``<file>.lock`` (``flock``) for as long as it uses it. A file whose lock is
free belongs to a process that is gone (exited, killed, scaled in): any process may *claim* it
by taking that lock, move its rows into its own spool, and delete it. The lock is the lease: a
file is claimed by one process at a time, so every spooled batch is replayed once. The kernel
(or, on NFS, the lock server) releases the lock when its holder dies, even on kill -9.

The directory must support ``flock`` and atomic rename: a local disk, or an NFS volume
(Filestore on Cloud Run). Cloud Storage FUSE has neither: do not put a spool there.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import socket
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from logkit.spool import BROKEN_MARK, Spool, inode_of

log = logging.getLogger("logkit.spool")

PREFIX = "spool-"
SUFFIX = ".db"
_CHUNK = 5_000
_held: dict[str, FileClaim] = {}  # claims of this process, by file: never claimed twice
_held_lock = threading.Lock()


class FileClaim:
    """An exclusive claim on one spool file, held until released or the process ends."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd

    @classmethod
    def take(cls, path: Path) -> FileClaim | None:
        """Claim ``path`` without waiting; None when another holder (live) has it."""
        key = str(path)
        lock_path = _lock_path(path)
        with _held_lock:
            if key in _held:
                return None
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                return None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return None
            # The previous holder may have deleted the lock file after we opened it: our lock
            # would be on a file nobody else sees. Only the file at the path counts.
            if inode_of(lock_path) != os.fstat(fd).st_ino:
                os.close(fd)
                return None
            claim = cls(path, fd)
            _held[key] = claim
            return claim

    def release(self, *, delete: bool = False) -> None:
        """Give the file up; with ``delete`` remove it (and its lock file) first."""
        with _held_lock:
            if _held.get(str(self.path)) is not self:
                return
            if delete:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
                _lock_path(self.path).unlink(missing_ok=True)
            del _held[str(self.path)]
            os.close(self._fd)


def own_spool(directory: Path) -> tuple[Spool, FileClaim]:
    """A new spool file of this process in ``directory``, claimed for its lifetime."""
    directory.mkdir(parents=True, exist_ok=True)
    host = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())[:40]
    path = directory / f"{PREFIX}{host}-{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
    claim = FileClaim.take(path)
    if claim is None:  # a random name nobody has: only a broken directory gets here
        raise OSError(f"cannot lock a spool file in {directory}")
    return Spool(path), claim


def spool_files(directory: Path) -> list[Path]:
    """The spool files in ``directory`` (not their lock files, nor broken ones moved aside)."""
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.glob(f"{PREFIX}*{SUFFIX}") if BROKEN_MARK not in p.name and p.is_file()
    )


def adopt(own: Spool, path: Path) -> int | None:
    """Claim another process's spool file, move its rows into ``own`` and delete it.

    Returns the rows moved, or None when the file is held by a live process (or gone).
    """
    claim = FileClaim.take(path)
    if claim is None:
        return None
    if not path.exists():  # adopted and deleted by someone else just before our claim
        claim.release(delete=True)
        return None
    try:
        moved = _move_rows(path, own)
    except sqlite3.Error as exc:
        _set_aside(path, exc)
        claim.release()
        return 0
    claim.release(delete=True)
    if moved:
        log.warning(
            "logkit spool: adopted %d row(s) left in %s by a process that is gone", moved, path.name
        )
    return moved


def _move_rows(path: Path, own: Spool) -> int:
    """Copy rows in chunks (committed into ``own`` first, then deleted here): a crash between
    the two leaves a chunk in both, which replays idempotently, never a lost one."""
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=30.0, isolation_level=None)
    moved = 0
    try:
        for table, columns in (
            ("spool", "sink, body, spooled_at"),
            ("dead", "sink, body, reason, failed_at"),
        ):
            if not _has_table(conn, table):
                continue
            while rows := conn.execute(
                f"SELECT id, {columns} FROM {table} ORDER BY id LIMIT ?", (_CHUNK,)
            ).fetchall():
                own.put_rows(table, [tuple(row[1:]) for row in rows])
                conn.execute(f"DELETE FROM {table} WHERE id <= ?", (rows[-1][0],))
                moved += len(rows)
    finally:
        conn.close()
    return moved


def _has_table(conn: sqlite3.Connection, table: str) -> bool:
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return conn.execute(sql, (table,)).fetchone() is not None


def _set_aside(path: Path, exc: sqlite3.Error) -> None:
    aside = path.with_name(f"{path.name}{BROKEN_MARK}adopted")
    try:
        path.rename(aside)
    except OSError:
        return
    log.error("logkit spool: %s is unusable (%s): moved aside to %s", path.name, exc, aside.name)


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


class Adopter:
    """A thread that adopts the spool files of processes that are gone, now and every
    ``interval`` seconds, and wakes the dispatchers to replay them."""

    def __init__(
        self, own: Spool, directory: Path, interval: float, on_adopted: Callable[[], None]
    ) -> None:
        self.own, self.directory, self.interval = own, directory, interval
        self.adopted = 0
        self._on_adopted = on_adopted
        self.first_scan = threading.Event()  # set once the start-up scan is done
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="logkit-spool-adopter", daemon=True)
        self._thread.start()

    def scan(self) -> int:
        moved = 0
        for path in spool_files(self.directory):
            if path == self.own.path:
                continue
            moved += adopt(self.own, path) or 0
        if moved:
            self.adopted += moved
            self._on_adopted()
        return moved

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan()
            except Exception as exc:  # never let a bad file in a shared directory kill us
                log.error("logkit spool: adopting from %s failed: %s", self.directory, exc)
            self.first_scan.set()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
