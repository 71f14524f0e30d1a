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
    """Emit a support-bot run: flow, two steps, a tool call and a model call whose inputs carry
    PII (the gate turns it into pseudonyms), usage with its cost, a decision, audit records."""
    from logkit.testing import capture_events

    log = logging.getLogger("logkit.demo")
    run_id = "run_" + logkit.envelope.new_event_id().replace("-", "")[:16]
    with (
        capture_events() as events,
        logkit.bind(**DEMO_SCOPE, request_id="req-demo-1", run_id=run_id),
    ):
        logkit.emit("flow_started", {"name": "answer_ticket"})
        question = (
            "Hi, I'm Maria (maria.gonzalez@example.org, +44 20 7946 0958). Where is order 1042? "
            "I paid with card 5425 2334 3010 9903."
        )
        with logkit.bind(step_id="step_retrieve"):
            logkit.emit("step_started", {"name": "retrieve", "kind": "retrieval"})
            with logkit.tool_call("crm.lookup", input={"email": "maria.gonzalez@example.org"}) as t:
                t.set_output({"customer_id": "c_77", "phone": "+44 20 7946 0958", "orders": 3})
            logkit.emit("step_ended", {"name": "retrieve", "status": "ok", "duration_ms": 44})
        with logkit.bind(step_id="step_answer", parent_step_id="step_retrieve"):
            logkit.emit("step_started", {"name": "answer", "kind": "llm"})
            # What goes to the provider is what the gate lets through: pseudonyms, not PII.
            outbound = logkit.redact_for_call({"messages": [{"role": "user", "content": question}]})
            with logkit.model_call("anthropic", "claude-sonnet-4-5", input=outbound) as call:
                call.set_output({"answer": "Order 1042 shipped yesterday; tracking sent by email."})
                call.record_usage(input_tokens=812, output_tokens=64)
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
