"""The audit mirror on BigQuery: the chained records, copied for analytics, verifiable again.

Table ``audit_chain`` in the backend's dataset, partitioned by day on ``ts`` and clustered by
``tenant_id, chain_id``: one row per chained record with the exact bytes the chain hashes
(``record``: the JCS of the record as text; ``payload``: the JCS of the payload, NULL once
erased), ``payload_salt``, ``hash``, ``chain_id``, ``seq`` and the query columns. Rows are
appended through the Storage Write API (no job; exactly once per append, keyed by chain and
seq). A record copied twice (two syncs racing) is two identical rows: reads collapse identical
copies (``SELECT DISTINCT``) but keep two *different* rows at one seq, so verification sees them.

It reads like an audit store (``chain_ids``, ``head``, ``records``, ``checkpoints``), so the
same verification walks it (logkit.auditing.mirror). It is never a chain of record: nothing
here can compare-and-append. Erasure is the one read-modify-write: one batched MERGE that
clears ``payload`` and ``payload_salt`` of the listed records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from logkit.chain import TENANT_CHAIN_RUN, chain_id_of, is_tenant_chain
from logkit.sinks.bigquery import mapped
from logkit.sinks.bigquery_write import Column
from logkit.sinks.protocols import StoredRecord

if TYPE_CHECKING:
    from logkit.sinks.bigquery import BigQueryBackend

MIRROR_TABLE = "audit_chain"
MIRROR_SCHEMA: tuple[Column, ...] = (
    Column("chain_id", "STRING", "REQUIRED"),
    Column("seq", "INT64", "REQUIRED"),
    Column("hash", "STRING", "REQUIRED"),
    Column("record", "STRING", "REQUIRED"),  # the JCS bytes hashed, as UTF-8 text
    Column("payload", "STRING", "NULLABLE"),  # JCS of the payload; NULL once erased
    Column("payload_salt", "STRING", "NULLABLE"),  # NULL once erased
    Column("event_id", "STRING", "REQUIRED"),
    Column("tenant_id", "STRING", "REQUIRED"),
    Column("run_id", "STRING", "NULLABLE"),
    Column("user_id", "STRING", "NULLABLE"),
    Column("event_type", "STRING", "REQUIRED"),
    Column("ts", "TIMESTAMP", "REQUIRED"),
    Column("ts_us", "INT64", "REQUIRED"),
)
MIRROR_CLUSTERING = ("tenant_id", "chain_id")
_FIELDS = ", ".join(c.name for c in MIRROR_SCHEMA if c.name != "ts")
ERASE_BATCH = 10_000  # records per erasing MERGE


def _row(record: StoredRecord) -> dict[str, Any]:
    return {
        **record.columns,
        "chain_id": record.chain_id,
        "seq": record.seq,
        "hash": record.hash,
        "record": record.record_bytes.decode(),
        "payload": None if record.payload_bytes is None else record.payload_bytes.decode(),
        "payload_salt": record.payload_salt,
        "ts": record.ts_us,
    }


def _stored(row: Any) -> StoredRecord:
    payload = row["payload"]
    return StoredRecord(
        chain_id=row["chain_id"],
        seq=int(row["seq"]),
        hash=row["hash"],
        record_bytes=row["record"].encode(),
        payload_bytes=None if payload is None else payload.encode(),
        payload_salt=row["payload_salt"],
        event_id=row["event_id"],
        tenant_id=row["tenant_id"],
        run_id=row["run_id"],
        user_id=row["user_id"],
        event_type=row["event_type"],
        ts_us=int(row["ts_us"]),
    )


class BigQueryMirror:
    """The mirror table of one dataset (see the module doc)."""

    def __init__(self, backend: BigQueryBackend) -> None:
        self.backend = backend
        self.table_id = f"{backend.dataset_id}.{MIRROR_TABLE}"

    def describe(self) -> str:
        return f"{self.backend.describe()} table {MIRROR_TABLE}"

    @mapped("mirror table check")
    def ensure(self) -> list[str]:
        """Create the dataset and table (or add the NULLABLE columns it lacks)."""
        self.backend.create_dataset()
        return self.backend.ensure_table(self.table_id, MIRROR_SCHEMA, MIRROR_CLUSTERING)

    @mapped("mirror write")
    def write(self, records: Sequence[StoredRecord]) -> None:
        if records:
            writer = self.backend.writer(self.table_id, MIRROR_SCHEMA, ("chain_id", "seq"))
            writer.append([_row(r) for r in records])

    @mapped("mirror read")
    def heads(self, tenant_id: str) -> dict[str, int]:
        """The highest seq mirrored per chain of the tenant."""
        sql = (
            f"SELECT chain_id, MAX(seq) AS seq FROM `{self.table_id}`"
            " WHERE tenant_id = @tenant_id GROUP BY chain_id"
        )
        _, rows = self.backend.run(sql, [self._param("tenant_id", "STRING", tenant_id)])
        return {str(row["chain_id"]): int(row["seq"]) for row in rows}

    @mapped("mirror read")
    def unerased(self, tenant_id: str) -> set[tuple[str, int]]:
        """(chain_id, seq) of the tenant's mirrored records that still hold a payload."""
        sql = (
            f"SELECT DISTINCT chain_id, seq FROM `{self.table_id}`"
            " WHERE tenant_id = @tenant_id AND payload_salt IS NOT NULL"
        )
        _, rows = self.backend.run(sql, [self._param("tenant_id", "STRING", tenant_id)])
        return {(str(row["chain_id"]), int(row["seq"])) for row in rows}

    @mapped("mirror erasure")
    def erase(self, tenant_id: str, keys: Iterable[tuple[str, int]]) -> int:
        """Clear payload and salt of the listed records: one MERGE per ERASE_BATCH records."""
        bq, wanted = self.backend.bq, sorted(set(keys))
        sql = (
            f"MERGE `{self.table_id}` AS T USING UNNEST(@keys) AS K"
            " ON T.tenant_id = @tenant_id AND T.chain_id = K.chain_id AND T.seq = K.seq"
            " WHEN MATCHED THEN UPDATE SET payload = NULL, payload_salt = NULL"
        )
        for start in range(0, len(wanted), ERASE_BATCH):
            structs = [
                bq.StructQueryParameter(
                    None,
                    self._param("chain_id", "STRING", chain_id),
                    self._param("seq", "INT64", seq),
                )
                for chain_id, seq in wanted[start : start + ERASE_BATCH]
            ]
            params = [
                self._param("tenant_id", "STRING", tenant_id),
                bq.ArrayQueryParameter("keys", "STRUCT", structs),
            ]
            self.backend.run(sql, params)
        return len(wanted)

    # --- read like an audit store, for verification --------------------------------------------

    @mapped("mirror read")
    def chain_ids(self, tenant_id: str, run_id: str | None = None) -> list[str]:
        heads = self.heads(tenant_id)
        if run_id is None:
            return sorted(heads)
        if run_id == TENANT_CHAIN_RUN:  # the tenant chain and its lanes
            return sorted(c for c in heads if is_tenant_chain(c, tenant_id))
        return [c for c in heads if c == chain_id_of(tenant_id, run_id)]

    @mapped("mirror read")
    def head(self, chain_id: str) -> tuple[int, str] | None:
        found = self.records(chain_id, after_seq=-1, limit=1, descending=True)
        return (found[0].seq, found[0].hash) if found else None

    @mapped("mirror read")
    def records(
        self, chain_id: str, *, after_seq: int = -1, limit: int = 1000, descending: bool = False
    ) -> list[StoredRecord]:
        """Records of one chain with seq > ``after_seq``, in seq order; identical copies once."""
        tenant_id = chain_id.partition("/")[0]
        order = "DESC" if descending else ""
        sql = (
            f"SELECT DISTINCT {_FIELDS} FROM `{self.table_id}`"
            " WHERE tenant_id = @tenant_id AND chain_id = @chain_id AND seq > @after"
            f" ORDER BY seq {order}, hash LIMIT @n"
        )
        params = [
            self._param("tenant_id", "STRING", tenant_id),
            self._param("chain_id", "STRING", chain_id),
            self._param("after", "INT64", after_seq),
            self._param("n", "INT64", max(limit, 0)),
        ]
        _, rows = self.backend.run(sql, params)
        return [_stored(row) for row in rows]

    def checkpoints(self, chain_id: str) -> list[str]:
        return []  # checkpoints live with the chain of record (or in the pipeline's file)

    def _param(self, name: str, type_: str, value: Any) -> Any:
        return self.backend.bq.ScalarQueryParameter(name, type_, value)
