"""logkit's spans in OpenTelemetry, through ``opentelemetry-api`` only.

``flow``, ``step``, ``tool_call``, ``model_call`` and the ASGI middleware open their span here.
With an SDK tracer provider (the global one, or one given to :func:`use_tracer_provider`) the
span is a real SDK span, nested under whatever span is current (a request's, a caller's),
recorded and exported by the app's own SDK pipeline. Without one, logkit makes the ids itself
(a fresh span id under the current trace) and still puts a non-recording span carrying them in
the OpenTelemetry context, so instrumented clients propagate the right ``traceparent``.

Either way the span's ids are bound on logkit's context (``trace_id``, ``span_id``,
``parent_span_id``), so every event emitted inside carries them: the stored timeline and the
trace agree id for id. Attributes come from the span's events as they left the redaction gate
(:mod:`logkit.spanattrs`): a raw value never reaches a span, and an exception is recorded by
type and redacted message only (never ``record_exception``'s raw text and stack).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import random
import time
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TracerProvider,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from logkit import spanattrs
from logkit.envelope import Event

_SCOPE_NAME = "logkit"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_W3C = TraceContextTextMapPropagator()
# A ProxyTracer: it follows the global tracer provider once the app sets one.
_tracer = trace.get_tracer(_SCOPE_NAME)


def use_tracer_provider(provider: TracerProvider | None) -> None:
    """Record logkit's spans with ``provider`` instead of the global tracer provider (None:
    back to the global one). Like the ``tracer_provider=`` argument of OTel instrumentations."""
    global _tracer  # noqa: PLW0603 - one tracer for logkit's spans, like the global provider
    _tracer = (
        trace.get_tracer(_SCOPE_NAME) if provider is None else provider.get_tracer(_SCOPE_NAME)
    )


def ts_of(ns: int) -> dt.datetime:
    """The event timestamp of a span time: the same instant, to the microsecond."""
    return _EPOCH + dt.timedelta(microseconds=ns // 1_000)


def ns_of(ts: dt.datetime) -> int:
    """Nanoseconds since the epoch of an event timestamp (exact: integer arithmetic)."""
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def now_ns() -> int:
    # Microsecond precision, so a span's times and its events' timestamps are equal.
    return time.time_ns() // 1_000 * 1_000


def _random_id(size: int) -> int:
    # As OpenTelemetry's RandomIdGenerator: ids need uniqueness, not secrecy, and a system
    # call per span (os.urandom) costs tens of microseconds in some sandboxes.
    while not (value := random.getrandbits(size * 8)):
        pass
    return value


class SpanHandle:
    """One logkit span: its ids, its OpenTelemetry span, and its place in the context."""

    __slots__ = ("_context", "_ended", "_set", "context", "parent", "span", "start_ns")

    def __init__(self, span: Span, parent: SpanContext | None, start_ns: int) -> None:
        self.span = span
        self.context: SpanContext = span.get_span_context()
        self.parent = parent
        self.start_ns = start_ns
        self._context = trace.set_span_in_context(span)
        self._ended = False
        self._set: Mapping[str, Any] = {}

    @property
    def recording(self) -> bool:
        return self.span.is_recording()

    def ids(self) -> dict[str, str | None]:
        """The correlation fields events inside this span carry."""
        return {
            "trace_id": format(self.context.trace_id, "032x"),
            "span_id": format(self.context.span_id, "016x"),
            "parent_span_id": format(self.parent.span_id, "016x") if self.parent else None,
        }

    @property
    def start_ts(self) -> dt.datetime:
        return ts_of(self.start_ns)

    def activate(self) -> object:
        """Make this span the current OpenTelemetry span; undo with :func:`deactivate`."""
        return otel_context.attach(self._context)

    @contextlib.contextmanager
    def activated(self) -> Iterator[None]:
        """Make this span the current OpenTelemetry span for the block."""
        token = otel_context.attach(self._context)
        try:
            yield
        finally:
            deactivate(token)

    def annotate(self, event: Event) -> None:
        """Add what a span event (as it left the gate) says to the span."""
        if self.recording:
            self._set = spanattrs.attributes(event)
            self.span.set_attributes(self._set)

    def end(self, event: Event | None, end_ns: int) -> None:
        """End the span with its last event (ended or failed): attributes, status, exception."""
        if not self.recording:
            self._ended = True
            return
        if event is None:
            self.finish({}, None, end_ns)
        else:
            self.finish(spanattrs.attributes(event), spanattrs.error_of(event), end_ns)

    def finish(
        self, attributes: Mapping[str, Any], error: tuple[str, str] | None, end_ns: int
    ) -> None:
        """End the span: ``error`` is (type, redacted message), recorded as an ``exception``
        span event and an ERROR status."""
        if self._ended:
            return
        self._ended = True
        if not self.recording:
            return
        if attributes:  # what the start already said (the scope, the names) is not set again
            said = self._set
            self.span.set_attributes(
                {k: v for k, v in attributes.items() if k not in said or said[k] != v}
            )
        if error is not None:
            kind, message = error
            self.span.set_attribute(spanattrs.ERROR_TYPE, kind)
            self.span.add_event(
                "exception",
                {"exception.type": kind, "exception.message": message},
                timestamp=end_ns,
            )
            self.span.set_status(Status(StatusCode.ERROR, message))
        self.span.end(end_time=end_ns)

    def close(self) -> None:
        """End the span if nothing did (its first event failed): no status, no attributes."""
        self.end(None, now_ns())


def existing(span: Span) -> SpanHandle:
    """A handle on a span someone else started and ends (an outer server span)."""
    parent = getattr(span, "parent", None)
    handle = SpanHandle(span, parent if isinstance(parent, SpanContext) else None, now_ns())
    handle._ended = True  # not ours to end
    return handle


def deactivate(token: object) -> None:
    """Undo an attach; one made in another context (a generator closed elsewhere) is left
    alone, as logkit's own unbind does, rather than logged as an error by OpenTelemetry."""
    if isinstance(token, contextvars.Token):
        with contextlib.suppress(ValueError):
            token.var.reset(token)
    else:  # another runtime context implementation
        otel_context.detach(token)  # type: ignore[arg-type]


