"""tool_call / model_call: started, ended and failed events around one call, and their links."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import logkit
from logkit import Event, EventType, Severity, StorageClass
from logkit.calls import current_call, model_call, tool_call
from logkit.redaction import set_redactor
from logkit.testing import capture_events
from tests.conftest import SCOPE
from tests.redactors import WordRedactor

RUN = {"run_id": "run_calls", "step_id": "step_1"}


def of_type(events: list[Event], kind: EventType) -> list[Event]:
    return [e for e in events if e.event_type is kind]


def test_tool_call_context_manager_emits_started_then_ended() -> None:
    with (
        capture_events() as events,
        logkit.bind(**SCOPE, **RUN),
        tool_call("vector_search", input={"query": "order 1042"}) as call,
    ):
        call.set_output({"hits": 3})
    started, ended = events
    assert (started.event_type, ended.event_type) == (
        EventType.TOOL_CALL_STARTED,
        EventType.TOOL_CALL_ENDED,
    )
    assert started.payload["input"] == {"query": "order 1042"}
    assert started.payload["gen_ai.operation.name"] == "execute_tool"
    assert (
        started.payload["gen_ai.tool.name"]
        == ended.payload["gen_ai.tool.name"]
        == ("vector_search")
    )
    assert ended.payload["output"] == {"hits": 3}
    assert "input" not in ended.payload  # the input is on the started event only
    latency = ended.payload["latency_ms"]
    assert isinstance(latency, float) and latency >= 0
    # One call id on both events, also as the OTel tool call id.
    assert started.payload["call_id"] == ended.payload["call_id"] == call.call_id
    assert ended.payload["gen_ai.tool.call.id"] == call.call_id
    assert {(e.run_id, e.step_id) for e in events} == {("run_calls", "step_1")}


def test_failed_call_reraises_the_same_exception_with_error_type() -> None:
    boom = TimeoutError("CRM down")
    with (
        capture_events() as events,
        logkit.bind(**SCOPE, **RUN),
        pytest.raises(TimeoutError) as raised,
        tool_call("crm_lookup"),
    ):
        raise boom
    assert raised.value is boom
    started, failed = events
    assert failed.event_type is EventType.TOOL_CALL_FAILED
    assert failed.severity is Severity.ERROR
    assert failed.payload["error.type"] == "TimeoutError"
    assert failed.payload["latency_ms"] >= 0  # type: ignore[operator]
    assert failed.payload["call_id"] == started.payload["call_id"]
    assert "output" not in failed.payload


def test_model_call_async_with_links_its_usage_event() -> None:
    async def run() -> str:
        async with model_call("openai", "gpt-4o-mini", input=[{"role": "user"}]) as call:
            call.set_output("It shipped.")
            call.set_response_model("gpt-4o-mini-2024-07-18")
            call.record_usage(input_tokens=1000, output_tokens=20, cached_tokens=200)
            return call.call_id

    with capture_events() as events, logkit.bind(**SCOPE, **RUN):
        call_id = asyncio.run(run())
    started, usage, ended = events
    assert started.event_type is EventType.MODEL_CALL_STARTED
    assert usage.event_type is EventType.USAGE_RECORDED
    assert usage.storage_class is StorageClass.COST
    assert ended.event_type is EventType.MODEL_CALL_ENDED
    assert ended.payload["usage_event_id"] == usage.event_id
    assert usage.payload["call_id"] == call_id == ended.payload["call_id"]
    assert (usage.run_id, usage.step_id) == ("run_calls", "step_1")
    for event in (started, ended):
        assert event.payload["gen_ai.operation.name"] == "chat"
        assert event.payload["gen_ai.provider.name"] == "openai"
        assert event.payload["gen_ai.request.model"] == "gpt-4o-mini"
    assert ended.payload["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert ended.payload["gen_ai.usage.input_tokens"] == 1000
    assert ended.payload["gen_ai.usage.output_tokens"] == 20
    assert ended.payload["gen_ai.usage.cache_read.input_tokens"] == 200
    assert usage.payload["priced"] is True and usage.payload["cost"]


def test_model_call_without_usage_emits_no_usage_event() -> None:
    with capture_events() as events, logkit.bind(**SCOPE), model_call("openai", "gpt-4o"):
        pass
    assert [e.event_type for e in events] == [
        EventType.MODEL_CALL_STARTED,
        EventType.MODEL_CALL_ENDED,
    ]
    assert "usage_event_id" not in events[1].payload


def test_sync_decorator_records_arguments_and_return_value() -> None:
    @tool_call("search")
    def search(query: str, limit: int = 3) -> list[str]:
        return [query] * limit

    with capture_events() as events, logkit.bind(**SCOPE, **RUN):
        assert search("refund", limit=2) == ["refund", "refund"]
        search("late")
    first_started, first_ended, second_started, _ = events
    assert first_started.payload["input"] == {"query": "refund", "limit": 2}
    assert first_ended.payload["output"] == ["refund", "refund"]
    assert second_started.payload["input"] == {"query": "late"}
    # Every invocation is a call of its own.
    assert first_started.payload["call_id"] == first_ended.payload["call_id"]
    assert first_started.payload["call_id"] != second_started.payload["call_id"]
    assert search.__name__ == "search"  # functools.wraps kept the function's identity


def test_async_decorator_failure_still_records_spent_usage() -> None:
    @model_call("anthropic", "claude-haiku-4-5", operation="text_completion", input="prompt")
    async def complete(prompt: str) -> str:
        call = current_call()
        assert call is not None
        call.record_usage(input_tokens=50, output_tokens=5)
        raise ValueError("bad stop sequence")

    with (
        capture_events() as events,
        logkit.bind(**SCOPE, **RUN),
        pytest.raises(ValueError, match="bad stop sequence"),
    ):
        asyncio.run(complete("hello"))
    started, usage, failed = events
    assert started.payload["input"] == "prompt"  # an explicit input wins over the arguments
    assert failed.event_type is EventType.MODEL_CALL_FAILED
    assert failed.payload["error.type"] == "ValueError"
    assert failed.payload["usage_event_id"] == usage.event_id
    assert failed.payload["gen_ai.operation.name"] == "text_completion"
    assert current_call() is None


def test_async_decorator_returns_the_value_as_output() -> None:
    @tool_call("fetch")
    async def fetch(url: str) -> dict[str, int]:
        return {"status": 200}

    with capture_events() as events, logkit.bind(**SCOPE):
        assert asyncio.run(fetch("https://example.test")) == {"status": 200}
    assert events[-1].event_type is EventType.TOOL_CALL_ENDED
    assert events[-1].payload["output"] == {"status": 200}


def test_inputs_and_outputs_pass_the_installed_redactor() -> None:
    redactor = WordRedactor()
    set_redactor(redactor)
    with (
        capture_events() as events,
        logkit.bind(**SCOPE),
        tool_call("login", input={"password": "hunter2"}) as call,
    ):
        call.set_output("token for hunter2")
        # The handle keeps only the redacted value, never the raw one.
        assert call.output == "token for [SECRET:1]"
    assert "hunter2" not in "".join(e.model_dump_json() for e in events)
    started, ended = events
    assert started.payload["input"] == {"password": "[SECRET:1]"}
    assert started.redaction is not None and started.redaction.counts == {"secret": 1}
    assert ended.redaction is not None and ended.redaction.counts == {"secret": 2}
    assert "redacted" not in started.payload
    assert all(e.redaction is not None and e.redaction.policy == "test-words" for e in events)
    assert "t_acme" in redactor.tenants  # redacted for the bound tenant


def test_explicit_fields_override_context_and_extend_the_payload() -> None:
    extra = {"gen_ai.tool.type": "function"}
    with (
        capture_events() as events,
        logkit.bind(**SCOPE, **RUN),
        tool_call("search", call_id="call_abc", run_id="run_other", **extra),
    ):
        pass
    for event in events:
        assert event.run_id == "run_other" and event.step_id == "step_1"
        assert event.payload["gen_ai.tool.call.id"] == "call_abc"
        assert event.payload["gen_ai.tool.type"] == "function"


def test_outputs_that_are_not_json_still_make_a_valid_event() -> None:
    class Reply:
        def __repr__(self) -> str:
            return "Reply(ok)"

    with capture_events() as events, logkit.bind(**SCOPE), model_call("openai", "gpt-4o") as call:
        call.set_output({"reply": Reply(), "ids": {1}})
    assert events[-1].payload["output"] == {"reply": "Reply(ok)", "ids": [1]}


def test_nested_calls_restore_the_current_call() -> None:
    with capture_events(), logkit.bind(**SCOPE), model_call("openai", "gpt-4o") as outer:
        with tool_call("inner") as inner:
            assert current_call() is inner
        assert current_call() is outer


def test_bad_token_counts_fail_at_the_callers_line() -> None:
    with (
        capture_events() as events,
        logkit.bind(**SCOPE),
        model_call("openai", "gpt-4o") as call,
        pytest.raises(ValueError, match="cannot exceed"),
    ):
        call.record_usage(input_tokens=1, cached_tokens=2)
    assert [e.event_type for e in events][-1] is EventType.MODEL_CALL_ENDED


def test_missing_scope_is_refused_before_the_call_runs() -> None:
    ran = False
    with pytest.raises(logkit.ContractError, match="tenant_id"), tool_call("x"):
        ran = True
    assert not ran


def test_decorated_method_records_arguments_without_self() -> None:
    class Tools:
        @tool_call("lookup")
        def lookup(self, ticket: str) -> str:
            return f"ticket {ticket}"

    with capture_events() as events, logkit.bind(**SCOPE):
        Tools().lookup("1042")
    assert events[0].payload["input"] == {"ticket": "1042"}
    assert events[1].payload["output"] == "ticket 1042"


def test_generators_cannot_be_decorated() -> None:
    with pytest.raises(TypeError, match="generators"):

        @tool_call("stream")
        def stream() -> Any:
            yield 1
