"""CorrelationMiddleware: bind request scope and W3C trace context for every ASGI request.

Pure ASGI (no Starlette import), so it wraps Starlette, FastAPI or any ASGI app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from logkit.context import active_span_ids, bind, new_span_id, new_trace_id, parse_traceparent
from logkit.envelope import new_event_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Request header -> bound field. Header names are matched case-insensitively (ASGI lowercases).
HEADER_FIELDS: dict[bytes, str] = {
    b"x-tenant-id": "tenant_id",
    b"x-env": "env",
    b"x-project-id": "project_id",
    b"x-surface-id": "surface_id",
    b"x-app-id": "app_id",
    b"x-user-id": "user_id",
    b"x-request-id": "request_id",
}
_MAX_HEADER_VALUE = 256


class CorrelationMiddleware:
    """Bind tenant/env/project/surface/app/user/request ids and trace context per request.

    A missing request id or trace is generated; an invalid ``traceparent`` is ignored as the
    W3C spec requires (a new trace starts, the request never fails because of it). The
    response echoes ``X-Request-Id`` and ``traceparent``.
    """

    def __init__(self, app: ASGIApp, *, check_sinks_on_startup: bool = True) -> None:
        self.app = app
        self.check_sinks_on_startup = check_sinks_on_startup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self.check_sinks_on_startup:
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        fields, flags = request_fields(scope.get("headers", ()))
        traceparent = f"00-{fields['trace_id']}-{fields['span_id']}-{flags}"
        response_headers = [
            (b"x-request-id", fields["request_id"].encode("latin-1")),
            (b"traceparent", traceparent.encode("ascii")),
        ]

        async def send_with_correlation(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                existing = list(message.get("headers") or ())
                names = {name.lower() for name, _ in existing}
                message["headers"] = existing + [h for h in response_headers if h[0] not in names]
            await send(message)

        with bind(**fields):
            await self.app(scope, receive, send_with_correlation)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Fail the app's start-up when logkit's sinks are not valid for this env (fail fast)."""
        first = await receive()
        if first["type"] == "lifespan.startup":
            from logkit.errors import ConfigError
            from logkit.runtime import ensure_configured

            try:
                ensure_configured()
            except ConfigError as exc:
                # Report, then raise: the convention Starlette's router and uvicorn follow.
                await send({"type": "lifespan.startup.failed", "message": f"logkit: {exc}"})
                raise
        replayed = False

        async def receive_again() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return first
            return await receive()

        await self.app(scope, receive_again, send)


def request_fields(headers: Any) -> tuple[dict[str, str], str]:
    """Scope and correlation fields for one request from its raw ASGI headers, and trace flags."""
    fields: dict[str, str] = {}
    traceparent: str | None = None
    for raw_name, raw_value in headers:
        name = raw_name.lower()
        if name == b"traceparent":
            traceparent = raw_value.decode("latin-1")
        elif name in HEADER_FIELDS:
            value = raw_value.decode("latin-1").strip()
            if value and len(value) <= _MAX_HEADER_VALUE:
                fields[HEADER_FIELDS[name]] = value
    fields.setdefault("request_id", new_event_id())
    span = active_span_ids()
    parent = parse_traceparent(traceparent)
    if span is not None:  # an OpenTelemetry server span wraps us: its ids win
        fields["trace_id"], fields["span_id"] = span
    else:
        fields["trace_id"] = parent.trace_id if parent else new_trace_id()
        fields["span_id"] = new_span_id()
    return fields, (parent.flags if parent else "01")
