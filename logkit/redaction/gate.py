"""The one gate every value crosses before it leaves the process."""

from __future__ import annotations

import functools
from typing import Any, Protocol

from logkit.envelope import Event, RedactionReport


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


def set_redactor(redactor: Redactor) -> Redactor:
    """Install ``redactor`` as the gate; returns the previous one (handy in tests)."""
    global _redactor
    previous, _redactor = _redactor, redactor
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


def redact_event(event: Event) -> Event:
    """The pipeline processor: redact the payload and record what the gate did."""
    payload, report = _redactor.redact(event.payload, tenant_id=event.tenant_id)
    if payload is event.payload and report is event.redaction:
        return event  # nothing found, and emit already stamped the clean report
    return event.replace(payload=payload, redaction=report)
