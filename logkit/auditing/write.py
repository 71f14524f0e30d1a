"""``logkit.audit(...)``: append an audit event to its chain, synchronously."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from logkit.emit import build_event
from logkit.envelope import Event, EventType, StorageClass
from logkit.errors import SinkUnavailable
from logkit.pipeline import PIPELINE
from logkit.redaction import clean_report
from logkit.runtime import current
from logkit.sinks.protocols import AuditStore, Role


def audit(
    action: str,
    payload: Mapping[str, Any] | None = None,
    *,
    strict: bool | None = None,
    **fields: Any,
) -> Event:
    """Append an ``audit_action`` event to the chain of its (tenant, run) and return it chained.

    The event passes the redaction gate, is placed at the head of its chain by the audit store
    (compare-and-append: concurrent writers never fork a chain), and is copied to the timeline.
    If the store cannot be reached: with ``strict`` (default: ``audit.strict`` in config) the
    SinkUnavailable propagates; otherwise the event is spooled and chained when the store is
    back, and the unchained event is returned.
    """
    runtime = current()
    fields.setdefault("redaction", clean_report())
    fields["storage_class"] = StorageClass.AUDIT
    event = PIPELINE.redact(
        build_event(EventType.AUDIT_ACTION, {"action": action, **(payload or {})}, **fields)
    )
    store = runtime.stores[Role.AUDIT]
    if not isinstance(store, AuditStore):
        raise TypeError(f"the audit role's store {type(store).__name__} cannot chain")
    try:
        (chained,) = store.append([event])
    except SinkUnavailable:
        if runtime.settings.audit.strict if strict is None else strict:
            raise
        runtime.dispatchers[Role.AUDIT].submit(event)  # spooled, chained on replay
        chained = event
    runtime.dispatchers[Role.TIMELINE].submit(chained)
    PIPELINE.observe(chained, skip=runtime.router)
    return chained
