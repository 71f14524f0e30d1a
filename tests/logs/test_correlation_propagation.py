"""Correlation: contextvar binding across asyncio and threads, W3C traceparent, ASGI middleware."""

from __future__ import annotations

import asyncio
import contextvars
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

import logkit
from logkit import ContractError, CorrelationMiddleware
from logkit.context import TraceParent, parse_traceparent
from logkit.testing import capture_events
from tests.conftest import SCOPE
from tests.servers import serve

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"

# --- bind -------------------------------------------------------------------------------------


def test_bind_layers_and_restores() -> None:
    assert logkit.current_scope() == {}
    with logkit.bind(tenant_id="t_a", run_id="r1"):
        with logkit.bind(run_id="r2", step_id="s"):
            assert logkit.current_scope() == {"tenant_id": "t_a", "run_id": "r2", "step_id": "s"}
        with logkit.bind(run_id=None):
            assert logkit.current_scope() == {"tenant_id": "t_a"}
        assert logkit.current_scope() == {"tenant_id": "t_a", "run_id": "r1"}
    assert logkit.current_scope() == {}


def test_bind_refuses_unknown_fields() -> None:
    with pytest.raises(ContractError, match="tenantId"), logkit.bind(tenantId="t_a"):
        pass


def test_bind_restores_after_an_exception() -> None:
    with pytest.raises(RuntimeError), logkit.bind(tenant_id="t_a"):
        raise RuntimeError("boom")
    assert logkit.current_scope() == {}


# --- asyncio ----------------------------------------------------------------------------------


def test_concurrent_tasks_keep_their_own_scope() -> None:
    async def handle(i: int) -> None:
        with logkit.bind(request_id=f"req-{i}", run_id=f"run-{i}"):
            for _ in range(3):
                await asyncio.sleep(0)  # interleave with the other tasks
                logkit.emit("message", {"i": i})

    async def main() -> None:
        with logkit.bind(**SCOPE):
            await asyncio.gather(*(handle(i) for i in range(50)))

    with capture_events() as events:
        asyncio.run(main())
    assert len(events) == 150
    for event in events:
        i = event.payload["i"]
        assert (event.request_id, event.run_id, event.tenant_id) == (
            f"req-{i}",
            f"run-{i}",
            "t_acme",
        )


def test_child_tasks_inherit_but_do_not_leak_back() -> None:
    async def child() -> dict[str, Any]:
        seen = logkit.current_scope()
        with logkit.bind(step_id="inner"):
            await asyncio.sleep(0)
        return seen

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        with logkit.bind(run_id="outer"):
            seen = await asyncio.create_task(child())
            return seen, logkit.current_scope()

    seen, after = asyncio.run(main())
    assert seen == {"run_id": "outer"} and after == {"run_id": "outer"}


# --- threads ----------------------------------------------------------------------------------


def test_threads_started_with_a_copied_context_see_the_scope() -> None:
    results: list[dict[str, Any]] = []
    with logkit.bind(**SCOPE, request_id="req-t"):
        ctx = contextvars.copy_context()
        thread = threading.Thread(
            target=ctx.run, args=(lambda: results.append(logkit.current_scope()),)
        )
        thread.start()
        thread.join()
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [
                pool.submit(logkit.propagate(logkit.emit), "message", {"i": i}) for i in range(8)
            ]
            emitted = [f.result() for f in futures]
    assert results[0]["request_id"] == "req-t"
    assert {e.request_id for e in emitted} == {"req-t"}


def test_plain_threads_do_not_see_the_callers_scope() -> None:
    """A thread without a copied context starts empty: propagate() is how scope crosses."""
    results: list[dict[str, Any]] = []
    with logkit.bind(tenant_id="t_a"):
        thread = threading.Thread(target=lambda: results.append(logkit.current_scope()))
        thread.start()
        thread.join()
    assert results == [{}]


# --- W3C traceparent --------------------------------------------------------------------------

