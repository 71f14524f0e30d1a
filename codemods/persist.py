"""The choke point: a legacy logger implementation that persists (``run(event)``) is migrated
onto logkit in place, keeping everything else it does.

Inside the function, and only there:

- ``<backend>.<storage method>(obj)`` (the legacy write, its result unused) becomes
  ``logkit.emit_event(logkit.from_legacy(obj))``: the object as the logger left it, PII flags
  and ``train_ok`` included, goes through logkit's contract check, redaction gate and sinks
  (an audit DatasetEvent onto the audit chain). Whatever handled the write's exceptions now
  handles logkit's: a handler that names specific exception types also gets
  ``logkit.LogkitError``, so "logkit refuses" follows the same path (``{"status": "error",
  ...}``) as "the backend failed" did;
- ``print(line)`` (its one JSON line on stdout) becomes ``<module logger>.info(line)``: logkit's
  developer log line (``logkit.configure_logging``), through the redaction gate;
- the computation before (PII stripping, the training opt-out), the mutations of the object,
  the result dicts and every name of the module stay exactly as they were. The import of the
  backend accessor goes only when nothing uses it any more and no test replaces it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import libcst as cst
import libcst.matchers as m

from .imports import LOGKIT, ImportSpec
from .shapes import select
from .syntax import assignments, nodes_of, single_name

if TYPE_CHECKING:
    from .transform import MigrateLegacyCallSites

_BROAD = frozenset({"Exception", "BaseException"})
LOGKIT_ERROR = "logkit.LogkitError"


@dataclass
class PersistPlan:
    """What to change in one logger implementation (keyed by the original nodes)."""

    writes: list[cst.Call] = field(default_factory=list)  # storage calls -> logkit
    prints: list[cst.Call] = field(default_factory=list)  # print(line) -> logger.info(line)
    handlers: list[cst.ExceptHandler] = field(default_factory=list)  # + logkit.LogkitError
    receivers: list[cst.CSTNode] = field(default_factory=list)  # get_backend (import may go)
    problems: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(self.writes or self.prints)


def plan_persist(
    function: cst.FunctionDef,
    storage: frozenset[str],
    parent: Callable[[cst.CSTNode], cst.CSTNode | None],
) -> PersistPlan:
    plan = PersistPlan()
    for call in _calls(function):
        if _is_storage_write(call, storage):
            _plan_write(plan, call, parent)
        elif _is_print_line(call) and isinstance(parent(call), cst.Expr):
            plan.prints.append(call)
    return plan


def _plan_write(
    plan: PersistPlan, call: cst.Call, parent: Callable[[cst.CSTNode], cst.CSTNode | None]
) -> None:
    name = _method(call)
    if not isinstance(parent(call), cst.Expr):
        plan.problems.append(f"the result of .{name}() is used: that write is kept")
        return
    if len(call.args) != 1 or call.args[0].keyword is not None or call.args[0].star:
        plan.problems.append(f".{name}() takes more than the object: that write is kept")
        return
    plan.writes.append(call)
    receiver = call.func.value if isinstance(call.func, cst.Attribute) else None
    if isinstance(receiver, cst.Call):
        plan.receivers.append(receiver.func)
    handler = _narrow_handler(call, parent)
    if handler is not None and handler not in plan.handlers:
        plan.handlers.append(handler)


def _is_storage_write(call: cst.Call, storage: frozenset[str]) -> bool:
    return isinstance(call.func, cst.Attribute) and call.func.attr.value in storage


def _method(call: cst.Call) -> str:
    return call.func.attr.value if isinstance(call.func, cst.Attribute) else "?"


def _is_print_line(call: cst.Call) -> bool:
    """``print(line)`` to stdout: one positional argument; ``flush=`` and ``file=sys.stdout``
    change nothing a log line would not do."""
    if not m.matches(call.func, m.Name("print")) or any(a.star for a in call.args):
        return False
    positional = [a for a in call.args if a.keyword is None]
    keywords = [a for a in call.args if a.keyword is not None]
    return len(positional) == 1 and all(_harmless(a) for a in keywords)


def _harmless(arg: cst.Arg) -> bool:
    assert arg.keyword is not None
    if arg.keyword.value == "flush":
        return True
    return arg.keyword.value == "file" and m.matches(
        arg.value, m.Attribute(value=m.Name("sys"), attr=m.Name("stdout"))
    )


def _narrow_handler(
    node: cst.CSTNode, parent: Callable[[cst.CSTNode], cst.CSTNode | None]
) -> cst.ExceptHandler | None:
    """The first handler of the ``try`` around ``node`` when no handler of it catches
    everything (bare, Exception, BaseException); None when one does, or there is no try."""
    current: cst.CSTNode | None = node
    while current is not None and not isinstance(current, cst.FunctionDef):
        above = parent(current)
        if isinstance(above, cst.Try) and current is above.body:
            handlers = list(above.handlers)
            if not handlers or any(_catches_all(h) for h in handlers):
                return None
            return handlers[0]
        current = above
    return None


def _catches_all(handler: cst.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    types = (
        [e.value for e in handler.type.elements]
        if isinstance(handler.type, cst.Tuple)
        else [handler.type]
    )
    return any(isinstance(t, cst.Name) and t.value in _BROAD for t in types)


def emit_through_logkit(updated: cst.Call) -> cst.Call:
    """``backend.write_event(evt)`` -> ``logkit.emit_event(logkit.from_legacy(evt))``."""
    arg = updated.args[0]
    adapted = cst.Call(
        func=cst.Attribute(cst.Name("logkit"), cst.Name("from_legacy")),
        args=[arg.with_changes(comma=cst.MaybeSentinel.DEFAULT)],
    )
    return updated.with_changes(
        func=cst.Attribute(cst.Name("logkit"), cst.Name("emit_event")),
        args=[cst.Arg(adapted)],
    )


def log_line(logger: str) -> Callable[[cst.Call], cst.Call]:
    """``print(line)`` -> ``<logger>.info(line)`` (``logger`` is an expression's source)."""

    def rewrite(updated: cst.Call) -> cst.Call:
        line = next(a for a in updated.args if a.keyword is None)
        return updated.with_changes(
            func=cst.parse_expression(f"{logger}.info"),
            args=[line.with_changes(comma=cst.MaybeSentinel.DEFAULT)],
        )

    return rewrite


def also_catch_logkit(handler: cst.ExceptHandler) -> cst.ExceptHandler:
    """``except BackendError as exc:`` -> ``except (BackendError, logkit.LogkitError) as exc:``."""
    assert handler.type is not None
    extra = cst.parse_expression(LOGKIT_ERROR)
    if isinstance(handler.type, cst.Tuple):
        elements = [*handler.type.elements]
        last = elements[-1].with_changes(
            comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        )
        return handler.with_changes(
            type=handler.type.with_changes(elements=[*elements[:-1], last, cst.Element(extra)])
        )
    pair = cst.Tuple(
        [
            cst.Element(handler.type, comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
            cst.Element(extra),
        ]
    )
    return handler.with_changes(type=pair)


def module_logger(module: cst.Module) -> str | None:
    """The name a module binds to ``logging.getLogger(...)`` at its top level, if any."""
    get_logger = m.Call(func=m.Attribute(value=m.Name("logging"), attr=m.Name("getLogger")))
    for assign in assignments(module.body):
        target = single_name(assign)
        if target is not None and m.matches(assign.value, get_logger):
            return target.value
    return None


class _Calls(cst.CSTVisitor):
    """The calls of one function's own body (a nested function is not the logger)."""

    def __init__(self, top: cst.FunctionDef) -> None:
        self.top = top
        self.found: list[cst.Call] = []

    def visit_Call(self, node: cst.Call) -> None:
        self.found.append(node)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return node is self.top


def _calls(function: cst.FunctionDef) -> list[cst.Call]:
    visitor = _Calls(function)
    function.visit(visitor)
    return visitor.found


# --- planning, in the module that defines the logger -------------------------------------------

_TAKEN = "the name logkit is bound to something else here"


def plan_loggers(command: MigrateLegacyCallSites) -> None:
    """Plan the rewrite of each logger of the project that persists and is defined here."""
    filename = command.context.filename
    here = Path(filename).resolve() if filename else None
    for logger in command.project.loggers.values():
        if logger.kind != "persists" or logger.migrated or logger.path is None:
            continue
        if here is None or Path(logger.path).resolve() != here:
            continue
        name = logger.name.rsplit(".", 1)[-1]
        function = next(
            (
                f
                for f in command.tree.body
                if isinstance(f, cst.FunctionDef) and f.name.value == name
            ),
            None,
        )
        if function is not None and _selected(command, function):
            _plan(command, function, logger.name)


def _selected(command: MigrateLegacyCallSites, function: cst.FunctionDef) -> bool:
    """Is the logger's object one of the shapes this run migrates (``--only``)? Read from its
    first parameter's annotation; unannotated, only when every shape is selected."""
    params = [*function.params.posonly_params, *function.params.params]
    annotation = params[0].annotation if params else None
    if annotation is None:
        return len(command.shapes) == len(select(None))
    names: set[str] = set()
    for node in nodes_of(annotation.annotation, cst.Name, cst.Attribute):
        names |= command.qualified(node)
    return bool(names & set(command.by_class))


def _plan(command: MigrateLegacyCallSites, function: cst.FunctionDef, name: str) -> None:
    storage = frozenset(command.project.config.storage)
    plan = plan_persist(function, storage, command.parent)
    problems = "; ".join(plan.problems)
    if not plan.changes:
        command.report_node(function, "logger", "left", problems or "nothing to migrate", name)
        return
    if command.logkit_taken:
        command.report_node(function, "logger", "left", _TAKEN, name)
        return
    for call in plan.writes:
        command.plan(call, emit_through_logkit)
    logger = module_logger(command.tree)
    if plan.prints:
        if logger is None:
            command.need(ImportSpec("logging"))
        line = log_line(logger or "logging.getLogger(__name__)")
        for call in plan.prints:
            command.plan(call, line)
    for handler in plan.handlers:
        command.plan(handler, also_catch_logkit)
    for receiver in plan.receivers:
        accessor = f"{command.module_name}.{command.tree.code_for_node(receiver)}"
        if not command.project.is_patched(accessor):
            command.unused.drop(receiver)
    command.need(LOGKIT)
    done = ["its storage write now goes through logkit"]
    if plan.prints:
        done.append(f"its stdout line is a log line ({logger or 'logging'}.info)")
    if problems:
        done.append(problems)
    command.report_node(function, "logger", "migrated", "; ".join(done), name)
