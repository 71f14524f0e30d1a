"""The MERGE write path (``bigquery://PROJECT/DATASET?write=merge``): one DML job per batch.

This was logkit's only BigQuery write path before the Storage Write API (bigquery_write.py).
It stays for two reasons: ``bench/scale.py`` measures it beside the Storage Write API in the
same run, and it needs nothing but the REST API (no gRPC endpoint). It does not scale with
instances: BigQuery runs a few mutating DML statements per table at a time and queues the rest,
and every job pays a query's overhead and minimum billing (docs/sinks.md).

Every write is a MERGE that inserts the event_ids not stored yet, either straight from an
ARRAY<STRUCT> parameter (small batches) or from a staging table filled by a load job (large
ones), restricted to the days the batch covers so it reads only those partitions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from logkit.envelope import Event

if TYPE_CHECKING:
    from logkit.sinks.bigquery import BigQueryStore

SMALL_BATCH_ROWS = 50
"""Batches up to this many rows MERGE straight from a query parameter (one job); larger ones
are loaded into a staging table first (a load job and a MERGE job, but far faster per row)."""
SMALL_BATCH_BYTES = 1_000_000  # stays well under BigQuery's request size limit
STAGING_TTL = dt.timedelta(hours=1)  # a crashed writer's staging table expires by itself


def day_window(events: Sequence[Event]) -> tuple[dt.datetime, dt.datetime]:
    """The UTC days the batch falls in, as [start, end): the MERGE only scans those partitions."""
    first = min(e.ts for e in events).astimezone(dt.UTC)
    last = max(e.ts for e in events).astimezone(dt.UTC)
    start = dt.datetime(first.year, first.month, first.day, tzinfo=dt.UTC)
    end = dt.datetime(last.year, last.month, last.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
    return start, end


class MergeWriter:
    """Writes one store's batches as MERGE jobs (see the module doc)."""

    def __init__(self, store: BigQueryStore) -> None:
        from logkit.sinks.bigquery import SCHEMA

        self.store = store
        self.backend = store.backend
        self.bq = store.bq
        # ts is left out and derived in SQL as TIMESTAMP_MICROS(ts_us), so the two columns
        # cannot disagree and no timestamp text format is involved.
        self.sent = tuple(c for c in SCHEMA if c.name != "ts")
        names = ", ".join(c.name for c in self.sent)
        values = ", ".join(f"S.{c.name}" for c in self.sent)
        # Explicit column lists (the emulator needs them); the ts window lets BigQuery prune
        # partitions instead of scanning the whole table on every write. A re-written event
        # carries the same ts, so it always falls inside the window of its own batch.
        self.merge = (
            f"MERGE `{store.table_id}` AS T USING {{source}} AS S"
            " ON T.tenant_id = S.tenant_id AND T.event_id = S.event_id"
            " AND T.ts >= @lo AND T.ts < @hi"
            f" WHEN NOT MATCHED THEN INSERT ({names}, ts)"
            f" VALUES ({values}, TIMESTAMP_MICROS(S.ts_us))"
        )
        picked = ", ".join(f"r.{c.name} AS {c.name}" for c in self.sent)
        self.unnest = f"(SELECT {picked} FROM UNNEST(@rows) AS r)"

    def write(self, events: Sequence[Event], rows: list[dict[str, Any]]) -> None:
        rows = [{c.name: row[c.name] for c in self.sent} for row in rows]
        lo, hi = day_window(events)
        window = [self._scalar("lo", "TIMESTAMP", lo), self._scalar("hi", "TIMESTAMP", hi)]
        size = sum(len(r["body"]) for r in rows)
        if len(rows) <= SMALL_BATCH_ROWS and size <= SMALL_BATCH_BYTES:
            structs = [self._struct(r) for r in rows]
            rows_param = self.bq.ArrayQueryParameter("rows", "STRUCT", structs)
            self.backend.run(self.merge.format(source=self.unnest), [*window, rows_param])
        else:
            self._merge_staged(rows, window)

    def _merge_staged(self, rows: list[dict[str, Any]], window: list[Any]) -> None:
        """Load into a staging table of this call's own, MERGE from it, drop it."""
        client, rpc = self.backend.client, self.backend.rpc()
        dataset, table = self.store.table_id.rsplit(".", 1)
        # A unique name per call: concurrent writers never share (or truncate) staging data.
        staging_id = f"{dataset}.logkit_staging_{table}_{uuid.uuid4().hex}"
        staging = self.bq.Table(staging_id, schema=self.backend.table_schema(self.sent))
        staging.expires = dt.datetime.now(dt.UTC) + STAGING_TTL
        client.create_table(staging, **rpc)
        try:
            ndjson = "\n".join(json.dumps(r, separators=(",", ":")) for r in rows).encode()
            config = self.bq.LoadJobConfig(
                schema=staging.schema, source_format=self.bq.SourceFormat.NEWLINE_DELIMITED_JSON
            )
            # No size=: a resumable upload, which production and an unpatched emulator accept.
            job = client.load_table_from_file(
                io.BytesIO(ndjson),
                staging,
                job_config=config,
                num_retries=2,
                timeout=self.backend.target.timeout,
            )
            job.result(timeout=self.backend.job_wait, retry=self.backend.retry)
            self.backend.run(self.merge.format(source=f"`{staging_id}`"), window)
        finally:
            # Best effort, never masking the write's own error: the table expires by itself.
            with contextlib.suppress(Exception):
                client.delete_table(staging, not_found_ok=True, **rpc)

    def _scalar(self, name: str | None, type_: str, value: Any) -> Any:
        return self.bq.ScalarQueryParameter(name, type_, value)

    def _struct(self, row: dict[str, Any]) -> Any:
        fields = [self._scalar(c.name, c.type, row[c.name]) for c in self.sent]
        return self.bq.StructQueryParameter(None, *fields)
