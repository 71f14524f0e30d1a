"""Tables of wrapped sealing keys (logkit.redaction.keys.WrappedKeys) in a shared database.

Bytes by id, nothing more: the wrapping, the ids (keyed hashes of subjects) and what a key means
are the key provider's. Ids are hex strings and values are opaque wrapped bytes, so nothing in
a table names a subject. Destroying a key deletes its row or document.

- SQLite (``sqlite:///path.db``): table ``sealing_keys`` in that database, with
  ``secure_delete`` and a WAL checkpoint after each deletion (:meth:`SQLiteKeyTable.scrub`).
  Shared by the processes of one host.
- Firestore (``firestore://PROJECT?root=logkit``): collection ``{root}_sealing_keys``, one
  document per key (``wrapped``: bytes). Shared by every instance; ``create()`` makes the
  first writer's key the only one.
"""

from __future__ import annotations

import threading
from typing import Any

from logkit._sqlite import Residue, immediate, mapped
from logkit.errors import ConfigError
from logkit.sinks import firestore
from logkit.sinks.firestore import FirestoreBackend
from logkit.sinks.sqlite import SQLiteBackend

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS sealing_keys (
    key_id TEXT PRIMARY KEY,
    wrapped BLOB NOT NULL
) WITHOUT ROWID;
"""


def open_key_table(uri: str) -> SQLiteKeyTable | FirestoreKeyTable:
    """The key table a URI names: sqlite:///... or firestore://..."""
    scheme = uri.partition("://")[0].lower()
    if scheme == "sqlite":
        return SQLiteKeyTable(SQLiteBackend.from_uri(uri))
    if scheme == "firestore":
        return FirestoreKeyTable(FirestoreBackend.from_uri(uri))
    raise ConfigError(
        f"redaction.key_store must be a sqlite:/// or firestore:// URI, not {scheme or uri!r}"
    )


class SQLiteKeyTable:
    def __init__(self, backend: SQLiteBackend) -> None:
        self.backend = backend
        self._ready = False
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"{self.backend.describe()} (sealing_keys)"

    def _conn(self) -> Any:
        conn = self.backend.connection()
        with self._lock:
            if not self._ready:
                conn.executescript(_SQLITE_SCHEMA)
                self._ready = True
        return conn

    @mapped
    def get(self, key_id: str) -> bytes | None:
        sql = "SELECT wrapped FROM sealing_keys WHERE key_id = ?"
        row = self._conn().execute(sql, (key_id,)).fetchone()
        return None if row is None else bytes(row[0])

    @mapped
    def put_if_absent(self, key_id: str, wrapped: bytes) -> bytes:
        with immediate(self._conn()) as conn:
            insert = "INSERT OR IGNORE INTO sealing_keys (key_id, wrapped) VALUES (?, ?)"
            conn.execute(insert, (key_id, wrapped))
            row = conn.execute("SELECT wrapped FROM sealing_keys WHERE key_id = ?", (key_id,))
            return bytes(row.fetchone()[0])

    @mapped
    def delete(self, key_id: str) -> bool:
        with immediate(self._conn()) as conn:
            deleted = conn.execute("DELETE FROM sealing_keys WHERE key_id = ?", (key_id,))
            existed = deleted.rowcount > 0
        if existed:
            self.backend.forget_old_pages()
        return existed

    def scrub(self, wait_s: float) -> list[Residue]:
        return self.backend.scrub(wait_s)

    def close(self) -> None:
        self.backend.close()


class FirestoreKeyTable:
    def __init__(self, backend: FirestoreBackend) -> None:
        self.backend = backend

    def describe(self) -> str:
        return f"{self.backend.describe()} (collection {self._name()})"

    def _name(self) -> str:
        return f"{self.backend.settings.root}_sealing_keys"

    def _document(self, key_id: str) -> Any:
        return self.backend.client().collection(self._name()).document(key_id)

    @firestore.mapped
    def get(self, key_id: str) -> bytes | None:
        snapshot = self._document(key_id).get(**self.backend.rpc)
        return bytes(snapshot.get("wrapped")) if snapshot.exists else None

    @firestore.mapped
    def put_if_absent(self, key_id: str, wrapped: bytes) -> bytes:
        from google.api_core.exceptions import AlreadyExists

        try:
            self._document(key_id).create({"wrapped": wrapped}, **self.backend.rpc)
        except AlreadyExists:  # another instance created it first: theirs is the key
            stored = self.get(key_id)
            if stored is None:  # destroyed in between: nothing sealed under it survives
                return self.put_if_absent(key_id, wrapped)
            return stored
        return wrapped

    @firestore.mapped
    def delete(self, key_id: str) -> bool:
        document = self._document(key_id)
        if not document.get(**self.backend.rpc).exists:
            return False
        document.delete(**self.backend.rpc)
        return True
