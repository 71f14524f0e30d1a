"""The redaction gate: every payload, log line and outbound call passes through it.

This package holds the hook the rest of logkit calls. The installed :class:`Redactor` decides
what is replaced; until one with detectors is installed the gate passes values through and
stamps the policy ``"none"`` on each event, so a report never claims redaction that did not happen.
"""

from __future__ import annotations

from logkit.redaction.gate import (
    PassThroughRedactor,
    Redactor,
    clean_report,
    get_redactor,
    redact_event,
    redact_text,
    set_redactor,
)

__all__ = [
    "PassThroughRedactor",
    "Redactor",
    "clean_report",
    "get_redactor",
    "redact_event",
    "redact_text",
    "set_redactor",
]
