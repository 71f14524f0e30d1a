"""Flows, steps and calls as OpenTelemetry spans: nesting, ids, GenAI attributes, status.

Recorded by a real SDK tracer provider (in-memory exporter) given to logkit, and without one
(logkit makes the ids): either way every event carries its span's ids and its parent's.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, StatusCode

import logkit
from logkit import ContractError, Event
from logkit.testing import capture_events
from tests.conftest import SCOPE
from tests.otel.conftest import Recorded, span_hex, trace_hex

EMAIL = "maria.gonzalez@example.org"
CARD = "5425 2334 3010 9903"


def story() -> str:
    with logkit.bind(**SCOPE), logkit.flow("answer_ticket") as run:
        logkit.state_pulse("agent_state", {"stage": "planning"})
        with logkit.step("plan", kind="planning"):
            logkit.decision("retrieve", options=["answer", "retrieve"])
        with logkit.step("retrieve", kind="retrieval"):
            with logkit.tool_call("crm.lookup", input={"email": EMAIL}) as tool:
                tool.set_output({"orders": 3})
            with logkit.step("rank", kind="compute"):
                pass
        with (
            logkit.step("answer", kind="llm"),
            logkit.model_call("anthropic", "claude-sonnet-4-5", input={"q": EMAIL}) as call,
        ):
            call.set_output({"answer": "shipped"})
            call.set_response_model("claude-sonnet-4-5-20250929")
            call.record_usage(input_tokens=812, output_tokens=64, cached_tokens=12)
    return str(run.run_id)


SPAN_TYPES = {
    "flow_started",
    "flow_ended",
    "step_started",
    "step_ended",
    "tool_call_started",
    "tool_call_ended",
    "model_call_started",
    "model_call_ended",
}


def test_the_story_is_a_tree_of_sdk_spans(recorded: Recorded) -> None:
    with capture_events() as events:
        story()
    spans = recorded.by_name()
    assert set(spans) == {
        "answer_ticket",
        "plan",
        "retrieve",
        "rank",
        "answer",
        "execute_tool crm.lookup",
        "chat claude-sonnet-4-5",
    }
    root = spans["answer_ticket"]
    assert root.parent is None
    parent_of = {name: s.parent.span_id if s.parent else None for name, s in spans.items()}
    ids = {name: s.context.span_id for name, s in spans.items()}
    assert parent_of["plan"] == parent_of["retrieve"] == parent_of["answer"] == ids["answer_ticket"]
    assert parent_of["execute_tool crm.lookup"] == parent_of["rank"] == ids["retrieve"]
    assert parent_of["chat claude-sonnet-4-5"] == ids["answer"]
    assert {s.context.trace_id for s in spans.values()} == {root.context.trace_id}
    assert spans["chat claude-sonnet-4-5"].kind is SpanKind.CLIENT
    assert spans["execute_tool crm.lookup"].kind is SpanKind.INTERNAL
    # Id for id: each event names its span and that span's parent.
    by_id = {span_hex(s.context.span_id): s for s in spans.values()}
    for event in events:
        span = by_id[event.span_id]
        assert event.trace_id == trace_hex(span.context.trace_id)
        expected_parent = span_hex(span.parent.span_id) if span.parent else None
        assert event.parent_span_id == expected_parent, event.event_type
        if event.event_type.value in SPAN_TYPES:
            assert span.name.endswith(str(event.payload.get("name", "")).strip() or span.name)


def test_span_times_are_the_events_timestamps(recorded: Recorded) -> None:
    with capture_events() as events:
        story()
    by_id = {span_hex(s.context.span_id): s for s in recorded.spans()}
    for event in events:
        kind = event.event_type.value
        if kind.endswith("_started"):
            assert by_id[event.span_id].start_time == logkit.spans.ns_of(event.ts)
        elif kind.endswith("_ended"):
            assert by_id[event.span_id].end_time == logkit.spans.ns_of(event.ts)


def test_genai_attributes_on_calls(recorded: Recorded) -> None:
    story()
    spans = recorded.by_name()
    model = dict(spans["chat claude-sonnet-4-5"].attributes or {})
    assert model["gen_ai.operation.name"] == "chat"
    assert model["gen_ai.provider.name"] == "anthropic"
    assert model["gen_ai.request.model"] == "claude-sonnet-4-5"
    assert model["gen_ai.response.model"] == "claude-sonnet-4-5-20250929"
    assert model["gen_ai.usage.input_tokens"] == 812
    assert model["gen_ai.usage.output_tokens"] == 64
    assert model["gen_ai.usage.cache_read.input_tokens"] == 12
    assert json.loads(str(model["gen_ai.output.messages"])) == {"answer": "shipped"}
    tool = dict(spans["execute_tool crm.lookup"].attributes or {})
    assert tool["gen_ai.operation.name"] == "execute_tool"
    assert tool["gen_ai.tool.name"] == "crm.lookup"
    assert tool["gen_ai.tool.call.id"] == tool["logkit.call_id"]
    assert json.loads(str(tool["gen_ai.tool.call.result"])) == {"orders": 3}
    step = dict(spans["retrieve"].attributes or {})
    assert step["logkit.step.kind"] == "retrieval" and step["logkit.tenant_id"] == "t_acme"
    assert step["logkit.run_id"] == model["logkit.run_id"]
    assert spans["answer_ticket"].attributes["openinference.span.kind"] == "AGENT"  # type: ignore[index]


class CRMTimeoutError(TimeoutError):
    pass


def test_failures_set_error_status_with_redacted_messages(recorded: Recorded, gate: None) -> None:
    with (
        pytest.raises(CRMTimeoutError),
        logkit.bind(**SCOPE),
        logkit.flow("f"),
        logkit.step("enrich", attempt=1),
        logkit.tool_call("crm.enrich", input={"email": EMAIL}),
    ):
        raise CRMTimeoutError(f"CRM timed out for {EMAIL}, card {CARD}")
    spans = recorded.by_name()
    for name in ("enrich", "f", "execute_tool crm.enrich"):
        span = spans[name]
        assert span.status.status_code is StatusCode.ERROR, name
        (exception,) = [e for e in span.events if e.name == "exception"]
        assert exception.attributes is not None
        assert "Error" in str(exception.attributes["exception.type"])
        assert "exception.stacktrace" not in exception.attributes
    step = spans["enrich"]
    assert step.attributes["error.type"] == "CRMTimeoutError"  # type: ignore[index]
    assert step.attributes["logkit.step.attempt"] == 1  # type: ignore[index]
    assert "[EMAIL:" in str(step.status.description) and EMAIL not in str(step.status.description)
    dump = json.dumps([json.loads(s.to_json()) for s in recorded.spans()])
    assert EMAIL not in dump and CARD not in dump and "[CARD:" in dump


def test_no_raw_pii_in_any_span_attribute(recorded: Recorded, gate: None) -> None:
    story()
    dump = json.dumps([json.loads(s.to_json()) for s in recorded.spans()])
    assert EMAIL not in dump and "[EMAIL:" in dump


def test_without_an_sdk_logkit_makes_the_ids() -> None:
    """No tracer provider: ids are still one per span, nested, one trace; nothing recorded."""
    with capture_events() as events:
        story()
    by_type: dict[str, list[Event]] = {}
    for event in events:
        by_type.setdefault(event.event_type.value, []).append(event)
    (flow,) = by_type["flow_started"]
    assert flow.parent_span_id is None and flow.span_id
    steps = {e.payload["name"]: e for e in by_type["step_started"]}
    assert steps["plan"].parent_span_id == flow.span_id
    assert steps["rank"].parent_span_id == steps["retrieve"].span_id
    (tool,) = by_type["tool_call_started"]
    assert tool.parent_span_id == steps["retrieve"].span_id
    (usage,) = by_type["usage_recorded"]
    (model,) = by_type["model_call_ended"]
    assert usage.span_id == model.span_id and usage.parent_span_id == steps["answer"].span_id
    (decision,) = by_type["agent_decision"]
    assert (decision.span_id, decision.parent_span_id) == (steps["plan"].span_id, flow.span_id)
    assert len({e.trace_id for e in events}) == 1
    span_ids = {e.span_id for e in events}
    assert len(span_ids) == 7  # one per flow, step and call
    ended = {e.span_id: e for e in events if e.event_type.value.endswith("_ended")}
    started = {e.span_id: e for e in events if e.event_type.value.endswith("_started")}
    assert ended.keys() == started.keys()
    assert all(ended[k].parent_span_id == started[k].parent_span_id for k in ended)
    assert not trace.get_current_span().get_span_context().is_valid  # context restored


def test_a_flow_nests_under_the_apps_own_span_and_bound_ids(recorded: Recorded) -> None:
    tracer = recorded.provider.get_tracer("app")
    with (
        tracer.start_as_current_span("handler") as handler,
        logkit.bind(**SCOPE),
        logkit.flow("f"),
    ):
        inside = logkit.emit("message")
        with tracer.start_as_current_span("app.work") as work:
            nested = logkit.emit("message")
    spans = recorded.by_name()
    assert spans["f"].parent is not None
    assert spans["f"].parent.span_id == handler.get_span_context().span_id
    assert inside.span_id == span_hex(spans["f"].context.span_id)
    assert inside.parent_span_id == span_hex(handler.get_span_context().span_id)
    # The app's span inside a flow: its own ids, and the flow as its parent.
    assert nested.span_id == span_hex(work.get_span_context().span_id)
    assert nested.parent_span_id == inside.span_id

    # Bound ids (a legacy caller, a job that carries a traceparent): the trace continues.
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with logkit.bind(**SCOPE, trace_id=trace_id, span_id=parent), logkit.flow("job"):
        job = logkit.emit("message")
    assert (job.trace_id, job.parent_span_id) == (trace_id, parent) and job.span_id != parent
    assert trace_hex(recorded.by_name()["job"].context.trace_id) == trace_id


def test_the_app_tracer_sees_logkit_spans_without_an_sdk_for_logkit() -> None:
    """logkit without an SDK still puts its span in the OTel context: an app's own SDK span
    started inside a step nests under it, in the same trace."""
    tracer = TracerProvider().get_tracer("app")
    with logkit.bind(**SCOPE), logkit.flow("f"), logkit.step("s"):
        step = logkit.emit("message")
        with tracer.start_as_current_span("app.work") as work:
            pass
    ctx = work.get_span_context()
    assert trace_hex(ctx.trace_id) == step.trace_id
    assert work.parent is not None and span_hex(work.parent.span_id) == step.span_id  # type: ignore[attr-defined]


def test_concurrent_tasks_get_their_own_spans(recorded: Recorded) -> None:
    async def one(i: int) -> None:
        async with logkit.flow(f"f{i}"):
            for _ in range(3):
                async with logkit.step(f"s{i}"):
                    await asyncio.sleep(0)

    async def main() -> None:
        with logkit.bind(**SCOPE):
            await asyncio.gather(*(one(i) for i in range(20)))

    asyncio.run(main())
    spans = recorded.spans()
    flows = {s.name: s for s in spans if s.name.startswith("f")}
    assert len(flows) == 20
    for span in spans:
        if span.name.startswith("s"):
            flow = flows["f" + span.name[1:]]
            assert span.parent is not None and span.parent.span_id == flow.context.span_id
            assert span.context.trace_id == flow.context.trace_id
    assert len({f.context.trace_id for f in flows.values()}) == 20


def test_generator_spans_cover_the_iteration_and_close_cleanly(
    recorded: Recorded, caplog: pytest.LogCaptureFixture
) -> None:
    @logkit.flow("stream")
    def produce() -> Iterator[int]:
        for i in range(5):
            with logkit.step("chunk"):
                yield i

    with logkit.bind(**SCOPE):
        assert list(produce()) == [0, 1, 2, 3, 4]
        assert not trace.get_current_span().get_span_context().is_valid
        early = produce()
        next(early)

    # Closed by the garbage collector in another thread: the span ends "closed", and
    # OpenTelemetry logs no "Failed to detach context".
    caplog.set_level(logging.ERROR)
    done = threading.Event()

    def drop() -> None:
        nonlocal early
        del early
        gc.collect()
        done.set()

    threading.Thread(target=contextvars.copy_context().run, args=(drop,)).start()
    assert done.wait(10)
    assert not [r for r in caplog.records if "detach" in r.getMessage().lower()]
    flows = [s for s in recorded.spans() if s.name == "stream"]
    assert len(flows) == 2
    closed = [f for f in flows if (f.attributes or {}).get("logkit.status") == "closed"]
    assert len(closed) == 1 and closed[0].status.status_code is StatusCode.UNSET
    chunks = [s for s in recorded.spans() if s.name == "chunk"]
    assert all(c.parent is not None for c in chunks)
    assert {c.parent.span_id for c in chunks} == {f.context.span_id for f in flows}  # type: ignore[union-attr]


def test_a_first_event_that_fails_ends_the_span_and_restores_the_context(
    recorded: Recorded,
) -> None:
    with pytest.raises(ContractError), logkit.flow("no_tenant"):
        pass
    assert not trace.get_current_span().get_span_context().is_valid
    assert logkit.current_scope() == {}
    (span,) = recorded.spans()
    assert span.name == "no_tenant" and span.end_time is not None


def test_trace_headers_inside_a_call_name_the_call() -> None:
    with logkit.bind(**SCOPE), logkit.flow("f"), logkit.tool_call("search"):
        event = logkit.emit("message")
        headers = logkit.spans.trace_headers({"Accept": "json", "TraceParent": "stale"})
    assert headers["Accept"] == "json" and "TraceParent" not in headers
    assert headers["traceparent"] == f"00-{event.trace_id}-{event.span_id}-01"
    assert logkit.spans.trace_headers() == {}  # outside any span: nothing to propagate


@given(st.from_regex(r"[0-9a-f]{16}", fullmatch=True) | st.text(max_size=20))
def test_parent_span_id_is_16_hex_or_refused(value: str) -> None:
    data: dict[str, Any] = {**SCOPE, "event_type": "message", "parent_span_id": value}
    ok = len(value) == 16 and all(c in "0123456789abcdef" for c in value)
    if ok:
        assert Event(**data).parent_span_id == value
    else:
        with pytest.raises(ContractError, match="parent_span_id"):
            Event(**data)
