"""The story of a run: its events folded into a tree (run -> flows -> steps -> calls,
decisions, pulses), with status, durations, tokens and cost per step. Pure: events in, tree out.

Payloads are stored data of any shape (legacy adapters, other writers): a status that is not a
string, a duration that is not a number or a cost such as ``"n/a"`` never breaks the story. An
unreadable cost is counted as unpriced (``unpriced``), never as 0 and never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from logkit.envelope import Event, EventType
from logkit.usage import cost_of

Node = dict[str, Any]

_CALLS = {
    EventType.TOOL_CALL_STARTED: ("tool_call", None),
    EventType.TOOL_CALL_ENDED: ("tool_call", "ok"),
    EventType.TOOL_CALL_FAILED: ("tool_call", "failed"),
    EventType.MODEL_CALL_STARTED: ("model_call", None),
    EventType.MODEL_CALL_ENDED: ("model_call", "ok"),
    EventType.MODEL_CALL_FAILED: ("model_call", "failed"),
}
_INPUT = ("gen_ai.usage.input_tokens", "tokens_input")
_OUTPUT = ("gen_ai.usage.output_tokens", "tokens_output")


def _first(payload: dict[str, Any], names: tuple[str, ...]) -> int:
    for name in names:
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return 0


def number(value: Any) -> float | None:
    """A stored duration or latency as a number, or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def status_text(value: Any, default: str) -> str:
    """A stored status as text (any JSON value may be stored there)."""
    if value is None:
        return default
    return value if isinstance(value, str) else str(value)


class _Builder:
    def __init__(self, run_id: str) -> None:
        self.root: Node = {"type": "run", "run_id": run_id, "status": "unknown", "children": []}
        self.steps: dict[str, Node] = {}
        self.calls: dict[str, Node] = {}
        self.flow: Node | None = None

    def parent_of(self, event: Event) -> Node:
        if event.step_id and event.step_id in self.steps:
            return self.steps[event.step_id]
        return self.flow or self.root

    def add(self, event: Event) -> None:
        kind, p = event.event_type, event.payload
        if kind is EventType.FLOW_STARTED:
            self.flow = {
                "type": "flow",
                "name": p.get("name"),
                "status": "running",
                "started": event.ts.isoformat(),
                "children": [],
            }
            self.root["children"].append(self.flow)
        elif kind in (EventType.FLOW_ENDED, EventType.FLOW_FAILED) and self.flow is not None:
            self._finish(self.flow, p)
        elif kind is EventType.STEP_STARTED and event.step_id:
            node: Node = {
                "type": "step",
                "name": p.get("name"),
                "kind": p.get("kind"),
                "step_id": event.step_id,
                "status": "running",
                "children": [],
            }
            if "attempt" in p:
                node["attempt"] = p["attempt"]
            self.steps[event.step_id] = node
            parent = self.steps.get(event.parent_step_id or "") or self.flow or self.root
            parent["children"].append(node)
        elif kind in (EventType.STEP_ENDED, EventType.STEP_FAILED) and event.step_id in self.steps:
            self._finish(self.steps[event.step_id or ""], p)
        elif kind in _CALLS:
            self._call(event, *_CALLS[kind])
        elif kind is EventType.USAGE_RECORDED:
            self._usage(event)
        elif kind is EventType.AGENT_DECISION:
            self.parent_of(event)["children"].append(
                {
                    "type": "decision",
                    "choice": p.get("choice"),
                    "options": p.get("options"),
                    "reason": p.get("reason"),
                }
            )
        elif kind is EventType.STATE_PULSE:
            self.parent_of(event)["children"].append(
                {
                    "type": "pulse",
                    "key": p.get("key"),
                    "seq": p.get("seq"),
                    "mode": "snapshot" if "snapshot" in p else "patch",
                    "hash": p.get("hash"),
                }
            )
        else:
            self.parent_of(event)["children"].append(
                {"type": kind.value, "severity": event.severity.value, "summary": _summary(p)}
            )

    def _finish(self, node: Node, payload: dict[str, Any]) -> None:
        node["status"] = status_text(payload.get("status"), "ok")
        if "duration_ms" in payload:
            node["duration_ms"] = payload["duration_ms"]
        if node["status"] == "failed":
            node["error"] = {
                "type": payload.get("error.type"),
                "message": payload.get("error.message"),
            }

    def _call(self, event: Event, kind: str, status: str | None) -> None:
        p = event.payload
        key = str(p.get("call_id") or event.event_id)
        node = self.calls.get(key)
        if node is None:
            name = (
                p.get("gen_ai.tool.name")
                or "/".join(
                    str(x)
                    for x in (p.get("gen_ai.provider.name"), p.get("gen_ai.request.model"))
                    if x
                )
                or p.get("name")
                or kind
            )
            node = {"type": kind, "name": name, "status": "running"}
            self.calls[key] = node
            self.parent_of(event)["children"].append(node)
        if status is not None:
            node["status"] = status
            if "latency_ms" in p:
                node["latency_ms"] = p["latency_ms"]
            if status == "failed":
                node["error"] = {"type": p.get("error.type")}
            tokens = {"input": _first(p, _INPUT), "output": _first(p, _OUTPUT)}
            if any(tokens.values()):
                node["tokens"] = tokens

    def _usage(self, event: Event) -> None:
        p = event.payload
        node = self.parent_of(event)
        tokens = node.setdefault("tokens", {"input": 0, "output": 0})
        tokens["input"] += _first(p, _INPUT)
        tokens["output"] += _first(p, _OUTPUT)
        cost = cost_of(p)
        if cost is None:
            node["unpriced"] = node.get("unpriced", 0) + 1
            return
        currency = str(p.get("currency") or "USD")
        costs = node.setdefault("cost", {})
        costs[currency] = str(Decimal(costs.get(currency, "0")) + cost)


