"""Direct rewrites: a legacy construction -> the canonical ``logkit.emit(...)`` call.

The field mappings are the adapters' (logkit/adapters.py), decided statically. Where the
adapter decides at run time (is this traceId W3C hex? is this an audit event? is this dict
JSON?), a direct rewrite could change behaviour, so the builder returns the reason instead
and the caller falls back to ``logkit.emit_event(logkit.from_legacy(obj))``, which keeps the
adapter's run-time decisions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst
import libcst.matchers as m

from .layout import Source, Value

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_ACTOR_TYPES = frozenset({"human", "agent", "system"})
# Builtins whose result is always a JSON value (str/int/bool), whatever their argument.
_JSON_CALLS = frozenset({"builtins.str", "builtins.int", "builtins.bool", "builtins.len"})


@dataclass(frozen=True)
class Emission:
    """What a direct rewrite emits: ``logkit.emit(event_type, payload, **fields)``."""

    event_type: str
    payload: list[tuple[str, Value]]
    fields: list[tuple[str, Value]]


class Arguments:
    """The keyword arguments of one legacy construction, with helpers to read them."""

    def __init__(
        self,
        call: cst.Call,
        source: Callable[[cst.Arg], Source],
        qualified: Callable[[cst.CSTNode], set[str]],
    ) -> None:
        self.call = call
        self.source = source
        self.qualified = qualified
        self.by_name = {a.keyword.value: a for a in call.args if a.keyword is not None}
        self.order = [a.keyword.value for a in call.args if a.keyword is not None]

    def literal(self, name: str) -> str | None:
        """The value of a plain string literal argument, else None."""
        value = self.by_name[name].value
        if isinstance(value, cst.SimpleString) and value.prefix.lower() in ("", "r", "u"):
            evaluated = value.evaluated_value
            return evaluated if isinstance(evaluated, str) else None
        return None

    def is_none(self, name: str) -> bool:
        return m.matches(self.by_name[name].value, m.Name("None"))

    def is_json(self, node: cst.BaseExpression) -> bool:
        """True when ``node`` evaluates to a JSON value whatever the run-time state."""
        if isinstance(node, cst.Dict):
            return all(
                isinstance(e, cst.DictElement)
                and isinstance(e.key, cst.SimpleString | cst.FormattedString)
                and self.is_json(e.key)
                and self.is_json(e.value)
                for e in node.elements
            )
        if isinstance(node, cst.List | cst.Tuple):
            return all(isinstance(e, cst.Element) and self.is_json(e.value) for e in node.elements)
        if isinstance(node, cst.Call):
            return bool(self.qualified(node.func) & _JSON_CALLS)
        if isinstance(node, cst.ConcatenatedString):
            return self.is_json(node.left) and self.is_json(node.right)
        if isinstance(node, cst.UnaryOperation):
            return isinstance(node.operator, cst.Minus) and self.is_json(node.expression)
        return _is_json_atom(node)


def _is_json_atom(node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.SimpleString):
        return "b" not in node.prefix.lower()
    if isinstance(node, cst.Name):
        return node.value in ("True", "False", "None")
    return isinstance(node, cst.Integer | cst.Float | cst.FormattedString)


# --- DatasetEvent --------------------------------------------------------------------------

_DS_ENVELOPE = {"tenantId": "tenant_id", "env": "env", "surface": "surface_id"}
_DS_SCALARS = {  # str/bool fields: the legacy model already refused anything but str/bool
    "agentId": "agent_id",
    "train_ok": "train_ok",
    "analytics_event_type": "analytics_event_type",
    "analytics_platform": "analytics_platform",
}
_DS_DICTS = ("input", "output", "pii_flags", "metadata")  # Dict[str, Any]: JSON only if provable
_DS_GROUPS = {
    **dict.fromkeys(("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"), "utm"),
    **dict.fromkeys(("seo_slug", "seo_title", "seo_description", "asset_alt_text"), "seo"),
}
_DS_CHECKED = ("requestId", "traceId", "actorType")
_DS_REQUIRED = ("tenantId", "env", "surface", "agentId", "input", "output")


def dataset_event(args: Arguments) -> Emission | str:
    """DatasetEvent -> ``logkit.emit("dataset_event", ...)``, or why not."""
    problem = _unsupported(
        args, {*_DS_ENVELOPE, *_DS_SCALARS, *_DS_DICTS, *_DS_GROUPS, *_DS_CHECKED}, _DS_REQUIRED
    )
    if problem:
        return problem
    if "analytics_event_type" in args.by_name:
        kind = args.literal("analytics_event_type")
        if kind is None and not args.is_none("analytics_event_type"):
            return "analytics_event_type is decided at run time (an audit event or not)"
        if kind == "audit":
            return "an audit DatasetEvent: the adapter maps it to audit_action on the chain"
    payload: list[tuple[str, Value]] = []
    fields: list[tuple[str, Value]] = []
    groups: dict[str, list[tuple[str, Value]]] = {}
    for name in args.order:
        problem = _dataset_field(args, name, payload, fields, groups)
        if problem:
            return problem
    # The legacy defaults, which the adapter writes out too (consent is always in the payload).
    if "pii_flags" not in args.by_name:
        payload.append(("pii_flags", "{}"))
    if "train_ok" not in args.by_name:
        payload.append(("train_ok", "True"))
    return Emission("dataset_event", payload, fields)


def _dataset_field(
    args: Arguments,
    name: str,
    payload: list[tuple[str, Value]],
    fields: list[tuple[str, Value]],
    groups: dict[str, list[tuple[str, Value]]],
) -> str | None:
    """Place one DatasetEvent argument in the envelope or the payload, or say why not."""
    arg = args.by_name[name]
    if name in _DS_DICTS and not args.is_json(arg.value):
        return f"{name}= is not provably JSON (the adapter converts datetimes, Decimals...)"
    if name in _DS_ENVELOPE:
        fields.append((_DS_ENVELOPE[name], args.source(arg)))
    elif name in _DS_CHECKED:
        return _checked(args, name, payload, fields)
    elif name in _DS_GROUPS:
        group = _DS_GROUPS[name]
        if group not in groups:
            groups[group] = []
            payload.append((group, groups[group]))
        groups[group].append((name, args.source(arg)))
    else:
        payload.append((_DS_SCALARS.get(name, name), args.source(arg)))
    return None


def _checked(
    args: Arguments, name: str, payload: list[tuple[str, Value]], fields: list[tuple[str, Value]]
) -> str | None:
    """requestId/traceId/actorType: the adapter validates them, so only literals go direct."""
    if args.is_none(name):
        return None
    value = args.literal(name)
    if value is None:
        return f"{name}= is checked at run time by the adapter (empty, W3C, actor type)"
    text = args.source(args.by_name[name])
    if value == "":
        return None  # the adapter drops empty values
    if name == "requestId":
        fields.append(("request_id", text))
    elif name == "traceId":
        (fields if _TRACE_ID.fullmatch(value) else payload).append(
            ("trace_id" if _TRACE_ID.fullmatch(value) else "legacy_trace_id", text)
        )
    elif value in _ACTOR_TYPES:
        fields.append(("actor_type", text))
    else:
        payload.append(("legacy_actor_type", text))
    return None


def _unsupported(args: Arguments, known: set[str], required: tuple[str, ...]) -> str | None:
    if any(a.star for a in args.call.args):
        return "**kwargs: the fields are only known at run time"
    unknown = [name for name in args.order if name not in known]
    if unknown:
        return f"unknown field {unknown[0]}= (the legacy model ignores it; review by hand)"
    missing = [name for name in required if name not in args.by_name]
    if missing:
        return f"required field {missing[0]}= is missing (the legacy model raises)"
    return None


# --- ModelCallLog ---------------------------------------------------------------------------

_MC_ENVELOPE = {"tenant_id": "tenant_id", "env": "env", "call_id": "event_id"}
_MC_PAYLOAD = ("model_id", "purpose", "output_dimensions", "episode_id")  # str/int fields
_MC_REQUIRED = ("tenant_id", "env", "model_id", "purpose", "prompt", "output_dimensions")


def model_call_log(args: Arguments, prompt_class: str) -> Emission | str:
    """ModelCallLog(prompt=PromptSnapshot(text=...)) -> ``logkit.emit("model_call_ended", ...)``."""
    known = {*_MC_ENVELOPE, *_MC_PAYLOAD, "prompt", "created_at"}
    problem = _unsupported(args, known, _MC_REQUIRED)
    if problem:
        return problem
    if "created_at" in args.by_name:
        return "created_at= becomes the event time: the adapter converts it"
    payload: list[tuple[str, Value]] = []
    fields: list[tuple[str, Value]] = []
    for name in args.order:
        arg = args.by_name[name]
        if name == "prompt":
            prompt = _prompt(args, arg.value, prompt_class)
            if isinstance(prompt, str):
                return prompt
            payload.append(("prompt", prompt))
        elif name in _MC_ENVELOPE:
            fields.append((_MC_ENVELOPE[name], args.source(arg)))
        else:
            payload.append((name, args.source(arg)))
    return Emission("model_call_ended", payload, fields)


def _prompt(args: Arguments, value: cst.BaseExpression, prompt_class: str) -> Value | str:
    """An inline ``PromptSnapshot(text=...)`` becomes ``{"text": ...}``; anything else: why not."""
    if not isinstance(value, cst.Call) or prompt_class not in args.qualified(value.func):
        return "prompt= is not an inline PromptSnapshot(text=...)"
    inner = Arguments(value, args.source, args.qualified)
    if any(a.keyword is None for a in value.args) or set(inner.by_name) != {"text"}:
        return "PromptSnapshot(...) takes more than text=: the adapter keeps its created_at"
    # The text goes into the payload, so it passes the redaction gate like every payload.
    return [("text", args.source(inner.by_name["text"]))]