VALID = [
    (f"00-{TRACE}-{PARENT}-01", TraceParent(TRACE, PARENT, "01", "00")),
    (f"00-{TRACE}-{PARENT}-00", TraceParent(TRACE, PARENT, "00", "00")),
    (f" 00-{TRACE}-{PARENT}-01\t", TraceParent(TRACE, PARENT, "01", "00")),  # OWS trimmed
    # A future version may carry more fields; the first four are still read.
    (f"cc-{TRACE}-{PARENT}-01-what-the-future-will-be", TraceParent(TRACE, PARENT, "01", "cc")),
    (f"01-{TRACE}-{PARENT}-09", TraceParent(TRACE, PARENT, "09", "01")),
]
INVALID = [
    "",
    "garbage",
    f"ff-{TRACE}-{PARENT}-01",  # version ff is forbidden
    f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
    f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
    f"00-{TRACE.upper()}-{PARENT}-01",  # uppercase hex
    f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has exactly four fields
    f"00-{TRACE}-{PARENT}-1",  # short flags
    f"00-{TRACE[:-1]}-{PARENT}-01",  # short trace id
    f"00-{TRACE}-{PARENT[:-1]}-01",
    f"0-{TRACE}-{PARENT}-01",
    f"00_{TRACE}_{PARENT}_01",
    f"00-{TRACE}-{PARENT}-01x",
    f"cc-{TRACE}-{PARENT}-01x",  # future version: extra data must follow a dash
    f"00-{TRACE}-{PARENT}-0g",
    f"00-{TRACE[:-1]}g-{PARENT}-01",
]


@pytest.mark.parametrize(("header", "expected"), VALID)
def test_valid_traceparent(header: str, expected: TraceParent) -> None:
    assert parse_traceparent(header) == expected


@pytest.mark.parametrize("header", INVALID)
def test_invalid_traceparent_is_ignored(header: str) -> None:
    assert parse_traceparent(header) is None


@given(st.text(max_size=80))
def test_traceparent_parser_never_raises(header: str) -> None:
    parsed = parse_traceparent(header)
    if parsed is not None:
        assert re.fullmatch(r"[0-9a-f]{32}", parsed.trace_id) and parsed.trace_id != "0" * 32
        assert re.fullmatch(r"[0-9a-f]{16}", parsed.parent_id) and parsed.parent_id != "0" * 16


@given(
    st.text("0123456789abcdef", min_size=32, max_size=32),
    st.text("0123456789abcdef", min_size=16, max_size=16),
    st.text("0123456789abcdef", min_size=2, max_size=2),
)
def test_traceparent_round_trips(trace: str, parent: str, flags: str) -> None:
    parsed = parse_traceparent(f"00-{trace}-{parent}-{flags}")
    if trace == "0" * 32 or parent == "0" * 16:
        assert parsed is None
    else:
        assert parsed is not None and parsed.header() == f"00-{trace}-{parent}-{flags}"


# --- ASGI middleware over real HTTP -----------------------------------------------------------


async def whoami(request: Request) -> JSONResponse:
    event = logkit.emit("message", {"path": request.url.path})
    return JSONResponse(event.model_dump(mode="json"))


async def fails(request: Request) -> JSONResponse:
    raise RuntimeError("handler failed")


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(logkit.current_scope())
    await websocket.close()


def starlette_app() -> Any:
    app = Starlette(
        routes=[Route("/whoami", whoami), Route("/fails", fails), WebSocketRoute("/ws", ws_echo)]
    )
    app.add_middleware(CorrelationMiddleware)
    return app


def fastapi_app() -> Any:
    app = FastAPI()
    app.add_middleware(CorrelationMiddleware)

    @app.get("/whoami")
    async def who() -> dict[str, Any]:
        return logkit.emit("message", {"path": "/whoami"}).model_dump(mode="json")

    return app


HEADERS = {
    "X-Tenant-Id": "t_acme",
    "X-Env": "stage",
    "X-Project-Id": "p_support",
    "X-Surface-Id": "chat",
    "X-App-Id": "support-bot",
    "X-User-Id": "u_9",
    "X-Request-Id": "req-123",
    "traceparent": f"00-{TRACE}-{PARENT}-01",
}


