"""CorrelationMiddleware: bind trusted scope and W3C trace context for every ASGI request.

Pure ASGI, for Starlette, FastAPI or any ASGI app. Who decides what (docs/correlation.md):

- the **service** (``env`` and ``[service]`` in the configuration): ``env`` always, and
  ``project_id`` / ``app_id`` / ``surface_id`` when it fixes them; a request never changes them;
- a **verified principal** (``resolver=``, the stream's authorizer shape): ``tenant_id``,
  ``user_id``, and ``project_id`` when the service leaves it open;
- **trusted headers** (``trust_headers=True`` behind a gateway that sets them; the default in
  dev only): ``X-Tenant-Id``, ``X-User-Id``, and ``X-Project-Id`` / ``X-App-Id`` /
  ``X-Surface-Id`` where the service leaves the field open;
- the **client**: ``X-Request-Id`` and ``traceparent`` (correlation, never scope).

A scope header that is not used and says something else than what is bound is ignored and
counted (``logkit.counters()``: ``scope_header.ignored.<header>``): the request goes on. A scope
header sent twice where it is read is refused with a 400 (WebSocket: close 1008), as the stream
does.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanKind

from logkit import spans
from logkit.context import bind
from logkit.counting import COUNTERS
from logkit.envelope import Env, new_event_id
from logkit.errors import ConfigError
from logkit.principal import (
    DuplicateHeaderError,
    Principal,
    Resolver,
    Unauthorized,
    load_callable,
    resolve,
    single_headers,
    tenant_header_ok,
)
from logkit.spans import SpanHandle

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("logkit.asgi")

# Scope headers -> the field each would set. Header names are matched lowercase (ASGI).
HEADER_FIELDS: dict[bytes, str] = {
    b"x-tenant-id": "tenant_id",
    b"x-env": "env",
    b"x-project-id": "project_id",
    b"x-surface-id": "surface_id",
    b"x-app-id": "app_id",
    b"x-user-id": "user_id",
}
# What trusted headers may set (env never: the service decides it).
_TRUSTED = (b"x-tenant-id", b"x-user-id", b"x-project-id", b"x-app-id", b"x-surface-id")
_MAX_HEADER_VALUE = 256
_WS_POLICY = 1008


class CorrelationMiddleware:
    """Bind the request's trusted scope, its request id and its trace context.

    ``resolver``: a callable (or ``"package.module:callable"``) taking the Starlette
    connection and returning the verified :class:`~logkit.principal.Principal` (or None),
    sync or async, raising Unauthorized to refuse; the same shape as the stream's authorizer.
    ``trust_headers``: True behind a gateway that sets ``X-Tenant-Id``; False never trusts
    them; unset trusts them in dev only and fails the app's start-up elsewhere (like
    ``logkit serve``). A missing request id or trace is generated; an invalid ``traceparent``
    is ignored (W3C). The response echoes ``X-Request-Id`` and ``traceparent``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        resolver: Resolver | str | None = None,
        trust_headers: bool | None = None,
        check_sinks_on_startup: bool = True,
    ) -> None:
        if isinstance(resolver, str):
            resolver = load_callable(resolver, "resolver")
        if resolver is not None and trust_headers:
            raise ConfigError(
                "CorrelationMiddleware takes resolver= or trust_headers=True, not both: "
                "either a verified principal decides the tenant, or a gateway's headers do"
            )
        self.app = app
        self.resolver = resolver
        self.trust_headers = trust_headers
        self.check_sinks_on_startup = check_sinks_on_startup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self.check_sinks_on_startup:
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = list(scope.get("headers", ()))
        try:
            fields = await self.scope_fields(scope, headers)
        except DuplicateHeaderError as exc:
            await _refuse(scope, receive, send, exc)
            return
        request_id, span = request_span(scope, headers, fields.get("tenant_id"))
        response_headers = [(b"x-request-id", request_id.encode("latin-1"))]
        trace_headers: dict[str, str] = {}
        spans.inject(trace_headers, span.span)
        response_headers += [
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in trace_headers.items()
        ]
        status: list[int] = []

        async def send_with_correlation(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                existing = list(message.get("headers") or ())
                names = {name.lower() for name, _ in existing}
                message["headers"] = existing + [h for h in response_headers if h[0] not in names]
                if message["type"] == "http.response.start":
                    status.append(int(message.get("status", 200)))
            await send(message)

        with bind(**fields, request_id=request_id, **span.ids()), span.activated():
            try:
                await self.app(scope, receive, send_with_correlation)
            except BaseException as exc:
                _end_request(span, status, exc)
                raise
            _end_request(span, status, None)

    # --- scope -------------------------------------------------------------------------------

    async def scope_fields(
        self, scope: Scope, headers: list[tuple[bytes, bytes]]
    ) -> dict[str, Any]:
        """The scope this request may bind: from the principal or trusted headers, for the
        fields the service leaves open. Raises DuplicateHeaderError (a 400)."""
        service = _service_scope()
        env = Env(service.get("env", Env.DEV))
        fields: dict[str, Any] = {}
        if self.resolver is not None:
            principal = await self._principal(scope)
            if principal is not None:
                fields = _principal_fields(principal, service)
        elif self._trusts_headers(env):
            fields = _header_fields(single_headers(headers, _TRUSTED), service)
        _count_ignored(headers, {**service, **fields})
        return fields

    def _trusts_headers(self, env: Env) -> bool:
        if self.trust_headers is None:
            return env is Env.DEV  # elsewhere start-up refuses this middleware (lifespan)
        return self.trust_headers

    async def _principal(self, scope: Scope) -> Principal | None:
        from starlette.requests import HTTPConnection  # the resolver's argument, like the stream's

        assert self.resolver is not None
        try:
            return await resolve(self.resolver, HTTPConnection(scope))
        except Unauthorized:
            COUNTERS.add("principal.refused")  # the app's own auth answers the client
            return None
        except Exception as exc:
            from logkit.contract import contract_policy

            if not contract_policy().record:
                raise  # dev and test: a broken resolver shows at once
            COUNTERS.add("principal.error")
            log.warning("logkit: the principal resolver failed (%s)", type(exc).__name__)
            return None

    def refusal(self, env: Env) -> str | None:
        """Why this middleware may not run in ``env`` (start-up refuses it), or None."""
        if self.resolver is None and self.trust_headers is None and env is not Env.DEV:
            return (
                f"CorrelationMiddleware: env is {env.value}: pass resolver= (a verified "
                "principal decides the tenant), or trust_headers=True behind a gateway that "
                "sets X-Tenant-Id, or trust_headers=False if the code binds the tenant itself"
            )
        return None

    # --- lifespan ------------------------------------------------------------------------------

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Fail the app's start-up when logkit's sinks or header trust are not valid for this
        env (fail fast)."""
        first = await receive()
        if first["type"] == "lifespan.startup":
            from logkit.runtime import ensure_configured

            try:
                runtime = ensure_configured()
                problem = self.refusal(runtime.settings.env)
                if problem is not None:
                    raise ConfigError(problem)
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


def _service_scope() -> Mapping[str, Any]:
    from logkit.context import service_scope
    from logkit.pipeline import PIPELINE

    if not PIPELINE.configured:  # mounted without a lifespan: configure as the first emit would
        from logkit.runtime import ensure_configured

        ensure_configured()
    return service_scope()


def _principal_fields(principal: Principal, service: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {"tenant_id": principal.tenant_id}
    if principal.user_id is not None:
        fields["user_id"] = principal.user_id
    if principal.project_id is not None:
        if "project_id" not in service:
            fields["project_id"] = principal.project_id
        elif principal.project_id != service["project_id"]:
            COUNTERS.add("principal.project_ignored")  # the service's project stands
    return fields


def _header_fields(values: Mapping[bytes, str], service: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for header, value in values.items():
        field = HEADER_FIELDS[header]
        if field in service or len(value) > _MAX_HEADER_VALUE:
            continue  # the service decides it (counted below if it disagrees)
        if field == "tenant_id" and not tenant_header_ok(value):
            continue  # malformed or reserved: never bound (counted below)
        fields[field] = value
    return fields


def _count_ignored(headers: Iterable[tuple[bytes, bytes]], bound: Mapping[str, Any]) -> None:
    """Count each scope header that says something else than what the request binds."""
    for raw_name, raw_value in headers:
        name = raw_name.lower()
        field = HEADER_FIELDS.get(name)
        if field is None:
            continue
        value = raw_value.decode("latin-1").strip()
        if field == "env":
            with contextlib.suppress(ValueError):  # "stage" is how legacy clients say staging
                value = Env(value).value
        if value and value != str(bound.get(field, "")):
            COUNTERS.add(f"scope_header.ignored.{name.decode('latin-1')}")


async def _refuse(scope: Scope, receive: Receive, send: Send, exc: DuplicateHeaderError) -> None:
    """A 400 naming the headers (the stream's error shape); close 1008 for a WebSocket."""
    COUNTERS.add("scope_header.duplicate")
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": _WS_POLICY, "reason": str(exc)[:120]})
        return
    body = json.dumps({"error": str(exc), "problems": exc.problems}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def request_span(
    scope: Scope, headers: Any, tenant_id: str | None = None
) -> tuple[str, SpanHandle]:
    """The request's id (``X-Request-Id`` sent once, else a new UUIDv7) and its span.

    An OpenTelemetry span already active (an outer OTel ASGI instrumentation) is the request's
    span. Otherwise ``traceparent``/``tracestate`` are extracted into the OpenTelemetry context
    (W3C; a ``traceparent`` sent twice is invalid, so a new trace starts) and a SERVER span
    starts under them: a real one with an SDK tracer provider, else one logkit makes the ids of.
    """
    request_ids: list[str] = []
    traceparents: list[str] = []
    tracestates: list[str] = []
    for raw_name, raw_value in headers:
        name = raw_name.lower()
        if name == b"traceparent":
            traceparents.append(raw_value.decode("latin-1"))
        elif name == b"tracestate":
            tracestates.append(raw_value.decode("latin-1"))
        elif name == b"x-request-id":
            request_ids.append(raw_value.decode("latin-1").strip())
    if len(request_ids) == 1 and 0 < len(request_ids[0]) <= _MAX_HEADER_VALUE:
        request_id = request_ids[0]
    else:
        request_id = new_event_id()
    current = trace.get_current_span()
    if current.get_span_context().is_valid:
        return request_id, spans.existing(current)
    parent = spans.remote_parent(traceparents[0] if len(traceparents) == 1 else None, tracestates)
    context = trace.set_span_in_context(NonRecordingSpan(parent)) if parent.is_valid else None
    is_http = scope["type"] == "http"
    method = str(scope.get("method", "GET")) if is_http else "websocket"
    span = spans.start_under(method, parent, context, kind=SpanKind.SERVER)
    if span.recording:
        span.span.set_attributes(_request_attributes(scope, method, request_id, tenant_id))
    return request_id, span


def _request_attributes(
    scope: Scope, method: str, request_id: str, tenant_id: str | None
) -> dict[str, str]:
    from logkit.redaction import redact_text

    attributes = {
        "url.scheme": str(scope.get("scheme", "http")),
        # A path may carry an email or a token: only what passes the gate leaves.
        "url.path": redact_text(str(scope.get("path", "")), tenant_id=tenant_id),
        "logkit.request_id": request_id,
    }
    if scope["type"] == "http":
        attributes["http.request.method"] = method
    return attributes


def _end_request(span: SpanHandle, status: list[int], exc: BaseException | None) -> None:
    attributes = {"http.response.status_code": status[0]} if status else {}
    error = None
    if exc is not None:
        error = (type(exc).__qualname__, type(exc).__qualname__)  # never the raw message
    elif status and status[0] >= 500:
        error = (str(status[0]), f"HTTP {status[0]}")
    span.finish(attributes, error, spans.now_ns())
