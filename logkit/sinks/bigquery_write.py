"""BigQuery's Storage Write API: rows appended to a committed-type stream at known offsets.

No job runs on this path: a batch is one ``AppendRows`` call carrying protobuf rows, so writers
on many instances never queue behind each other the way MERGE jobs on one table do.

Exactly once per append. Each writer (one per table and process) owns a COMMITTED stream and
appends every batch at the offset where the previous one ended. The server accepts an append
only at the stream's next offset: a duplicate gets ALREADY_EXISTS, a gap OUT_OF_RANGE. When an
append's outcome is unknown (the call timed out, the connection dropped) the batch is kept as
*pending* and sent again, at the same offset, before anything else goes on the stream: OK or
ALREADY_EXISTS both mean it is stored now, exactly once, and the stream moves past it. If the
caller's next batch repeats the pending events (the dispatcher retrying), they are not sent a
second time. What offsets cannot see (the same event_id in two different appends: a re-emit, a
batch whose process died before it learned the outcome and that a spool replays elsewhere) is
collapsed by the reads, which keep one row per event_id (logkit.sinks.bigquery).

Schema evolution. A new stream learns the table's columns from CreateWriteStream; the writer
sends the columns both sides know (rows never carry a column the table lacks, which BigQuery
would refuse), so a newer table with more NULLABLE columns and an older table still missing one
both accept the rows. When the table lacked one of the writer's columns, the stream is replaced
after STREAM_RECHECK_S, so a column added meanwhile (``logkit check-sinks --create``) fills.

One ``AppendRows`` call per batch on a shared gRPC channel, with its own deadline, rather than
the library's long-lived ``AppendRowsStream``: that manager answers through a polling future
(about 0.45 s per append measured on the emulator), and batches leave every 0.25 s at most.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from logkit.errors import ConfigError, SinkUnavailable

if TYPE_CHECKING:
    from logkit.sinks.bigquery import BigQueryBackend

STORAGE_EMULATOR_VARIABLE = "BIGQUERY_STORAGE_EMULATOR_HOST"
"""``host:port`` of an emulator's Storage Write (gRPC) endpoint; needed with the REST one."""

STREAM_RECHECK_S = 60.0
MAX_APPEND_BYTES = 9 * 1024 * 1024  # under AppendRows' 10 MB request limit
# Closing finalizes the stream as a courtesy: bounded well inside Cloud Run's 10 s grace.
CLOSE_TIMEOUT_S = 2.0


class Column(NamedTuple):
    name: str
    type: str  # BigQuery type: STRING, INT64, TIMESTAMP (sent as INT64 microseconds)
    mode: str


# google.protobuf FieldDescriptorProto types for the BigQuery types rows carry.
_PROTO_TYPES = {"STRING": 9, "INT64": 3, "INTEGER": 3, "TIMESTAMP": 3, "BOOL": 8, "BYTES": 12}


def _ambiguous(exc: Exception) -> bool:
    """Whether a failed call may still have reached BigQuery (its outcome is unknown)."""
    from google.api_core import exceptions as api

    unknown = (
        api.DeadlineExceeded,
        api.ServiceUnavailable,
        api.InternalServerError,
        api.Unknown,
        api.Aborted,
        api.Cancelled,
        api.RetryError,
    )
    return isinstance(exc, unknown)


def check_available() -> None:
    """ConfigError at configuration if the Write API client library is not installed."""
    try:
        from google.cloud import bigquery_storage_v1  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "the bigquery backend needs google-cloud-bigquery-storage: pip install 'logkit[gcp]'"
        ) from exc


def write_client() -> Any:
    """A BigQueryWriteClient: the emulator's plain gRPC port, or Google with default credentials.

    Read when a writer first writes (the environment of tests and tools may change until then).
    """
    check_available()
    from google.cloud import bigquery_storage_v1 as storage

    if os.environ.get("BIGQUERY_EMULATOR_HOST") and not os.environ.get(STORAGE_EMULATOR_VARIABLE):
        raise ConfigError(
            f"BIGQUERY_EMULATOR_HOST is set but {STORAGE_EMULATOR_VARIABLE} is not: the "
            "emulator's gRPC port (Storage Write API) is needed too, or use ?write=merge"
        )
    host = os.environ.get(STORAGE_EMULATOR_VARIABLE)
    if host:
        import grpc
        from google.cloud.bigquery_storage_v1.services.big_query_write.transports import (
            BigQueryWriteGrpcTransport,
        )

        channel = grpc.insecure_channel(host.removeprefix("http://"))
        transport = BigQueryWriteGrpcTransport(channel=channel)
        return storage.BigQueryWriteClient(transport=transport)  # type: ignore[no-untyped-call]
    return storage.BigQueryWriteClient()  # type: ignore[no-untyped-call]


