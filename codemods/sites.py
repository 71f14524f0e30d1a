"""Where each legacy construction's object goes, and what that means for the site.

A construction is followed to the calls it is handed to: inline (``log(X(...))``), through the
variable it is assigned to (every use in its scope), or, returned by a builder, through the
builder's callers in the same module. The first call that reaches logkit decides:

1. a logger of the project (:mod:`.loggers`) that persists through logkit, directly or through
   loggers that forward to it: routed;
2. ``self.<hook>(obj)`` or ``self.<wrapper>(obj)`` of a class with injected hooks: routed when
   the hook's default reaches logkit (decided with the hook, :mod:`.hooks`);
3. a parameter whose default is such a logger (``event_logger=log_dataset_event``): routed;
4. a declared pure sink: adapted or converted (:mod:`.sinks`);
5. a storage method, or anything else: left, with why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from .hooks import Hook, Pending
from .loggers import route
from .shapes import Shape
from .sinks import SinkRewrite
from .syntax import single_name
from .verdict import Verdict, describe, short

if TYPE_CHECKING:
    from .transform import MigrateLegacyCallSites

_ALREADY = frozenset({"logkit.from_legacy", "logkit.adapters.from_legacy"})


class Sites:
    """The sites of one module; sites handed to hooks wait in ``pending``."""

    def __init__(self, command: MigrateLegacyCallSites) -> None:
        self.command = command
        self.pending: list[Pending] = []

    def consider(self, call: cst.Call) -> None:
        shape, other = self._shape_of(call.func)
        command = self.command
        if shape is None:
            if other is not None:
                lookalike = next(s for s in command.shapes if s.simple_name == _last(other))
                command.report(call, lookalike, Verdict("left", f"{other} is not the legacy class"))
            return
        verdict = self._before_following(call, shape) or self._follow(call, shape, depth=0)
        if verdict is not None:
            command.report(call, shape, verdict)

    def _before_following(self, call: cst.Call, shape: Shape) -> Verdict | None:
        """The constructions decided by themselves: never rewritten, or never logging."""
        if shape.left_reason:
            return Verdict("left", shape.left_reason)
        if any(arg.keyword is None and not arg.star for arg in call.args):
            reason = "positional arguments: the model takes keywords (this call fails today)"
            return Verdict("left", reason, logs=False)
        reader = self._storage_class(call)
        if reader is not None:
            reason = f"rebuilt inside {reader}, a storage class (a reader): not logging"
            return Verdict("left", reason, logs=False)
        return None

    def _follow(self, value: cst.Call, shape: Shape, depth: int) -> Verdict | None:
        """Where the object built by ``value`` goes (None: decided with its hook, later)."""
        parent = self.command.parent(value)
        if isinstance(parent, cst.Arg):
            return self._judge(self.command.parent(parent), value, value, shape)
        if isinstance(parent, cst.Assign) and single_name(parent) is not None:
            return self._follow_name(parent, value, shape)
        if isinstance(parent, cst.Return) and depth == 0:
            return self._follow_builder(value, shape)
        return Verdict("left", "not handed to a logger here " + describe(parent))

    def _follow_name(self, assign: cst.Assign, value: cst.Call, shape: Shape) -> Verdict | None:
        """``evt = X(...)``: every use of ``evt`` in its scope, the first that reaches logkit."""
        command = self.command
        target = single_name(assign)
        assert target is not None
        scope = command.scope(target)
        bindings = list(scope.assignments[target.value]) if scope is not None else []
        uses = sorted(
            {id(r.node): r.node for b in bindings for r in b.references}.values(),
            key=lambda node: (command.line(node), command.column(node)),
        )
        verdicts: list[Verdict | None] = []
        for use in uses:
            parent = command.parent(use)
            consumer = command.parent(parent) if isinstance(parent, cst.Arg) else None
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
        command = self.command
        function = command.enclosing(value, cst.FunctionDef)
        left = Verdict("left", "returned to the caller (a builder): its callers decide")
        if function is None or command.enclosing(function, cst.ClassDef) is not None:
            return left
        name = function.name.value
        for call in command.calls:
            if isinstance(call.func, cst.Name) and call.func.value == name:
                verdict = self._follow(call, shape, depth=1)
                if verdict is not None and verdict.reaches:
                    return verdict.with_reason(f"returned by {name}() to its caller; ")
        return left

    def _judge(
        self, consumer: cst.CSTNode | None, value: cst.CSTNode, built: cst.Call, shape: Shape
    ) -> Verdict | None:
        """What handing ``value`` to ``consumer`` does with it (None: decided with its hook)."""
        if not isinstance(consumer, cst.Call):
            return Verdict("left", "not handed to a logger here " + describe(consumer))
        names = self.command.qualified(consumer.func)
        verdict = self._as_logger(names)
        if verdict is None and self._as_hook(consumer, built, shape):
            return None
        verdict = verdict or self._parameter_default(consumer)
        sinks = names & set(self.command.project.config.sinks)
        if verdict is None and sinks:
            rewrite = SinkRewrite(
                self.command,
                built=built,
                shape=shape,
                consumer=consumer,
                value=value,
                sink=min(sinks),
            )
            verdict = rewrite.plan()
        return verdict or self._not_a_logger(consumer.func)

    def _as_logger(self, names: set[str]) -> Verdict | None:
        if names & _ALREADY:
            return Verdict("adapted", "already emitted through logkit.from_legacy", "logkit")
        hit = next((n for n in sorted(names) if n in self.command.project.loggers), None)
        return None if hit is None else self._routed(hit, "")

    def _as_hook(self, consumer: cst.Call, built: cst.Call, shape: Shape) -> bool:
        """A call through an injected hook: its verdict waits for the hook's default."""
        hook = self._hook_call(consumer, shape)
        if hook is not None:
            self.pending.append((built, shape, *hook))
        return hook is not None

    def _not_a_logger(self, func: cst.BaseExpression) -> Verdict:
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value in self.command.project.config.storage
        ):
            reason = f"stored with .{func.attr.value}(), a storage method: not logging"
            return Verdict("left", reason, logs=False)
        called = self.command.tree.code_for_node(func)
        return Verdict(
            "left",
            f"passed to {called}(), not a known logger (name it in [tool.logkit.codemod] "
            "loggers or sinks if it is one)",
        )

    def _routed(self, logger: str, how: str) -> Verdict:
        found = route(self.command.project.loggers, logger)
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
        cls = self.command.enclosing(consumer, cst.ClassDef)
        hooks = self.command.hooks.get(cls) if cls is not None else None
        if func.value.value != "self" or hooks is None or cls is None:
            return None
        attr = func.attr.value
        hook = hooks.attrs.get(attr) or hooks.attrs.get(hooks.wrappers.get(attr, ""))
        if hook is None:
            return None
        hook.shapes.add(shape.class_name)
        return hook, f"{self.command.module_name}.{cls.name.value}.{attr}"

    def _parameter_default(self, consumer: cst.Call) -> Verdict | None:
        """``event_logger(obj)`` where ``event_logger`` is a parameter of the function."""
        if not isinstance(consumer.func, cst.Name):
            return None
        function = self.command.enclosing(consumer, cst.FunctionDef)
        if function is None:
            return None
        name = consumer.func.value
        params = function.params
        for param in [*params.posonly_params, *params.params, *params.kwonly_params]:
            if param.name.value != name:
                continue
            default = self.command.qualified(param.default) if param.default else set()
            hit = next((n for n in sorted(default) if n in self.command.project.loggers), None)
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
        cls = self.command.enclosing(call, cst.ClassDef)
        if cls is None:
            return None
        storage = set(self.command.project.config.storage)
        methods = {s.name.value for s in cls.body.body if isinstance(s, cst.FunctionDef)}
        return cls.name.value if methods & storage else None

    def _shape_of(self, func: cst.BaseExpression) -> tuple[Shape | None, str | None]:
        """The legacy shape ``func`` names, else the full name of a same-named lookalike."""
        lookalike = None
        for qualified in self.command.qualified(func):
            shape = self.command.by_class.get(qualified)
            if shape is not None:
                return shape, None
            if any(s.simple_name == _last(qualified) for s in self.command.shapes):
                lookalike = qualified
        return None, lookalike


def _last(dotted: str) -> str:
    return dotted.rsplit(".", 1)[-1]
