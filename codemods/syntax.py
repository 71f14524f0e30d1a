"""Small libcst helpers of the transform: comments, imports, layout checks, node search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeGuard, TypeVar

import libcst as cst
from libcst.helpers import get_full_name_for_node

N = TypeVar("N", bound=cst.CSTNode)
_NO_SPACE = cst.SimpleWhitespace("")


def count_comments(node: cst.CSTNode | None) -> int:
    return 0 if node is None else len(nodes_of(node, cst.Comment))


class _Collector(cst.CSTVisitor):
    """Collects the nodes of some types. A plain visitor: m.findall builds a matcher visitor
    per call, whose set-up alone costs more than walking a whole module."""

    def __init__(self, kinds: tuple[type[cst.CSTNode], ...]) -> None:
        super().__init__()
        self.kinds = kinds
        self.found: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, self.kinds):
            self.found.append(node)
        return True


def nodes_of(node: cst.CSTNode, kind: type[N], *more: type[N]) -> list[N]:
    collector = _Collector((kind, *more))
    node.visit(collector)
    return collector.found  # type: ignore[return-value]


def argument_comments(call: cst.Call) -> dict[int, tuple[tuple[str, ...], str | None]]:
    """Comments between a call's arguments, by argument: (lines above it, comment after it)."""
    found: dict[int, tuple[tuple[str, ...], str | None]] = {}
    leading: list[str] = []
    _collect(call.whitespace_before_args, leading, leading)
    for index, arg in enumerate(call.args):
        trailing: list[str] = []
        after: list[str] = []
        spaces = [arg.whitespace_after_arg]
        if isinstance(arg.comma, cst.Comma):
            spaces += [arg.comma.whitespace_before, arg.comma.whitespace_after]
        for space in spaces:
            _collect(space, after, trailing)
        if index == len(call.args) - 1:
            trailing += after  # comments before the closing parenthesis stay with the last one
            after = []
        found[id(arg)] = (tuple(leading), "  ".join(trailing) or None)
        leading = after
    return found


def _collect(space: cst.BaseParenthesizableWhitespace, above: list[str], same: list[str]) -> None:
    """Comments of ``space``: its own line's go to ``same``, the lines below to ``above``."""
    if isinstance(space, cst.ParenthesizedWhitespace):
        if space.first_line.comment is not None:
            same.append(space.first_line.comment.value)
        above.extend(line.comment.value for line in space.empty_lines if line.comment)


def keep_blank_lines(before: cst.Module, after: cst.Module) -> cst.Module:
    """Removing an unused import line (:mod:`.unused`) drops the blank lines above it, gluing
    two import groups together: the next line of the module header gets them back."""
    body = list(after.body)
    carried: Sequence[cst.EmptyLine] = ()
    for statement in before.body:
        if carried and not _is_import(statement):
            # The first line after the removed import, unless it was rewritten itself.
            index = next((i for i, s in enumerate(body) if s.deep_equals(statement)), None)
            if index is not None and not getattr(body[index], "leading_lines", True):
                body[index] = body[index].with_changes(leading_lines=carried)
            break
        if not _is_import(statement):
            if isinstance(statement, cst.SimpleStatementLine):
                continue  # a docstring or `__all__` before the imports
            break
        if not any(s.deep_equals(statement) for s in body):
            carried = carried or statement.leading_lines
        elif carried:
            index = next(i for i, s in enumerate(body) if s.deep_equals(statement))
            if not statement.leading_lines and not body[index].leading_lines:
                body[index] = body[index].with_changes(leading_lines=carried)
            carried = ()
    return after.with_changes(body=body)


def _is_import(statement: cst.BaseStatement) -> TypeGuard[cst.SimpleStatementLine]:
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(small, cst.Import | cst.ImportFrom) for small in statement.body
    )


def imports_logkit(node: cst.CSTNode) -> bool:
    """``import logkit`` or ``import logkit.x`` (both bind the package), not ``... as logkit``."""
    if not isinstance(node, cst.Import):
        return False
    for alias in node.names:
        name = get_full_name_for_node(alias.name) or ""
        if alias.asname is None and name.split(".")[0] == "logkit":
            return True
        if alias.asname is not None and _bound_name(alias.asname) == "logkit":
            return name == "logkit"
    return False


def _bound_name(asname: cst.AsName) -> str | None:
    return asname.name.value if isinstance(asname.name, cst.Name) else None


def adapter_call(updated: cst.Call) -> cst.Call:
    """``log_event(evt)`` -> ``logkit.emit_event(logkit.from_legacy(evt))``.

    An argument spread over lines keeps its lines and indentation: ``from_legacy(`` hugs it,
    so it ends in ``))``, the two parentheses opened on its first line. Exploding it the way
    black / ruff format would re-indents every argument line (a bigger diff, and unsafe with
    multi-line strings); a project's formatter does that on its next pass if it wants to."""
    arg = updated.args[0]
    adapted = cst.Call(
        func=cst.Attribute(cst.Name("logkit"), cst.Name("from_legacy")),
        # The argument's own layout (a newline before the logger's ")") stays on the outside.
        args=[arg.with_changes(comma=cst.MaybeSentinel.DEFAULT, whitespace_after_arg=_NO_SPACE)],
    )
    return updated.with_changes(
        func=cst.Attribute(cst.Name("logkit"), cst.Name("emit_event")),
        args=[arg.with_changes(value=adapted)],
    )


def merge_lines(
    new: cst.BaseStatement, assign: cst.SimpleStatementLine, log: cst.SimpleStatementLine
) -> cst.SimpleStatementLine:
    """The emit line keeps the comments of both lines it replaces."""
    assert isinstance(new, cst.SimpleStatementLine)
    leading = [*assign.leading_lines, *log.leading_lines]
    trailing = assign.trailing_whitespace
    if log.trailing_whitespace.comment is not None:
        if trailing.comment is None:
            trailing = log.trailing_whitespace
        else:
            leading.append(cst.EmptyLine(comment=log.trailing_whitespace.comment))
    return new.with_changes(leading_lines=leading, trailing_whitespace=trailing)


def assignments(body: Sequence[cst.BaseStatement]) -> list[cst.Assign]:
    """The ``x = ...`` statements of a block, at its own level (none nested in if/for/def)."""
    return [
        small
        for line in body
        if isinstance(line, cst.SimpleStatementLine)
        for small in line.body
        if isinstance(small, cst.Assign)
    ]


def single_name(assign: cst.Assign) -> cst.Name | None:
    if len(assign.targets) == 1 and isinstance(assign.targets[0].target, cst.Name):
        return assign.targets[0].target
    return None


def sole_argument(call: cst.Call, value: cst.CSTNode) -> bool:
    return (
        len(call.args) == 1
        and call.args[0].keyword is None
        and not call.args[0].star
        and call.args[0].value is value
    )


def is_multiline(call: cst.Call) -> bool:
    return any(
        isinstance(arg.comma, cst.Comma)
        and isinstance(arg.comma.whitespace_after, cst.ParenthesizedWhitespace)
        for arg in call.args
    ) or isinstance(call.whitespace_before_args, cst.ParenthesizedWhitespace)


def has_multiline_string(node: cst.CSTNode) -> bool:
    strings = nodes_of(node, cst.SimpleString, cst.FormattedString)
    return any("\n" in cst.Module(body=[]).code_for_node(s) for s in strings)
