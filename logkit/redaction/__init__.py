"""The redaction gate: every payload, log line and outbound call passes through it.

This package holds the gate the rest of logkit calls (``gate``), the detectors and the engine
that replaces what they find with keyed pseudonyms (``detectors``, ``engine``, ``pseudonym``),
and sealed raw payloads (``sealing``). ``logkit.configure()`` installs the engine with the
configured policies; before that the gate passes values through and stamps the policy
``"none"``, so a report never claims a redaction that did not happen.
"""

from __future__ import annotations

from logkit.redaction.gate import (
    PassThroughRedactor,
    Redactor,
    clean_report,
    get_redactor,
    redact,
    redact_event,
    redact_for_call,
    redact_text,
    set_redactor,
)

__all__ = [
    "PassThroughRedactor",
    "Redactor",
    "clean_report",
    "get_redactor",
    "redact",
    "redact_event",
    "redact_for_call",
    "redact_text",
    "set_redactor",
]
