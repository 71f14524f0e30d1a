"""Adapters from the legacy envelopes (see LEGACY.md) to the canonical :class:`Event`.

Duck-typed on attributes (or mapping keys): logkit never imports ``engines``. Scope comes from
the legacy object, then explicit keyword arguments, then the bound context; if it is still
missing the contract raises ContractError. An explicit argument that contradicts the legacy
object is a ContractError too: re-attributing an event to another tenant is never silent.
Every legacy field without an envelope field lands in the payload (``None`` values are
omitted: they carry nothing). Naive legacy datetimes are read as UTC, which is what the legacy
code wrote (``datetime.utcnow()``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic_core import to_jsonable_python

from logkit.context import BINDABLE_FIELDS, bound_scope, refuse_unknown
from logkit.envelope import (
    EVENT_TYPES,
    ActorType,
    Event,
    EventType,
    Severity,
    StorageClass,
)
from logkit.errors import ContractError

_MISSING = object()
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
_ACTOR_TYPES = frozenset(t.value for t in ActorType)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _has(obj: Any, *names: str) -> bool:
    if isinstance(obj, Mapping):
        return all(n in obj for n in names)
    return all(hasattr(obj, n) for n in names)


def _unreadable(field: str, why: str) -> ContractError:
    # Names the legacy field and the rule, never the value: it may be the raw data itself.
    return ContractError(f"legacy field {field}: {why}", problems={field: why})


def _json(value: Any, field: str) -> Any:
    """JSON-safe copy: datetimes to ISO 8601, Decimal to its exact string, models to dicts."""
    try:
        return to_jsonable_python(value, fallback=str)
    except UnicodeDecodeError:
        raise _unreadable(field, "holds bytes that are not UTF-8 text") from None
    except (ValueError, TypeError):
        raise _unreadable(field, "cannot be turned into JSON") from None


def _compact(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    return {k: _json(v, prefix + k) for k, v in values.items() if v is not None}


def _utc(value: Any, field: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _unreadable(field, "is not an ISO 8601 date-time") from None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    raise _unreadable(field, "is not a date-time")


class _Builder:
    """Collects envelope fields from a legacy object and explicit overrides, then validates."""

    def __init__(self, explicit: Mapping[str, Any]) -> None:
        # Explicit overrides an adapter accepts: exactly what bind() accepts.
        refuse_unknown(
            explicit,
            BINDABLE_FIELDS,
            "adapters accept only scope and correlation overrides; got: ",
            "not a scope or correlation field",
        )
        self.explicit = explicit
        self.fields: dict[str, Any] = {}
        self.payload: dict[str, Any] = {}

    def take(self, name: str, legacy_value: Any) -> None:
        """Take the legacy value for envelope field ``name``; explicit may not contradict it."""
        if legacy_value in (None, ""):
            return
        given = self.explicit.get(name)
        if given is not None and str(given) != str(legacy_value):
            raise ContractError(
                f"{name} given explicitly contradicts the legacy object's {name}",
                problems={name: "explicit value contradicts the legacy object"},
            )
        self.fields[name] = legacy_value

    def take_id(self, name: str, value: Any, pattern: re.Pattern[str], legacy_name: str) -> None:
        """Trace/span ids must be W3C hex; a non-conforming legacy id is kept in the payload."""
        if value in (None, ""):
            return
        if pattern.fullmatch(str(value)):  # not .match: its $ lets a trailing newline in
            self.take(name, str(value))
        else:
            self.payload[legacy_name] = str(value)

    def take_actor(self, value: Any) -> None:
        if value in (None, ""):
            return
        if isinstance(value, str) and value in _ACTOR_TYPES:  # a list would not hash
            self.take("actor_type", value)
        else:
            self.payload["legacy_actor_type"] = str(value)

    def build(self, event_type: EventType, **event_fields: Any) -> Event:
        data: dict[str, Any] = bound_scope()  # the service scope, then the bound context
        data.update({k: v for k, v in self.explicit.items() if v is not None})
        data.update(self.fields)
        data.update({k: v for k, v in event_fields.items() if v is not None})
        data["event_type"] = event_type
        data["payload"] = self.payload
        return Event(**data)


def _event_type_or_message(builder: _Builder, legacy_type: Any) -> EventType:
    # Only text names a type: a list or dict stored there is kept, not hashed (TypeError).
    kind = EVENT_TYPES.get(legacy_type) if isinstance(legacy_type, str) else None
    if kind is not None:
        return kind
    builder.payload["legacy_type"] = legacy_type
    return EventType.MESSAGE


_UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_SEO = ("seo_slug", "seo_title", "seo_description", "asset_alt_text")


def from_dataset_event(legacy: Any, **scope: Any) -> Event:
    """DatasetEvent -> ``dataset_event``; an audit DatasetEvent -> ``audit_action``."""
    b = _Builder(scope)
    b.take("tenant_id", _get(legacy, "tenantId"))
    b.take("env", _get(legacy, "env"))
    b.take("surface_id", _get(legacy, "surface"))
    b.take("request_id", _get(legacy, "requestId"))
    b.take_id("trace_id", _get(legacy, "traceId"), _TRACE_ID, "legacy_trace_id")
    b.take_actor(_get(legacy, "actorType"))
    metadata = _json(_get(legacy, "metadata") or {}, "metadata")
    is_audit = (
        _get(legacy, "analytics_event_type") == "audit"
        and _get(legacy, "analytics_platform") == "internal"
    )
    # Consent travels with the event and is always in the payload: train_ok (the training
    # opt-out the legacy logger computed) and pii_flags (its PII findings), with the legacy
    # model's defaults (True, {}) when a mapping lacks them.
    train_ok = _get(legacy, "train_ok")
    b.payload.update(
        _compact(
            {
                "agent_id": _get(legacy, "agentId"),
                "input": _get(legacy, "input"),
                "output": _get(legacy, "output"),
                "pii_flags": _get(legacy, "pii_flags") or {},
                "train_ok": True if train_ok is None else train_ok,
                "metadata": metadata,
                "analytics_event_type": _get(legacy, "analytics_event_type"),
                "analytics_platform": _get(legacy, "analytics_platform"),
            }
        )
    )
    for group, names in (("utm", _UTM), ("seo", _SEO)):
        values = _compact({n: _get(legacy, n) for n in names})  # fields named as in legacy
        if values:
            b.payload[group] = values
    if not is_audit:
        return b.build(EventType.DATASET_EVENT)
    if isinstance(metadata, Mapping):
        b.payload["action"] = metadata.get("action")
        b.take_actor(metadata.get("actor_type"))
    return b.build(EventType.AUDIT_ACTION, storage_class=StorageClass.AUDIT)


def from_stream_event(legacy: Any, **scope: Any) -> Event:
    """StreamEvent -> its canonical type (or ``message``), stream unless it must persist."""
    b = _Builder(scope)
    routing, ids, meta = (_get(legacy, n) or {} for n in ("routing", "ids", "meta"))
    for name in ("tenant_id", "env", "project_id", "app_id", "surface_id"):
        b.take(name, _get(routing, name))
    b.take_actor(_get(routing, "actor_type"))
    for name in ("request_id", "run_id", "step_id"):
        b.take(name, _get(ids, name))
    b.take_id("trace_id", _get(legacy, "trace_id"), _TRACE_ID, "legacy_trace_id")
    b.take_id("span_id", _get(legacy, "span_id"), _SPAN_ID, "legacy_span_id")
    event_type = _event_type_or_message(b, _get(legacy, "type"))
    routing_rest = {
        n: _get(routing, n)
        for n in (
            "mode",
            "workspace_id",
            "canvas_id",
            "projection_id",
            "panel_id",
            "thread_id",
            "actor_id",
            "session_id",
            "device_id",
        )
    }
    b.payload.update(
        _compact(
            {
                "data": _get(legacy, "data") or {},
                "v": _get(legacy, "v"),
                "seq": _get(legacy, "seq"),
                "correlation_id": _get(ids, "correlation_id"),
                "routing": _compact(routing_rest, "routing.") or None,
                "meta": _compact(
                    {
                        n: _get(meta, n)
                        for n in ("schema_ver", "priority", "persist", "last_event_id")
                    },
                    "meta.",
                )
                or None,
            }
        )
    )
    persist = _get(meta, "persist")
    keep = persist == "always" or (_get(meta, "priority") == "truth" and persist != "never")
    return b.build(
        event_type,
        event_id=_get(legacy, "event_id"),
        ts=_utc(_get(legacy, "ts"), "ts"),
        storage_class=StorageClass.OPS if keep else StorageClass.STREAM,
    )


def from_event_log_entry(legacy: Any, **scope: Any) -> Event:
    """EventLogEntry -> its canonical type (or ``message``) on the ops timeline."""
    b = _Builder(scope)
    for name in ("tenant_id", "user_id", "request_id"):
        b.take(name, _get(legacy, name))
    b.take("surface_id", _get(legacy, "surface"))
    b.take_id("trace_id", _get(legacy, "trace_id"), _TRACE_ID, "legacy_trace_id")
    b.take_actor(_get(legacy, "actor_type"))
    event_type = _event_type_or_message(b, _get(legacy, "event_type"))
    b.payload.update(
        _compact(
            {
                n: _get(legacy, n)
                for n in ("asset_type", "asset_id", "origin_ref", "episode_id", "metadata")
            }
        )
    )
    return b.build(
        event_type,
        event_id=_get(legacy, "event_id"),
        ts=_utc(_get(legacy, "created_at"), "created_at"),
    )


def from_usage_event(legacy: Any, **scope: Any) -> Event:
    """UsageEvent -> ``usage_recorded`` (class cost); cost kept as an exact decimal string."""
    b = _Builder(scope)
    b.take("tenant_id", _get(legacy, "tenant_id"))
    b.take("env", _get(legacy, "env"))
    b.take("surface_id", _get(legacy, "surface"))
    b.payload.update(
        _compact(
            {
                n: _get(legacy, n)
                for n in (
                    "tool_type",
                    "tool_id",
                    "provider",
                    "model_or_plan_id",
                    "tokens_input",
                    "tokens_output",
                    "cost",
                    "currency",
                    "metadata",
                )
            }
        )
    )
    return b.build(
        EventType.USAGE_RECORDED,
        event_id=_get(legacy, "id"),
        ts=_utc(_get(legacy, "created_at"), "created_at"),
        storage_class=StorageClass.COST,
    )


def from_model_call_log(legacy: Any, **scope: Any) -> Event:
    """ModelCallLog (+ PromptSnapshot) -> ``model_call_ended``; the gate redacts the prompt."""
    b = _Builder(scope)
    b.take("tenant_id", _get(legacy, "tenant_id"))
    b.take("env", _get(legacy, "env"))
    prompt = _get(legacy, "prompt")
    b.payload.update(
        _compact(
            {
                "model_id": _get(legacy, "model_id"),
                "purpose": _get(legacy, "purpose"),
                "prompt": _compact(
                    {"text": _get(prompt, "text"), "created_at": _get(prompt, "created_at")},
                    "prompt.",
                )
                or None,
                "output_dimensions": _get(legacy, "output_dimensions"),
                "episode_id": _get(legacy, "episode_id"),
            }
        )
    )
    return b.build(
        EventType.MODEL_CALL_ENDED,
        event_id=_get(legacy, "call_id"),
        ts=_utc(_get(legacy, "created_at"), "created_at"),
        severity=Severity.INFO,
    )


# Shape detectors, most specific first: (required attributes, adapter).
_SHAPES: tuple[tuple[tuple[str, ...], Callable[..., Event]], ...] = (
    (("tenantId", "agentId"), from_dataset_event),
    (("routing", "type", "data"), from_stream_event),
    (("model_or_plan_id", "tokens_input"), from_usage_event),
    (("call_id", "model_id", "prompt"), from_model_call_log),
    (("event_type", "asset_type", "origin_ref"), from_event_log_entry),
)


def from_legacy(legacy: Any, **scope: Any) -> Event:
    """Adapt any supported legacy envelope, recognised by its attributes."""
    for names, adapter in _SHAPES:
        if _has(legacy, *names):
            return adapter(legacy, **scope)
    raise ContractError(
        f"not a recognised legacy envelope: {type(legacy).__name__}",
        problems={"legacy": "no adapter matches its attributes"},
    )