def _bound_parent(bound: Mapping[str, Any]) -> SpanContext:
    """The span logkit's context names (bound ids, e.g. closed from another context)."""
    trace_id, span_id = bound.get("trace_id"), bound.get("span_id")
    if not (isinstance(trace_id, str) and isinstance(span_id, str)):
        return INVALID_SPAN_CONTEXT
    try:
        return SpanContext(
            int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(1)
        )
    except ValueError:
        return INVALID_SPAN_CONTEXT


def start(
    name: str, *, client: bool = False, bound: Mapping[str, Any], server: bool = False
) -> SpanHandle:
    """Start a span under the current one (or the one logkit's bound ids name, or a remote
    parent). Never raises: a failing tracer gives a logkit-made span instead."""
    current = trace.get_current_span().get_span_context()
    context = None
    if not current.is_valid:
        current = _bound_parent(bound)
        if current.is_valid:
            context = trace.set_span_in_context(NonRecordingSpan(current))
    return start_under(
        name,
        current,
        context,
        kind=SpanKind.SERVER if server else SpanKind.CLIENT if client else SpanKind.INTERNAL,
        trace_id=bound.get("trace_id"),
    )


def start_under(
    name: str,
    parent: SpanContext,
    context: otel_context.Context | None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    trace_id: str | None = None,
) -> SpanHandle:
    """Start a span whose parent is ``parent`` (started in ``context``; None: the current)."""
    start_ns = now_ns()
    try:
        span = _tracer.start_span(
            name,
            context=context,
            kind=kind,
            start_time=start_ns,
            record_exception=False,  # raw exception text and stacks never leave
            set_status_on_exception=False,
        )
        own = span.get_span_context()
    except Exception:  # a broken tracer never breaks the caller
        own = INVALID_SPAN_CONTEXT
    if not own.is_valid or (parent.is_valid and own.span_id == parent.span_id):
        # No SDK (the no-op tracer hands back the parent): logkit's own span id.
        span = NonRecordingSpan(_own_context(parent, trace_id))
    return SpanHandle(span, parent if parent.is_valid else None, start_ns)


def _own_context(parent: SpanContext, trace_id: str | None) -> SpanContext:
    if parent.is_valid:
        return SpanContext(
            parent.trace_id,
            _random_id(8),
            is_remote=False,
            trace_flags=parent.trace_flags,
            trace_state=parent.trace_state,
        )
    try:
        tid = int(trace_id, 16) if trace_id else 0
    except ValueError:
        tid = 0
    return SpanContext(
        tid or _random_id(16), _random_id(8), is_remote=False, trace_flags=TraceFlags(1)
    )


# --- propagation ------------------------------------------------------------------------------


def remote_parent(traceparent: str | None, tracestate: list[str]) -> SpanContext:
    """The remote span a request names (W3C), parsed by logkit's strict parser; the
    ``tracestate`` is kept only with a valid ``traceparent``, as the spec says."""
    from logkit.context import parse_traceparent

    parsed = parse_traceparent(traceparent)
    if parsed is None:
        return INVALID_SPAN_CONTEXT
    state = _W3C.extract({"traceparent": parsed.header(), "tracestate": tracestate})
    extracted = trace.get_current_span(state).get_span_context()
    return SpanContext(
        int(parsed.trace_id, 16),
        int(parsed.parent_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(int(parsed.flags, 16)),
        trace_state=extracted.trace_state if extracted.is_valid else None,
    )


def inject(carrier: MutableMapping[str, str], span: Span | None = None) -> None:
    """Write ``traceparent`` (and ``tracestate``) for ``span``, else the current span."""
    context = trace.set_span_in_context(span) if span is not None else None
    _W3C.inject(carrier, context=context)


def trace_headers(headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """``headers`` plus the W3C trace context of the current span, for an outbound call::

        httpx.post(url, json=body, headers=logkit.trace_headers({"Accept": "application/json"}))

    Inside a ``tool_call``/``model_call`` the callee sees that call as its parent span. Outside
    any span it adds nothing.
    """
    out = dict(headers or {})
    for name in [k for k in out if k.lower() in ("traceparent", "tracestate")]:
        del out[name]  # the current span replaces a stale trace context
    inject(out)
    return out


def inject_trace(request: Any) -> None:
    """An httpx request event hook that adds the current span's trace context::

        client = httpx.Client(event_hooks={"request": [logkit.inject_trace]})

    (For ``httpx.AsyncClient`` use :func:`inject_trace_async`.)
    """
    carrier: dict[str, str] = {}
    inject(carrier)
    for name, value in carrier.items():
        request.headers[name] = value


async def inject_trace_async(request: Any) -> None:
    """:func:`inject_trace` for ``httpx.AsyncClient(event_hooks={"request": [...]})``."""
    inject_trace(request)
