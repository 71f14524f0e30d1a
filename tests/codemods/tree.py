"""The fixture tree: legacy engines code before migration, and the reviewed result after."""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
BEFORE = FIXTURES / "before"
AFTER = FIXTURES / "after"
REPORT = FIXTURES / "report.txt"


def copy_tree(source: Path, destination: Path) -> Path:
    """A copy of a fixture tree (without caches); returns the copy's ``engines`` directory."""
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__"))
    return destination / "engines"


def python_sources(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*.py"))
        if "__pycache__" not in p.parts
    }
