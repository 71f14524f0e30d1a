"""The fixture tree: a small legacy engines repository (its loggers, services and their own
tests), before migration, and the reviewed result of ``apply`` after."""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
BEFORE = FIXTURES / "before"
AFTER = FIXTURES / "after"
REPORT = FIXTURES / "report.txt"


def copy_tree(source: Path, destination: Path) -> Path:
    """A copy of a fixture tree (without caches); returns the copy's root."""
    shutil.copytree(
        source, destination, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache")
    )
    return destination


def python_sources(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*.py"))
        if "__pycache__" not in p.parts
    }
