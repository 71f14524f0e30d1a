"""Module names for files, so relative imports resolve to the classes they name."""

from __future__ import annotations

from pathlib import Path


def package_of(path: Path) -> str:
    """The dotted package a file belongs to: its directories up to the first without
    ``__init__.py`` (how Python itself finds a package's root). "" when it has none."""
    parts: list[str] = []
    directory = path.resolve().parent
    while (directory / "__init__.py").exists() and directory.parent != directory:
        parts.append(directory.name)
        directory = directory.parent
    return ".".join(reversed(parts))


def module_of(path: Path) -> str:
    """The dotted module name of a file (``pkg.mod``; ``pkg`` for ``pkg/__init__.py``)."""
    package = package_of(path)
    if path.name == "__init__.py":
        return package
    return f"{package}.{path.stem}" if package else path.stem


def project_root(path: Path, package: str) -> Path:
    """The directory holding the top package of ``path`` (the file's own directory when it
    is in no package): where isort and ruff look for first-party names."""
    directory = path.resolve().parent
    for _ in package.split(".") if package else ():
        directory = directory.parent
    return directory


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
