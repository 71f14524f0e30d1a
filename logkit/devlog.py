"""Structured developer logs for stdlib ``logging``, in Google Cloud Logging's field names.

One JSON object per line. Messages, exception text and extra fields pass the redaction gate.
A record logged with an exception (``logger.exception``) also emits a canonical ``error``
event, and the line carries that event's ``event_id``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import traceback
from typing import IO, Any

from logkit.context import current_scope
from logkit.emit import emit
from logkit.envelope import EventType, Severity
from logkit.errors import ContractError
from logkit.redaction import get_redactor, redact_text

TRACE_KEY = "logging.googleapis.com/trace"
SPAN_KEY = "logging.googleapis.com/spanId"
SOURCE_KEY = "logging.googleapis.com/sourceLocation"
LABELS_KEY = "logging.googleapis.com/labels"

# Scope fields copied onto every line when bound.
LINE_SCOPE_FIELDS = (
    "tenant_id",
    "env",
    "project_id",
    "surface_id",
    "app_id",
    "request_id",
    "run_id",
    "step_id",
)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_EVENT_ATTR = "logkit_event_id"

_SEVERITY_BY_LEVEL = {
    logging.DEBUG: Severity.DEBUG,
    logging.INFO: Severity.INFO,
    logging.WARNING: Severity.WARNING,
    logging.ERROR: Severity.ERROR,
    logging.CRITICAL: Severity.CRITICAL,
}


def severity_of(levelno: int) -> Severity:
    """Map a stdlib level (custom ones included) to the nearest canonical severity at or below."""
    best = Severity.DEBUG
    for level, severity in _SEVERITY_BY_LEVEL.items():
        if levelno >= level:
            best = severity
    return best


class JsonFormatter(logging.Formatter):
    """Format records as one JSON object per line for Cloud Logging (structured logging).

    ``gcp_project`` (else ``GOOGLE_CLOUD_PROJECT``) turns a trace id into the resource name
    Cloud Logging correlates on; without a project the id is kept as plain ``trace_id``.
    """

    def __init__(self, *, gcp_project: str | None = None, emit_error_events: bool = True) -> None:
        super().__init__()
        self.gcp_project = gcp_project or os.environ.get("GOOGLE_CLOUD_PROJECT") or None
        self.emit_error_events = emit_error_events

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.to_dict(record), ensure_ascii=False, default=str)

    def to_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        scope = current_scope()
        tenant = scope.get("tenant_id")
        message = redact_text(record.getMessage(), tenant_id=tenant)
        if record.exc_info:
            stack = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            message = f"{message}\n{redact_text(stack, tenant_id=tenant)}"
        line: dict[str, Any] = {
            "severity": severity_of(record.levelno).name,
            "message": message,
            "time": _rfc3339(record.created),
            SOURCE_KEY: {
                "file": record.pathname,
                "line": str(record.lineno),
                "function": record.funcName,
            },
            LABELS_KEY: {"logger": record.name},
        }
        self._add_trace(line, scope)
        line.update({name: scope[name] for name in LINE_SCOPE_FIELDS if name in scope})
        extra = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}
        extra.pop(_EVENT_ATTR, None)
        if extra:
            redacted, _ = get_redactor().redact(_jsonable(extra), tenant_id=tenant)
            line.update({k: v for k, v in redacted.items() if k not in line})
        if self.emit_error_events and record.exc_info and record.levelno >= logging.ERROR:
            line.update(self._error_event(record, message))
        return line

    def _add_trace(self, line: dict[str, Any], scope: dict[str, Any]) -> None:
        trace_id = scope.get("trace_id")
        if not trace_id:
            return  # no trace, no trace field at all
        if self.gcp_project:
            line[TRACE_KEY] = f"projects/{self.gcp_project}/traces/{trace_id}"
        else:
            line["trace_id"] = trace_id
        if scope.get("span_id"):
            line[SPAN_KEY] = scope["span_id"]

    def _error_event(self, record: logging.LogRecord, message: str) -> dict[str, Any]:
        """Emit the canonical error event once per record, whatever the number of handlers."""
        event_id = getattr(record, _EVENT_ATTR, None)
        if event_id is None:
            exc_type = record.exc_info[0] if record.exc_info else None
            try:
                event = emit(
                    EventType.ERROR,
                    {
                        "logger": record.name,
                        "message": message,
                        "exception_type": exc_type.__qualname__ if exc_type else None,
                        "source": {
                            "file": record.pathname,
                            "line": record.lineno,
                            "function": record.funcName,
                        },
                    },
                    severity=severity_of(record.levelno),
                )
            except ContractError as exc:
                # A log line must never raise; say plainly why no event exists.
                return {"logkit_event_error": str(exc)}
            event_id = event.event_id
            setattr(record, _EVENT_ATTR, event_id)
        return {"event_id": event_id}


def configure_logging(
    level: int | str = logging.INFO,
    *,
    stream: IO[str] | None = None,
    gcp_project: str | None = None,
    logger: logging.Logger | None = None,
) -> logging.Handler:
    """One line set-up: JSON lines on ``stream`` (stdout) for ``logger`` (the root logger).

    Replaces handlers a previous call installed, so calling it twice does not double lines.
    """
    target = logger or logging.getLogger()
    for handler in list(target.handlers):
        if getattr(handler, "_logkit", False):
            target.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(gcp_project=gcp_project))
    handler._logkit = True  # type: ignore[attr-defined]
    target.addHandler(handler)
    target.setLevel(level)
    return handler


def _rfc3339(created: float) -> str:
    return (
        dt.datetime.fromtimestamp(created, dt.UTC)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy of ``extra`` values (unknown objects become their ``str``)."""
    return json.loads(json.dumps(value, default=str))
