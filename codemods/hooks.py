"""Injected hooks: which ``self`` attributes hold one, which methods forward to one, and the
rewrite of a hook's default.

LEGACY.md's services take ``model_call_logger=None`` (or ``event_logger=<no-op>``) and call it
through ``self._model_call_logger(call)`` or a small wrapper (``self._log_model_call(call)``)
that may swallow its errors or do more work first. A call through a hook is never rewritten:
an injected hook keeps being called, the wrapper keeps its work. What changes is the
*default*: ``self._hook = param`` becomes
``self._hook = param if param is not None else legacy_hook({...})``, so production wiring
that injects nothing now reaches logkit, through a default that never raises
(:mod:`.runtime`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m

RUNTIME = "logkit.codemods.runtime"
HOOK_FACTORY = "legacy_hook"


@dataclass
class Hook:
    """One hook attribute of a class: ``self.<attr> = <param>`` in ``__init__``."""

    owner: str  # the class name
    attr: str
    param: str
    default: cst.BaseExpression | None  # None: the parameter is required
    assign: cst.Assign
    annotation: cst.BaseExpression | None
    migrated: bool = False  # the default is already a legacy_hook(...)
    shapes: set[str] = field(default_factory=set)  # legacy classes seen handed to it


@dataclass
class ClassHooks:
    attrs: dict[str, Hook] = field(default_factory=dict)
    wrappers: dict[str, str] = field(default_factory=dict)  # method -> hook attribute


def class_hooks(cls: cst.ClassDef, is_hook: Callable[[cst.Param], bool]) -> ClassHooks:
    """The hooks of ``cls``: attributes set from hook parameters of ``__init__``, and the
    methods that call one of them with their own first argument."""
    found = ClassHooks()
    methods = [s for s in cls.body.body if isinstance(s, cst.FunctionDef)]
    init = next((f for f in methods if f.name.value == "__init__"), None)
    if init is not None:
        params = {p.name.value: p for p in _params(init) if is_hook(p)}
        for assign in _assignments(init):
            hook = _hook_of(cls.name.value, assign, params)
            if hook is not None:
                found.attrs[hook.attr] = hook
    for method in methods:
        args = [p.name.value for p in _params(method)][1:]
        if args and method.name.value != "__init__":
            attr = _forwarded_to(method, args[0], found.attrs)
            if attr is not None:
                found.wrappers[method.name.value] = attr
    return found


def _params(function: cst.FunctionDef) -> list[cst.Param]:
    p = function.params
    return [*p.posonly_params, *p.params, *p.kwonly_params]


def _assignments(function: cst.FunctionDef) -> list[cst.Assign]:
    body = function.body.body if isinstance(function.body, cst.IndentedBlock) else ()
    return [
        small
        for line in body
        if isinstance(line, cst.SimpleStatementLine)
        for small in line.body
        if isinstance(small, cst.Assign)
    ]


def _hook_of(owner: str, assign: cst.Assign, params: dict[str, cst.Param]) -> Hook | None:
    """``self.x = param`` (or its migrated form) where ``param`` is a hook parameter."""
    if len(assign.targets) != 1 or not m.matches(
        assign.targets[0].target, m.Attribute(value=m.Name("self"))
    ):
        return None
    target = assign.targets[0].target
    assert isinstance(target, cst.Attribute)
    value = assign.value
    migrated = False
    if isinstance(value, cst.IfExp) and _is_factory_call(value.orelse):
        value, migrated = value.body, True
    if not isinstance(value, cst.Name) or value.value not in params:
        return None
    param = params[value.value]
    annotation = param.annotation.annotation if param.annotation else None
    return Hook(owner, target.attr.value, value.value, param.default, assign, annotation, migrated)


def _is_factory_call(node: cst.BaseExpression) -> bool:
    return m.matches(node, m.Call(func=m.Name(HOOK_FACTORY)))


def _forwarded_to(method: cst.FunctionDef, arg: str, attrs: dict[str, Hook]) -> str | None:
    """The hook attribute ``method`` calls with ``arg``, if any."""
    for call in _calls(method):
        func = call.func
        if (
            m.matches(func, m.Attribute(value=m.Name("self")))
            and isinstance(func, cst.Attribute)
            and func.attr.value in attrs
            and any(m.matches(a.value, m.Name(arg)) for a in call.args)
        ):
            return func.attr.value
    return None


class _Calls(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found: list[cst.Call] = []

    def visit_Call(self, node: cst.Call) -> None:
        self.found.append(node)


def _calls(node: cst.CSTNode) -> list[cst.Call]:
    visitor = _Calls()
    node.visit(visitor)
    return visitor.found


def default_value(hook: Hook, routes: dict[str, str]) -> cst.IfExp:
    """``param if param is not <default> else legacy_hook({...})``."""
    table = ", ".join(f'"{cls}": "{target}"' for cls, target in sorted(routes.items()))
    factory = f"{HOOK_FACTORY}({{{table}}})" if routes else f"{HOOK_FACTORY}()"
    default = hook.default if hook.default is not None else cst.Name("None")
    test = cst.Comparison(
        left=cst.Name(hook.param),
        comparisons=[cst.ComparisonTarget(cst.IsNot(), default)],
    )
    return cst.IfExp(test=test, body=cst.Name(hook.param), orelse=cst.parse_expression(factory))
