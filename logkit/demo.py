"""A realistic little agent run, emitted through the public API (what ``logkit demo`` shows)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import logkit
from logkit.envelope import Event

DEMO_SCOPE = {
    "tenant_id": "t_acme",
    "env": "dev",
    "project_id": "p_support",
    "surface_id": "chat",
    "app_id": "support-bot",
    "user_id": "u_1042",
    "actor_type": "agent",
}


# Shaped like engines' DatasetEvent; the demo adapts one as a migrated call site would.
LEGACY_DATASET_EVENT: dict[str, Any] = {
    "tenantId": "t_acme",
    "env": "dev",
    "surface": "chat",
    "agentId": "support-bot",
    "input": {"question": "Where is my order 1042?"},
    "output": {"answer": "It shipped yesterday."},
    "pii_flags": {},
    "train_ok": False,
    "metadata": {"channel": "web"},
    "requestId": "req-demo-1",
    "actorType": "agent",
}


def run_demo(on_event: Callable[[Event], None] | None = None) -> list[Event]:
    """Emit a support-bot run: flow, two steps, a tool call, a model call, usage, a decision."""
    from logkit.testing import capture_events

    log = logging.getLogger("logkit.demo")
    run_id = "run_" + logkit.envelope.new_event_id().replace("-", "")[:16]
    with (
        capture_events() as events,
        logkit.bind(**DEMO_SCOPE, request_id="req-demo-1", run_id=run_id),
    ):
        logkit.emit("flow_started", {"name": "answer_ticket"})
        with logkit.bind(step_id="step_retrieve"):
            logkit.emit("step_started", {"name": "retrieve", "kind": "retrieval"})
            logkit.emit("tool_call_started", {"tool": "vector_search", "query_chars": 27})
            logkit.emit("tool_call_ended", {"tool": "vector_search", "hits": 3, "duration_ms": 41})
            logkit.emit("step_ended", {"name": "retrieve", "status": "ok", "duration_ms": 44})
        with logkit.bind(step_id="step_answer", parent_step_id="step_retrieve"):
            logkit.emit("step_started", {"name": "answer", "kind": "llm"})
            logkit.emit("model_call_started", {"provider": "anthropic", "model": "claude-sonnet"})
            logkit.emit(
                "model_call_ended",
                {
                    "provider": "anthropic",
                    "model": "claude-sonnet",
                    "tokens_in": 812,
                    "tokens_out": 64,
                },
            )
            logkit.emit(
                "usage_recorded",
                {
                    "provider": "anthropic",
                    "model": "claude-sonnet",
                    "tokens_input": 812,
                    "tokens_output": 64,
                    "cost": "0.003396",
                    "currency": "USD",
                },
            )
            logkit.emit(
                "agent_decision",
                {
                    "choice": "answer",
                    "options": ["answer", "escalate"],
                    "reason": "order found, status known",
                },
            )
            logkit.emit("step_ended", {"name": "answer", "status": "ok", "duration_ms": 930})
        logkit.emit_event(
            logkit.from_legacy(LEGACY_DATASET_EVENT, project_id="p_support", app_id="support-bot")
        )
        try:
            raise TimeoutError("CRM lookup timed out")
        except TimeoutError:
            log.exception("crm enrichment failed; answered without it")
        # Compliance-relevant actions are chained: tamper-evident, verifiable by a third party.
        logkit.audit("ticket.answered", {"ticket": "1042", "answered_by": "support-bot"})
        logkit.audit("retention.policy_checked", {"policy": "support-30d"}, run_id=None)
        logkit.emit("flow_ended", {"name": "answer_ticket", "status": "ok"})
    for event in events:
        if on_event is not None:
            on_event(event)
    return list(events)
