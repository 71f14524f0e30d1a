"""One migrated copy of the fixture tree, shared by the tests that only read it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from logkit.codemods.runner import Summary, run

from tests.codemods.tree import BEFORE, copy_tree

# The fixture tree is another repository, with its own conftest and tests: never collected
# as this project's (test_legacy_suite.py runs them, in their own process).
collect_ignore = ["fixtures"]


@dataclass(frozen=True)
class Migrated:
    root: Path  # holds engines/ and the tree's own tests/
    summary: Summary


def migrate_copy(destination: Path, *, unsafe: bool = False) -> Migrated:
    """A copy of the before tree, migrated from its root as a user would (`apply engines`)."""
    root = copy_tree(BEFORE, destination)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        summary = run([Path("engines")], jobs=1, unsafe=unsafe)
    return Migrated(root, summary)


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Migrated:
    """The before tree after a (safe) ``run``, paths in the report relative to its root."""
    return migrate_copy(tmp_path_factory.mktemp("migrated") / "tree")