@dataclass
class _Stream:
    name: str
    columns: tuple[Column, ...]  # what rows on this stream carry
    complete: bool  # the table had every column the writer knows
    opened: float
    next_offset: int = 0
    pending: tuple[int, list[bytes], frozenset[tuple[Any, ...]]] | None = None  # offset, rows, keys
    descriptor: Any = field(default=None, repr=False)  # the row's DescriptorProto, sent along
    row_type: Any = field(default=None, repr=False)  # the protobuf message class of a row


class StreamWriter:
    """Appends rows to one table through a committed stream of its own (see the module doc)."""

    def __init__(
        self,
        backend: BigQueryBackend,
        table_id: str,
        columns: Sequence[Column],
        key: tuple[str, ...],
    ) -> None:
        self.backend = backend
        self.table_id = table_id
        self.columns = tuple(columns)
        self.key = key  # the columns that name a row: pending rows are recognised by them
        self._lock = threading.Lock()
        self._stream: _Stream | None = None
        self._client: Any = None

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store ``rows`` (column name -> value; None is NULL) once; raises SinkError kinds."""
        with self._lock:
            landed = self._resolve_pending()
            fresh = [row for row in rows if self._key(row) not in landed]
            if fresh:
                self._append(fresh)

    def close(self) -> None:
        """Finalize the stream (best effort: an unfinalized committed stream stays valid).

        A call still in flight is not waited for: at shutdown it is a hung backend's, and
        the dispatcher has already spooled its batch. The channel is closed under it, which
        cancels the call, and nothing is finalized (a pending batch is resent by offset)."""
        if not self._lock.acquire(blocking=False):
            client = self._client
            if client is not None:
                client.transport.close()
            return
        try:
            stream, self._stream = self._stream, None
            try:
                if stream is not None and stream.pending is None:
                    timeout = min(self.backend.target.timeout, CLOSE_TIMEOUT_S)
                    self.client.finalize_write_stream(name=stream.name, timeout=timeout, retry=None)
            except Exception:  # closing must not fail over a courtesy call
                pass
            self._drop_client()
        finally:
            self._lock.release()

    @property
    def client(self) -> Any:
        """This writer's own BigQueryWriteClient (one gRPC channel), built on first use."""
        if self._client is None:
            self._client = write_client()
        return self._client

    def _drop_client(self) -> None:
        """Close the channel: after a transport failure the next call dials afresh instead of
        waiting out gRPC's reconnect backoff (up to two minutes) on a channel marked failing."""
        client, self._client = self._client, None
        if client is not None:
            client.transport.close()

    # --- appends ------------------------------------------------------------------------------

    def _append(self, rows: list[dict[str, Any]]) -> None:
        stream = self._current()
        serialised = [(self._key(row), _serialise(stream, row)) for row in rows]
        for chunk in _chunks(serialised):
            offset = stream.next_offset
            data = [row for _, row in chunk]
            stream.pending = (offset, data, frozenset(key for key, _ in chunk))
            self._send(stream, offset, data)
            stream.pending, stream.next_offset = None, offset + len(data)

    def _rpc(self) -> dict[str, Any]:
        # One try per call, bounded: the client's default retry would spend 20 minutes on a
        # dead endpoint. Retrying (and spooling) is the dispatcher's job.
        return {"timeout": self.backend.target.timeout, "retry": None}

    def _key(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[name] for name in self.key)

    def _resolve_pending(self) -> frozenset[tuple[Any, ...]]:
        """Send the batch whose outcome is unknown again at its offset; the keys it stored."""
        stream = self._stream
        if stream is None or stream.pending is None:
            return frozenset()
        offset, chunk, keys = stream.pending
        self._send(stream, offset, chunk)  # OK or ALREADY_EXISTS: stored, exactly once
        stream.pending, stream.next_offset = None, offset + len(chunk)
        return keys

    def _send(self, stream: _Stream, offset: int, rows: list[bytes]) -> None:
        from google.api_core import exceptions as api

        request = self._request(stream, offset, rows)
        try:
            responses = self.client.append_rows(iter([request]), **self._rpc())
            response = next(iter(responses))
        except StopIteration:
            raise SinkUnavailable("BigQuery append: the stream closed without an answer") from None
        except api.NotFound:
            self._stream = None  # the stream is gone (or the table): start over on a new one
            raise
        except Exception as exc:
            if _ambiguous(exc):
                self._drop_client()
            else:
                stream.pending = None  # refused outright: nothing was stored at this offset
            raise
        if response.error.code:
            self._refused(stream, response)

    def _refused(self, stream: _Stream, response: Any) -> None:
        from google.api_core import exceptions as api

        error = api.from_grpc_status(response.error.code, "append refused")  # type: ignore[no-untyped-call]
        if isinstance(error, api.AlreadyExists):
            return  # an earlier attempt at this offset was stored: that is success
        stream.pending = None
        if isinstance(error, api.OutOfRange | api.FailedPrecondition | api.NotFound):
            self._stream = None  # the stream and this writer disagree: use a fresh stream
            raise SinkUnavailable(
                f"BigQuery append: the write stream refused offset ({type(error).__name__}); "
                "a new stream is used on the next attempt"
            )
        raise error

    def _request(self, stream: _Stream, offset: int, rows: list[bytes]) -> Any:
        from google.cloud.bigquery_storage_v1 import types

        # Every request names its stream and schema: one call per batch, and the emulator
        # binds each request to the stream it names.
        return types.AppendRowsRequest(
            write_stream=stream.name,
            offset=offset,
            proto_rows=types.AppendRowsRequest.ProtoData(
                writer_schema=types.ProtoSchema(proto_descriptor=stream.descriptor),
                rows=types.ProtoRows(serialized_rows=rows),
            ),
        )

    # --- streams ------------------------------------------------------------------------------

    def _current(self) -> _Stream:
        stream = self._stream
        stale = stream is not None and not stream.complete
        if stream is None or (stale and time.monotonic() - stream.opened > STREAM_RECHECK_S):
            stream = self._stream = self._open()
        return stream

    def _open(self) -> _Stream:
        from google.cloud.bigquery_storage_v1 import types

        try:
            created = self._create(types)
        except Exception as exc:
            if _ambiguous(exc):
                self._drop_client()
            raise
        known = {f.name for f in created.table_schema.fields}
        columns = tuple(c for c in self.columns if c.name in known)
        stream = _Stream(created.name, columns, len(columns) == len(self.columns), time.monotonic())
        stream.descriptor = _descriptor(columns)
        stream.row_type = _message_class(stream.descriptor)
        return stream

    def _create(self, types: Any) -> Any:
        project, dataset, table = self.table_id.split(".")
        return self.client.create_write_stream(
            parent=f"projects/{project}/datasets/{dataset}/tables/{table}",
            write_stream=types.WriteStream(type_=types.WriteStream.Type.COMMITTED),
            **self._rpc(),
        )


