"""The libcst codemod: plan a module's migration as a whole, then apply the plans.

Planning looks at the whole module first (names resolved through imports, variables through
scopes, hooks through their class), then, in order:

1. the logger implementation that persists, if this is its module (:mod:`.persist`);
2. every legacy construction, followed to where its object goes (:mod:`.sites`): routed
   (a logger, hook or parameter default that reaches logkit; the site is unchanged), adapted /
   converted (a declared pure sink, :mod:`.sinks`), or left, with the reason;
3. the defaults of the injected hooks the sites go through (:mod:`.hooks`);
4. the imports the rewrites leave unused (:mod:`.unused`).

Plans are keyed by the original nodes and applied when libcst leaves them; the imports the
rewrites need are added last, where an import sorter puts them (:mod:`.imports`). Test code is
never changed. Runs under ``logkit codemod apply`` and under ``python -m libcst.tool codemod``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import libcst as cst
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.codemod.visitors import AddImportsVisitor, ImportItem
from libcst.metadata import (
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameSource,
    ScopeProvider,
)
from libcst.metadata.scope_provider import ImportAssignment, Scope

from . import persist
from .hooks import ClassHooks, HookDefaults, class_hooks
from .imports import ImportSpec, add_import
from .project import Project, absolute, find_root, project_for
from .report import Action, Site
from .shapes import Shape, select
from .sites import Sites
from .syntax import imports_logkit, keep_blank_lines, nodes_of
from .unused import Unused, exported_names, trim
from .verdict import Verdict

# A rewrite of one node, applied when libcst leaves it.
Plan = Callable[[Any], Any]
N = TypeVar("N", bound=cst.CSTNode)


class MigrateLegacyCallSites(VisitorBasedCodemodCommand):
    """Migrate the legacy loggers, hook defaults and sink call sites of a module onto logkit."""

    DESCRIPTION = "Migrate legacy DatasetEvent/ModelCallLog/... logging onto logkit."
    # Qualified names are asked of the scopes for the few nodes that need them (libcst's
    # QualifiedNameProvider would visit every node for them).
    METADATA_DEPENDENCIES = (ScopeProvider, PositionProvider, ParentNodeProvider)

    def __init__(
        self,
        context: CodemodContext,
        only: Sequence[str] | None = None,
        unsafe: bool = False,
        project: Project | None = None,
    ) -> None:
        super().__init__(context)
        self.shapes = select(tuple(only) if only else None)
        self.by_class = {shape.class_name: shape for shape in self.shapes}
        self.unsafe = unsafe
        self._given = project
        self.project = project or Project(Path("."))
        self._reset()

    def use(self, project: Project) -> None:
        """Migrate the next modules as part of ``project``."""
        self._given = self.project = project

    def _reset(self) -> None:
        self.sites: list[Site] = []
        self.unused = Unused()
        self.calls: list[cst.Call] = []
        self.hooks: dict[cst.ClassDef, ClassHooks] = {}
        self.tree = cst.Module(body=[])
        self.module_name = ""
        self.logkit_taken = False
        self._package = ""
        self._plans: dict[cst.CSTNode, Plan] = {}
        self._lines: dict[cst.SimpleStatementLine, cst.SimpleStatementLine | None] = {}
        self._imports: list[ImportSpec] = []

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        arg_parser.add_argument("--only", action="append", help="Shape names to migrate.")
        arg_parser.add_argument(
            "--unsafe", action="store_true", help="Also apply the behaviour-changing rewrites."
        )

    def transform_module(self, tree: cst.Module) -> cst.Module:
        """The plans, the blank lines a removed import leaves, then each added import where an
        import sorter would put it."""
        self._reset()
        path = Path(self.context.filename) if self.context.filename else None
        if self._given is None:
            self.project = project_for(find_root(path or Path(".")))
        if path is not None and self.project.is_test(path):
            return tree
        migrated = keep_blank_lines(tree, super().transform_module(tree))
        for spec in self._imports:
            migrated = add_import(migrated, spec, self.project.is_first_party, self._fallback)
        return migrated

    def _fallback(self, module: cst.Module) -> cst.Module:
        """No sorted block to join: libcst's AddImportsVisitor (after the last import)."""
        items = [ImportItem(spec.module, spec.name, None) for spec in self._imports]
        return AddImportsVisitor(self.context, items).transform_module(module)

    # --- planning ---------------------------------------------------------------------------

    def visit_Module(self, node: cst.Module) -> bool:
        self.tree = node
        filename = self.context.filename
        self.module_name = self.context.full_module_name or (
            self.project.module_of(Path(filename)) if filename else ""
        )
        self._package = self.context.full_package_name or (
            self.project.package_of(Path(filename)) if filename else ""
        )
        self.logkit_taken = self.binds_otherwise("logkit", imports_logkit)
        found = nodes_of(node, cst.Call, cst.ClassDef)
        self.calls = [n for n in found if isinstance(n, cst.Call)]
        defaults = HookDefaults(self)
        for cls in found:
            if isinstance(cls, cst.ClassDef):
                self.hooks[cls] = class_hooks(cls, defaults.is_hook_param)
        persist.plan_loggers(self)
        sites = Sites(self)
        for call in self.calls:
            sites.consider(call)
        defaults.plan(sites.pending)
        for statement, names in self.unused.trims(self.scope, exported_names(node)).items():
            self._plans[statement] = partial(trim, names=names)
        self.sites.sort(key=lambda s: (s.line, s.shape))
        # Nothing to rewrite (every site routed or left): no need to walk the tree again.
        return bool(self._plans or self._lines)

    def binds_otherwise(self, name: str, ours: Callable[[cst.CSTNode], bool]) -> bool:
        """Does the module bind ``name`` to something else than the import we would add?"""
        scope = self.scope(self.tree)
        if scope is None or name not in scope:
            return False
        return not all(isinstance(a, ImportAssignment) and ours(a.node) for a in scope[name])

    def plan(self, node: cst.CSTNode, plan: Plan) -> None:
        self._plans[node] = plan

    def replace_lines(
        self, lines: dict[cst.SimpleStatementLine, cst.SimpleStatementLine | None]
    ) -> None:
        self._lines.update(lines)

    def need(self, spec: ImportSpec) -> None:
        if spec not in self._imports:
            self._imports.append(spec)

    # --- reporting ---------------------------------------------------------------------------

    def report(self, node: cst.CSTNode, shape: Shape, verdict: Verdict) -> None:
        line = self.line(node)
        self.sites.append(
            Site(
                self.context.filename or "-",
                line,
                shape.name,
                verdict.action,
                verdict.reason,
                verdict.via,
                verdict.unsafe,
                verdict.logs,
            )
        )
        if verdict.action == "left":
            self.warn(f"line {line}: {shape.simple_name} left alone: {verdict.reason}")

    def report_node(
        self, node: cst.CSTNode, kind: str, action: Action, reason: str, via: str
    ) -> None:
        """A logger implementation or hook default (``kind``), migrated or left."""
        self.sites.append(
            Site(self.context.filename or "-", self.line(node), kind, action, reason, via)
        )

    # --- applying ----------------------------------------------------------------------------

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        plan = self._plans.get(original_node)
        return updated_node if plan is None else plan(updated_node)

    def leave_Assign(self, original_node: cst.Assign, updated_node: cst.Assign) -> cst.Assign:
        plan = self._plans.get(original_node)
        return updated_node if plan is None else plan(updated_node)

    def leave_ExceptHandler(
        self, original_node: cst.ExceptHandler, updated_node: cst.ExceptHandler
    ) -> cst.ExceptHandler:
        plan = self._plans.get(original_node)
        return updated_node if plan is None else plan(updated_node)

    def leave_Import(
        self, original_node: cst.Import, updated_node: cst.Import
    ) -> cst.BaseSmallStatement | cst.RemovalSentinel:
        plan = self._plans.get(original_node)
        return updated_node if plan is None else plan(updated_node)

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.BaseSmallStatement | cst.RemovalSentinel:
        plan = self._plans.get(original_node)
        return updated_node if plan is None else plan(updated_node)

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
        if not updated_node.body:
            return cst.RemoveFromParent()  # its only statement was an import now unused
        if original_node not in self._lines:
            return updated_node
        replacement = self._lines[original_node]
        return cst.RemoveFromParent() if replacement is None else replacement

    # --- lookups -----------------------------------------------------------------------------

    def qualified(self, node: cst.CSTNode) -> set[str]:
        """Dotted names ``node`` may refer to: imports resolved (relative ones too), and this
        module's own definitions prefixed with the module's name."""
        scope = self.scope(node)
        names = scope.get_qualified_names_for(node) if scope is not None else set()
        found: set[str] = set()
        for q in names:
            if q.source is QualifiedNameSource.IMPORT:
                found.add(absolute(q.name, self._package))
            elif q.source is QualifiedNameSource.LOCAL and self.module_name:
                found.add(f"{self.module_name}.{q.name}")
            else:
                found.add(q.name)
        return found

    def parent(self, node: cst.CSTNode | None) -> cst.CSTNode | None:
        if node is None:
            return None
        return self.get_metadata(ParentNodeProvider, node, None)

    def scope(self, node: cst.CSTNode) -> Scope | None:
        found: Scope | None = self.get_metadata(ScopeProvider, node, None)
        return found

    def enclosing(self, node: cst.CSTNode, kind: type[N]) -> N | None:
        current = self.parent(node)
        while current is not None and not isinstance(current, kind):
            current = self.parent(current)
        return current

    def line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def column(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.column


__all__ = ["MigrateLegacyCallSites"]
