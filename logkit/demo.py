"""A realistic little agent run, emitted through the public API (what ``logkit demo`` shows)."""

from __future__ import annotations

import logging
from typing import Any

import logkit

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


class CRMTimeoutError(TimeoutError):
    """The CRM enrichment call timed out (the demo's failing step)."""


def run_demo() -> str:
    """A support-bot run told as a story: plan, retrieval (a tool call), an answer (a model
    call whose input carries PII the gate turns into pseudonyms), a decision, state pulses, a
    failing CRM step and its successful retry, usage with its cost, and audit records.

    Returns the run id.
    """
    log = logging.getLogger("logkit.demo")
    question = (
        "Hi, I'm Maria (maria.gonzalez@example.org, +44 20 7946 0958). Where is order 1042? "
        "I paid with card 5425 2334 3010 9903."
    )
    state: dict[str, Any] = {"stage": "planning", "order": "1042", "facts": []}
    with logkit.bind(**DEMO_SCOPE, request_id="req-demo-1"), logkit.flow("answer_ticket") as run:
        logkit.state_pulse("agent_state", state)
        with logkit.step("plan", kind="planning"):
            logkit.decision(
                "retrieve_then_answer",
                options=["answer_now", "retrieve_then_answer", "escalate"],
                reason="the question names an order: look it up first",
            )
        with logkit.step("retrieve", kind="retrieval"):
            with logkit.tool_call("crm.lookup", input={"email": "maria.gonzalez@example.org"}) as t:
                t.set_output({"customer_id": "c_77", "phone": "+44 20 7946 0958", "orders": 3})
            state = {**state, "stage": "retrieved", "facts": ["order 1042 shipped yesterday"]}
            logkit.state_pulse("agent_state", state)
        for attempt in (1, 2):  # the enrichment times out once, then succeeds
            try:
                with (
                    logkit.step("enrich", kind="tool", attempt=attempt),
                    logkit.tool_call("crm.enrich", input={"customer_id": "c_77"}) as t,
                ):
                    if attempt == 1:
                        raise CRMTimeoutError("CRM enrichment timed out after 2.0 s")
                    t.set_output({"tier": "gold"})
                break
            except CRMTimeoutError:
                log.exception("crm enrichment failed for maria.gonzalez@example.org; retrying")
        with logkit.step("answer", kind="llm"):
            # What goes to the provider is what the gate lets through: pseudonyms, not PII.
            outbound = logkit.redact_for_call({"messages": [{"role": "user", "content": question}]})
            with logkit.model_call("anthropic", "claude-sonnet-4-5", input=outbound) as call:
                call.set_output({"answer": "Order 1042 shipped yesterday; tracking sent by email."})
                call.record_usage(input_tokens=812, output_tokens=64)
            logkit.decision(
                "answer", options=["answer", "escalate"], reason="order found, status known"
            )
            state = {**state, "stage": "answered"}
            logkit.state_pulse("agent_state", state)
        logkit.emit_event(
            logkit.from_legacy(LEGACY_DATASET_EVENT, project_id="p_support", app_id="support-bot")
        )
        # Compliance-relevant actions are chained: tamper-evident, verifiable by a third party.
        logkit.audit("ticket.answered", {"ticket": "1042", "answered_by": "support-bot"})
        logkit.audit("retention.policy_checked", {"policy": "support-30d"}, run_id=None)
    return str(run.run_id)