def _summary(payload: dict[str, Any], limit: int = 80) -> str:
    text = ", ".join(f"{k}={v}" for k, v in payload.items() if k != "_sealed")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _roll_up(node: Node) -> tuple[dict[str, int], dict[str, Decimal], int]:
    """Totals of tokens, cost and unpriced usage over a subtree, stored on every step, flow
    and the run."""
    tokens = {"input": 0, "output": 0}
    costs: dict[str, Decimal] = {}
    own_tokens, own_cost = node.get("tokens"), node.get("cost", {})
    unpriced = int(node.get("unpriced", 0))
    if node["type"] in ("step", "flow", "run") and own_tokens:
        for k in tokens:
            tokens[k] += own_tokens.get(k, 0)
    for currency, amount in own_cost.items():
        costs[currency] = costs.get(currency, Decimal(0)) + Decimal(amount)
    for child in node.get("children", []):
        if child["type"] in ("step", "flow"):
            sub_tokens, sub_costs, sub_unpriced = _roll_up(child)
            for k in tokens:
                tokens[k] += sub_tokens[k]
            for currency, amount in sub_costs.items():
                costs[currency] = costs.get(currency, Decimal(0)) + amount
            unpriced += sub_unpriced
    if node["type"] in ("step", "flow", "run"):
        if any(tokens.values()):
            node["total_tokens"] = tokens
        if costs:
            node["total_cost"] = {c: str(a) for c, a in costs.items()}
        if unpriced:
            node["total_unpriced"] = unpriced
    return tokens, costs, unpriced


def build_story(run_id: str, events: Iterable[Event]) -> Node:
    """The run's tree; events in (ts, event_id) order, as the stores return them."""
    builder = _Builder(run_id)
    for event in events:
        builder.add(event)
    flows = [c for c in builder.root["children"] if c["type"] == "flow"]
    if flows:
        builder.root["status"] = (
            "failed"
            if any(f["status"] == "failed" for f in flows)
            else ("running" if any(f["status"] == "running" for f in flows) else "ok")
        )
        durations = [f["duration_ms"] for f in flows if number(f.get("duration_ms")) is not None]
        if durations:
            builder.root["duration_ms"] = sum(durations)
    _roll_up(builder.root)
    return builder.root
