"""The libcst codemod: plan a module's migration as a whole, then apply the plans.

Planning looks at the whole module first (names resolved through imports, variables through
scopes, hooks through their class), then decides, for each legacy construction, where the
object goes and what that means:

- routed: it is handed to a legacy logger whose implementation persists through logkit (or is
  migrated by this run), directly or through loggers that forward to it, an injected hook
  whose default now does, or a parameter defaulting to a logger. Nothing changes at the site:
  results, mutations, patched names and injected hooks keep working;
- adapted / converted: it is handed to a declared pure sink, whose call becomes
  ``logkit.emit_event(logkit.from_legacy(obj))`` (safe), or, with ``--unsafe``, the
  construction and the call become one ``logkit.emit(...)`` (converted);
- left: anything else, with the reason a reviewer needs.

The implementations are migrated beside the sites: a logger that persists (:mod:`.persist`)
and the defaults of injected hooks (:mod:`.hooks`). Test code is never changed. Runs under
``logkit codemod apply`` and under ``python -m libcst.tool codemod`` alike.
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
from .hooks import HOOK_FACTORY, RUNTIME, ClassHooks, Hook, class_hooks, default_value
from .imports import LOGKIT, ImportSpec, add_import
from .loggers import route
from .project import Project, absolute, find_root, project_for
from .report import Action, Site
from .shapes import Shape, select
from .sinks import SinkRewrite
from .syntax import imports_logkit, keep_blank_lines, nodes_of, single_name
from .unused import Unused, exported_names, trim
from .verdict import Verdict, describe, short

# A rewrite of one node, applied when libcst leaves it (Call, Assign or ExceptHandler).
Plan = Callable[[Any], Any]
N = TypeVar("N", bound=cst.CSTNode)


class MigrateLegacyCallSites(VisitorBasedCodemodCommand):
    """Migrate the legacy loggers, hook defaults and sink call sites of a module onto logkit."""

    DESCRIPTION = "Migrate legacy DatasetEvent/ModelCallLog/... logging onto logkit."
    # Qualified names are asked of the scopes for the few nodes that need them (libcst's
    # QualifiedNameProvider would visit every node for them).
    METADATA_DEPENDENCIES = (
        ScopeProvider,
        PositionProvider,
        ParentNodeProvider,
    )

    def __init__(
        self,
        context: CodemodContext,
        only: Sequence[str] | None = None,
        unsafe: bool = False,
        project: Project | None = None,
    ) -> None:
        super().__init__(context)
        self.shapes = select(tuple(only) if only else None)
        self.unsafe = unsafe
        self.sites: list[Site] = []
        self._given = project
        self.project = project or Project(Path("."))
        self._by_class = {shape.class_name: shape for shape in self.shapes}
        self._reset()

    def use(self, project: Project) -> None:
        """Migrate the next modules as part of ``project``."""
        self._given = self.project = project

    def _reset(self) -> None:
        self.sites = []
        self._plans: dict[cst.CSTNode, Plan] = {}
        self._lines: dict[cst.SimpleStatementLine, cst.SimpleStatementLine | None] = {}
        self._imports: list[ImportSpec] = []
        self._hooks: dict[cst.ClassDef, ClassHooks] = {}
        self._pending: list[tuple[cst.Call, Shape, Hook, str]] = []
        self._module = cst.Module(body=[])
        self.unused = Unused()
        self._calls: list[cst.Call] = []
        self._name = self._package = ""
        self._logkit_taken = False

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        arg_parser.add_argument("--only", action="append", help="Shape names to migrate.")
        arg_parser.add_argument(
            "--unsafe", action="store_true", help="Also apply the behaviour-changing rewrites."
        )

    def transform_module(self, tree: cst.Module) -> cst.Module:
        """The plans, libcst's import removal, the blank lines it dropped, then each added
        import where an import sorter would put it."""
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
        spec = self._imports[0] if len(self._imports) == 1 else None
        items = [ImportItem(s.module, s.name, None) for s in ([spec] if spec else self._imports)]
        return AddImportsVisitor(self.context, items).transform_module(module)

    def _need(self, spec: ImportSpec) -> None:
        if spec not in self._imports:
            self._imports.append(spec)

    # --- planning ---------------------------------------------------------------------------

    def visit_Module(self, node: cst.Module) -> bool:
        self._module = node
        filename = self.context.filename
        self._name = self.context.full_module_name or (
            self.project.module_of(Path(filename)) if filename else ""
        )
        self._package = self.context.full_package_name or (
            self.project.package_of(Path(filename)) if filename else ""
        )
        self._logkit_taken = self._binds_otherwise(node, "logkit", imports_logkit)
        found = nodes_of(node, cst.Call, cst.ClassDef)
        self._calls = [n for n in found if isinstance(n, cst.Call)]
        for cls in found:
            if isinstance(cls, cst.ClassDef):
                self._hooks[cls] = class_hooks(cls, self._is_hook_param)
        self._plan_loggers(node)
        for call in self._calls:
            self._consider(call)
        self._plan_hook_defaults()
        for statement, names in self.unused.trims(self._scope, exported_names(node)).items():
            self._plans[statement] = partial(trim, names=names)
        self.sites.sort(key=lambda s: (s.line, s.shape))
        # Nothing to rewrite (every site routed or left): no need to walk the tree again.
        return bool(self._plans or self._lines)

    def _binds_otherwise(
        self, module: cst.Module, name: str, ours: Callable[[cst.CSTNode], bool]
    ) -> bool:
        """Does the module bind ``name`` to something else than the import we would add?"""
        scope = self.get_metadata(ScopeProvider, module, None)
        if scope is None or name not in scope:
            return False
        return not all(isinstance(a, ImportAssignment) and ours(a.node) for a in scope[name])

    # --- the logger implementations ---------------------------------------------------------

    def _plan_loggers(self, module: cst.Module) -> None:
        here = Path(self.context.filename).resolve() if self.context.filename else None
        for logger in self.project.loggers.values():
            if logger.kind != "persists" or logger.migrated or logger.path is None:
                continue
            if here is None or Path(logger.path).resolve() != here:
                continue
            function = next(
                (
                    f
                    for f in module.body
                    if isinstance(f, cst.FunctionDef) and f.name.value == _last(logger.name)
                ),
                None,
            )
            if function is not None and self._selected(function):
                self._plan_persist(function, logger.name)

    def _selected(self, function: cst.FunctionDef) -> bool:
        """Is the logger's object one of the shapes this run migrates (``--only``)? Read from
        its first parameter's annotation; unannotated, only when every shape is selected."""
        params = [*function.params.posonly_params, *function.params.params]
        annotation = params[0].annotation if params else None
        if annotation is None:
            return len(self.shapes) == len(select(None))
        names: set[str] = set()
        for node in nodes_of(annotation.annotation, cst.Name, cst.Attribute):
            names |= self._qualified(node)
        return bool(names & set(self._by_class))

    def _plan_persist(self, function: cst.FunctionDef, name: str) -> None:
        storage = frozenset(self.project.config.storage)
        plan = persist.plan_persist(function, storage, self._parent)
        problems = "; ".join(plan.problems)
        if not plan.changes:
            self._report_node(function, "logger", "left", problems or "nothing to migrate", name)
            return
        if self._logkit_taken:
            self._report_node(function, "logger", "left", _LOGKIT_TAKEN, name)
            return
        for call in plan.writes:
            self._plans[call] = persist.emit_through_logkit
        logger = persist.module_logger(self._module)
        if plan.prints:
            if logger is None:
                self._need(ImportSpec("logging"))
            line = persist.log_line(logger or "logging.getLogger(__name__)")
            for call in plan.prints:
                self._plans[call] = line
        for handler in plan.handlers:
            self._plans[handler] = persist.also_catch_logkit
        for receiver in plan.receivers:
            accessor = f"{self._name}.{self._module.code_for_node(receiver)}"
            if not self.project.is_patched(accessor):
                self.unused.drop(receiver)
        self._need(LOGKIT)
        done = ["its storage write now goes through logkit"]
        if plan.prints:
            done.append(f"its stdout line is a log line ({logger or 'logging'}.info)")
        if problems:
            done.append(problems)
        self._report_node(function, "logger", "migrated", "; ".join(done), name)

    # --- the hooks ---------------------------------------------------------------------------

    def _is_hook_param(self, param: cst.Param) -> bool:
        if param.name.value in self.project.config.hook_names:
            return True
        if param.annotation is None:
            return False
        types = self.project.config.hook_types
        return any(
            self._qualified(node) & types
            for node in nodes_of(param.annotation, cst.Name, cst.Attribute)
        )

    def _plan_hook_defaults(self) -> None:
        """Decide each hook's default once: the sites handed to it are routed when it reaches
        logkit; a typed hook (``ModelCallLogger``) gets its default even with no site here."""
        decided: dict[int, str | None] = {}
        for call, shape, hook, via in self._pending:
            if id(hook) not in decided:
                decided[id(hook)] = self._plan_default(hook)
            problem = decided[id(hook)]
            if problem is None:
                target = self._routes(hook).get(shape.simple_name, "logkit")
                reason = (
                    f"injected hook {hook.param}: still called when injected; without one its "
                    f"default now hands the object to {short(target)}"
                )
                self._report(call, shape, Verdict("routed", reason, via))
            else:
                self._report(call, shape, Verdict("left", problem, via))
        for hooks in self._hooks.values():
            for hook in hooks.attrs.values():
                if id(hook) in decided or not self._typed(hook) or hook.default is None:
                    continue
                problem = self._plan_default(hook)
                if problem is not None:
                    self._report_node(hook.assign, "hook", "left", problem, hook.attr)

    def _typed(self, hook: Hook) -> bool:
        if hook.annotation is None:
            return False
        types = self.project.config.hook_types
        return any(
            self._qualified(node) & types
            for node in nodes_of(hook.annotation, cst.Name, cst.Attribute)
        )

    def _plan_default(self, hook: Hook) -> str | None:
        """Rewrite the hook's default (once); None when it reaches logkit, else why not."""
        if hook.migrated:
            return None
        if hook.default is None:
            return f"the hook {hook.param} is required: it reaches whatever its caller injects"
        if not isinstance(hook.default, cst.Name | cst.Attribute):
            return f"the default of {hook.param} is not a name: rewrite it by hand"
        if self._logkit_taken or self._binds_otherwise(
            self._module, HOOK_FACTORY, lambda n: isinstance(n, cst.ImportFrom)
        ):
            return _LOGKIT_TAKEN
        routes = self._routes(hook)
        for shape, target in routes.items():
            found = route(self.project.loggers, target)
            if not found.reaches:
                return f"{shape} must reach {short(target)}, which does not: {found.problem}"
        value = default_value(hook, routes)
        column = self._column(hook.assign)
        assert isinstance(value, cst.IfExp)
        self._plans[hook.assign] = _with_value(value, column, self._line_length())
        self._need(ImportSpec(RUNTIME, HOOK_FACTORY))
        where = f"{hook.owner}({hook.param}=...)"
        targets = ", ".join(f"{cls} to {short(t)}" for cls, t in routes.items())
        detail = f" (hands {targets}; any other object to logkit)" if targets else ""
        self._report_node(
            hook.assign,
            "hook",
            "migrated",
            f"without an injected hook, {where} now logs to logkit{detail}; it never raises",
            f"{self._name}.{hook.owner}.{hook.attr}",
        )
        return None

    def _routes(self, hook: Hook) -> dict[str, str]:
        """Legacy class (simple name) -> the logger a hook default hands it to."""
        routes = self.project.config.routes
        return {
            _last(cls): routes[cls]
            for cls in sorted(hook.shapes | self._annotated(hook))
            if cls in routes
        }

    def _annotated(self, hook: Hook) -> set[str]:
        if hook.annotation is None:
            return set()
        classes = {s.class_name for s in self.shapes}
        found: set[str] = set()
        for node in nodes_of(hook.annotation, cst.Name, cst.Attribute):
            found |= self._qualified(node) & classes
        return found

    def _line_length(self) -> int:
        return self.project.line_length

    # --- the sites ---------------------------------------------------------------------------

    def _consider(self, call: cst.Call) -> None:
        shape, other = self._shape_of(call.func)
        if shape is None:
            if other is not None:
                lookalike = next(s for s in self.shapes if s.simple_name == _last(other))
                self._report(call, lookalike, Verdict("left", f"{other} is not the legacy class"))
            return
        if shape.left_reason:
            self._report(call, shape, Verdict("left", shape.left_reason))
            return
        if any(arg.keyword is None and not arg.star for arg in call.args):
            reason = "positional arguments: the model takes keywords (this call fails today)"
            self._report(call, shape, Verdict("left", reason, logs=False))
            return
        reader = self._storage_class(call)
        if reader is not None:
            reason = f"rebuilt inside {reader}, a storage class (a reader): not logging"
            self._report(call, shape, Verdict("left", reason, logs=False))
            return
        verdict = self._follow(call, shape, depth=0)
        if verdict is not None:
            self._report(call, shape, verdict)

    def _follow(self, value: cst.Call, shape: Shape, depth: int) -> Verdict | None:
        """Where the object built by ``value`` goes (None: decided with its hook, later)."""
        parent = self._parent(value)
        if isinstance(parent, cst.Arg):
            return self._judge(self._parent(parent), value, value, shape)
        if isinstance(parent, cst.Assign) and single_name(parent) is not None:
            return self._follow_name(parent, value, shape)
        if isinstance(parent, cst.Return) and depth == 0:
            return self._follow_builder(value, shape)
        return Verdict("left", "not handed to a logger here " + describe(parent))

    def _follow_name(self, assign: cst.Assign, value: cst.Call, shape: Shape) -> Verdict | None:
        """``evt = X(...)``: every use of ``evt`` in its scope, the first that reaches logkit."""
        target = single_name(assign)
        assert target is not None
        scope = self.get_metadata(ScopeProvider, target, None)
        bindings = list(scope.assignments[target.value]) if scope is not None else []
        uses = sorted(
            {id(r.node): r.node for b in bindings for r in b.references}.values(),
            key=lambda node: (self._line(node), self._column(node)),
        )
        verdicts: list[Verdict | None] = []
        for use in uses:
            parent = self._parent(use)
            consumer = self._parent(parent) if isinstance(parent, cst.Arg) else None
            if isinstance(consumer, cst.Call):
                verdicts.append(self._judge(consumer, use, value, shape))
            elif isinstance(parent, cst.Return):
                verdicts.append(self._follow_builder(value, shape))
        reaching = [v for v in verdicts if v is None or v.reaches]
        if reaching:
            return reaching[0]
        if verdicts:
            return verdicts[0]
        return Verdict("left", f"{target.value} is never handed to a logger", logs=False)

    def _follow_builder(self, value: cst.Call, shape: Shape) -> Verdict:
        """``return X(...)``: where the callers in this module hand the result."""
        function = self._enclosing(value, cst.FunctionDef)
        left = Verdict("left", "returned to the caller (a builder): its callers decide")
        if function is None or self._enclosing(function, cst.ClassDef) is not None:
            return left
        name = function.name.value
        for call in self._calls:
            if isinstance(call.func, cst.Name) and call.func.value == name:
                verdict = self._follow(call, shape, depth=1)
                if verdict is not None and verdict.reaches:
                    return verdict.with_reason(f"returned by {name}() to its caller; ")
        return left

    def _judge(
        self, consumer: cst.CSTNode | None, value: cst.CSTNode, built: cst.Call, shape: Shape
    ) -> Verdict | None:
        """What handing ``value`` to ``consumer`` does with it (None: decided with its hook).

        In order: a logger (or logkit already), an injected hook of the class, a parameter
        defaulting to a logger, a declared sink, a storage method; else an unknown call."""
        if not isinstance(consumer, cst.Call):
            return Verdict("left", "not handed to a logger here " + describe(consumer))
        names = self._qualified(consumer.func)
        verdict = self._as_logger(names)
        if verdict is None and self._as_hook(consumer, built, shape):
            return None
        verdict = verdict or self._parameter_default(consumer)
        sinks = names & set(self.project.config.sinks)
        if verdict is None and sinks:
            rewrite = SinkRewrite(
                self, built=built, shape=shape, consumer=consumer, value=value, sink=min(sinks)
            )
            verdict = rewrite.plan()
        return verdict or self._not_a_logger(consumer.func)

    def _as_logger(self, names: set[str]) -> Verdict | None:
        if names & _ALREADY:
            return Verdict("adapted", "already emitted through logkit.from_legacy", "logkit")
        hit = next((n for n in sorted(names) if n in self.project.loggers), None)
        return None if hit is None else self._routed(hit, "")

    def _as_hook(self, consumer: cst.Call, built: cst.Call, shape: Shape) -> bool:
        """A call through an injected hook: its verdict waits for the hook's default."""
        hook = self._hook_call(consumer, shape)
        if hook is not None:
            self._pending.append((built, shape, *hook))
        return hook is not None

    def _not_a_logger(self, func: cst.BaseExpression) -> Verdict:
        if isinstance(func, cst.Attribute) and func.attr.value in self.project.config.storage:
            reason = f"stored with .{func.attr.value}(), a storage method: not logging"
            return Verdict("left", reason, logs=False)
        called = self._module.code_for_node(func)
        return Verdict(
            "left",
            f"passed to {called}(), not a known logger (name it in [tool.logkit.codemod] "
            "loggers or sinks if it is one)",
        )

    def _routed(self, logger: str, how: str) -> Verdict:
        found = route(self.project.loggers, logger)
        if not found.reaches:
            return Verdict("left", f"handed to {short(logger)}: {found.problem}", logger)
        chain = " -> ".join(short(n) for n in found.chain)
        return Verdict(
            "routed", f"{how}{chain} persists through logkit; the call site is unchanged", logger
        )

    def _hook_call(self, consumer: cst.Call, shape: Shape) -> tuple[Hook, str] | None:
        """``self.<hook attribute>(obj)`` or ``self.<wrapper>(obj)``: the hook, and the via."""
        func = consumer.func
        if not (isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)):
            return None
        if func.value.value != "self":
            return None
        cls = self._enclosing(consumer, cst.ClassDef)
        hooks = self._hooks.get(cls) if cls is not None else None
        if hooks is None or cls is None:
            return None
        attr = func.attr.value
        hook = hooks.attrs.get(attr) or hooks.attrs.get(hooks.wrappers.get(attr, ""))
        if hook is None:
            return None
        hook.shapes.add(shape.class_name)
        return hook, f"{self._name}.{cls.name.value}.{attr}"

    def _parameter_default(self, consumer: cst.Call) -> Verdict | None:
        """``event_logger(obj)`` where ``event_logger`` is a parameter of the function."""
        if not isinstance(consumer.func, cst.Name):
            return None
        function = self._enclosing(consumer, cst.FunctionDef)
        if function is None:
            return None
        name = consumer.func.value
        params = function.params
        for param in [*params.posonly_params, *params.params, *params.kwonly_params]:
            if param.name.value != name:
                continue
            default = self._qualified(param.default) if param.default is not None else set()
            hit = next((n for n in sorted(default) if n in self.project.loggers), None)
            if hit is not None:
                how = f"handed to {function.name.value}()'s {name}, which defaults to it; "
                return self._routed(hit, how)
            return Verdict(
                "left", f"handed to the parameter {name}: it reaches what its caller passes"
            )
        return None

    def _storage_class(self, call: cst.Call) -> str | None:
        """The class around ``call`` when it defines a storage method (its readers rebuild
        legacy objects from stored rows)."""
        cls = self._enclosing(call, cst.ClassDef)
        if cls is None:
            return None
        storage = set(self.project.config.storage)
        methods = {s.name.value for s in cls.body.body if isinstance(s, cst.FunctionDef)}
        return cls.name.value if methods & storage else None

    def _shape_of(self, func: cst.BaseExpression) -> tuple[Shape | None, str | None]:
        """The legacy shape ``func`` names, else the full name of a same-named lookalike."""
        lookalike = None
        for qualified in self._qualified(func):
            shape = self._by_class.get(qualified)
            if shape is not None:
                return shape, None
            if any(s.simple_name == _last(qualified) for s in self.shapes):
                lookalike = qualified
        return None, lookalike

    # --- reporting ---------------------------------------------------------------------------

    def _report(self, node: cst.CSTNode, shape: Shape, verdict: Verdict) -> None:
        line = self._line(node)
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

    def _report_node(
        self, node: cst.CSTNode, kind: str, action: Action, reason: str, via: str
    ) -> None:
        self.sites.append(
            Site(self.context.filename or "-", self._line(node), kind, action, reason, via)
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

    # --- small lookups (also used by SinkRewrite) --------------------------------------------

    def plan(self, node: cst.CSTNode, plan: Plan) -> None:
        self._plans[node] = plan

    def replace_lines(
        self, lines: dict[cst.SimpleStatementLine, cst.SimpleStatementLine | None]
    ) -> None:
        self._lines.update(lines)

    def need(self, spec: ImportSpec) -> None:
        self._need(spec)

    @property
    def module(self) -> cst.Module:
        return self._module

    @property
    def module_name(self) -> str:
        return self._name

    @property
    def logkit_taken(self) -> bool:
        return self._logkit_taken

    def _qualified(self, node: cst.CSTNode) -> set[str]:
        """Dotted names ``node`` may refer to: imports resolved (relative ones too), and this
        module's own definitions prefixed with the module's name."""
        scope = self._scope(node)
        names = scope.get_qualified_names_for(node) if scope is not None else set()
        found: set[str] = set()
        for q in names:
            if q.source is QualifiedNameSource.IMPORT:
                found.add(absolute(q.name, self._package))
            elif q.source is QualifiedNameSource.LOCAL and self._name:
                found.add(f"{self._name}.{q.name}")
            else:
                found.add(q.name)
        return found

    qualified = _qualified

    def _parent(self, node: cst.CSTNode | None) -> cst.CSTNode | None:
        if node is None:
            return None
        return self.get_metadata(ParentNodeProvider, node, None)

    parent = _parent

    def _scope(self, node: cst.CSTNode) -> Scope | None:
        found: Scope | None = self.get_metadata(ScopeProvider, node, None)
        return found

    def _enclosing(self, node: cst.CSTNode, kind: type[N]) -> N | None:
        current = self._parent(node)
        while current is not None and not isinstance(current, kind):
            current = self._parent(current)
        return current

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    line = _line

    def _column(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.column

    column = _column


_ALREADY = frozenset({"logkit.from_legacy", "logkit.adapters.from_legacy"})
_LOGKIT_TAKEN = "the name logkit (or legacy_hook) is bound to something else here"


def _with_value(value: cst.IfExp, column: int, limit: int) -> Plan:
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
        else:
            text = (
                f"(\n{pad}{code(value.body)}\n{pad}if {code(value.test)}\n"
                f"{pad}else {code(value.orelse)}\n)"
            )
        return updated.with_changes(value=cst.parse_expression(text))

    return rewrite


def _last(dotted: str) -> str:
    return dotted.rsplit(".", 1)[-1]


__all__ = ["MigrateLegacyCallSites"]
