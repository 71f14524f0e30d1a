"""The one gate every value crosses before it leaves the process."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Protocol

from logkit.context import bound_fields
from logkit.envelope import Event, RedactionReport, StorageClass


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
    """Changes nothing and says so (policy ``none``)."""

    policy = "none"

    @functools.cached_property
    def clean(self) -> RedactionReport:
        # Built on first use: creating a report at import would build pydantic's schema then.
        return RedactionReport(policy=self.policy)

    def redact(self, value: Any, *, tenant_id: str | None = None) -> tuple[Any, RedactionReport]:
        return value, self.clean


_redactor: Redactor = PassThroughRedactor()


# Policies per storage class (e.g. audit keeps what ops hides); other classes use _redactor.
_by_class: dict[StorageClass, Redactor] = {}


def set_redactor(
    redactor: Redactor, *, per_class: Mapping[StorageClass, Redactor] | None = None
) -> Redactor:
    """Install ``redactor`` as the gate (and per-storage-class policies); returns the previous.

    ``redactor`` also serves log lines, exception text and outbound calls.
    """
    global _redactor, _by_class  # noqa: PLW0603 - the gate is process-wide by design
    previous, _redactor = _redactor, redactor
    _by_class = dict(per_class or {})
    return previous


def get_redactor() -> Redactor:
    return _redactor


def redact_text(text: str, *, tenant_id: str | None = None) -> str:
    """Redact a log message, exception text or any free string."""
    redacted, _ = _redactor.redact(text, tenant_id=tenant_id)
    return str(redacted)


def clean_report() -> RedactionReport:
    """What the installed gate reports for a payload with nothing to redact."""
    return _redactor.clean


def redact(value: Any, *, tenant_id: str | None = None) -> tuple[Any, RedactionReport]:
    """A redacted copy of a string or JSON-like value, and what was found (never the values)."""
    return _redactor.redact(value, tenant_id=tenant_id)


def redact_for_call(payload: Any, *, tenant_id: str | None = None) -> Any:
    """What a service may send to a model or tool provider: ``payload`` through the gate.

    The tenant defaults to the bound one, so pseudonyms match the ones in the stored events.
    """
    tenant = tenant_id if tenant_id is not None else bound_fields().get("tenant_id")
    redacted, _ = _redactor.redact(payload, tenant_id=tenant)
    return redacted


def redact_event(event: Event) -> Event:
    """The pipeline processor: redact the payload and record what the gate did."""
    redactor = _by_class.get(event.storage_class, _redactor) if _by_class else _redactor
    payload, report = redactor.redact(event.payload, tenant_id=event.tenant_id)
    if payload is event.payload and report is redactor.clean:
        stamped = event.redaction
        if stamped is report or (stamped is not None and stamped.policy == report.policy):
            # Nothing found: emit already stamped the clean report, or the values were
            # redacted upstream under this policy (tool/model calls) and the counts are theirs.
            return event
    return event.replace(payload=payload, redaction=report)
