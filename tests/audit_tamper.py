"""Raw, logkit-bypassing access to a backend's audit chain, to play the attacker in tests.

A row is a dict with the stored fields: ``record`` (bytes hashed), ``payload`` (bytes or None),
``payload_salt``, ``hash``, ``seq``, ``chain_id`` and the query columns (``event_id``,
``tenant_id``, ``run_id``, ``user_id``, ``event_type``, ``ts_us``). Each backend implements the
same four primitives, so every attack in test_audit_hash_chain.py runs on every backend.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Protocol


class Tamper(Protocol):
    def get(self, chain_id: str, seq: int) -> dict[str, Any]: ...

    def put(self, chain_id: str, seq: int, row: dict[str, Any]) -> None:
        """Overwrite (or create) the row filed at (chain_id, seq) with exactly ``row``."""
        ...

    def remove(self, chain_id: str, seq: int) -> None: ...

    def seqs(self, chain_id: str) -> list[int]: ...


ROW_COLUMNS = (
    "chain_id",
    "seq",
    "event_id",
    "tenant_id",
    "run_id",
    "user_id",
    "event_type",
    "ts_us",
    "hash",
    "record",
    "payload",
    "payload_salt",
)


class SQLiteTamper:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)

    def get(self, chain_id: str, seq: int) -> dict[str, Any]:
        row = self.conn.execute(
            f"SELECT {', '.join(ROW_COLUMNS)} FROM audit_chain WHERE chain_id = ? AND seq = ?",
            (chain_id, seq),
        ).fetchone()
        assert row is not None, (chain_id, seq)
        return dict(zip(ROW_COLUMNS, row, strict=True))

    def put(self, chain_id: str, seq: int, row: dict[str, Any]) -> None:
        self.remove(chain_id, seq)
        values = {**row, "chain_id": chain_id, "seq": seq}
        # A forged or moved row may reuse an event_id that is filed elsewhere: make room.
        self.conn.execute("DELETE FROM audit_chain WHERE event_id = ?", (values["event_id"],))
        self.conn.execute(
            f"INSERT INTO audit_chain ({', '.join(ROW_COLUMNS)}) VALUES "
            f"({', '.join('?' * len(ROW_COLUMNS))})",
            [values[c] for c in ROW_COLUMNS],
        )

    def remove(self, chain_id: str, seq: int) -> None:
        self.conn.execute("DELETE FROM audit_chain WHERE chain_id = ? AND seq = ?", (chain_id, seq))

    def seqs(self, chain_id: str) -> list[int]:
        rows = self.conn.execute(
            "SELECT seq FROM audit_chain WHERE chain_id = ? ORDER BY seq", (chain_id,)
        ).fetchall()
        return [r[0] for r in rows]
