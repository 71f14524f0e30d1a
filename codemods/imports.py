"""Where an added import (``import logkit``, ``from logkit.codemods.runtime import
legacy_hook``, ``import logging``) goes: where isort (and ruff's ``I`` rules) would put it.

The module's leading import block is split into groups at blank lines. When every group holds
one section (``__future__`` / stdlib / third-party / first-party / relative) and the sections
come in that order, the import joins its own section's group in sorted position, or becomes a
group of its own between its neighbours; first party is decided by the tree (the project's
module path under a source root, namespace packages included, as ruff decides it), never by
``__init__.py`` files. A ``from``
import of a module the block already imports from, on one unparenthesised line, gets the name
added there instead. Anything else (mixed groups, imports further down the module, several
imports on a line) is left to the caller's fallback: libcst's AddImportsVisitor, which puts it
after the last top-level import. A name already bound by a top-level import is not added again
(``import logkit.x`` binds ``logkit``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import libcst as cst
from libcst.helpers import get_full_name_for_node

from .syntax import imports_logkit

FUTURE, STDLIB, THIRD_PARTY, FIRST_PARTY, LOCAL = range(5)
_BLANK = cst.EmptyLine()


@dataclass(frozen=True)
class ImportSpec:
    """``import module`` (name None) or ``from module import name``."""

    module: str
    name: str | None = None

    def statement(self) -> cst.SimpleStatementLine:
        text = f"from {self.module} import {self.name}" if self.name else f"import {self.module}"
        line = cst.parse_statement(text)
        assert isinstance(line, cst.SimpleStatementLine)
        return line

    @property
    def key(self) -> tuple[int, str]:
        return (1, self.module.lower()) if self.name else (0, self.module.lower())


LOGKIT = ImportSpec("logkit")


def add_logkit_import(
    module: cst.Module,
    first_party: Callable[[str], bool],
    fallback: Callable[[cst.Module], cst.Module],
) -> cst.Module:
    """``module`` with ``import logkit`` (unless a top-level import already binds it)."""
    return add_import(module, LOGKIT, first_party, fallback)


def add_import(
    module: cst.Module,
    spec: ImportSpec,
    first_party: Callable[[str], bool],
    fallback: Callable[[cst.Module], cst.Module],
) -> cst.Module:
    """``module`` with the import of ``spec`` (unless a top-level import already binds it)."""
    if _binds(module, spec):
        return module
    merged = _merge_from(module, spec) if spec.name else None
    if merged is not None:
        return merged
    placed = _place(module, spec, first_party)
    return fallback(module) if placed is None else placed


def _binds(module: cst.Module, spec: ImportSpec) -> bool:
    return any(_bound_by(small, spec) for line in _lines(module.body) for small in line.body)


def _bound_by(small: cst.BaseSmallStatement, spec: ImportSpec) -> bool:
    if spec.name is None:
        if spec.module == "logkit" and imports_logkit(small):
            return True
        return isinstance(small, cst.Import) and any(
            a.asname is None and _name(a.name) == spec.module for a in small.names
        )
    if not isinstance(small, cst.ImportFrom) or _from(small) != spec.module:
        return False
    names = small.names
    return not isinstance(names, cst.ImportStar) and any(
        a.asname is None and _name(a.name) == spec.name for a in names
    )


def _merge_from(module: cst.Module, spec: ImportSpec) -> cst.Module | None:
    """Add ``spec.name`` to a one-line ``from spec.module import ...`` of the top block."""
    body = list(module.body)
    for index, line in enumerate(body):
        if not _is_import_line(line):
            continue
        assert isinstance(line, cst.SimpleStatementLine)
        small = line.body[0]
        if (
            len(line.body) == 1
            and isinstance(small, cst.ImportFrom)
            and _from(small) == spec.module
            and not isinstance(small.names, cst.ImportStar)
            and small.lpar is None
        ):
            aliases = [a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in small.names]
            aliases.append(cst.ImportAlias(cst.Name(spec.name or "")))
            aliases.sort(key=lambda a: _member_key(_name(a.name)))
            separator = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            spaced = [a.with_changes(comma=separator) for a in aliases[:-1]] + aliases[-1:]
            body[index] = line.with_changes(body=[small.with_changes(names=spaced)])
            return module.with_changes(body=body)
    return None


def _member_key(name: str) -> tuple[int, str]:
    """isort's order-by-type: CONSTANTS, then Classes, then everything else."""
    if len(name) > 1 and name.isupper():
        return 0, name
    return (1 if name[:1].isupper() else 2), name.lower()


def _from(node: cst.ImportFrom) -> str:
    return "." * len(node.relative) + _name(node.module)


