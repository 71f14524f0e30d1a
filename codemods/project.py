"""The repository a run migrates: its root, module names, first-party names, tests, loggers.

Everything here is decided by the tree, the way ruff and isort decide it, never by
``__init__.py`` files alone: ``engines/`` is a namespace package in places, and a file's module
name is its path below a source root (``[tool.ruff] src``, default the root itself). The root
is the nearest directory above the migrated paths holding a pyproject.toml, setup.cfg,
setup.py, logkit.toml or .git.

A :class:`Project` is computed once per run (the runner) or once per root and process (under
libcst's own CLI), and is plain data, so worker processes receive it pickled.
"""

from __future__ import annotations

import ast
import os
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from .config import CodemodConfig, load_config
from .loggers import Logger, analyse_loggers, dotted, import_map

_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", "logkit.toml", ".git")
_SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "venv", "build", "dist"})
_TEST_DIRS = frozenset({"tests", "test", "testing"})
# Calls by which tests replace a name: mock.patch("a.b.name"), monkeypatch.setattr("a.b.name",
# ...), mock.patch.object(module, "name"), monkeypatch.setattr(module, "name", ...).
_PATCHERS = frozenset({"patch", "setattr", "object"})


@dataclass(frozen=True)
class Project:
    root: Path
    config: CodemodConfig = field(default_factory=CodemodConfig)
    sources: tuple[Path, ...] = ()  # source roots, most specific first; the root when empty
    first_party: frozenset[str] = frozenset()  # isort's known-first-party
    patched: frozenset[str] = frozenset()  # dotted targets and bare attribute names
    loggers: Mapping[str, Logger] = field(default_factory=dict)
    line_length: int = 88  # ruff's line-length, for the layout of generated code

    # --- names -------------------------------------------------------------------------------

    def module_of(self, path: Path) -> str:
        """The dotted module of ``path`` below its source root (``pkg`` for pkg/__init__.py)."""
        resolved = path.resolve()
        for source in self.sources or (self.root,):
            if resolved.is_relative_to(source):
                parts = list(resolved.relative_to(source).with_suffix("").parts)
                if parts and parts[-1] == "__init__":
                    parts.pop()
                return ".".join(parts)
        return _module_by_init(resolved)

    def package_of(self, path: Path) -> str:
        module = self.module_of(path)
        return module if path.name == "__init__.py" else module.rpartition(".")[0]

    def is_first_party(self, module: str) -> bool:
        """As ruff's isort decides: the module's path (a directory or a .py file) exists under
        a source root, namespace packages included; or its top package is known first party."""
        if module.split(".", 1)[0] in self.first_party:
            return True
        return _exists(self.sources or (self.root,), module)

    def is_test(self, path: Path) -> bool:
        """Test code (kept as it is: it exercises the legacy contracts)."""
        resolved = path.resolve()
        name = resolved.name
        if name == "conftest.py" or name.startswith("test_") or name.endswith("_test.py"):
            return True
        parts = resolved.relative_to(self.root).parts if resolved.is_relative_to(self.root) else ()
        return any(part in _TEST_DIRS for part in parts[:-1])

    def is_patched(self, *names: str) -> bool:
        """Do the tests replace any of the dotted ``names``?"""
        return any(name in self.patched or _last(name) in self.patched for name in names)


def discover(
    paths: Iterable[Path], config_path: Path | None = None, in_run: Iterable[Path] = ()
) -> Project:
    """The project the first of ``paths`` belongs to, with its loggers analysed."""
    first = next(iter(paths), Path("."))
    root = find_root(first)
    config = load_config(root, config_path)
    ruff = _ruff_table(root)  # read once: source roots, first-party names, line length
    sources = _sources(root, ruff)
    length = ruff.get("line-length")
    project = Project(
        root=root,
        config=config,
        sources=sources,
        first_party=_first_party(root, ruff),
        patched=frozenset(_patched_names(root)),
        line_length=length if isinstance(length, int) else 88,
    )
    running = frozenset(p.resolve() for p in in_run)
    loggers = analyse_loggers(
        config,
        locate=lambda module: _locate(project, module),
        package_of=project.package_of,
        in_run=(lambda p: p.resolve() in running) if running else (lambda _p: True),
        relative=lambda p: _relative(p, root),
    )
    return replace(project, loggers=loggers)


@cache
def project_for(root: Path) -> Project:
    """One project per root and process: the transform under libcst's own CLI uses this."""
    return discover([root])