@pytest.fixture(scope="module", params=["starlette", "fastapi"])
def base_url(request: pytest.FixtureRequest) -> Any:
    app = starlette_app() if request.param == "starlette" else fastapi_app()
    with serve(app) as url:
        yield url


def test_headers_are_bound_and_echoed(base_url: str) -> None:
    response = httpx.get(f"{base_url}/whoami", headers=HEADERS)
    assert response.status_code == 200
    event = response.json()
    # Trusted headers (dev) give the tenant; env is the service's: X-Env changes nothing.
    assert event["tenant_id"] == "t_acme" and event["env"] == "dev"
    assert (event["project_id"], event["surface_id"], event["app_id"]) == (
        "p_support",
        "chat",
        "support-bot",
    )
    assert event["user_id"] == "u_9" and event["request_id"] == "req-123"
    assert event["trace_id"] == TRACE and event["span_id"] != PARENT
    assert response.headers["x-request-id"] == "req-123"
    assert response.headers["traceparent"] == f"00-{TRACE}-{event['span_id']}-01"


def test_missing_ids_are_generated(base_url: str) -> None:
    headers = {k: v for k, v in HEADERS.items() if k not in ("X-Request-Id", "traceparent")}
    first = httpx.get(f"{base_url}/whoami", headers=headers)
    second = httpx.get(f"{base_url}/whoami", headers=headers)
    ids = [r.json()["request_id"] for r in (first, second)]
    assert ids[0] != ids[1] and ids[0] == first.headers["x-request-id"]
    parsed = parse_traceparent(first.headers["traceparent"])
    assert parsed is not None and parsed.trace_id == first.json()["trace_id"]
    assert first.json()["trace_id"] != second.json()["trace_id"]


@pytest.mark.parametrize("bad", INVALID[1:6])
def test_invalid_traceparent_starts_a_new_trace_never_a_500(base_url: str, bad: str) -> None:
    response = httpx.get(f"{base_url}/whoami", headers={**HEADERS, "traceparent": bad})
    assert response.status_code == 200
    trace_id = response.json()["trace_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id) and trace_id not in bad


def test_missing_scope_headers_make_emit_fail_loudly(base_url: str) -> None:
    """Without X-Tenant-Id the handler's emit raises ContractError; nothing is guessed."""
    with capture_events() as events:
        response = httpx.get(f"{base_url}/whoami", headers={"X-Env": "prod"})
    assert response.status_code == 500 and events == []


def test_handler_errors_pass_through_unchanged_and_unbind() -> None:
    client = TestClient(starlette_app())
    with pytest.raises(RuntimeError, match="handler failed"):
        client.get("/fails", headers=HEADERS)
    assert logkit.current_scope() == {}


def test_websocket_is_bound_and_accept_echoes_headers() -> None:
    client = TestClient(starlette_app())
    with client.websocket_connect("/ws", headers=HEADERS) as ws:
        scope = ws.receive_json()
    assert scope["tenant_id"] == "t_acme" and scope["trace_id"] == TRACE


def test_lifespan_passes_through_with_the_startup_message() -> None:
    seen: list[str] = []

    async def receive() -> dict[str, str]:
        return {"type": "lifespan.startup"}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        seen.append((await receive())["type"])

    asyncio.run(CorrelationMiddleware(app)({"type": "lifespan"}, receive, None))
    assert seen == ["lifespan", "lifespan.startup"]


# --- OpenTelemetry ----------------------------------------------------------------------------


def test_active_otel_span_ids_are_used() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    with (
        logkit.bind(**SCOPE, trace_id=TRACE, span_id=PARENT),
        tracer.start_as_current_span("op") as span,
    ):
        event = logkit.emit("message")
        ctx = span.get_span_context()
    assert event.trace_id == format(ctx.trace_id, "032x") != TRACE
    assert event.span_id == format(ctx.span_id, "016x")
    assert logkit.emit("message", **SCOPE).trace_id is None  # span ended: nothing invented