def _chunks(rows: list[tuple[Any, bytes]]) -> list[list[tuple[Any, bytes]]]:
    """(key, row) pairs in appends of at most MAX_APPEND_BYTES each."""
    chunks: list[list[tuple[Any, bytes]]] = [[]]
    size = 0
    for pair in rows:
        if chunks[-1] and size + len(pair[1]) > MAX_APPEND_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(pair)
        size += len(pair[1]) + 8  # and a little framing per row
    return chunks


def _descriptor(columns: Sequence[Column]) -> Any:
    from google.protobuf import descriptor_pb2

    message = descriptor_pb2.DescriptorProto(name="LogkitRow")
    for number, column in enumerate(columns, start=1):
        message.field.add(
            name=column.name,
            number=number,
            type=_PROTO_TYPES[column.type],
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
    return message


def _message_class(descriptor: Any) -> Any:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    file = descriptor_pb2.FileDescriptorProto(name="logkit_row.proto", syntax="proto2")
    file.message_type.add().CopyFrom(descriptor)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("LogkitRow"))


def _serialise(stream: _Stream, row: dict[str, Any]) -> bytes:
    values = {c.name: row[c.name] for c in stream.columns if row.get(c.name) is not None}
    return bytes(stream.row_type(**values).SerializeToString())
