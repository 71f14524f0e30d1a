"""The redaction gate: every payload, identifier, log line and outbound call passes through it.

This package holds the gate the rest of logkit calls (``gate``), the detectors and the engine
that replaces what they find with keyed pseudonyms (``detectors``, ``engine``, ``pseudonym``),
envelope identifiers (``identifiers``), keyless masking for error messages and fallback log
lines (``masking``), and sealed raw payloads (``sealing``). The gate fails closed: it is the
default detectors from import time, and ``logkit.configure()`` installs the configured policies.
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
    redact_identifier,
    redact_text,
    reset_redactor,
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
    "redact_identifier",
    "redact_text",
    "reset_redactor",
    "set_redactor",
]
