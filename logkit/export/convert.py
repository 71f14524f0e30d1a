"""Events -> OpenTelemetry SDK data: spans from span events, log records from every event.

A span is rebuilt from its events with the ids they carry (``trace_id``, ``span_id``,
``parent_span_id``): the trace a backend shows is the stored timeline, id for id. Its start is
the started event's timestamp when this converter saw it (always, for a stored run), else the
end minus the recorded duration; its name, kind and attributes come from
:mod:`logkit.spanattrs`, the same mapping live SDK spans use. Events written before spans
existed (envelope 1.0.x) get ids derived from their run, step and call ids, the same on every
re-send, so a backfill is idempotent.

Only what passed the redaction gate is here: these are the pipeline's (or the store's) events.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event as SpanEvent
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from logkit import spanattrs
from logkit.envelope import Event, Severity
from logkit.redaction.sealing import SEALED_KEY
from logkit.spans import ns_of

SCOPE = InstrumentationScope("logkit.export")
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_MAX_OPEN = 10_000  # started spans waiting for their end (oldest forgotten first)
_SEVERITY = {
    Severity.DEBUG: SeverityNumber.DEBUG,
    Severity.INFO: SeverityNumber.INFO,
    Severity.NOTICE: SeverityNumber.INFO2,
    Severity.WARNING: SeverityNumber.WARN,
    Severity.ERROR: SeverityNumber.ERROR,
    Severity.CRITICAL: SeverityNumber.FATAL,
}
_LOG_FIELDS = (*spanattrs.ATTRIBUTE_FIELDS, "event_id", "storage_class")

Ids = tuple[int, int, int | None]


class Converter:
    """Turns a stream of events into spans and log records (not thread-safe: one worker)."""

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self._open: dict[tuple[int, int], Event] = {}

    # --- spans -------------------------------------------------------------------------------

    def spans(self, events: Iterable[Event]) -> list[ReadableSpan]:
        out: list[ReadableSpan] = []
        for event in events:
            span = self.add(event)
            if span is not None:
                out.append(span)
        return out

    def add(self, event: Event) -> ReadableSpan | None:
        """The span ``event`` ends, if it ends one; a started event is kept until its end."""
        kind = spanattrs.span_kind_of(event)
        if kind is None:
            return None
        ids = span_ids(event, kind[0])
        if ids is None:
            return None
        key = (ids[0], ids[1])
        if kind[1] == 0:
            self._open[key] = event
            if len(self._open) > _MAX_OPEN:
                del self._open[next(iter(self._open))]
            return None
        return self._span(event, kind[0], ids, self._open.pop(key, None))

    def unfinished(self) -> list[ReadableSpan]:
        """Spans that started and never ended (a process that died), ended at the latest
        event seen, with ``logkit.status`` ``open``; forgets them."""
        if not self._open:
            return []
        last = max(ns_of(e.ts) for e in self._open.values())
        out = []
        for started in self._open.values():
            what = spanattrs.span_kind_of(started)
            ids = span_ids(started, what[0]) if what else None
            if what is None or ids is None:
                continue
            span = self._span(started, what[0], ids, None, open_until=max(last, ns_of(started.ts)))
            out.append(span)
        self._open.clear()
        return out

    def _span(
        self,
        last: Event,
        what: str,
        ids: Ids,
        started: Event | None,
        *,
        open_until: int | None = None,
    ) -> ReadableSpan:
        trace_id, span_id, parent_id = ids
        end_ns = open_until if open_until is not None else ns_of(last.ts)
        attributes: dict[str, Any] = {}
        if started is not None:
            start_ns = ns_of(started.ts)
            attributes.update(spanattrs.attributes(started))
        else:
            start_ns = end_ns - _duration_ns(last)
        attributes.update(spanattrs.attributes(last))
        events: list[SpanEvent] = []
        status = Status(StatusCode.UNSET)
        error = spanattrs.error_of(last) if open_until is None else None
        if open_until is not None:
            attributes["logkit.status"] = "open"
        if error is not None:
            kind_name, message = error
            events.append(
                SpanEvent(
                    "exception",
                    {"exception.type": kind_name, "exception.message": message},
                    timestamp=end_ns,
                )
            )
            status = Status(StatusCode.ERROR, message)
        return ReadableSpan(
            name=spanattrs.span_name(what, last.payload),
            context=SpanContext(trace_id, span_id, is_remote=False, trace_flags=_SAMPLED),
            parent=(
                SpanContext(trace_id, parent_id, is_remote=False, trace_flags=_SAMPLED)
                if parent_id
                else None
            ),
            resource=self.resource,
            attributes=attributes,
            events=events,
            kind=SpanKind.CLIENT if spanattrs.is_client(what) else SpanKind.INTERNAL,
            status=status,
            start_time=min(start_ns, end_ns),
            end_time=end_ns,
            instrumentation_scope=SCOPE,
        )

    # --- logs --------------------------------------------------------------------------------

    def log(self, event: Event) -> ReadableLogRecord:
        """Every event as one OTLP log record: the payload as its body, the envelope as
        attributes, its span's ids as the record's trace context."""
        context = None
        if event.trace_id and event.span_id:
            span = SpanContext(
                int(event.trace_id, 16),
                int(event.span_id, 16),
                is_remote=False,
                trace_flags=_SAMPLED,
            )
            context = trace.set_span_in_context(NonRecordingSpan(span))
        attributes: dict[str, Any] = {"logkit.event_type": event.event_type.value}
        for field in _LOG_FIELDS:
            value = getattr(event, field)
            if value is not None:
                attributes[f"logkit.{field}"] = str(value)
        if event.parent_span_id:
            attributes["logkit.parent_span_id"] = event.parent_span_id
        if event.redaction is not None:
            attributes["logkit.redaction.policy"] = event.redaction.policy
        body = {k: v for k, v in event.payload.items() if k != SEALED_KEY}
        record = LogRecord(
            timestamp=ns_of(event.ts),
            observed_timestamp=time.time_ns(),
            context=context,
            severity_text=event.severity.value.upper(),
            severity_number=_SEVERITY[event.severity],
            body=body,
            attributes=attributes,
            event_name=event.event_type.value,
        )
        return ReadableLogRecord(
            log_record=record, resource=self.resource, instrumentation_scope=SCOPE
        )


def _duration_ns(event: Event) -> int:
    value = event.payload.get("duration_ms", event.payload.get("latency_ms", 0))
    try:
        return max(int(float(value) * 1_000_000), 0)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


def span_ids(event: Event, what: str) -> Ids | None:
    """(trace id, span id, parent span id) of the span ``event`` belongs to."""
    if event.trace_id and event.span_id and not event.schema_version.startswith("1.0."):
        parent = int(event.parent_span_id, 16) if event.parent_span_id else None
        return int(event.trace_id, 16), int(event.span_id, 16), parent
    return _derived_ids(event, what)


def _derived_ids(event: Event, what: str) -> Ids | None:
    """Ids for an event written before spans (1.0.x): stable hashes of its run, step and
    call ids, so the same run re-sent gives the same trace."""
    run, step = event.run_id, event.step_id
    if run is None:
        return None
    trace_id = int(event.trace_id, 16) if event.trace_id else _hash(32, event.tenant_id, run)
    flow = _hash(16, "flow", run)
    if what == "flow":
        parent = int(event.span_id, 16) if event.span_id else None  # the request's span
        return trace_id, flow, parent
    if what == "step":
        if step is None:
            return None
        parent_step = event.parent_step_id
        return (
            trace_id,
            _hash(16, "step", step),
            _hash(16, "step", parent_step) if parent_step else flow,
        )
    call_id = event.payload.get("call_id")
    if not isinstance(call_id, str):
        return None
    return trace_id, _hash(16, "call", call_id), _hash(16, "step", step) if step else flow


def _hash(hex_digits: int, *parts: str) -> int:
    digest = hashlib.sha256("\x00".join(("logkit", *parts)).encode()).hexdigest()
    return int(digest[:hex_digits], 16) or 1