def _place(
    module: cst.Module, spec: ImportSpec, first_party: Callable[[str], bool]
) -> cst.Module | None:
    body: list[cst.BaseStatement] = list(module.body)
    start = 1 if body and _is_docstring(body[0]) else 0
    end = start
    while end < len(body) and _is_import_line(body[end]):
        end += 1
    if end == start or any(_is_import_line(s) for s in body[end:]):
        return None  # no block at the top, or imports further down: after the last one
    groups = _groups(body[start:end], start)
    found = [_group_section(body, group, first_party) for group in groups]
    sections = [section for section in found if section is not None]
    if len(sections) < len(found) or sections != sorted(set(sections)):
        return None  # not one section per group, in order: do not guess
    ours = _section(spec.module, first_party)
    new = spec.statement()
    for group, section in zip(groups, sections, strict=True):
        if section == ours:
            position = _sorted_position([_sort_key(body[i]) for i in group], spec.key)
            if position == len(group):
                body.insert(group[-1] + 1, new)
            else:
                _insert_before(body, group[position], new, own_group=False)
            return module.with_changes(body=body)
        if section > ours:
            _insert_before(body, group[0], new, own_group=True)
            return module.with_changes(body=body)
    body.insert(end, new.with_changes(leading_lines=[_BLANK]))  # a group after the last one
    return module.with_changes(body=body)


def _insert_before(
    body: list[cst.BaseStatement], index: int, new: cst.SimpleStatementLine, *, own_group: bool
) -> None:
    """``new`` above ``body[index]``: it takes the blank lines above that line, the comments
    there stay with the line they annotate; a group of its own gets a blank line below it."""
    line = body[index]
    assert isinstance(line, cst.SimpleStatementLine)
    leading = list(line.leading_lines)
    blanks = 0
    while blanks < len(leading) and leading[blanks].comment is None:
        blanks += 1
    rest = leading[blanks:]
    body[index] = line.with_changes(leading_lines=[_BLANK, *rest] if own_group else rest)
    body.insert(index, new.with_changes(leading_lines=leading[:blanks]))


def _groups(lines: Sequence[cst.BaseStatement], offset: int) -> list[list[int]]:
    """Indices (into the module body) of the import lines, split at blank lines."""
    groups: list[list[int]] = []
    for index, line in enumerate(lines):
        assert isinstance(line, cst.SimpleStatementLine)
        if not groups or any(empty.comment is None for empty in line.leading_lines):
            groups.append([])
        groups[-1].append(offset + index)
    return groups


def _group_section(
    body: Sequence[cst.BaseStatement], group: list[int], first_party: Callable[[str], bool]
) -> int | None:
    found = {_line_section(body[i], first_party) for i in group}
    return found.pop() if len(found) == 1 else None


def _line_section(line: cst.BaseStatement, first_party: Callable[[str], bool]) -> int | None:
    assert isinstance(line, cst.SimpleStatementLine)
    if len(line.body) != 1:
        return None
    small = line.body[0]
    if isinstance(small, cst.ImportFrom):
        if small.relative:
            return LOCAL
        return _section(_name(small.module), first_party)
    assert isinstance(small, cst.Import)
    found = {_section(_name(alias.name), first_party) for alias in small.names}
    return found.pop() if len(found) == 1 else None


def _section(name: str, first_party: Callable[[str], bool]) -> int:
    """The section of a dotted module; ``first_party`` decides with the full name (ruff: the
    module's path exists under a source root, or its package is known first party)."""
    top = name.split(".", maxsplit=1)[0]
    if top == "__future__":
        return FUTURE
    if top in sys.stdlib_module_names:
        return STDLIB
    return FIRST_PARTY if first_party(name) else THIRD_PARTY


def _sorted_position(keys: list[tuple[int, str]], ours: tuple[int, str]) -> int:
    """Where the import goes among a group's lines: isort's order (``import x`` lines before
    ``from x import`` lines) or by module alone (force-sort-within-sections), whichever the
    group follows; at its end if it follows neither."""
    if keys == sorted(keys):
        return next((i for i, key in enumerate(keys) if key > ours), len(keys))
    names = [name for _, name in keys]
    if names == sorted(names):
        return next((i for i, name in enumerate(names) if name >= ours[1]), len(keys))
    return len(keys)


def _sort_key(line: cst.BaseStatement) -> tuple[int, str]:
    assert isinstance(line, cst.SimpleStatementLine)
    small = line.body[0]
    if isinstance(small, cst.ImportFrom):
        dots = "." * len(small.relative)
        return 1, (dots + _name(small.module)).lower()
    assert isinstance(small, cst.Import)
    return 0, _name(small.names[0].name).lower()


def _name(node: cst.CSTNode | None) -> str:
    return "" if node is None else get_full_name_for_node(node) or ""


def _lines(body: Sequence[cst.BaseStatement]) -> list[cst.SimpleStatementLine]:
    return [line for line in body if isinstance(line, cst.SimpleStatementLine)]


def _is_import_line(statement: cst.BaseStatement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and any(
        isinstance(small, cst.Import | cst.ImportFrom) for small in statement.body
    )


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    )
