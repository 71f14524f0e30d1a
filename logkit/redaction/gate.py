"""The one gate every value crosses before it leaves the process.

It fails closed: from import time the gate is every built-in detector (the default redactor is
built on first use, so ``import logkit`` stays cheap). ``logkit.configure()`` replaces it with
the configured policies. Policy ``none`` exists only where dev configured it explicitly (or code
installs it with :func:`set_redactor`, as a test may).

Before configuration the pseudonym key is resolved on the first find, from the same settings
``configure()`` would read: the generated dev key in dev, the configured key elsewhere, and a
RedactionError (never a pass-through) outside dev when there is none.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol, overload

from pydantic import JsonValue

from logkit.context import bound_fields
from logkit.envelope import Event, RedactionReport, StorageClass
from logkit.redaction.identifiers import IDENTIFIER_FIELDS, IdentifierGate, gate_fields


class Redactor(Protocol):
    """Turns a JSON-like value into a copy safe to store, plus a report of what it replaced."""

    policy: str

    @property
    def clean(self) -> RedactionReport:
        """The report for a value in which nothing was found; returned as this very object."""
        ...

    def redact(self, value: Any, *, tenant_id: str | None = None) -> tuple[Any, RedactionReport]:
        """Return the redacted copy of ``value`` and counts by kind (never the values).

        When nothing is found, return ``value`` itself and ``self.clean``: the emit hot path
        then keeps the event as built instead of copying it.
        """
        ...


class PassThroughRedactor:
    """Changes nothing and says so (policy ``none``: dev only, and only when asked for)."""

    policy = "none"

    @functools.cached_property
    def clean(self) -> RedactionReport:
        # Built on first use: creating a report at import would build pydantic's schema then.
        return RedactionReport(policy=self.policy)

    def redact(self, value: Any, *, tenant_id: str | None = None) -> tuple[Any, RedactionReport]:
        return value, self.clean


IdGate = Callable[[str, str | None], str]

_lock = threading.Lock()
_redactor: Redactor | None = None  # None until first use: then the default gate
_ids: IdGate | None = None  # identifiers, through the default redactor's detectors and keys
_tenants: Callable[[str], None] | None = None

# Policies per storage class (e.g. audit keeps what ops hides); other classes use _redactor.
_by_class: dict[StorageClass, Redactor] = {}


def default_redactor() -> Redactor:
    """The gate before configuration: every built-in detector, the key resolved lazily."""
    from logkit.redaction.engine import RegexRedactor
    from logkit.redaction.policy import default_key

    return RegexRedactor(default_key, policy="default")


def _identifier_gate(redactor: Redactor) -> tuple[IdGate, Callable[[str], None] | None]:
    scan = getattr(redactor, "scan", None)
    key_of = getattr(redactor, "tenant_key", None)
    if scan is not None and key_of is not None:
        gate = IdentifierGate(scan, key_of, frozenset(getattr(redactor, "allow", ())))
        return gate, gate.check_tenant
    if redactor.policy == "none":
        return _keep, None

    def through_redact(value: str, tenant_id: str | None) -> str:
        # A custom redactor without detectors of its own: what it changes, it replaces.
        redacted, _ = redactor.redact(value, tenant_id=tenant_id)
        return redacted if isinstance(redacted, str) else value

    return through_redact, None


def _keep(value: str, tenant_id: str | None) -> str:
    return value


def set_redactor(
    redactor: Redactor, *, per_class: Mapping[StorageClass, Redactor] | None = None
) -> Redactor:
    """Install ``redactor`` as the gate (and per-storage-class policies); returns the previous.

    ``redactor`` also serves log lines, exception text, identifiers and outbound calls.
    """
    global _by_class  # noqa: PLW0603 - the gate is process-wide
    with _lock:
        previous = _redactor
        _install_locked(redactor)
        _by_class = dict(per_class or {})
    # The previous gate may be the default not built yet: hand back a fresh default, so that
    # `set_redactor(previous)` restores a fail-closed gate, never nothing.
    return previous if previous is not None else default_redactor()


def reset_redactor() -> None:
    """Back to the default gate of an unconfigured process (built again on first use)."""
    global _redactor, _ids, _tenants, _by_class
    with _lock:
        _redactor, _ids, _tenants, _by_class = None, None, None, {}


def get_redactor() -> Redactor:
    redactor = _redactor
    if redactor is not None:
        return redactor
    built = default_redactor()  # outside the lock; a racing thread's may be installed instead
    with _lock:
        if _redactor is None:
            _install_locked(built)
        return _redactor  # type: ignore[return-value]


def _install_locked(redactor: Redactor) -> None:
    global _redactor, _ids, _tenants  # noqa: PLW0603
    _redactor = redactor
    _ids, _tenants = _identifier_gate(redactor)


def redact_identifier(value: str, *, tenant_id: str | None = None) -> str:
    """What an envelope identifier (user id, request id, ...) is stored as (idempotent)."""
    get_redactor()
    assert _ids is not None
    return _ids(value, tenant_id)


def redact_text(text: str, *, tenant_id: str | None = None) -> str:
    """Redact a log message, exception text or any free string."""
    redacted, _ = get_redactor().redact(text, tenant_id=tenant_id)
    return str(redacted)


def clean_report() -> RedactionReport:
    """What the installed gate reports for a payload with nothing to redact."""
    return get_redactor().clean


# Typed for callers (a string stays a string, a dict comes back as a JSON object): the
# public API hands out no Any.
@overload
def redact(value: str, *, tenant_id: str | None = None) -> tuple[str, RedactionReport]: ...
@overload
def redact(
    value: dict[str, Any], *, tenant_id: str | None = None
) -> tuple[dict[str, JsonValue], RedactionReport]: ...
@overload
def redact(value: object, *, tenant_id: str | None = None) -> tuple[JsonValue, RedactionReport]: ...
def redact(value: Any, *, tenant_id: str | None = None) -> tuple[Any, RedactionReport]:
    """A redacted copy of a string or JSON-like value, and what was found (never the values)."""
    return get_redactor().redact(value, tenant_id=tenant_id)


@overload
def redact_for_call(payload: str, *, tenant_id: str | None = None) -> str: ...
@overload
def redact_for_call(
    payload: dict[str, Any], *, tenant_id: str | None = None
) -> dict[str, JsonValue]: ...
@overload
def redact_for_call(payload: object, *, tenant_id: str | None = None) -> JsonValue: ...
def redact_for_call(payload: Any, *, tenant_id: str | None = None) -> Any:
    """What a service may send to a model or tool provider: ``payload`` through the gate.

    The tenant defaults to the bound one, so pseudonyms match the ones in the stored events.
    """
    tenant = tenant_id if tenant_id is not None else bound_fields().get("tenant_id")
    redacted, _ = get_redactor().redact(payload, tenant_id=tenant)
    return redacted


def redact_event(event: Event) -> Event:
    """The pipeline processor: redact the payload and the identifiers; record what it did."""
    default = _redactor if _redactor is not None else get_redactor()
    redactor = _by_class.get(event.storage_class, default) if _by_class else default
    tenant = event.tenant_id
    if _tenants is not None:
        _tenants(tenant)
    payload, report = redactor.redact(event.payload, tenant_id=tenant)
    changes: dict[str, Any] = _identifier_changes(event, tenant)
    if changes:
        report = _count_identifiers(report, changes.values())
    if payload is not event.payload or report is not redactor.clean:
        changes["payload"] = payload
        changes["redaction"] = report
    else:
        stamped = event.redaction
        if not (stamped is report or (stamped is not None and stamped.policy == report.policy)):
            # Nothing found here; values redacted upstream under this policy (tool/model calls)
            # keep the counts stamped there.
            changes["redaction"] = report
    return event.replace(**changes) if changes else event


_ID_NAMES = tuple(n for n in IDENTIFIER_FIELDS if n != "event_id")


def _identifier_changes(event: Event, tenant: str) -> dict[str, Any]:
    ids = _ids
    if ids is None or ids is _keep:
        return {}
    fields = event.__dict__
    # event_id only when given: one emit generated (a fresh UUIDv7) holds nothing to find.
    names = (*_ID_NAMES, "event_id") if "event_id" in event.__pydantic_fields_set__ else _ID_NAMES
    if isinstance(ids, IdentifierGate):
        cached = ids.changes(fields, tenant, names)
        return {} if cached is None else dict(cached)  # a copy: the caller adds to it
    return gate_fields(ids, fields, tenant, names)


def _count_identifiers(report: RedactionReport, pseudonyms: Any) -> RedactionReport:
    counts = dict(report.counts)
    for value in pseudonyms:
        kind = value[1 : value.index(":")].lower()
        counts[kind] = counts.get(kind, 0) + 1
    return RedactionReport(policy=report.policy, counts=counts)
