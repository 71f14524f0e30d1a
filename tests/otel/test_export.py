"""The OTLP exporter against a loopback OTLP/HTTP receiver: logs, headers, redaction, outages.

(Traces into a real backend, read back, are in test_phoenix.py.)
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import logkit
from logkit.cli.main import app as cli
from logkit.config import ExportConfig
from logkit.envelope import Event
from logkit.export.convert import Converter
from logkit.export.otlp import OtlpExporter, make_resource
from tests.conftest import SCOPE, memory_sinks
from tests.otel.receiver import Receiver, attributes, value_of
from tests.servers import free_port, serve

EMAIL = "maria.gonzalez@example.org"
runner = CliRunner()


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()
    with serve(rec.app) as url:
        yield rec, url
    rec.gate.set()


def export_to(configured: Any, url: str, **export: Any) -> Any:
    return configured(
        env="dev",
        sinks={"timeline": "memory://", "audit": "memory://", "cost": "memory://"},
        export={"otlp": url, **export},
    )


def emit_numbered(n: int) -> None:
    """``n`` message events in the test scope, the i-th with payload ``{"i": i}``."""
    with logkit.bind(**SCOPE):
        for i in range(n):
            logkit.emit("message", {"i": i})


def test_events_as_log_records_and_spans_with_env_headers(
    receiver: tuple[Receiver, str],
    configured: Any,
    gate: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec, url = receiver
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k-123,x-scope=team%20a")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    runtime = export_to(
        configured,
        url,
        signals=["traces", "logs"],
        resource={"deployment.environment": "test"},
    )
    assert runtime.exporter is not None
    with logkit.bind(**SCOPE), logkit.flow("f"):
        logkit.emit("message", {"text": f"write to {EMAIL}", "n": 1}, severity="warning")
        with logkit.tool_call("crm", input={"email": EMAIL}):
            pass
        logkit.emit("message", {"live": True}, storage_class="stream")  # live only: not sent
    assert logkit.flush(20)
    # every stored event is one log record, with its span's ids
    names = [r.event_name for r in rec.logs]
    assert names == [
        "flow_started",
        "message",
        "tool_call_started",
        "tool_call_ended",
        "flow_ended",
    ]
    message = rec.logs[1]
    assert value_of(message.body)["text"].startswith("write to [EMAIL:")
    assert message.severity_text == "WARNING" and message.severity_number == 13
    attrs = attributes(message)
    assert attrs["logkit.tenant_id"] == "t_acme" and attrs["logkit.event_type"] == "message"
    flow_span = next(s for s in rec.spans if s.name == "f")
    assert message.trace_id == flow_span.trace_id and message.span_id == flow_span.span_id
    tool = next(s for s in rec.spans if s.name == "execute_tool crm")
    assert tool.parent_span_id == flow_span.span_id
    assert rec.resources[0]["service.name"] == "logkit"  # no OTEL_SERVICE_NAME, no [service]
    assert rec.resources[0]["deployment.environment"] == "test"
    assert {h.get("x-api-key") for h in rec.headers} == {"k-123"}
    assert {h.get("x-scope") for h in rec.headers} == {"team a"}
    raw = b"".join(s.SerializeToString() for s in rec.spans) + b"".join(
        r.SerializeToString() for r in rec.logs
    )
    assert EMAIL.encode() not in raw
    assert logkit.counters()["export.otlp.logs"] >= 5


def test_an_unanswering_backend_never_blocks_emit_and_drops_are_counted(
    receiver: tuple[Receiver, str], configured: Any
) -> None:
    rec, url = receiver
    rec.gate.clear()  # the backend accepts connections and never answers
    runtime = export_to(
        configured,
        url,
        signals=["logs"],
        queue_size=100,
        batch_size=10,
        flush_interval_s=60,
        timeout_s=30,
    )
    exporter: OtlpExporter = runtime.exporter
    before = logkit.counters().get("export.otlp.dropped", 0)
    sent = 400
    emit_numbered(sent)  # each emit returns although the backend hangs
    dropped = logkit.counters().get("export.otlp.dropped", 0) - before
    assert dropped >= sent - 100 - 10  # the queue's bound, plus at most the batch in flight
    assert exporter.stats.dropped == dropped
    rec.gate.set()  # the backend answers again: everything kept is delivered
    assert exporter.flush(30)
    delivered = [value_of(r.body)["i"] for r in rec.logs]
    assert len(delivered) == len(set(delivered)) == sent - dropped  # dropped or sent, once


def test_a_refusing_backend_loses_nothing_silently(
    receiver: tuple[Receiver, str], configured: Any
) -> None:
    rec, url = receiver
    rec.status = 503  # refuses (retryable) until it recovers
    runtime = export_to(
        configured,
        url,
        signals=["logs"],
        queue_size=1_000,
        batch_size=50,
        timeout_s=0.2,
        attempts=20,
    )
    exporter: OtlpExporter = runtime.exporter
    emit_numbered(120)
    assert not exporter.flush(0.5)  # the backend refuses: flush says so, within its bound
    assert logkit.counters().get("export.otlp.failed", 0) >= 1
    rec.status = 200
    assert exporter.flush(30)
    got = sorted(value_of(r.body)["i"] for r in rec.logs)
    assert got == list(range(120))  # in the end, each event exactly once


def test_a_batch_refused_for_good_is_dropped_and_counted(
    receiver: tuple[Receiver, str], configured: Any
) -> None:
    rec, url = receiver
    rec.status = 400  # not retryable: a malformed request, an auth error
    runtime = export_to(configured, url, signals=["logs"], timeout_s=0.2, attempts=2)
    before = logkit.counters().get("export.otlp.dropped", 0)
    emit_numbered(7)
    assert not runtime.exporter.flush(20)
    assert runtime.exporter.flush(20)  # nothing owed any more: the refused batch was dropped
    assert logkit.counters()["export.otlp.dropped"] - before == 7


def test_closing_counts_what_could_not_be_sent(configured: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    runtime = export_to(configured, url, signals=["logs"], timeout_s=0.2, attempts=20)
    before = logkit.counters().get("export.otlp.dropped", 0)
    emit_numbered(5)
    assert not runtime.exporter.close(0.5)
    assert logkit.counters()["export.otlp.dropped"] - before == 5


def test_export_needs_a_base_url(configured: Any) -> None:
    for bad in ("ftp://x", "http://user:pw@host:4318", "collector:4318", "http://h:1/?q=1"):
        with pytest.raises(logkit.ConfigError, match=r"export\.otlp"):
            export_to(configured, bad)
    assert ExportConfig(otlp="https://otel.example.com:4318/").otlp == (
        "https://otel.example.com:4318"
    )


# --- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    yield tmp_path
    logkit.configure(**memory_sinks(tmp_path / "restored"))


def test_export_cli_errors(in_tmp: Path) -> None:
    demo = runner.invoke(cli, ["demo", "--json"])
    run = json.loads(demo.output)["run_id"]
    no_url = runner.invoke(cli, ["export", "otlp", "--run", run], env={})
    assert no_url.exit_code == 2 and "no OTLP endpoint" in no_url.output
    bad_url = runner.invoke(cli, ["export", "otlp", "--run", run, "--url", "ftp://x"])
    assert bad_url.exit_code == 2 and "base URL" in bad_url.output
    missing = runner.invoke(cli, ["export", "otlp", "--run", "run_nope", "--url", "http://h:1"])
    assert missing.exit_code == 2 and "not found" in missing.output  # not_found (docs/cli.md)
    config = in_tmp / "fast.toml"
    config.write_text("[export]\ntimeout_s = 0.3\n")
    down = runner.invoke(
        cli,
        [
            "export",
            "otlp",
            "--run",
            run,
            "--url",
            f"http://127.0.0.1:{free_port()}",
            "--config",
            str(config),
        ],
    )
    assert down.exit_code == 3 and "did not take" in down.output  # unreachable: unavailable
    assert "Traceback" not in down.output


# --- conversion ------------------------------------------------------------------------------


def legacy_run() -> list[Event]:
    """A run stored before spans existed (envelope 1.0.0): all its events share one span."""
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    common: dict[str, Any] = {**SCOPE, "run_id": "run_old", "schema_version": "1.0.0"}
    common["trace_id"], common["span_id"] = "ab" * 16, "cd" * 8

    def ev(n: int, kind: str, **fields: Any) -> Event:
        return Event(
            **{**common, **fields},
            event_type=kind,
            ts=t0 + dt.timedelta(milliseconds=n),
        )

    return [
        ev(0, "flow_started", payload={"name": "old"}),
        ev(1, "step_started", step_id="step_1", payload={"name": "s"}),
        ev(2, "model_call_started", step_id="step_1", payload={"call_id": "c1"}),
        ev(3, "model_call_ended", step_id="step_1", payload={"call_id": "c1", "latency_ms": 1}),
        ev(4, "step_ended", step_id="step_1", payload={"name": "s", "status": "ok"}),
        ev(5, "flow_ended", payload={"name": "old", "status": "ok"}),
    ]


def test_service_name_is_the_environments_then_the_apps_then_logkit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    name = "service.name"
    assert make_resource(ExportConfig(), {}).attributes[name] == "logkit"
    assert make_resource(ExportConfig(), {"app_id": "support-bot"}).attributes[name] == (
        "support-bot"
    )
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    assert make_resource(ExportConfig(), {"app_id": "support-bot"}).attributes[name] == ("from-env")


def test_runs_stored_before_spans_get_stable_derived_ids() -> None:
    resource = make_resource(ExportConfig(), {})
    first = Converter(resource).spans(legacy_run())
    again = Converter(resource).spans(legacy_run())
    assert [(s.context.span_id, s.parent and s.parent.span_id) for s in first] == [
        (s.context.span_id, s.parent and s.parent.span_id) for s in again
    ]
    by_name = {s.name: s for s in first}
    flow, step, call = by_name["old"], by_name["s"], by_name["chat"]
    assert flow.parent is not None and flow.parent.span_id == int("cd" * 8, 16)
    assert step.parent.span_id == flow.context.span_id  # type: ignore[union-attr]
    assert call.parent.span_id == step.context.span_id  # type: ignore[union-attr]
    assert {s.context.trace_id for s in first} == {int("ab" * 16, 16)}
    assert flow.start_time == logkit.spans.ns_of(legacy_run()[0].ts)


def test_a_span_that_never_ended_is_sent_open(tmp_path: Path) -> None:
    events = legacy_run()[:3]
    converter = Converter(make_resource(ExportConfig(), {}))
    assert converter.spans(events) == []
    unfinished = converter.unfinished()
    assert {s.name for s in unfinished} == {"old", "s", "chat"}
    assert all((s.attributes or {}).get("logkit.status") == "open" for s in unfinished)
    assert json.loads(unfinished[0].to_json())["end_time"] is not None


def test_export_without_the_otlp_extra_fails_at_start_up(
    configured: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http", None)
    with pytest.raises(logkit.ConfigError, match=r"logkit\[otlp\]"):
        export_to(configured, "http://127.0.0.1:4318")
