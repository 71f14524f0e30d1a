"""The Tamper of tests/audit_tamper.py on Firestore: raw client access to the audit documents.

Rows are the record documents of logkit.sinks.firestore_audit (the same keys as the SQLite
rows). Like the SQLite tamper, a row is the whole truth about an event: ``put`` also files the
event-id index entry (``audit_events``) and the chain document, and ``remove`` drops the index
entry with the record, and the chain document with the chain's last record, so every read of
the store (query, chain_ids, records) sees exactly the rows the tamper left.
"""

from __future__ import annotations

from typing import Any

from logkit.sinks.firestore_audit import (
    CHAINS,
    INDEX,
    RECORDS,
    document_key,
    seq_key,
)
from tests.audit_tamper import ROW_COLUMNS

_COLUMNS = ROW_COLUMNS
_INDEX_COLUMNS = ("event_id", "tenant_id", "run_id", "user_id", "event_type", "ts_us")


class FirestoreTamper:
    def __init__(self, project: str, root: str, client: Any = None) -> None:
        if client is None:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import firestore

            anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
            client = firestore.Client(project=project, credentials=anonymous)
        self.db = client
        self.root = root

    def _tenant(self, chain_id: str) -> Any:
        return self.db.collection(self.root).document(chain_id.partition("/")[0])

    def _chain(self, chain_id: str) -> Any:
        run = chain_id.partition("/")[2]
        return self._tenant(chain_id).collection(CHAINS).document(document_key(run))

    def _record(self, chain_id: str, seq: int) -> Any:
        return self._chain(chain_id).collection(RECORDS).document(seq_key(seq))

    def _index(self, chain_id: str, event_id: str) -> Any:
        return self._tenant(chain_id).collection(INDEX).document(document_key(event_id))

    def get(self, chain_id: str, seq: int) -> dict[str, Any]:
        snap = self._record(chain_id, seq).get()
        assert snap.exists, (chain_id, seq)
        data = snap.to_dict()
        return {c: data.get(c) for c in _COLUMNS}

    def put(self, chain_id: str, seq: int, row: dict[str, Any]) -> None:
        """Overwrite (or create) the row filed at (chain_id, seq) with exactly ``row``."""
        self.remove(chain_id, seq)
        values = {**row, "chain_id": chain_id, "seq": seq}
        index = self._index(chain_id, values["event_id"])
        # A forged or moved row may reuse an event_id that is filed elsewhere: make room.
        elsewhere = index.get()
        if elsewhere.exists:
            self.remove(elsewhere.get("chain_id"), elsewhere.get("seq"))
            index.delete()
        tenant_id, _, run = chain_id.partition("/")
        self._chain(chain_id).set({"chain_id": chain_id, "tenant_id": tenant_id, "run_id": run})
        self._record(chain_id, seq).set({c: values[c] for c in _COLUMNS})
        index.set({**{c: values[c] for c in _INDEX_COLUMNS}, "chain_id": chain_id, "seq": seq})

    def remove(self, chain_id: str, seq: int) -> None:
        record = self._record(chain_id, seq)
        snap = record.get()
        if not snap.exists:
            return
        index = self._index(chain_id, snap.get("event_id"))
        entry = index.get()
        if entry.exists and (entry.get("chain_id"), entry.get("seq")) == (chain_id, seq):
            index.delete()
        record.delete()
        if not self.seqs(chain_id):
            self._chain(chain_id).delete()

    def seqs(self, chain_id: str) -> list[int]:
        records = self._chain(chain_id).collection(RECORDS)
        return [int(snap.get("seq")) for snap in records.order_by("seq").stream()]
