"""What a span says: logkit's span events mapped onto OpenTelemetry names and attributes.

One mapping for both ways a logkit span reaches OpenTelemetry: the live span an SDK records
(:mod:`logkit.spans`, fed the events ``flow``/``step``/``tool_call``/``model_call`` emit) and
the span the OTLP exporter rebuilds from stored events (:mod:`logkit.export`). Both read the
event **as it left the redaction gate**, so a span never carries more than the timeline does.

Attribute names follow the OpenTelemetry GenAI semantic conventions where one exists
(``gen_ai.operation.name``, ``gen_ai.request.model``, ``gen_ai.usage.input_tokens``, ...);
logkit's own fields go under ``logkit.``; ``openinference.span.kind`` tells Phoenix what a flow
or a step is (it derives tools and model calls from the GenAI names). docs/otel.md has the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from logkit.envelope import (
    CORRELATION_FIELDS,
    REQUIRED_SCOPE,
    TRACE_FIELDS,
    Event,
    EventType,
)

AttributeValue = str | bool | int | float | list[str] | list[int] | list[float] | list[bool]

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
ERROR_TYPE = "error.type"
SPAN_KIND_PHOENIX = "openinference.span.kind"

# Which span each event type starts (0), ends (1) or fails (2).
SPAN_EVENTS: dict[EventType, tuple[str, int]] = {
    EventType(f"{what}_{phase}"): (what, i)
    for what in ("flow", "step", "tool_call", "model_call")
    for i, phase in enumerate(("started", "ended", "failed"))
}

# Envelope fields a span (and an exported log record) carries as logkit.<field>, when the event
# has them: scope and correlation but the trace fields, which are the span's own context.
ATTRIBUTE_FIELDS: tuple[str, ...] = REQUIRED_SCOPE + tuple(
    f for f in CORRELATION_FIELDS if f not in TRACE_FIELDS
)
# Payload keys a span event writes that are not attributes of their own.
_LIFECYCLE = frozenset({"name", "kind", "status", "duration_ms", "latency_ms", "input", "output"})
_PHOENIX_KIND = {"flow": "AGENT", "step": "CHAIN"}


def span_kind_of(event: Event) -> tuple[str, int] | None:
    """("flow"|"step"|"tool_call"|"model_call", 0 started / 1 ended / 2 failed), or None."""
    return SPAN_EVENTS.get(event.event_type)


def span_name(what: str, payload: Mapping[str, Any]) -> str:
    """The span's name: the flow's or step's name; ``execute_tool {tool}`` and
    ``{operation} {model}`` for calls (the GenAI conventions' span names)."""
    if what == "tool_call":
        return f"execute_tool {payload.get(TOOL_NAME, '')}".strip()
    if what == "model_call":
        return f"{payload.get(OPERATION, 'chat')} {payload.get(REQUEST_MODEL, '')}".strip()
    return str(payload.get("name", what))


def is_client(what: str) -> bool:
    """A model call leaves the process (SpanKind CLIENT); everything else is INTERNAL."""
    return what == "model_call"


def attributes(event: Event) -> dict[str, AttributeValue]:
    """The attributes one span event (started, ended or failed) contributes to its span."""
    kind = span_kind_of(event)
    if kind is None:
        return {}
    what, phase = kind
    out: dict[str, AttributeValue] = {"logkit.span.type": what}
    for field in ATTRIBUTE_FIELDS:
        value = getattr(event, field)
        if value is not None:
            out[f"logkit.{field}"] = str(value)
    payload = event.payload
    if what in ("flow", "step"):
        _flow_or_step(out, what, payload)
    else:
        _call(out, what, payload)
    if phase:
        status = payload.get("status")
        out["logkit.status"] = (
            str(status) if status is not None else ("failed" if phase == 2 else "ok")
        )
    return out


def _flow_or_step(out: dict[str, AttributeValue], what: str, payload: Mapping[str, Any]) -> None:
    out[SPAN_KIND_PHOENIX] = _PHOENIX_KIND[what]
    if "name" in payload:
        out[f"logkit.{what}.name"] = str(payload["name"])
    if "kind" in payload:
        out["logkit.step.kind"] = str(payload["kind"])
    for key, value in payload.items():
        if key in _LIFECYCLE:
            continue
        if key.startswith("error."):
            out[key] = attribute_value(value)
        else:
            out[f"logkit.{what}.{key}"] = attribute_value(value)


def _call(out: dict[str, AttributeValue], what: str, payload: Mapping[str, Any]) -> None:
    for key, value in payload.items():
        if key in _LIFECYCLE:
            continue
        if key.startswith(("gen_ai.", "error.")):
            out[key] = attribute_value(value)
        else:
            out[f"logkit.{key}"] = attribute_value(value)
    if what == "tool_call":
        names = (TOOL_ARGUMENTS, TOOL_RESULT)
    else:
        names = (INPUT_MESSAGES, OUTPUT_MESSAGES)
    for key, name in zip(("input", "output"), names, strict=True):
        if key in payload:
            out[name] = json_text(payload[key])


def attribute_value(value: Any) -> AttributeValue:
    """An OpenTelemetry attribute value: scalars as they are, homogeneous scalar lists as
    lists, anything else (objects, mixed lists, null) as JSON text."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list) and value and _homogeneous(value):
        return list(value)
    return json_text(value)


def _homogeneous(values: list[Any]) -> bool:
    first = type(values[0])
    return first in (str, bool, int, float) and all(type(v) is first for v in values)


def json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def error_of(event: Event) -> tuple[str, str] | None:
    """(error type, redacted message) of a failed span event, else None."""
    kind = span_kind_of(event)
    if kind is None or kind[1] != 2:
        return None
    payload = event.payload
    kind_name = str(payload.get(ERROR_TYPE, "error"))
    return kind_name, str(payload.get("error.message", kind_name))
