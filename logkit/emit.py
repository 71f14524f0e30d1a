"""The emission entry point: fill scope and correlation, check the contract, hand on.

Scope is layered: the service scope (``[service]`` and ``env``, installed by ``configure()``),
then the fields bound in this context, then the active OpenTelemetry span's ids, then explicit
keyword arguments. A contract violation raises or is recorded as the policy says
(:mod:`logkit.contract`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from logkit import contract
from logkit.context import bound_scope, layer_span_ids
from logkit.envelope import DEFAULT_STORAGE_CLASS, EVENT_TYPES, Event, EventType
from logkit.errors import ContractError
from logkit.jsonsafe import refuse_unencodable
from logkit.pipeline import PIPELINE
from logkit.redaction import clean_report


def build_event(
    event_type: EventType | str, payload: Mapping[str, Any] | None = None, **fields: Any
) -> Event:
    """Build and validate an event from the service scope, the bound context and ``fields``
    (explicit wins).

    Raises ContractError when required scope is missing from all of them, whatever the
    contract policy (the policy is :func:`emit`'s).
    """
    return _build(event_type, _layers(payload, fields))


def emit(
    event_type: EventType | str, payload: Mapping[str, Any] | None = None, **fields: Any
) -> Event:
    """Emit one canonical event and return it as it left the pipeline (after redaction).

    Scope and correlation come from :func:`logkit.bind` / the ASGI middleware unless given as
    keyword arguments; the service scope from configuration lies under all of them. A missing
    required scope field raises ContractError naming it, or, under the ``record`` policy
    (staging and prod by default), is kept as a ``contract_violation`` event, which is
    returned. ``seal_raw=True`` also keeps the raw payload encrypted for break-glass
    (docs/privacy.md).
    """
    seal_raw = fields.pop("seal_raw", False)
    if "redaction" not in fields:
        # Stamped with the gate's "nothing found" report, so the common case needs no copy.
        fields["redaction"] = clean_report()
    if not PIPELINE.configured:
        _configure_on_first_use()  # first: the service scope and the policy come with it
    data = _layers(payload, fields)
    try:
        event = _build(event_type, data)
    except ContractError as exc:
        if contract.must_raise(event_type, data):
            raise
        return _record(exc, event_type, data)
    if seal_raw and payload:
        return _emit_sealed(event, dict(payload))
    return PIPELINE.process(event)


def _emit_sealed(event: Event, raw: dict[str, Any]) -> Event:
    """Redact as always, and keep the raw payload AES-GCM encrypted under ``_sealed``."""
    from logkit.redaction.sealing import SEALED_KEY, seal
    from logkit.runtime import current

    keys = current().keys
    if keys is None:
        raise ContractError(
            "seal_raw needs a configured key provider", problems={"seal_raw": "no key provider"}
        )
    redacted = PIPELINE.redact(event)
    # Sealed for the event as stored: its subject and ids are the gated ones, never raw.
    sealed = redacted.replace(payload={**redacted.payload, SEALED_KEY: seal(raw, redacted, keys)})
    PIPELINE.observe(sealed)
    return sealed


def _record(exc: ContractError, event_type: object, data: dict[str, Any]) -> Event:
    """Keep the violation as an event and hand it on; never raises (the request goes on)."""
    try:
        recorded = contract.violation(exc, event_type, data)
    except Exception as failure:
        contract.lost(failure)
        raise exc from None  # not even a violation event could be made: nothing to return
    try:
        return PIPELINE.process(recorded)
    except Exception as failure:
        contract.lost(failure)
        return recorded.replace(payload={})  # not stored: hand back no payload either


def _layers(payload: Mapping[str, Any] | None, fields: dict[str, Any]) -> dict[str, Any]:
    data = bound_scope()
    layer_span_ids(data)
    data.update(fields)
    if payload is not None:
        data["payload"] = payload
    return data


def _build(event_type: EventType | str, data: dict[str, Any]) -> Event:
    kind = EVENT_TYPES.get(event_type)
    if kind is None:
        raise ContractError(
            "event_type: not a known event type (see logkit.EventType)",
            problems={"event_type": "not a known event type"},
        )
    data["event_type"] = kind
    if "storage_class" not in data and kind in DEFAULT_STORAGE_CLASS:
        data["storage_class"] = DEFAULT_STORAGE_CLASS[kind]
    event = Event.from_dict(data)
    refuse_unencodable(event.payload)  # what no store could write is refused here, by name
    return event


def emit_event(event: Event) -> Event:
    """Hand an already built event (e.g. from a legacy adapter) to the pipeline."""
    refuse_unencodable(event.payload)
    if not PIPELINE.configured:
        _configure_on_first_use()
    return PIPELINE.process(event)


def _configure_on_first_use() -> None:
    # Imported here: configuration (pydantic-settings, sinks) is not paid by `import logkit`.
    from logkit.runtime import ensure_configured

    ensure_configured()
