"""A loopback OTLP/HTTP receiver for what Phoenix does not take (logs) and for outages.

A real HTTP peer (uvicorn, tests.servers.serve) that decodes the protobuf requests with
opentelemetry-proto, the OTLP wire format's own generated classes.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


class Receiver:
    """Collects spans and log records; ``status`` answers every request; ``gate`` cleared
    makes requests hang until it is set again (a backend that stopped answering)."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.logs: list[LogRecord] = []
        self.resources: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.status = 200
        self.gate = threading.Event()
        self.gate.set()
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/v1/traces", self._traces, methods=["POST"]),
                Route("/v1/logs", self._logs, methods=["POST"]),
            ]
        )

    async def _wait(self, request: Request) -> bytes:
        body = await request.body()
        await asyncio.to_thread(self.gate.wait, 30)
        with self._lock:
            self.headers.append(dict(request.headers))
        return body

    async def _traces(self, request: Request) -> Response:
        message = ExportTraceServiceRequest.FromString(await self._wait(request))
        if self.status == 200:
            with self._lock:
                for resource_spans in message.resource_spans:
                    self.resources.append(_attributes(resource_spans.resource.attributes))
                    for scope_spans in resource_spans.scope_spans:
                        self.spans.extend(scope_spans.spans)
        return Response(status_code=self.status, media_type="application/x-protobuf")

    async def _logs(self, request: Request) -> Response:
        message = ExportLogsServiceRequest.FromString(await self._wait(request))
        if self.status == 200:
            with self._lock:
                for resource_logs in message.resource_logs:
                    for scope_logs in resource_logs.scope_logs:
                        self.logs.extend(scope_logs.log_records)
        return Response(status_code=self.status, media_type="application/x-protobuf")


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in pairs}


def value_of(value: Any) -> Any:
    """An OTLP AnyValue as plain Python."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in value.kvlist_value.values}
    if kind == "array_value":
        return [value_of(v) for v in value.array_value.values]
    return getattr(value, kind)


def attributes(item: Span | LogRecord) -> dict[str, Any]:
    return _attributes(item.attributes)
