"""Against a real OTLP backend: Arize Phoenix (started by `make services`), read back over its
REST API. The demo run, a FastAPI request and a backfilled run arrive as traces nested as
their stories, with GenAI attributes, the request's trace id and no raw PII.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import CliRunner

import logkit
from logkit import CorrelationMiddleware
from logkit.cli.main import app as cli
from logkit.context import parse_traceparent
from logkit.redaction import set_redactor
from logkit.redaction.engine import RegexRedactor
from tests.conftest import TEST_REDACTION_KEY, memory_sinks
from tests.otel.conftest import Phoenix
from tests.servers import serve

PARENT = "00f067aa0ba902b7"
TENANT = {"X-Tenant-Id": "t_acme", "X-Project-Id": "p", "X-App-Id": "a", "X-Surface-Id": "s"}
# What the demo's customer wrote: none of it may reach the backend.
DEMO_PII = ("maria.gonzalez@example.org", "+44 20 7946 0958", "5425 2334 3010 9903", "7946 0958")
runner = CliRunner()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    logkit.configure(**memory_sinks(tmp_path / "restored"))


def config_file(tmp: Path, project: str, **export: str) -> Path:
    lines = ["[export]", f'resource = {{ "openinference.project.name" = "{project}" }}']
    lines += [f'{k} = "{v}"' for k, v in export.items()]
    path = tmp / "logkit.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def tree(spans: list[dict[str, Any]]) -> dict[str, list[str]]:
    """parent name -> sorted child names (the root under "")."""
    names = {s["context"]["span_id"]: s["name"] for s in spans}
    out: dict[str, list[str]] = {}
    for span in spans:
        out.setdefault(names.get(span["parent_id"] or "", ""), []).append(span["name"])
    return {k: sorted(v) for k, v in out.items()}


def by_name(spans: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["name"] == name]


def test_the_demo_run_arrives_as_one_nested_trace(phoenix: Phoenix, in_tmp: Path) -> None:
    project = phoenix.new_project()
    config = config_file(in_tmp, project)
    result = runner.invoke(cli, ["demo", "--otlp", phoenix.url, "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    story = json.loads(result.output)
    spans = phoenix.wait_for(project, lambda s: len(s) >= 10)
    assert len(spans) == 10
    assert {s["context"]["trace_id"] for s in spans} == {story["trace_id"]}
    assert tree(spans) == {
        "": ["answer_ticket"],
        "answer_ticket": ["answer", "enrich", "enrich", "plan", "retrieve"],
        "retrieve": ["execute_tool crm.lookup"],
        "enrich": ["execute_tool crm.enrich", "execute_tool crm.enrich"],
        "answer": ["chat claude-sonnet-4-5"],
    }
    (llm,) = by_name(spans, "chat claude-sonnet-4-5")
    attrs = llm["attributes"]
    assert llm["span_kind"] == "LLM"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.request.model"] == "claude-sonnet-4-5"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (812, 64)
    assert "[EMAIL:" in attrs["gen_ai.input.messages"]
    tools = by_name(spans, "execute_tool crm.lookup")
    assert tools[0]["span_kind"] == "TOOL"
    assert tools[0]["attributes"]["gen_ai.tool.name"] == "crm.lookup"
    failed, retried = sorted(by_name(spans, "enrich"), key=lambda s: s["start_time"])
    assert failed["status_code"] == "ERROR" and retried["status_code"] != "ERROR"
    assert failed["attributes"]["error.type"] == "CRMTimeoutError"
    assert any(e["name"] == "exception" for e in failed["events"])
    dump = json.dumps(spans)
    for raw in DEMO_PII:
        assert raw not in dump


def fastapi_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(CorrelationMiddleware)

    @app.post("/chat")
    async def chat() -> dict[str, Any]:
        with logkit.flow("chat_turn"):
            with logkit.model_call("openai", "gpt-4o", input={"q": "hi"}) as call:
                call.record_usage(input_tokens=5, output_tokens=7)
            event = logkit.emit("message", {"done": True})
        return event.model_dump(mode="json")

    return app


def new_trace() -> str:
    """A fresh caller trace id per test: Phoenix files a trace id under one project only."""
    return os.urandom(16).hex()


def test_a_fastapi_request_keeps_the_callers_trace_id(phoenix: Phoenix, configured: Any) -> None:
    """No OpenTelemetry SDK in the app: logkit's own exporter sends the request's spans."""
    caller_trace = new_trace()
    project = phoenix.new_project()
    configured(
        env="dev",
        sinks={"timeline": "memory://", "audit": "memory://", "cost": "memory://"},
        export={"otlp": phoenix.url, "resource": {"openinference.project.name": project}},
    )
    with serve(fastapi_app()) as url:
        response = httpx.post(
            f"{url}/chat", headers={**TENANT, "traceparent": f"00-{caller_trace}-{PARENT}-01"}
        )
    assert response.status_code == 200
    assert logkit.flush(20)
    spans = phoenix.wait_for(project, lambda s: len(s) >= 2)
    assert {s["context"]["trace_id"] for s in spans} == {caller_trace}
    (flow,) = by_name(spans, "chat_turn")
    (llm,) = by_name(spans, "chat gpt-4o")
    echoed = parse_traceparent(response.headers["traceparent"])
    assert echoed is not None and flow["parent_id"] == echoed.parent_id  # the request's span
    assert llm["parent_id"] == flow["context"]["span_id"]
    assert llm["attributes"]["gen_ai.usage.output_tokens"] == 7
    assert response.json()["span_id"] == flow["context"]["span_id"]  # id for id


@pytest.fixture
def app_sdk(phoenix: Phoenix) -> Iterator[tuple[TracerProvider, str]]:
    """The app's own OpenTelemetry SDK exporting to Phoenix, recording logkit's spans too."""
    project = phoenix.new_project()
    provider = TracerProvider(resource=Resource.create({"openinference.project.name": project}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{phoenix.url}/v1/traces"))
    )
    logkit.use_tracer_provider(provider)
    yield provider, project
    logkit.use_tracer_provider(None)
    provider.shutdown()


def test_one_trace_per_request_with_plain_starlette_and_an_sdk(
    phoenix: Phoenix, app_sdk: tuple[TracerProvider, str]
) -> None:
    provider, project = app_sdk
    tracer = provider.get_tracer("app")
    caller_trace = new_trace()

    async def handle(request: Request) -> JSONResponse:
        with tracer.start_as_current_span("handler"), logkit.flow("turn"):
            with logkit.tool_call("search", input={"q": "x"}):
                pass
            return JSONResponse(logkit.current_scope())

    app = Starlette(routes=[Route("/turn", handle)])
    app.add_middleware(CorrelationMiddleware)
    with serve(app) as url:
        response = httpx.get(
            f"{url}/turn", headers={**TENANT, "traceparent": f"00-{caller_trace}-{PARENT}-01"}
        )
    assert response.status_code == 200
    spans = phoenix.wait_for(project, lambda s: len(s) >= 4)
    assert sorted(s["name"] for s in spans) == ["GET", "execute_tool search", "handler", "turn"]
    assert {s["context"]["trace_id"] for s in spans} == {caller_trace}
    assert tree(spans) == {
        "": ["GET"],  # its parent is the caller's span, not in this backend
        "GET": ["handler"],
        "handler": ["turn"],
        "turn": ["execute_tool search"],
    }
    (server,) = by_name(spans, "GET")
    assert server["parent_id"] == PARENT
    assert server["attributes"]["http.response.status_code"] == 200
    assert response.headers["traceparent"] == f"00-{caller_trace}-{server['context']['span_id']}-01"
    assert response.json()["span_id"] == by_name(spans, "turn")[0]["context"]["span_id"]


def test_a_stored_run_is_backfilled_once_however_often_it_is_sent(
    phoenix: Phoenix, in_tmp: Path
) -> None:
    previous = set_redactor(RegexRedactor(TEST_REDACTION_KEY.encode()))
    try:
        project = phoenix.new_project()
        config = str(config_file(in_tmp, project))
        demo = runner.invoke(cli, ["demo", "--json", "--config", config])  # stored, not exported
        assert demo.exit_code == 0, demo.output
        run = json.loads(demo.output)["run_id"]
        # Audit records carry span ids now (envelope 1.1.0): their chains still verify.
        verified = runner.invoke(cli, ["audit", "verify", "--tenant", "t_acme", "--config", config])
        assert verified.exit_code == 0, verified.output
        args = ["export", "otlp", "--run", run, "--url", phoenix.url, "--config", config]
        first = runner.invoke(cli, [*args, "--json"])
        assert first.exit_code == 0, first.output
        report = json.loads(first.output)
        assert (report["spans"], report["unfinished"]) == (10, 0)
        second = runner.invoke(cli, args)
        assert second.exit_code == 0 and "10 spans" in second.output
        spans = phoenix.wait_for(project, lambda s: len(s) >= 10)
        assert len(spans) == 10  # the same ids: Phoenix keeps one of each
        assert len({s["context"]["trace_id"] for s in spans}) == 1
        assert tree(spans)["answer"] == ["chat claude-sonnet-4-5"]
        dump = json.dumps(spans)
        assert all(raw not in dump for raw in DEMO_PII)
    finally:
        set_redactor(previous)
