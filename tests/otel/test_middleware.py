"""One trace id per request: CorrelationMiddleware hands the W3C trace context to OpenTelemetry.

Plain Starlette (no OpenTelemetry instrumentation) over real HTTP: the request's traceparent
is extracted into the OTel context, so a handler's own span, logkit's spans and events, and
outbound calls all continue the caller's trace; the response names the request's span.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, WebSocket
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

import logkit
from logkit import CorrelationMiddleware
from logkit.context import parse_traceparent
from logkit.testing import capture_events
from tests.otel.conftest import Recorded, span_hex, trace_hex
from tests.servers import serve

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"
TENANT = {"X-Tenant-Id": "t_acme", "X-Project-Id": "p", "X-App-Id": "a", "X-Surface-Id": "s"}


class AppTracing:
    """The application's own OpenTelemetry SDK (not logkit's): a handler span per request."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = provider.get_tracer("app")

    def spans(self) -> dict[str, Any]:
        return {s.name: s for s in self.exporter.get_finished_spans()}


@pytest.fixture
def app_tracing() -> AppTracing:
    return AppTracing()


def make_app(tracing: AppTracing, downstream: str | None = None) -> Starlette:
    async def handle(request: Request) -> JSONResponse:
        before = logkit.emit("message", {"where": "handler"})
        with tracing.tracer.start_as_current_span("handler"):
            inside = logkit.emit("message", {"where": "handler span"})
            with logkit.flow("answer"):
                flow = logkit.emit("message", {"where": "flow"})
                seen: dict[str, Any] = {}
                if downstream is not None:
                    async with httpx.AsyncClient(
                        event_hooks={"request": [logkit.inject_trace_async]}
                    ) as client:
                        with logkit.tool_call("downstream") as call:
                            seen = (await client.get(downstream)).json()
                            call.set_output({"ok": True})
        events = [before, inside, flow]
        return JSONResponse({"events": [e.model_dump(mode="json") for e in events], "seen": seen})

    async def boom(request: Request) -> Response:
        return Response("no", status_code=503)

    app = Starlette(routes=[Route("/chat", handle), Route("/boom", boom)])
    app.add_middleware(CorrelationMiddleware)
    return app


def downstream_app() -> Starlette:
    async def who(request: Request) -> JSONResponse:
        return JSONResponse(logkit.current_scope())

    app = Starlette(routes=[Route("/who", who)])
    app.add_middleware(CorrelationMiddleware)
    return app


@pytest.fixture(scope="module")
def downstream() -> Iterator[str]:
    with serve(downstream_app()) as url:
        yield f"{url}/who"


def test_one_trace_id_per_request_with_plain_starlette(app_tracing: AppTracing) -> None:
    """The issue's repro: a handler span used to start a second trace."""
    with serve(make_app(app_tracing)) as url:
        response = httpx.get(f"{url}/chat", headers={**TENANT, "traceparent": TRACEPARENT})
    assert response.status_code == 200
    before, inside, flow = response.json()["events"]
    handler = app_tracing.spans()["handler"]
    echoed = parse_traceparent(response.headers["traceparent"])
    assert echoed is not None and echoed.trace_id == TRACE
    request_span = echoed.parent_id
    assert {before["trace_id"], inside["trace_id"], flow["trace_id"]} == {TRACE}
    assert trace_hex(handler.context.trace_id) == TRACE
    # The request's span sits under the caller's; the handler's span under the request's.
    assert (before["span_id"], before["parent_span_id"]) == (request_span, PARENT)
    assert span_hex(handler.parent.span_id) == request_span
    assert (inside["span_id"], inside["parent_span_id"]) == (
        span_hex(handler.context.span_id),
        request_span,
    )
    assert flow["parent_span_id"] == inside["span_id"]


def test_without_a_traceparent_the_request_still_has_one_trace(app_tracing: AppTracing) -> None:
    with serve(make_app(app_tracing)) as url:
        response = httpx.get(f"{url}/chat", headers=TENANT)
    events = response.json()["events"]
    handler = app_tracing.spans()["handler"]
    assert len({e["trace_id"] for e in events} | {trace_hex(handler.context.trace_id)}) == 1
    assert events[0]["parent_span_id"] is None


def test_duplicate_traceparent_starts_a_new_trace(app_tracing: AppTracing) -> None:
    headers = [*TENANT.items(), ("traceparent", TRACEPARENT), ("traceparent", TRACEPARENT)]
    with serve(make_app(app_tracing)) as url:
        response = httpx.get(f"{url}/chat", headers=headers)
    events = response.json()["events"]
    assert len({e["trace_id"] for e in events}) == 1 and events[0]["trace_id"] != TRACE
    assert trace_hex(app_tracing.spans()["handler"].context.trace_id) == events[0]["trace_id"]