def find_root(path: Path) -> Path:
    start = path.resolve()
    directory = start if start.is_dir() else start.parent
    for candidate in (directory, *directory.parents):
        if any((candidate / marker).exists() for marker in _MARKERS):
            return candidate
    return directory


def _sources(root: Path, ruff: Mapping[str, object]) -> tuple[Path, ...]:
    """``[tool.ruff] src`` (ruff's own default: the root and ``root/src``), longest first."""
    declared = ruff.get("src")
    names = declared if isinstance(declared, list) else [".", "src"]
    found = {(root / str(name)).resolve() for name in names}
    return tuple(sorted((p for p in found if p.is_dir()), key=lambda p: -len(p.parts)))


def _first_party(root: Path, ruff: Mapping[str, object]) -> frozenset[str]:
    """isort's known-first-party, from ruff's table or isort's own."""
    names: set[str] = set()
    lint = ruff.get("lint")
    isort = (lint.get("isort") if isinstance(lint, dict) else None) or ruff.get("isort")
    names.update(_strings(isort, "known-first-party"))
    tool = _pyproject(root).get("tool", {})
    names.update(_strings(tool.get("isort"), "known_first_party"))
    return frozenset(names)


@cache
def _exists(sources: tuple[Path, ...], module: str) -> bool:
    relative = Path(*module.split("."))
    return any(
        (source / relative).is_dir() or (source / relative).with_suffix(".py").is_file()
        for source in sources
    )


def _strings(table: object, key: str) -> list[str]:
    values = table.get(key) if isinstance(table, dict) else None
    return [str(v) for v in values] if isinstance(values, list) else []


def _patched_names(root: Path) -> set[str]:
    names: set[str] = set()
    for path in _test_files(root):
        try:
            text = path.read_bytes()
            if b"patch" in text or b"setattr" in text:
                names.update(patched_in(ast.parse(text)))
        except (OSError, SyntaxError, ValueError):
            continue
    return names


def patched_in(tree: ast.Module) -> Iterator[str]:
    """The names a test module replaces: dotted where the target resolves through its imports,
    else the bare attribute name (any object's attribute of that name counts as patched)."""
    imports = import_map(tree, "")
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _callee(node.func) in _PATCHERS and node.args):
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            yield first.value
        elif len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
            name = str(node.args[1].value)
            target = dotted(first, imports)
            yield f"{target}.{name}" if target else name


def _callee(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _test_files(root: Path) -> Iterator[Path]:
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS]
        in_tests = any(part in _TEST_DIRS for part in Path(directory).relative_to(root).parts)
        for name in files:
            if name.endswith(".py") and (
                in_tests or name.startswith("test_") or name == "conftest.py"
            ):
                yield Path(directory, name)


def _locate(project: Project, module: str) -> Path | None:
    """The file of a dotted module under the project's source roots."""
    relative = Path(*module.split("."))
    for source in project.sources or (project.root,):
        for candidate in (source / relative.with_suffix(".py"), source / relative / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _ruff_table(root: Path) -> dict[str, object]:
    for name in ("ruff.toml", ".ruff.toml"):
        if (root / name).is_file():
            return _toml(root / name)
    table = _pyproject(root).get("tool", {}).get("ruff", {})
    return table if isinstance(table, dict) else {}


def _pyproject(root: Path) -> dict[str, dict[str, dict[str, object]]]:
    return _toml(root / "pyproject.toml")  # type: ignore[return-value]


def _toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _relative(path: Path, root: Path) -> str:
    resolved = path.resolve()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else str(path)


def _module_by_init(path: Path) -> str:
    """Outside any source root: the packages up to the first directory without __init__.py."""
    parts = [] if path.name == "__init__.py" else [path.stem]
    directory = path.parent
    while (directory / "__init__.py").exists() and directory.parent != directory:
        parts.append(directory.name)
        directory = directory.parent
    return ".".join(reversed(parts))


def absolute(name: str, package: str) -> str:
    """``.schemas.DatasetEvent`` in package ``engines.dataset.events`` -> the full name."""
    if not name.startswith("."):
        return name
    level = len(name) - len(name.lstrip("."))
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return name  # beyond the top package: leave it unresolved (never matches a class)
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, name[level:]]) if base else name[level:]


def _last(dotted: str) -> str:
    return dotted.rsplit(".", 1)[-1]


def stdlib(top: str) -> bool:
    return top in sys.stdlib_module_names
