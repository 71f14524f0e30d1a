"""``logkit.audit(...)``: append an audit event to its chain, synchronously.

When ``audit()`` returns, the record is chained, or it is committed to the local spool (to be
chained when the store answers again). Otherwise it raises: AuditUnavailable when neither the
store nor the spool could keep it, ContractError when the event itself is invalid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from logkit.chain import canonical
from logkit.emit import build_event
from logkit.envelope import Event, EventType, StorageClass
from logkit.errors import AuditUnavailable, ConfigError, SinkUnavailable
from logkit.pipeline import PIPELINE
from logkit.redaction import clean_report
from logkit.runtime import Runtime, current
from logkit.sinks.protocols import AuditStore, Role

# Scope of the records logkit's own privacy operations append (dsar_*, retention_applied):
# they are logkit's actions on a tenant, not events of one of the tenant's apps.
OPERATOR_SCOPE: dict[str, Any] = {
    "project_id": "logkit",
    "surface_id": "privacy",
    "app_id": "logkit",
    "actor_type": "system",
}


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
    A store that does not answer (unreachable, a locked SQLite file) is retried for up to
    ``audit.append_timeout_s``. Then, with ``strict`` (default: ``audit.strict``) it raises
    AuditUnavailable; otherwise the event is committed to the local spool before this returns
    (it is chained when the store is back) and the unchained event is returned, or, if the
    spool cannot take it either, AuditUnavailable is raised: never a silent in-memory copy.
    An invalid payload raises ContractError naming the field.
    """
    runtime = current()
    fields.setdefault("redaction", clean_report())
    fields["storage_class"] = StorageClass.AUDIT
    event = PIPELINE.redact(
        build_event(EventType.AUDIT_ACTION, {"action": action, **(payload or {})}, **fields)
    )
    canonical(event.payload)  # refused now (ContractError), not when a replay chains it
    try:
        chained = _chain_within(runtime, event)
    except SinkUnavailable as exc:
        if runtime.settings.audit.strict if strict is None else strict:
            raise AuditUnavailable(
                f"audit record not chained ({exc}); strict: nothing was kept"
            ) from exc
        _spool(runtime, event, exc)
        chained = event
    _copy_to_timeline(runtime, chained)
    return chained


def _chain_within(runtime: Runtime, event: Event) -> Event:
    """Chain ``event``, retrying an unavailable store with backoff within the configured bound."""
    retrying = Retrying(
        retry=retry_if_exception_type(SinkUnavailable),
        stop=stop_after_delay(runtime.settings.audit.append_timeout_s),
        wait=wait_exponential(multiplier=0.01, max=0.25),
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            return _chain(runtime, event)
    raise AssertionError("unreachable")  # pragma: no cover - reraise=True


def _spool(runtime: Runtime, event: Event, cause: SinkUnavailable) -> None:
    """Commit the unchained event to the spool now: it is chained on replay, in order."""
    try:
        runtime.dispatchers[Role.AUDIT].spool_now([event])
    except SinkUnavailable as exc:
        raise AuditUnavailable(
            f"audit record neither chained ({cause}) nor spooled ({exc}): nothing was kept"
        ) from exc


def record_operation(
    runtime: Runtime,
    event_type: EventType,
    tenant_id: str,
    payload: Mapping[str, Any],
    **scope: Any,
) -> Event:
    """Chain the record of a privacy operation (``dsar_export``, ``dsar_erasure``,
    ``retention_applied``) on the tenant's chain, strictly: if it cannot be chained the error
    propagates, since an erasure nobody can prove is worse than a command that fails.

    ``payload`` holds counts and ids, never values. The record names no user and no run (a
    request's bound context must not file it under the subject's data, where the next erasure
    would erase it); ``scope`` may replace OPERATOR_SCOPE's project, surface and app.
    """
    fields = {**OPERATOR_SCOPE, **scope, "env": runtime.settings.env, "tenant_id": tenant_id}
    fields.update(run_id=None, step_id=None, parent_step_id=None, user_id=None)
    fields.update(storage_class=StorageClass.AUDIT, redaction=clean_report())
    event = PIPELINE.redact(build_event(event_type, payload, **fields))
    chained = _chain(runtime, event)
    _copy_to_timeline(runtime, chained)
    return chained


def _chain(runtime: Runtime, event: Event) -> Event:
    store = runtime.stores[Role.AUDIT]
    if not isinstance(store, AuditStore):
        raise ConfigError(f"the audit role's store {type(store).__name__} cannot chain")
    (chained,) = store.append([event])
    return chained


def _copy_to_timeline(runtime: Runtime, chained: Event) -> None:
    runtime.dispatchers[Role.TIMELINE].submit(chained)
    PIPELINE.observe(chained, skip=runtime.router)
