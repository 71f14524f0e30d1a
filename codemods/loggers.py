"""The legacy loggers of a tree, read from their own source: which one persists, which forward.

A logger named in the config is one of:

- ``persists``: its body hands the object to a storage method (``get_backend().write_event``);
  this is a choke point, whose implementation :mod:`.persist` migrates onto logkit;
- ``forwards``: its body calls another logger (``default_event_logger`` calls ``run``), or it is
  a module-level alias of one (``_audit_logger = log_dataset_event``);
- ``unknown``: its module is not in the tree, or its body does neither.

A call site reaches logkit through a logger when following ``forwards`` ends at a ``persists``
logger that is migrated, or is migrated by this run. The analysis uses the standard library's
``ast`` (a handful of modules, read once per run): no libcst metadata is needed to follow
imports at module level.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from .config import CodemodConfig

Kind = Literal["persists", "forwards", "unknown"]
_LOGKIT = frozenset({"logkit.emit_event", "logkit.emit", "logkit.audit"})


@dataclass(frozen=True)
class Logger:
    name: str  # dotted
    kind: Kind
    target: str | None = None  # forwards: the logger it hands the object to
    path: str | None = None  # the defining file
    line: int = 0
    migrated: bool = False  # persists: through logkit already
    in_run: bool = False  # persists: its file is migrated by this run
    file: str | None = None  # the defining file, relative to the project's root
    problem: str | None = None  # unknown: why


@dataclass(frozen=True)
class Route:
    """Where a logger leads: the chain of names, and whether it ends in logkit."""

    chain: tuple[str, ...]
    reaches: bool
    problem: str | None = None

    @property
    def end(self) -> str:
        return self.chain[-1]


def route(loggers: Mapping[str, Logger], name: str) -> Route:
    chain: list[str] = []
    current: str | None = name
    while current is not None and current not in chain:
        chain.append(current)
        logger = loggers.get(current)
        if logger is None or logger.kind == "unknown":
            problem = logger.problem if logger else f"{current} is not a known logger"
            return Route(tuple(chain), False, problem)
        if logger.kind == "persists":
            if logger.migrated or logger.in_run:
                return Route(tuple(chain), True)
            file = logger.file or logger.path or current
            short = current.rsplit(".", 1)[-1] + "()"
            return Route(tuple(chain), False, f"{short} is not migrated yet (apply {file} too)")
        current = logger.target
    return Route(tuple(chain), False, "the loggers forward in a circle")


def analyse_loggers(
    config: CodemodConfig,
    *,
    locate: Callable[[str], Path | None],
    package_of: Callable[[Path], str],
    in_run: Callable[[Path], bool],
    relative: Callable[[Path], str] = str,
) -> dict[str, Logger]:
    """Each configured logger, read from its module."""
    modules: dict[str, _Module | None] = {}
    found: dict[str, Logger] = {}
    for name in config.loggers:
        module, _, attr = name.rpartition(".")
        if module not in modules:
            modules[module] = _Module.read(module, locate(module), package_of, config, in_run)
        parsed = modules[module]
        if parsed is None:
            found[name] = Logger(name, "unknown", problem=f"{module} is not in this tree")
        else:
            found[name] = replace(parsed.logger(name, attr), file=relative(parsed.path))
    return found


@dataclass(frozen=True)
class _Module:
    """One module that defines loggers: its syntax tree and the names it binds."""

    name: str
    path: Path
    tree: ast.Module
    names: Mapping[str, str]  # local name -> dotted (imports and its own definitions)
    known: frozenset[str]  # the configured loggers
    storage: frozenset[str]
    in_run: bool

    @classmethod
    def read(
        cls,
        name: str,
        path: Path | None,
        package_of: Callable[[Path], str],
        config: CodemodConfig,
        in_run: Callable[[Path], bool],
    ) -> _Module | None:
        if path is None:
            return None
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (OSError, SyntaxError, ValueError):
            return None
        local = {n: f"{name}.{n}" for n in _top_level_names(tree)}
        names = {**import_map(tree, package_of(path)), **local}
        known, storage = frozenset(config.loggers), frozenset(config.storage)
        return cls(name, path, tree, names, known, storage, in_run(path))

    def logger(self, name: str, attr: str) -> Logger:
        for node in self.tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == attr:
                return self._function(name, node)
            value = _assigned(node, attr)
            if value is not None:
                target = dotted(value, self.names)
                if target in self.known:
                    return Logger(name, "forwards", target, str(self.path), node.lineno)
                return Logger(name, "unknown", problem=f"{name} is not bound to a known logger")
        return Logger(name, "unknown", problem=f"{self.name} defines no {attr}")

    def _function(self, name: str, node: ast.FunctionDef | ast.AsyncFunctionDef) -> Logger:
        called = [dotted(c.func, self.names) for c in ast.walk(node) if isinstance(c, ast.Call)]
        path, line = str(self.path), node.lineno
        forwards = [c for c in called if c in self.known and c != name]
        if forwards:
            return Logger(name, "forwards", forwards[0], path, line)
        if any(c in _LOGKIT for c in called):
            return Logger(name, "persists", None, path, line, migrated=True)
        if any(_is_storage_call(c, self.storage) for c in ast.walk(node)):
            return Logger(name, "persists", None, path, line, in_run=self.in_run)
        problem = f"{name} neither stores the object nor forwards it to a logger"
        return Logger(name, "unknown", problem=problem)


def _is_storage_call(node: ast.AST, storage: frozenset[str]) -> bool:
    """``x.<storage method>(...)``."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in storage
    )


def _assigned(node: ast.stmt, attr: str) -> ast.expr | None:
    if isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == attr for t in node.targets
    ):
        return node.value
    if (
        isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and node.target.id == attr
    ):
        return node.value
    return None


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def import_map(tree: ast.Module, package: str) -> dict[str, str]:
    """Local name -> dotted name, for the module-level imports of ``tree``."""
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom):
            base = _from_module(node, package)
            for alias in node.names:
                if alias.name != "*":
                    names[alias.asname or alias.name] = (
                        f"{base}.{alias.name}" if base else alias.name
                    )
    return names


def _from_module(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".") if package else []
    base = parts[: max(len(parts) - (node.level - 1), 0)]
    return ".".join([*base, *([node.module] if node.module else [])])


def dotted(node: ast.expr, names: Mapping[str, str]) -> str | None:
    """``a.b.c`` with its first name resolved through ``names``, or None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in names:
        return None
    return ".".join([names[node.id], *reversed(parts)])
