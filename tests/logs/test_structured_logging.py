"""Developer logs: JSON lines in Cloud Logging's field names, redacted, with error events."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

import logkit
from logkit import EventType, JsonFormatter, RedactionReport, Severity
from logkit.devlog import LABELS_KEY, SOURCE_KEY, SPAN_KEY, TRACE_KEY, severity_of
from logkit.redaction import set_redactor
from logkit.testing import capture_events
from tests.conftest import SCOPE
from tests.redactors import WordRedactor

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    stream = io.StringIO()
    logger = logging.getLogger(f"test.devlog.{id(stream)}")
    logger.propagate = False
    logkit.configure_logging(logging.DEBUG, stream=stream, logger=logger, gcp_project="my-proj")
    yield logger, stream
    logger.handlers.clear()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_line_with_cloud_logging_fields(log: Any) -> None:
    logger, stream = log
    logger.info("hello %s", "world")
    logger.warning("careful")
    first, second = lines(stream)
    assert first["severity"] == "INFO" and first["message"] == "hello world"
    assert second["severity"] == "WARNING"
    ts = dt.datetime.fromisoformat(first["time"].replace("Z", "+00:00"))
    assert ts.tzinfo is not None and first["time"].endswith("Z")
    assert (
        first[SOURCE_KEY]["function"] == "test_one_json_object_per_line_with_cloud_logging_fields"
    )
    assert first[SOURCE_KEY]["file"].endswith("test_structured_logging.py")
    assert int(first[SOURCE_KEY]["line"]) > 0
    assert first[LABELS_KEY] == {"logger": logger.name}


def test_no_trace_field_at_all_without_a_trace(log: Any) -> None:
    logger, stream = log
    with logkit.bind(**SCOPE):
        logger.info("no trace here")
    (line,) = lines(stream)
    assert not any("trace" in key or "spanId" in key for key in line)


def test_trace_and_span_in_cloud_logging_format(log: Any) -> None:
    logger, stream = log
    with logkit.bind(
        **SCOPE, trace_id=TRACE, span_id=SPAN, request_id="r1", run_id="run_1", step_id="s1"
    ):
        logger.info("traced")
    (line,) = lines(stream)
    assert line[TRACE_KEY] == f"projects/my-proj/traces/{TRACE}"
    assert line[SPAN_KEY] == SPAN
    for name in ("tenant_id", "env", "project_id", "surface_id", "app_id"):
        assert line[name] == SCOPE[name]
    assert (line["request_id"], line["run_id"], line["step_id"]) == ("r1", "run_1", "s1")


def test_gcp_project_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-proj")
    record = logging.makeLogRecord({"msg": "x", "levelno": logging.INFO, "levelname": "INFO"})
    with logkit.bind(trace_id=TRACE):
        line = JsonFormatter().to_dict(record)
    assert line[TRACE_KEY] == f"projects/env-proj/traces/{TRACE}"


def test_without_a_project_the_trace_id_is_kept_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    record = logging.makeLogRecord({"msg": "x", "levelno": logging.INFO})
    with logkit.bind(trace_id=TRACE):
        line = JsonFormatter().to_dict(record)
    assert TRACE_KEY not in line and line["trace_id"] == TRACE


def test_otel_span_feeds_the_trace_fields(log: Any) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    logger, stream = log
    with TracerProvider().get_tracer("t").start_as_current_span("op") as span:
        logger.info("inside a span")
        ctx = span.get_span_context()
    (line,) = lines(stream)
    assert line[TRACE_KEY].endswith(format(ctx.trace_id, "032x"))
    assert line[SPAN_KEY] == format(ctx.span_id, "016x")


def test_extra_fields_are_kept_and_json_safe(log: Any) -> None:
    logger, stream = log
    logger.info("with extras", extra={"order_id": 1042, "when": dt.date(2026, 1, 1)})
    (line,) = lines(stream)
    assert line["order_id"] == 1042 and line["when"] == "2026-01-01"


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (logging.DEBUG, "DEBUG"),
        (logging.INFO, "INFO"),
        (25, "INFO"),
        (logging.WARNING, "WARNING"),
        (logging.ERROR, "ERROR"),
        (logging.CRITICAL, "CRITICAL"),
        (5, "DEBUG"),
    ],
)
def test_levels_map_to_cloud_logging_severities(level: int, expected: str) -> None:
    assert severity_of(level).name == expected


def test_exception_emits_one_error_event_and_the_line_carries_its_id(log: Any) -> None:
    logger, stream = log
    second = io.StringIO()
    logkit.configure_logging(stream=second, logger=logging.getLogger("unrelated.x"))
    extra_handler = logging.StreamHandler(second)
    extra_handler.setFormatter(JsonFormatter())
    logger.addHandler(extra_handler)  # two handlers, still one event
    with capture_events() as events, logkit.bind(**SCOPE, run_id="run_9"):
        try:
            {}["missing"]
        except KeyError:
            logger.exception("lookup failed")
    (event,) = events
    (line,) = lines(stream)
    (other,) = lines(second)
    assert event.event_type is EventType.ERROR and event.severity is Severity.ERROR
    assert event.run_id == "run_9" and event.payload["exception_type"] == "KeyError"
    assert line["event_id"] == other["event_id"] == event.event_id
    assert line["severity"] == "ERROR" and "Traceback" in line["message"]
    assert "KeyError" in line["message"]


def test_exception_without_scope_logs_and_says_why_no_event(log: Any) -> None:
    logger, stream = log
    with capture_events() as events:
        try:
            raise ValueError("bad")
        except ValueError:
            logger.exception("no scope bound")
    (line,) = lines(stream)
    assert events == [] and "event_id" not in line
    assert "tenant_id" in line["logkit_event_error"]


def test_messages_stack_and_extras_pass_the_redaction_hook(log: Any) -> None:
    logger, stream = log
    set_redactor(WordRedactor())
    with capture_events() as events, logkit.bind(**SCOPE):
        logger.info("password is hunter2", extra={"note": "again hunter2"})
        try:
            raise RuntimeError("leaked hunter2 in an exception")
        except RuntimeError:
            logger.exception("failure with hunter2")
    text = stream.getvalue()
    assert "hunter2" not in text and text.count("[SECRET:1]") >= 4
    (event,) = events
    assert "hunter2" not in event.model_dump_json()
    # The formatter redacted the message and stack before emitting; the gate stamped its policy.
    assert event.redaction is not None and event.redaction.policy == "test-words"


def test_emitted_payloads_pass_the_gate_with_a_report() -> None:
    set_redactor(WordRedactor())
    with capture_events() as events:
        returned = logkit.emit("message", {"text": "pw hunter2", "nested": ["hunter2"]}, **SCOPE)
    (event,) = events
    assert event is returned and "hunter2" not in event.model_dump_json()
    assert event.redaction == RedactionReport(policy="test-words", counts={"secret": 2})


def test_configure_logging_twice_does_not_double_lines() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test.devlog.twice")
    logger.propagate = False
    logkit.configure_logging(stream=stream, logger=logger)
    logkit.configure_logging(stream=stream, logger=logger)
    logger.info("once")
    assert len(lines(stream)) == 1
    logger.handlers.clear()
