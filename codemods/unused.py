"""Imports a rewrite leaves unused, found with the scope analysis the transform already has.

libcst's RemoveImportsVisitor analyses the *rewritten* module again (scopes, qualified names)
to find them: on a migrated file that second analysis cost as much as the whole transform.
Here the rewrites declare which names they drop (the sink called, the backend accessor, the
legacy class of a converted construction); an import is trimmed when every reference to what
it binds is one of those, and the module does not export the name in ``__all__``.
"""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst
from libcst.metadata.scope_provider import ImportAssignment, Scope

from .syntax import assignments


class Unused:
    def __init__(self) -> None:
        self._dropped: dict[int, cst.Name] = {}

    def drop(self, node: cst.CSTNode) -> None:
        """The rewrite removes ``node`` (a name, or ``module.attr`` whose module it drops)."""
        while isinstance(node, cst.Attribute):
            node = node.value
        if isinstance(node, cst.Call):
            self.drop(node.func)
        elif isinstance(node, cst.Name):
            self._dropped[id(node)] = node

    def trims(
        self, scope_of: Callable[[cst.CSTNode], Scope | None], exported: set[str]
    ) -> dict[cst.Import | cst.ImportFrom, set[str]]:
        """Import statement -> the names to take out of it."""
        found: dict[cst.Import | cst.ImportFrom, set[str]] = {}
        for name in self._dropped.values():
            scope = scope_of(name)
            if scope is None or name.value in exported:
                continue
            for access in scope.accesses[name]:
                for referent in access.referents:
                    if not isinstance(referent, ImportAssignment):
                        continue
                    references = {id(r.node) for r in referent.references}
                    statement = referent.node
                    if references <= set(self._dropped) and isinstance(
                        statement, cst.Import | cst.ImportFrom
                    ):
                        found.setdefault(statement, set()).add(referent.name)
        return found


def trim(
    node: cst.Import | cst.ImportFrom, names: set[str]
) -> cst.Import | cst.ImportFrom | cst.RemovalSentinel:
    """``node`` without the aliases binding ``names``; removed when none is left."""
    aliases = node.names
    if isinstance(aliases, cst.ImportStar):
        return node
    kept = [a for a in aliases if _bound(a) not in names]
    if not kept:
        return cst.RemoveFromParent()
    kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return node.with_changes(names=kept)


def _bound(alias: cst.ImportAlias) -> str:
    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
        return alias.asname.name.value
    name: cst.BaseExpression = alias.name
    while isinstance(name, cst.Attribute):
        name = name.value
    return name.value if isinstance(name, cst.Name) else ""


def exported_names(module: cst.Module) -> set[str]:
    """The strings of a module-level ``__all__ = [...]`` (or tuple)."""
    names: set[str] = set()
    for assign in assignments(module.body):
        if any(
            isinstance(t.target, cst.Name) and t.target.value == "__all__" for t in assign.targets
        ) and isinstance(assign.value, cst.List | cst.Tuple):
            for element in assign.value.elements:
                if isinstance(element.value, cst.SimpleString):
                    value = element.value.evaluated_value
                    names.add(value if isinstance(value, str) else "")
    return names
