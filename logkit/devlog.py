"""Structured developer logs for stdlib ``logging``, in Google Cloud Logging's field names.

One JSON object per line. Messages, exception text, extra fields, identifiers and the logger
name pass the redaction gate. A record logged with an exception (``logger.exception``) also
emits a canonical ``error`` event, and the line carries that event's ``event_id``.

The formatter never raises and never prints raw: a record it cannot format (a format string
missing an argument, an ``extra`` that is circular or a thousand levels deep, a gate without a
key) still becomes one JSON line, its text masked by kind without a key (``[EMAIL]``), and the
handler never hands a record back to ``logging``'s own error printer, which would print it raw.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import sys
import traceback
from typing import IO, Any

from logkit.context import current_scope
from logkit.emit import emit
from logkit.envelope import REQUIRED_SCOPE, EventType, Severity
from logkit.errors import masked
from logkit.redaction import get_redactor, redact_identifier, redact_text
from logkit.redaction.masking import mask_text

TRACE_KEY = "logging.googleapis.com/trace"
SPAN_KEY = "logging.googleapis.com/spanId"
SOURCE_KEY = "logging.googleapis.com/sourceLocation"
LABELS_KEY = "logging.googleapis.com/labels"

# Scope fields copied onto every line when bound.
LINE_SCOPE_FIELDS = (*REQUIRED_SCOPE, "request_id", "run_id", "step_id")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_EVENT_ATTR = "logkit_event_id"
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")
MAX_EXTRA_DEPTH = 32  # deeper `extra` values are cut with a marker (they are log lines)

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
        try:
            return _dumps(self.to_dict(record))
        except Exception as exc:  # a log line never raises, and never goes raw
            return fallback_line(record, exc)

    def to_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        scope = current_scope()
        tenant = scope.get("tenant_id")
        message = redact_text(_message(record), tenant_id=tenant)
        if record.exc_info:
            message = f"{message}\n{redact_text(_stack(record), tenant_id=tenant)}"
        if record.stack_info:
            message = f"{message}\n{redact_text(record.stack_info, tenant_id=tenant)}"
        line: dict[str, Any] = {
            "severity": severity_of(record.levelno).name,
            "message": message,
            "time": _rfc3339(record.created),
            SOURCE_KEY: {
                "file": record.pathname,
                "line": str(record.lineno),
                "function": record.funcName,
            },
            LABELS_KEY: {"logger": redact_text(record.name, tenant_id=tenant)},
        }
        self._add_trace(line, scope)
        line.update(_scope_fields(scope, tenant))
        extra = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}
        extra.pop(_EVENT_ATTR, None)
        if extra:
            redacted, _ = get_redactor().redact(jsonable(extra), tenant_id=tenant)
            line.update({k: v for k, v in redacted.items() if k not in line})
        if self.emit_error_events and record.exc_info and record.levelno >= logging.ERROR:
            line.update(self._error_event(record, message))
        return line

    def _add_trace(self, line: dict[str, Any], scope: dict[str, Any]) -> None:
        trace_id = scope.get("trace_id")
        if not isinstance(trace_id, str) or not _TRACE_ID.fullmatch(trace_id):
            return  # no (valid) trace, no trace field at all
        if self.gcp_project:
            line[TRACE_KEY] = f"projects/{self.gcp_project}/traces/{trace_id}"
        else:
            line["trace_id"] = trace_id
        span_id = scope.get("span_id")
        if isinstance(span_id, str) and _SPAN_ID.fullmatch(span_id):
            line[SPAN_KEY] = span_id

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
            except Exception as exc:  # a log line must never raise
                # Say plainly why no event exists (logkit's errors name fields, never values).
                return {"logkit_event_error": masked(str(exc))}
            event_id = event.event_id
            setattr(record, _EVENT_ATTR, event_id)
        return {"event_id": event_id}


def _scope_fields(scope: dict[str, Any], tenant: str | None) -> dict[str, Any]:
    """The bound scope as stored events carry it: identifiers through the gate."""
    out: dict[str, Any] = {}
    for name in LINE_SCOPE_FIELDS:
        value = scope.get(name)
        if value is None:
            continue
        if name == "env":
            out[name] = str(value)
        elif name == "tenant_id":
            out[name] = redact_identifier(str(value), tenant_id=None)
        else:
            out[name] = redact_identifier(str(value), tenant_id=tenant)
    return out


def _message(record: logging.LogRecord) -> str:
    try:
        return str(record.getMessage())
    except Exception:  # e.g. "%s %s" with one argument: keep both, unformatted
        return f"{_safe_str(record.msg)} [unformatted, args: {_safe_repr(record.args)}]"


def _stack(record: logging.LogRecord) -> str:
    assert record.exc_info is not None
    try:
        return "".join(traceback.format_exception(*record.exc_info)).rstrip()
    except Exception:  # an exception whose __str__ fails
        exc_type = record.exc_info[0]
        return f"{exc_type.__qualname__ if exc_type else 'exception'} (unprintable)"


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def fallback_line(record: logging.LogRecord, error: BaseException) -> str:
    """The line for a record the formatter could not format: masked by kind, never raw."""
    text = _message(record)
    line = {
        "severity": severity_of(getattr(record, "levelno", logging.ERROR)).name,
        "message": mask_text(text),
        "time": _rfc3339(getattr(record, "created", 0.0)),
        LABELS_KEY: {"logger": mask_text(_safe_str(getattr(record, "name", "")))},
        "logkit_format_error": type(error).__name__,
    }
    return json.dumps(line, ensure_ascii=True)


def _dumps(line: dict[str, Any]) -> str:
    text = json.dumps(line, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: escaped, so any stream can take the line
        return json.dumps(line, ensure_ascii=True)
    return text


def jsonable(value: Any, _depth: int = 0, _seen: frozenset[int] = frozenset()) -> Any:
    """A JSON-safe copy of ``extra`` values: unknown objects become their ``str``; cycles and
    nesting deeper than MAX_EXTRA_DEPTH become markers instead of errors."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if _depth >= MAX_EXTRA_DEPTH:
        return "[nested too deep]"
    if id(value) in _seen:
        return "[circular]"
    seen = _seen | {id(value)}
    if isinstance(value, dict):
        return {_safe_str(k): jsonable(v, _depth + 1, seen) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, _depth + 1, seen) for v in value]
    return _safe_str(value)


class GatedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that never hands a failed record to ``logging``'s error printer.

    ``Handler.handleError`` prints the record's message and arguments, raw, to stderr. Here a
    failure to write says only that a line was lost, and why (the exception's type).
    """

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        exc_type = sys.exc_info()[0]
        note = {
            "severity": "ERROR",
            "message": "logkit: a log line could not be written",
            "logkit_handler_error": exc_type.__name__ if exc_type else "unknown",
        }
        with contextlib.suppress(Exception):  # nowhere left to report to
            sys.stderr.write(json.dumps(note) + "\n")


def configure_logging(
    level: int | str = logging.INFO,
    *,
    stream: IO[str] | None = None,
    gcp_project: str | None = None,
    logger: logging.Logger | None = None,
    capture_libraries: bool = True,
) -> logging.Handler:
    """One line set-up: JSON lines on ``stream`` (stdout) for ``logger`` (the root logger).

    Replaces handlers a previous call installed, so calling it twice does not double lines.
    On the root logger (and with ``capture_libraries``) libraries' own console handlers, such
    as uvicorn's access log, are removed so their records reach this formatter too, and
    uvicorn's default logging config is pointed here for servers started later.
    """
    target = logger or logging.getLogger()
    for handler in list(target.handlers):
        if getattr(handler, "_logkit", False):
            target.removeHandler(handler)
    handler = GatedStreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(gcp_project=gcp_project))
    handler._logkit = True  # type: ignore[attr-defined]
    target.addHandler(handler)
    target.setLevel(level)
    if capture_libraries and target is logging.getLogger():
        from logkit.logrouting import route_library_loggers

        route_library_loggers()
    return handler


def _rfc3339(created: float) -> str:
    return (
        dt.datetime.fromtimestamp(created, dt.UTC)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )
