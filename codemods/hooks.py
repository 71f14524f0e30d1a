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
from typing import TYPE_CHECKING

import libcst as cst
import libcst.matchers as m

from .config import HOOK_TYPES
from .imports import ImportSpec
from .loggers import route
from .shapes import Shape, select
from .syntax import assignments, nodes_of
from .verdict import Verdict, short

if TYPE_CHECKING:
    from .transform import MigrateLegacyCallSites

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
    fallback: cst.BaseExpression | None = None  # ``self.x = param or <fallback>``

    @property
    def effective_default(self) -> cst.BaseExpression | None:
        """What the attribute holds when nothing is injected (None: the hook is required)."""
        return self.fallback if self.fallback is not None else self.default


# A site handed to a hook: (the construction, its shape, the hook, the via name).
Pending = tuple[cst.Call, Shape, Hook, str]


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
    return assignments(function.body.body if isinstance(function.body, cst.IndentedBlock) else ())


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
    fallback = None
    if isinstance(value, cst.IfExp) and _is_factory_call(value.orelse):
        value, migrated = value.body, True
    elif isinstance(value, cst.BooleanOperation) and isinstance(value.operator, cst.Or):
        migrated = _is_factory_call(value.right)
        fallback = None if migrated else value.right
        value = value.left
    if not isinstance(value, cst.Name) or value.value not in params:
        return None
    param = params[value.value]
    annotation = param.annotation.annotation if param.annotation else None
    hook = Hook(owner, target.attr.value, value.value, param.default, assign, annotation, migrated)
    hook.fallback = fallback
    return hook


def _is_factory_call(node: cst.BaseExpression) -> bool:
    return m.matches(node, m.Call(func=m.Name(HOOK_FACTORY)))


def _forwarded_to(method: cst.FunctionDef, arg: str, attrs: dict[str, Hook]) -> str | None:
    """The hook attribute ``method`` calls with ``arg``, if any."""
    for call in nodes_of(method, cst.Call):
        func = call.func
        if (
            m.matches(func, m.Attribute(value=m.Name("self")))
            and isinstance(func, cst.Attribute)
            and func.attr.value in attrs
            and any(m.matches(a.value, m.Name(arg)) for a in call.args)
        ):
            return func.attr.value
    return None


def default_value(hook: Hook, routes: dict[str, str]) -> cst.IfExp | cst.BooleanOperation:
    """``param if param is not <default> else legacy_hook({...})``, or, where the attribute
    was ``param or <fallback>``, ``param or legacy_hook({...})``."""
    table = ", ".join(f'"{cls}": "{target}"' for cls, target in sorted(routes.items()))
    factory = f"{HOOK_FACTORY}({{{table}}})" if routes else f"{HOOK_FACTORY}()"
    if hook.fallback is not None:
        return cst.BooleanOperation(
            left=cst.Name(hook.param), operator=cst.Or(), right=cst.parse_expression(factory)
        )
    default = hook.default if hook.default is not None else cst.Name("None")
    test = cst.Comparison(
        left=cst.Name(hook.param),
        comparisons=[cst.ComparisonTarget(cst.IsNot(), default)],
    )
    return cst.IfExp(test=test, body=cst.Name(hook.param), orelse=cst.parse_expression(factory))


# --- planning the defaults ------------------------------------------------------------------

_TAKEN = "the name logkit (or legacy_hook) is bound to something else here"


class HookDefaults:
    """Decide each hook's default once, after the sites: the sites handed to a hook are routed
    when its default reaches logkit; a typed hook (``ModelCallLogger``) gets its default even
    when no site in the module is handed to it."""

    def __init__(self, command: MigrateLegacyCallSites) -> None:
        self.command = command
        self.config = command.project.config

    def is_hook_param(self, param: cst.Param) -> bool:
        if param.name.value in self.config.hook_names:
            return True
        return param.annotation is not None and self._names_a_hook_type(param.annotation)

    def plan(self, pending: list[Pending]) -> None:
        command = self.command
        decided: dict[int, str | None] = {}
        for call, shape, hook, via in pending:
            if id(hook) not in decided:
                decided[id(hook)] = self._plan_default(hook)
            problem = decided[id(hook)]
            if problem is None:
                target = self._routes(hook).get(shape.simple_name, "logkit")
                reason = (
                    f"injected hook {hook.param}: still called when injected; without one its "
                    f"default now hands the object to {short(target)}"
                )
                command.report(call, shape, Verdict("routed", reason, via))
            else:
                command.report(call, shape, Verdict("left", problem, via))
        for hooks in command.hooks.values():
            for hook in hooks.attrs.values():
                if id(hook) in decided or hook.effective_default is None or not hook.annotation:
                    continue
                if self._typed_and_selected(hook.annotation):
                    problem = self._plan_default(hook)
                    if problem is not None:
                        command.report_node(hook.assign, "hook", "left", problem, hook.attr)

    def _typed_and_selected(self, annotation: cst.BaseExpression) -> bool:
        """A hook type (``ModelCallLogger``) whose legacy class this run migrates (all of them
        without ``--only``)."""
        types: set[str] = set()
        for node in _names(annotation):
            types |= self.command.qualified(node) & self.config.hook_types
        if not types:
            return False
        if len(self.command.shapes) == len(select(None)):
            return True
        return any(HOOK_TYPES.get(t) in self.command.by_class for t in types)

    def _names_a_hook_type(self, annotation: cst.Annotation) -> bool:
        types = self.config.hook_types
        return any(self.command.qualified(node) & types for node in _names(annotation.annotation))

    def _plan_default(self, hook: Hook) -> str | None:
        """Rewrite the hook's default; None when it reaches logkit, else why not."""
        command = self.command
        if hook.migrated:
            return None
        if hook.effective_default is None:
            return f"the hook {hook.param} is required: it reaches whatever its caller injects"
        if not isinstance(hook.effective_default, cst.Name | cst.Attribute):
            return f"the default of {hook.param} is not a name: rewrite it by hand"
        if command.logkit_taken or command.binds_otherwise(
            HOOK_FACTORY, lambda n: isinstance(n, cst.ImportFrom)
        ):
            return _TAKEN
        routes = self._routes(hook)
        for shape, target in routes.items():
            found = route(command.project.loggers, target)
            if not found.reaches:
                return f"{shape} must reach {short(target)}, which does not: {found.problem}"
        value = default_value(hook, routes)
        layout = _with_value(value, command.column(hook.assign), command.project.line_length)
        command.plan(hook.assign, layout)
        command.need(ImportSpec(RUNTIME, HOOK_FACTORY))
        where = f"{hook.owner}({hook.param}=...)"
        targets = ", ".join(f"{cls} to {short(t)}" for cls, t in routes.items())
        detail = f" (hands {targets}; any other object to logkit)" if targets else ""
        command.report_node(
            hook.assign,
            "hook",
            "migrated",
            f"without an injected hook, {where} now logs to logkit{detail}; it never raises",
            f"{command.module_name}.{hook.owner}.{hook.attr}",
        )
        return None

    def _routes(self, hook: Hook) -> dict[str, str]:
        """Legacy class (simple name) -> the logger a hook default hands it to."""
        routes = self.config.routes
        return {
            cls.rsplit(".", 1)[-1]: routes[cls]
            for cls in sorted(hook.shapes | self._annotated(hook))
            if cls in routes
        }

    def _annotated(self, hook: Hook) -> set[str]:
        """The legacy classes the hook's annotation names (``Callable[[DatasetEvent], Any]``)."""
        if hook.annotation is None:
            return set()
        classes = set(self.command.by_class)
        found: set[str] = set()
        for node in _names(hook.annotation):
            found |= self.command.qualified(node) & classes
        return found


def _names(node: cst.CSTNode) -> list[cst.CSTNode]:
    return nodes_of(node, cst.Name, cst.Attribute)


def _with_value(
    value: cst.IfExp | cst.BooleanOperation, column: int, limit: int
) -> Callable[[cst.Assign], cst.Assign]:
    """Replace an assignment's value with ``value``, laid out as ruff format would: on the
    line if it fits, else in parentheses on a line of its own, else one part per line."""

    def rewrite(updated: cst.Assign) -> cst.Assign:
        code = cst.Module([]).code_for_node
        flat = updated.with_changes(value=value)
        if column + len(code(flat)) <= limit:
            return flat
        # Continuation lines are relative to the statement: libcst adds the block's indent.
        pad = " " * 4
        inner = code(value)
        if column + len(pad) + len(inner) <= limit:
            text = f"(\n{pad}{inner}\n)"
        elif isinstance(value, cst.BooleanOperation):
            text = f"(\n{pad}{code(value.left)}\n{pad}or {code(value.right)}\n)"
        else:
            text = (
                f"(\n{pad}{code(value.body)}\n{pad}if {code(value.test)}\n"
                f"{pad}else {code(value.orelse)}\n)"
            )
        return updated.with_changes(value=cst.parse_expression(text))

    return rewrite
