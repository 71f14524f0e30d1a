"""The one exception tree of logkit.

::

    LogkitError
    ├── ContractError (also ValueError)   an event breaks the envelope contract
    ├── ConfigError                        configuration is missing or invalid
    ├── SinkError                          a store could not do what was asked
    │   ├── SinkUnavailable                the backend cannot be reached
    │   │   └── AuditUnavailable           logkit.audit() could neither chain nor spool
    │   └── SinkWriteError                 the backend refused or failed a write
    ├── AuditChainError                    an audit chain is broken or cannot be appended
    ├── RedactionError                     the redaction gate could not process a value
    └── RequestRefusedError                a DSAR or retention request was refused, unchanged

Backend and driver exceptions are mapped onto this tree at the boundary (``raise ... from exc``),
so callers and CLI users never see a raw driver traceback.

Messages name fields, never values; as a backstop every message is masked when the error is
made: anything a detector finds in it (an email, a card, a key in a URI...) is replaced by its
kind (``[EMAIL]``). IP addresses are kept: in logkit's own errors they are the addresses of
backends, which an operator needs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

_KEEP_KINDS = frozenset({"ipv4", "ipv6"})
_masking = threading.local()


def masked(text: str) -> str:
    """``text`` with what the detectors find replaced by its kind (never raises)."""
    if getattr(_masking, "active", False):
        return text  # an error made while masking: its text is logkit's own
    _masking.active = True
    try:
        from logkit.redaction.masking import mask_text

        return mask_text(text, keep=_KEEP_KINDS)
    finally:
        _masking.active = False


class LogkitError(Exception):
    """Base class of every error logkit raises on purpose."""

    def __init__(self, *args: object) -> None:
        if args and isinstance(args[0], str):
            args = (masked(args[0]), *args[1:])
        super().__init__(*args)


class ContractError(LogkitError, ValueError):
    """An event does not satisfy the envelope contract.

    ``missing`` names every required field that was absent; ``problems`` maps other
    invalid fields to a short reason. Messages never echo field values: a value that
    failed validation may be exactly the raw data the redaction gate exists to stop.
    """

    def __init__(
        self,
        message: str,
        *,
        missing: Iterable[str] = (),
        problems: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.missing: tuple[str, ...] = tuple(masked(m) for m in missing)
        self.problems: dict[str, str] = {masked(k): masked(v) for k, v in (problems or {}).items()}


class ConfigError(LogkitError):
    """Configuration is missing, unreadable or inconsistent."""


class SinkError(LogkitError):
    """A store could not do what was asked."""


class SinkUnavailable(SinkError):  # noqa: N818 - the name the design's error tree uses
    """The backend cannot be reached (network, credentials, emulator down)."""


class AuditUnavailable(SinkUnavailable):
    """``logkit.audit()`` could neither chain the record nor durably spool it: nothing was kept.

    A SinkUnavailable, so code that already handles an unreachable audit store handles it.
    """


class SinkWriteError(SinkError):
    """The backend was reached but refused or failed the write."""


class AuditChainError(LogkitError):
    """An audit chain is broken, forked, or cannot be appended to."""


class RedactionError(LogkitError):
    """The redaction gate could not process a value; nothing raw is let through."""


class RequestRefusedError(LogkitError):
    """A DSAR or retention request was refused before anything changed (a legal hold, events
    still on their way to a store); the message says why and what to do."""
