"""One migrated copy of the fixture tree, shared by the tests that only read it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from codemods.runner import Summary, run
from tests.codemods.tree import BEFORE, copy_tree


@dataclass(frozen=True)
class Migrated:
    root: Path  # holds engines/
    summary: Summary


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Migrated:
    """The before tree after ``run``, paths in the report relative to the tree's root."""
    root = tmp_path_factory.mktemp("migrated")
    copy_tree(BEFORE, root / "tree")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root / "tree")
        summary = run([Path("engines")], jobs=1)
    return Migrated(root / "tree", summary)
