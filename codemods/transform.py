"""The libcst codemod: plan every legacy construction of a module, then apply the plans.

Planning looks at the whole module first (names resolved through imports, variables through
scopes), because one rewrite can span two statements (``evt = DatasetEvent(...)`` and
``log_event(evt)``). Each construction ends up in one of three tiers, reported as a Site:

- converted: only a logger sees the object, right away, and every field maps statically ->
  ``logkit.emit(...)``; the legacy import goes when nothing else uses it;
- adapted: the object is kept (used after logging, or a field the adapter checks at run
  time) and each logger call becomes ``logkit.emit_event(logkit.from_legacy(obj))``;
- left: anything else (the logger's result is used, the object is returned, ...), untouched.

Runs under ``logkit codemod apply`` and under ``python -m libcst.tool codemod`` alike.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

import libcst as cst
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.codemod.visitors import AddImportsVisitor, ImportItem, RemoveImportsVisitor
from libcst.metadata import (
    FunctionScope,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    QualifiedNameSource,
    ScopeProvider,
)
from libcst.metadata.scope_provider import Assignment, ImportAssignment

from codemods import direct
from codemods.imports import add_logkit_import
from codemods.layout import Source, emit_call
from codemods.report import Action, Site
from codemods.resolve import absolute, package_of, project_root
from codemods.shapes import PROMPT_SNAPSHOT, Shape, select
from codemods.syntax import (
    adapter_call,
    argument_comments,
    count_comments,
    has_multiline_string,
    imports_logkit,
    is_multiline,
    keep_blank_lines,
    merge_lines,
    nodes_of,
    single_name,
    sole_argument,
)

_ALREADY = frozenset({"logkit.from_legacy", "logkit.adapters.from_legacy"})
Plan = Callable[[cst.Call], cst.BaseExpression]


class MigrateLegacyCallSites(VisitorBasedCodemodCommand):
    """Rewrite the legacy logging call sites (DatasetEvent, ModelCallLog, ...) onto logkit."""

    DESCRIPTION = "Migrate legacy DatasetEvent/ModelCallLog/... call sites onto logkit."
    METADATA_DEPENDENCIES = (
        QualifiedNameProvider,
        ScopeProvider,
        PositionProvider,
        ParentNodeProvider,
    )

    def __init__(self, context: CodemodContext, only: Sequence[str] | None = None) -> None:
        super().__init__(context)
        self.shapes = select(tuple(only) if only else None)
        self.sites: list[Site] = []
        self._by_class = {shape.class_name: shape for shape in self.shapes}
        self._calls: dict[cst.Call, Plan] = {}
        self._lines: dict[cst.SimpleStatementLine, cst.SimpleStatementLine | None] = {}
        self._module = cst.Module(body=[])
        self._package = ""
        self._logkit_taken = False
        self._needs_logkit = False

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        arg_parser.add_argument("--only", action="append", help="Shape names to migrate.")

    def transform_module(self, tree: cst.Module) -> cst.Module:
        """The codemod, then libcst's import removal, the blank lines it dropped, and
        ``import logkit`` where an import sorter would put it."""
        self._needs_logkit = False
        migrated = keep_blank_lines(tree, super().transform_module(tree))
        if not self._needs_logkit:
            return migrated
        return add_logkit_import(migrated, self._first_party, self._after_last_import)

    def _first_party(self, name: str) -> bool:
        """isort's first party: the module's own top package, or a sibling of it."""
        if name == self._package.split(".")[0]:
            return True
        filename = self.context.filename
        root = project_root(Path(filename), self._package) if filename else None
        return root is not None and ((root / name).is_dir() or (root / f"{name}.py").is_file())

    def _after_last_import(self, module: cst.Module) -> cst.Module:
        """The fallback: libcst's AddImportsVisitor (after the last top-level import)."""
        adder = AddImportsVisitor(self.context, [ImportItem("logkit", None, None)])
        return adder.transform_module(module)

    # --- planning ---------------------------------------------------------------------------

    def visit_Module(self, node: cst.Module) -> bool:
        self._module = node
        self._package = self.context.full_package_name or (
            package_of(Path(self.context.filename)) if self.context.filename else ""
        )
        self._logkit_taken = self._binds_logkit_otherwise(node)
        for call in nodes_of(node, cst.Call):
            self._consider(call)
        return True

    def _binds_logkit_otherwise(self, module: cst.Module) -> bool:
        """Does the module use the name ``logkit`` for something else than the library?"""
        scope = self.get_metadata(ScopeProvider, module, None)
        if scope is None or "logkit" not in scope:
            return False
        return not all(
            isinstance(a, ImportAssignment) and imports_logkit(a.node) for a in scope["logkit"]
        )

    def _consider(self, call: cst.Call) -> None:
        shape, other = self._shape_of(call.func)
        if shape is None:
            if other is not None:
                lookalike = next(s for s in self.shapes if s.simple_name == _last(other))
                self._report(call, lookalike, "left", f"{other} is not the legacy class")
            return
        if shape.left_reason:
            self._report(call, shape, "left", shape.left_reason)
            return
        if self._logkit_taken:
            self._report(call, shape, "left", "the name logkit is bound to something else here")
            return
        if any(arg.keyword is None and not arg.star for arg in call.args):
            self._report(call, shape, "left", "positional arguments (the model takes keywords)")
            return
        parent = self._parent(call)
        if isinstance(parent, cst.Arg):
            self._inline(shape, call, self._parent(parent))
        elif isinstance(parent, cst.Assign) and single_name(parent) is not None:
            self._assigned(shape, call, parent)
        else:
            self._report(call, shape, "left", "not handed to a logger here " + _usage(parent))

    def _shape_of(self, func: cst.BaseExpression) -> tuple[Shape | None, str | None]:
        """The legacy shape ``func`` names, else the full name of a same-named lookalike."""
        lookalike = None
        for qualified in self._qualified_names(func):
            shape = self._by_class.get(qualified)
            if shape is not None:
                return shape, None
            if any(s.simple_name == _last(qualified) for s in self.shapes):
                lookalike = qualified
        return None, lookalike

    def _qualified_names(self, node: cst.CSTNode) -> set[str]:
        names = self.get_metadata(QualifiedNameProvider, node, set())
        return {
            absolute(q.name, self._package) if q.source is QualifiedNameSource.IMPORT else q.name
            for q in names
        }

    def _inline(self, shape: Shape, call: cst.Call, consumer: cst.CSTNode | None) -> None:
        """``log_event(DatasetEvent(...))``."""
        problem = self._logger_problem(shape, consumer, call)
        if problem == _ALREADY_DONE:
            return
        if problem is not None or not isinstance(consumer, cst.Call):
            self._report(call, shape, "left", problem or "not handed to a logger here")
            return
        emission = self._direct(shape, call, self._statement(consumer))
        if isinstance(emission, str):
            self._adapt(consumer, call, shape, emission)
            return
        one_line = isinstance(self._parent(self._statement(consumer)), cst.SimpleStatementSuite)
        text = emit_call(
            emission.event_type, emission.payload, emission.fields, multiline=is_multiline(call)
        )
        if one_line and "\n" in text:
            # `if x: log(...)` on one line: a many-line emit there would read badly.
            self._adapt(consumer, call, shape, "a one-line block: the direct rewrite needs lines")
            return
        if count_comments(cst.parse_expression(text)) < count_comments(consumer):
            self._adapt(consumer, call, shape, _LOSES_COMMENTS)
            return
        self._calls[consumer] = lambda _updated: cst.parse_expression(text)
        self._converted(shape, call, consumer, emission.event_type)

    def _assigned(self, shape: Shape, call: cst.Call, assign: cst.Assign) -> None:
        """``evt = DatasetEvent(...)`` and the uses of ``evt`` in its scope."""
        target = single_name(assign)
        assert target is not None
        scope = self.get_metadata(ScopeProvider, target, None)
        bindings = list(scope.assignments[target.value]) if scope is not None else []
        if not bindings or not all(self._binds_construction(b, shape) for b in bindings):
            self._report(call, shape, "left", f"{target.value} is also bound to other values")
            return
        # References come from sets: sorted by position, so the report is the same every run.
        uses = sorted(
            {id(r.node): r.node for b in bindings for r in b.references}.values(),
            key=lambda node: (self._line(node), self._column(node)),
        )
        loggers = [u for u in uses if self._logger_problem(shape, self._consumer(u), u) is None]
        others = [u for u in uses if u not in loggers]
        if not loggers:
            reasons = {self._logger_problem(shape, self._consumer(u), u) for u in others}
            if _ALREADY_DONE in reasons:
                return  # migrated by an earlier run: nothing left to report
            detail = " / ".join(sorted(r for r in reasons if r)) or "never used"
            self._report(call, shape, "left", f"{target.value} is not logged here ({detail})")
            return
        result_used = [u for u in others if _RESULT_USED in (self._why(shape, u) or "")]
        if result_used:
            self._report(
                call, shape, "left", _RESULT_USED + f" (line {self._line(result_used[0])})"
            )
            return
        if len(bindings) == 1 and not others and isinstance(scope, FunctionScope):
            reason = self._assign_direct(shape, call, assign, loggers[0])
            if reason is None:
                return
        elif others:
            reason = f"{target.value} is used after logging (line {self._line(others[0])})"
        else:
            reason = f"{target.value} is bound more than once or outside a function"
        for use in loggers:
            consumer = self._consumer(use)
            assert isinstance(consumer, cst.Call)
            self._plan_adapter(consumer)
        self._report(call, shape, "adapted", reason)

    def _assign_direct(
        self, shape: Shape, call: cst.Call, assign: cst.Assign, use: cst.CSTNode
    ) -> str | None:
        """Merge ``evt = X(...)`` + the next line ``log(evt)`` into one ``logkit.emit(...)``."""
        consumer = self._consumer(use)
        assign_line, log_line = self._parent(assign), self._parent(self._parent(consumer))
        if not (
            isinstance(assign_line, cst.SimpleStatementLine)
            and isinstance(log_line, cst.SimpleStatementLine)
            and len(assign_line.body) == 1
            and len(log_line.body) == 1
            and self._next_statement(assign_line) is log_line
        ):
            return "other code runs between the construction and the logger call"
        emission = self._direct(shape, call, assign)
        if isinstance(emission, str):
            return emission
        text = emit_call(
            emission.event_type, emission.payload, emission.fields, multiline=is_multiline(call)
        )
        if count_comments(cst.parse_expression(text)) < count_comments(assign) + count_comments(
            consumer
        ):
            return _LOSES_COMMENTS
        self._lines[assign_line] = merge_lines(cst.parse_statement(text), assign_line, log_line)
        self._lines[log_line] = None
        assert isinstance(consumer, cst.Call)
        self._converted(shape, call, consumer, emission.event_type)
        return None

    def _direct(
        self, shape: Shape, call: cst.Call, statement: cst.CSTNode
    ) -> direct.Emission | str:
        base = self._column(statement)
        comments = argument_comments(call)

        def source(arg: cst.Arg) -> Source:
            text = self._module.code_for_node(arg.value)
            leading, trailing = comments.get(id(arg), ((), None))
            shiftable = not has_multiline_string(arg.value)
            return Source(text, self._column(arg) - base, shiftable, leading, trailing)

        args = direct.Arguments(call, source, self._qualified_names)
        if shape.name == "dataset-event":
            return direct.dataset_event(args)
        if shape.name == "model-call-log":
            return direct.model_call_log(args, PROMPT_SNAPSHOT)
        return "no direct mapping for this shape: the adapter maps it"

    # --- the logger call ---------------------------------------------------------------------

    def _logger_problem(
        self, shape: Shape, consumer: cst.CSTNode | None, value: cst.CSTNode
    ) -> str | None:
        """None when ``consumer`` is a known logger called as a statement with ``value`` alone."""
        if not isinstance(consumer, cst.Call):
            return "used as " + _describe(self._parent(value))
        if self._qualified_names(consumer.func) & _ALREADY:
            return _ALREADY_DONE
        name = _last(self._module.code_for_node(consumer.func))
        if not sole_argument(consumer, value):
            return f"passed to {name}() but not as its only positional argument"
        if name not in shape.loggers:
            return f"passed to {name}(), not a known logger"
        return _statement_problem(name, self._parent(consumer))

    def _why(self, shape: Shape, use: cst.CSTNode) -> str | None:
        return self._logger_problem(shape, self._consumer(use), use)

    def _consumer(self, value: cst.CSTNode) -> cst.CSTNode | None:
        parent = self._parent(value)
        return self._parent(parent) if isinstance(parent, cst.Arg) else None

    def _binds_construction(self, binding: object, shape: Shape) -> bool:
        if not isinstance(binding, Assignment):
            return False  # an import, a builtin...: not one of our constructions
        target = self._parent(binding.node)
        assign = self._parent(target) if isinstance(target, cst.AssignTarget) else None
        if not isinstance(assign, cst.Assign) or not isinstance(assign.value, cst.Call):
            return False
        return self._shape_of(assign.value.func)[0] is shape

    # --- plans -------------------------------------------------------------------------------

    def _adapt(self, consumer: cst.Call, call: cst.Call, shape: Shape, reason: str) -> None:
        self._plan_adapter(consumer)
        self._report(call, shape, "adapted", reason)

    def _plan_adapter(self, consumer: cst.Call) -> None:
        self._calls[consumer] = adapter_call
        RemoveImportsVisitor.remove_unused_import_by_node(self.context, consumer.func)
        self._needs_logkit = True

    def _converted(self, shape: Shape, call: cst.Call, consumer: cst.Call, event: str) -> None:
        RemoveImportsVisitor.remove_unused_import_by_node(self.context, call)
        RemoveImportsVisitor.remove_unused_import_by_node(self.context, consumer.func)
        self._needs_logkit = True
        self._report(call, shape, "converted", f"logkit.emit({event!r}, ...)")

    def _report(self, node: cst.CSTNode, shape: Shape, action: Action, reason: str) -> None:
        line = self._line(node)
        self.sites.append(Site(self.context.filename or "-", line, shape.name, action, reason))
        if action == "left":
            self.warn(f"line {line}: {shape.simple_name} left alone: {reason}")

    # --- applying ----------------------------------------------------------------------------

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        plan = self._calls.get(original_node)
        return updated_node if plan is None else plan(updated_node)

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
        if original_node not in self._lines:
            return updated_node
        replacement = self._lines[original_node]
        return cst.RemoveFromParent() if replacement is None else replacement

    # --- small lookups -----------------------------------------------------------------------

    def _parent(self, node: cst.CSTNode | None) -> cst.CSTNode | None:
        if node is None:
            return None
        return self.get_metadata(ParentNodeProvider, node, None)

    def _statement(self, node: cst.CSTNode) -> cst.CSTNode:
        """The small statement (``Expr``, ``Assign``...) containing ``node``."""
        current: cst.CSTNode | None = node
        while current is not None and not isinstance(current, cst.BaseSmallStatement):
            current = self._parent(current)
        return current or node

    def _next_statement(self, line: cst.SimpleStatementLine) -> cst.CSTNode | None:
        block = self._parent(line)
        body = getattr(block, "body", ())
        for index, statement in enumerate(body):
            if statement is line:
                return body[index + 1] if index + 1 < len(body) else None
        return None

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def _column(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.column


_RESULT_USED = "the logger's result is used"
_ALREADY_DONE = "already emitted through logkit.from_legacy"
_LOSES_COMMENTS = "a comment inside the call has no place in a direct rewrite"


def _statement_problem(logger: str, parent: cst.CSTNode | None) -> str | None:
    """None when the logger call is a statement of its own (its result unused)."""
    if isinstance(parent, cst.Await):
        return f"{logger}() is awaited (an async logger: review by hand)"
    return None if isinstance(parent, cst.Expr) else _RESULT_USED


def _usage(parent: cst.CSTNode | None) -> str:
    return f"({_describe(parent)})"


def _describe(parent: cst.CSTNode | None) -> str:
    if isinstance(parent, cst.Return):
        return "returned to the caller"
    if isinstance(parent, cst.Arg):
        return "an argument"
    if isinstance(parent, cst.AnnAssign):
        return "an annotated assignment, which the codemod does not follow"
    if isinstance(parent, cst.Attribute):
        return f"read as .{parent.attr.value}"
    if parent is None:
        return "an expression"
    return type(parent).__name__.lower() + " value"


def _last(dotted: str) -> str:
    return dotted.rsplit(".", 1)[-1]


__all__ = ["MigrateLegacyCallSites"]
