"""The codemods are installed as ``logkit.codemods`` from the codemods/ folder, never as a
top-level ``codemods`` package in site-packages."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_every_package_of_the_tree_is_listed_and_codemods_is_mapped() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"logkit.codemods": "codemods"}
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "logkit").rglob("__init__.py")
    }
    assert set(setuptools["packages"]) == found | {"logkit.codemods"}
    assert not any(p == "codemods" or p.startswith("codemods.") for p in setuptools["packages"])


def test_the_installed_package_exposes_logkit_codemods_only(tmp_path: Path) -> None:
    """Outside the source tree (so the folder itself is not on sys.path)."""
    probe = (
        "import importlib.util, logkit.codemods.runner as r, logkit.codemods.runtime;"
        "print(importlib.util.find_spec('codemods') is None, r.__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["True", "logkit.codemods.runner"]