def test_tracestate_is_extracted_and_echoed(app_tracing: AppTracing) -> None:
    headers = {**TENANT, "traceparent": TRACEPARENT, "tracestate": "vendor=abc,other=1"}
    with serve(make_app(app_tracing)) as url:
        response = httpx.get(f"{url}/chat", headers=headers)
        invalid = httpx.get(f"{url}/chat", headers={**headers, "traceparent": "00-garbage-01-01"})
    handler = app_tracing.exporter.get_finished_spans()[0]
    assert handler.context.trace_state.to_header() == "vendor=abc,other=1"
    assert response.headers["tracestate"] == "vendor=abc,other=1"
    assert "tracestate" not in invalid.headers  # no valid traceparent: its state is dropped


def test_with_an_sdk_the_request_is_a_server_span(
    app_tracing: AppTracing, recorded: Recorded
) -> None:
    with serve(make_app(app_tracing)) as url:
        response = httpx.get(f"{url}/chat?x=1", headers={**TENANT, "traceparent": TRACEPARENT})
        failed = httpx.get(f"{url}/boom", headers=TENANT)
    server = [s for s in recorded.spans() if s.kind is SpanKind.SERVER]
    assert len(server) == 2
    ok, bad = sorted(server, key=lambda s: s.attributes["http.response.status_code"])  # type: ignore[index]
    echoed = parse_traceparent(response.headers["traceparent"])
    assert echoed is not None and echoed.parent_id == span_hex(ok.context.span_id)
    assert ok.name == "GET" and span_hex(ok.parent.span_id) == PARENT  # type: ignore[union-attr]
    assert ok.attributes["http.request.method"] == "GET"  # type: ignore[index]
    assert ok.attributes["url.path"] == "/chat"  # type: ignore[index]
    assert ok.status.status_code is StatusCode.UNSET
    assert bad.status.status_code is StatusCode.ERROR and failed.status_code == 503
    flow = recorded.by_name()["answer"]
    handler = app_tracing.spans()["handler"]
    assert span_hex(handler.parent.span_id) == span_hex(ok.context.span_id)
    assert flow.parent.span_id == handler.context.span_id  # type: ignore[union-attr]
    assert trace_hex(flow.context.trace_id) == TRACE


def test_an_outer_otel_span_is_the_request_span(
    app_tracing: AppTracing, recorded: Recorded
) -> None:
    """Under OpenTelemetry's own ASGI instrumentation, logkit adds no second server span."""
    inner = make_app(app_tracing)
    tracer = recorded.provider.get_tracer("asgi")

    async def instrumented(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        with tracer.start_as_current_span("outer", kind=SpanKind.SERVER):
            await inner(scope, receive, send)

    with serve(instrumented) as url:
        response = httpx.get(f"{url}/chat", headers=TENANT)
    outer = recorded.by_name()["outer"]
    assert [s.name for s in recorded.spans() if s.kind is SpanKind.SERVER] == ["outer"]
    before = response.json()["events"][0]
    assert before["span_id"] == span_hex(outer.context.span_id)
    assert response.headers["traceparent"].split("-")[2] == before["span_id"]


def test_outbound_calls_in_a_tool_call_continue_the_trace(
    app_tracing: AppTracing, downstream: str
) -> None:
    with capture_events() as events, serve(make_app(app_tracing, downstream)) as url:
        response = httpx.get(f"{url}/chat", headers={**TENANT, "traceparent": TRACEPARENT})
    seen = response.json()["seen"]
    (call,) = [e for e in events if e.event_type.value == "tool_call_started"]
    assert seen["trace_id"] == TRACE
    # The downstream request's span has the tool call as its parent.
    assert seen["parent_span_id"] == call.span_id


def test_no_span_leaks_past_a_request() -> None:
    app = make_app(AppTracing())
    with serve(app) as url:
        httpx.get(f"{url}/chat", headers=TENANT)
    assert not trace.get_current_span().get_span_context().is_valid
    assert logkit.current_scope() == {}


def test_sync_handlers_and_websockets_keep_the_trace(app_tracing: AppTracing) -> None:
    """A FastAPI ``def`` endpoint runs in a worker thread; a WebSocket has no response
    headers: both still see the caller's trace in the OpenTelemetry context."""
    app = FastAPI()
    app.add_middleware(CorrelationMiddleware)

    @app.get("/sync")
    def sync_handler() -> dict[str, Any]:
        with app_tracing.tracer.start_as_current_span("sync.handler"):
            return logkit.current_scope()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        with app_tracing.tracer.start_as_current_span("ws.handler"):
            await websocket.send_json(logkit.current_scope())
        await websocket.close()

    with serve(app) as url:
        scope = httpx.get(f"{url}/sync", headers={**TENANT, "traceparent": TRACEPARENT}).json()
    sync_span = app_tracing.spans()["sync.handler"]
    assert trace_hex(sync_span.context.trace_id) == scope["trace_id"] == TRACE
    assert scope["span_id"] == span_hex(sync_span.context.span_id)

    with TestClient(app).websocket_connect(
        "/ws", headers={**TENANT, "traceparent": TRACEPARENT}
    ) as socket:
        ws_scope = socket.receive_json()
    ws_span = app_tracing.spans()["ws.handler"]
    assert trace_hex(ws_span.context.trace_id) == ws_scope["trace_id"] == TRACE
    assert ws_scope["parent_span_id"] == span_hex(ws_span.parent.span_id)
