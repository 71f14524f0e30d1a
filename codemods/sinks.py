"""Call sites of a declared pure sink: the only sites the codemod rewrites.

A sink is a logger function the repository declares pure (``sinks = [...]`` in its codemod
table): it returns nothing its callers use and mutates nothing they see. Its call is then
replaced where that is provably the same thing, i.e. the call is a statement of its own (the
result unused), the object is its only argument, and no test replaces the sink's name in this
module:

- safe (the default): ``sink(obj)`` -> ``logkit.emit_event(logkit.from_legacy(obj))``; the
  object is still built (its validation is unchanged) and may be used afterwards;
- ``--unsafe``: when the object is built right there (inline, or on the line before) and every
  field maps statically, both become one ``logkit.emit(...)`` (:mod:`.direct`). That changes
  behaviour: the legacy model's validation is gone (logkit's contract check is what refuses a
  bad value, with another exception), and a field that is None at run time is ``null`` in the
  payload where the adapter omits it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import libcst as cst
from libcst.metadata import ScopeProvider

from . import direct
from .imports import LOGKIT
from .layout import Source, emit_call
from .shapes import PROMPT_SNAPSHOT, Shape
from .syntax import (
    adapter_call,
    argument_comments,
    count_comments,
    has_multiline_string,
    is_multiline,
    merge_lines,
    single_name,
    sole_argument,
)
from .verdict import Verdict, short

if TYPE_CHECKING:
    from .transform import MigrateLegacyCallSites

UNSAFE_DIRECT = (
    "the legacy object is no longer built: logkit's contract check replaces its validation, "
    "and a field that is None at run time becomes null in the payload"
)
_LOSES_COMMENTS = "a comment inside the call has no place in a direct rewrite"


class SinkRewrite:
    """One call of a sink with a legacy object: plan its rewrite, say what it did."""

    def __init__(
        self,
        command: MigrateLegacyCallSites,
        *,
        built: cst.Call,
        shape: Shape,
        consumer: cst.Call,
        value: cst.CSTNode,
        sink: str,
    ) -> None:
        self.command = command
        self.built = built
        self.shape = shape
        self.consumer = consumer
        self.value = value
        self.sink = sink

    def plan(self) -> Verdict:
        problem = self._problem()
        if problem is not None:
            return Verdict("left", problem, self.sink)
        direct_plan = self._direct()
        if isinstance(direct_plan, str) or not self.command.unsafe:
            self.command.plan(self.consumer, adapter_call)
            self.command.unused.drop(self.consumer.func)
            self.command.need(LOGKIT)
            reason = (
                f"{short(self.sink)} is a pure sink: logkit.emit_event(logkit.from_legacy(...))"
            )
            if isinstance(direct_plan, str) and self.command.unsafe:
                reason += f"; not converted: {direct_plan}"
            unsafe = None if isinstance(direct_plan, str) else UNSAFE_DIRECT
            return Verdict("adapted", reason, self.sink, unsafe)
        event_type = direct_plan()
        self.command.unused.drop(self.built.func)
        self.command.unused.drop(self.consumer.func)
        for prompt in _inline_prompts(self.built, self.command):
            self.command.unused.drop(prompt)
        self.command.need(LOGKIT)
        reason = f"{short(self.sink)} is a pure sink: logkit.emit({event_type!r}, ...)"
        return Verdict("converted", reason, self.sink, UNSAFE_DIRECT)

    def _problem(self) -> str | None:
        command = self.command
        local = command.tree.code_for_node(self.consumer.func)
        if command.project.is_patched(f"{command.module_name}.{local}", self.sink):
            return f"tests replace {local} in {command.module_name}: the call stays"
        if not sole_argument(self.consumer, self.value):
            return f"passed to {local}() but not as its only positional argument"
        parent = command.parent(self.consumer)
        if isinstance(parent, cst.Await):
            return f"{local}() is awaited (an async sink: review by hand)"
        if not isinstance(parent, cst.Expr):
            return f"the result of {local}() is used"
        if command.logkit_taken:
            return "the name logkit is bound to something else here"
        return None

    # --- --unsafe: one logkit.emit(...) ------------------------------------------------------

    def _direct(self) -> str | Callable[[], str]:
        """A function applying the direct rewrite (returns the event type), or why not."""
        if self.value is self.built:
            return self._inline()
        return self._assigned()

    def _inline(self) -> str | Callable[[], str]:
        command = self.command
        statement = command.parent(self.consumer)
        emitted = self._emit_text(statement or self.consumer)
        if isinstance(emitted, str):
            return emitted
        event_type, text = emitted
        line = command.parent(statement) if statement is not None else None
        if isinstance(command.parent(line), cst.SimpleStatementSuite) and "\n" in text:
            return "a one-line block: the direct rewrite needs lines"
        if count_comments(cst.parse_expression(text)) < count_comments(self.consumer):
            return _LOSES_COMMENTS

        def apply() -> str:
            command.plan(self.consumer, lambda _updated: cst.parse_expression(text))
            return event_type

        return apply

    def _assigned(self) -> str | Callable[[], str]:
        """``evt = X(...)`` and, on the next line, ``sink(evt)``: nothing else uses ``evt``."""
        command = self.command
        assign = command.parent(self.built)
        if not isinstance(assign, cst.Assign) or single_name(assign) is None:
            return "the object is not built right before the sink call"
        target = single_name(assign)
        assert target is not None
        scope = command.get_metadata(ScopeProvider, target, None)
        bindings = list(scope.assignments[target.value]) if scope is not None else []
        uses = {id(r.node) for b in bindings for r in b.references}
        if len(bindings) != 1 or uses != {id(self.value)}:
            return f"{target.value} is used elsewhere, or bound more than once"
        assign_line = command.parent(assign)
        log_line = command.parent(command.parent(self.consumer))
        if not (
            isinstance(assign_line, cst.SimpleStatementLine)
            and isinstance(log_line, cst.SimpleStatementLine)
            and len(assign_line.body) == 1
            and len(log_line.body) == 1
            and _next_statement(command, assign_line) is log_line
        ):
            return "other code runs between the construction and the sink call"
        emitted = self._emit_text(assign)
        if isinstance(emitted, str):
            return emitted
        event_type, text = emitted
        kept = count_comments(assign) + count_comments(self.consumer)
        if count_comments(cst.parse_expression(text)) < kept:
            return _LOSES_COMMENTS

        def apply() -> str:
            merged = merge_lines(cst.parse_statement(text), assign_line, log_line)
            command.replace_lines({assign_line: merged, log_line: None})
            return event_type

        return apply

    def _emit_text(self, statement: cst.CSTNode) -> tuple[str, str] | str:
        """The event type and the ``logkit.emit(...)`` text replacing ``statement``, or why not."""
        command = self.command
        base = command.column(statement)
        comments = argument_comments(self.built)

        def source(arg: cst.Arg) -> Source:
            text = command.tree.code_for_node(arg.value)
            leading, trailing = comments.get(id(arg), ((), None))
            shiftable = not has_multiline_string(arg.value)
            return Source(text, command.column(arg) - base, shiftable, leading, trailing)

        args = direct.Arguments(self.built, source, command.qualified)
        if self.shape.name == "dataset-event":
            emission = direct.dataset_event(args)
        elif self.shape.name == "model-call-log":
            emission = direct.model_call_log(args, PROMPT_SNAPSHOT)
        else:
            return "no direct mapping for this shape: the adapter maps it"
        if isinstance(emission, str):
            return emission
        multiline = is_multiline(self.built)
        text = emit_call(
            emission.event_type, emission.payload, emission.fields, multiline=multiline
        )
        return emission.event_type, text


def _inline_prompts(built: cst.Call, command: MigrateLegacyCallSites) -> list[cst.BaseExpression]:
    """The ``PromptSnapshot`` callee of an inline ``prompt=PromptSnapshot(text=...)``: the
    direct rewrite keeps only its text."""
    return [
        arg.value.func
        for arg in built.args
        if arg.keyword is not None
        and arg.keyword.value == "prompt"
        and isinstance(arg.value, cst.Call)
        and PROMPT_SNAPSHOT in command.qualified(arg.value.func)
    ]


def _next_statement(
    command: MigrateLegacyCallSites, line: cst.SimpleStatementLine
) -> cst.CSTNode | None:
    block = command.parent(line)
    body = getattr(block, "body", ())
    for index, statement in enumerate(body):
        if statement is line:
            return body[index + 1] if index + 1 < len(body) else None
    return None
