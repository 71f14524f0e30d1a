"""Where the added ``import logkit`` goes: isort's place in a sorted block, else after the rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import libcst as cst
import pytest
from logkit.codemods.imports import ImportSpec, add_import, add_logkit_import
from logkit.codemods.project import discover
from logkit.codemods.runner import migrate_source

SITE = """

def f(t):
    log_event(DatasetEvent(tenantId=t, env="dev", surface="s", agentId="a", input={}, output={}))
"""


def _fallback(module: cst.Module) -> cst.Module:
    return module.with_changes(body=[*module.body, cst.parse_statement("import logkit  # END\n")])


def _first_party(module: str) -> bool:
    return module.split(".", maxsplit=1)[0] in {"engines", "shared"}


def place(source: str) -> str:
    return add_logkit_import(cst.parse_module(source), _first_party, _fallback).code


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "import os\n\nimport attrs\nimport zzz\nfrom attrs import define\n\n"
            "from engines import x\n",
            "import os\n\nimport attrs\nimport logkit\nimport zzz\nfrom attrs import define\n\n"
            "from engines import x\n",
            id="sorted-into-the-third-party-group",
        ),
        pytest.param(
            "import os\n\nfrom attrs import define\nimport pydantic\n",
            "import os\n\nfrom attrs import define\nimport logkit\nimport pydantic\n",
            id="force-sort-within-sections",
        ),
        pytest.param(
            "import os\n\nimport zzz\nimport attrs\n",
            "import os\n\nimport zzz\nimport attrs\nimport logkit\n",
            id="unsorted-group-gets-it-last",
        ),
        pytest.param(
            '"""Doc."""\n\nfrom __future__ import annotations\n\nfrom typing import Any\n\n'
            "# our own\nfrom engines import x\n\n\ndef f():\n    pass\n",
            '"""Doc."""\n\nfrom __future__ import annotations\n\nfrom typing import Any\n\n'
            "import logkit\n\n# our own\nfrom engines import x\n\n\ndef f():\n    pass\n",
            id="own-group-between-stdlib-and-first-party",
        ),
        pytest.param(
            "from engines import x\n\nX = 1\n",
            "import logkit\n\nfrom engines import x\n\nX = 1\n",
            id="own-group-first",
        ),
        pytest.param(
            '"""Doc."""\n\nfrom __future__ import annotations\n\n\nX = 1\n',
            '"""Doc."""\n\nfrom __future__ import annotations\n\nimport logkit\n\n\nX = 1\n',
            id="after-future-never-above",
        ),
        pytest.param(
            "from __future__ import annotations\n\nfrom .schemas import E\n",
            "from __future__ import annotations\n\nimport logkit\n\nfrom .schemas import E\n",
            id="before-relative-imports",
        ),
        pytest.param(
            "import os\nimport attrs\n",
            "import os\nimport attrs\nimport logkit  # END\n",
            id="mixed-group-falls-back",
        ),
        pytest.param(
            "import os\n\nX = 1\nimport attrs\n",
            "import os\n\nX = 1\nimport attrs\nimport logkit  # END\n",
            id="imports-further-down-fall-back",
        ),
        pytest.param("import os; import sys\n", "import os; import sys\nimport logkit  # END\n"),
        pytest.param('"""Doc."""\n', '"""Doc."""\nimport logkit  # END\n', id="no-imports"),
        pytest.param("import logkit.testing\n", "import logkit.testing\n", id="bound-already"),
        pytest.param("import logkit as logkit\n", "import logkit as logkit\n"),
    ],
)
def test_the_import_goes_where_an_import_sorter_puts_it(source: str, expected: str) -> None:
    assert place(source) == expected


def place_spec(source: str, spec: ImportSpec) -> str:
    return add_import(cst.parse_module(source), spec, _first_party, _fallback).code


HOOK = ImportSpec("logkit.codemods.runtime", "legacy_hook")


@pytest.mark.parametrize(
    ("source", "spec", "expected"),
    [
        pytest.param(
            "import os\n\nfrom pydantic import BaseModel\n\nfrom engines import x\n",
            HOOK,
            "import os\n\nfrom logkit.codemods.runtime import legacy_hook\n"
            "from pydantic import BaseModel\n\nfrom engines import x\n",
            id="from-import-sorted-into-third-party",
        ),
        pytest.param(
            "import attrs\nfrom logkit.codemods.runtime import Other, zed\n",
            HOOK,
            "import attrs\nfrom logkit.codemods.runtime import Other, legacy_hook, zed\n",
            id="merged-into-the-same-module-order-by-type",
        ),
        pytest.param(
            "from logkit.codemods.runtime import legacy_hook\n",
            HOOK,
            "from logkit.codemods.runtime import legacy_hook\n",
            id="already-bound",
        ),
        pytest.param(
            "from __future__ import annotations\n\nimport json\n\nimport logkit\n",
            ImportSpec("logging"),
            "from __future__ import annotations\n\nimport json\nimport logging\n\nimport logkit\n",
            id="stdlib-into-stdlib",
        ),
    ],
)
def test_other_imports_go_where_an_import_sorter_puts_them(
    source: str, spec: ImportSpec, expected: str
) -> None:
    assert place_spec(source, spec) == expected


CONFIG = '[tool.logkit.codemod]\nsinks = ["engines.export.publish"]\n'
SINK_SITE = """

def f(t):
    publish(DatasetEvent(tenantId=t, env="dev", surface="s", agentId="a", input={}, output={}))
"""
# The modules the headers import from: ruff decides first party by their paths.
MODULES = ("engines/export.py", "engines/a.py", "engines/z.py", "engines/dataset/events/schemas.py")


def migrate_in_tree(root: Path, header: str, name: str = "engines/x/site.py") -> str:
    (root / "pyproject.toml").write_text(CONFIG)
    for module in MODULES:
        (root / module).parent.mkdir(parents=True, exist_ok=True)
        (root / module).touch()
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + SINK_SITE)
    new, _sites = migrate_source(path.read_bytes(), path, project=discover([root]))
    return new.decode()


def test_logkit_testing_binds_logkit_so_no_second_import(tmp_path: Path) -> None:
    header = (
        "from engines.dataset.events.schemas import DatasetEvent\n"
        "from engines.export import publish\n"
        "import logkit.testing\n"
    )
    new = migrate_in_tree(tmp_path, header)
    assert "logkit.emit_event(" in new and new.count("import logkit") == 1


def test_first_party_is_decided_by_the_tree_namespace_packages_included(tmp_path: Path) -> None:
    """engines/ has no __init__.py (a namespace package): still first party, so logkit goes
    in the third-party group above it, never inside the engines group."""
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "__init__.py").write_text("")
    header = (
        "import os\n\n"
        "import pydantic\n\n"
        "from engines.dataset.events.schemas import DatasetEvent\n"
        "from engines.export import publish\n"
        "from shared import tools\n"
    )
    new = migrate_in_tree(tmp_path, header)
    assert not (tmp_path / "engines" / "__init__.py").exists()
    assert new.startswith(
        "import os\n\nimport logkit\nimport pydantic\n\n"
        "from engines.dataset.events.schemas import DatasetEvent\nfrom shared import tools\n"
    )


@pytest.mark.parametrize(
    ("header", "name"),
    [
        pytest.param(
            "import os\n\nfrom engines.export import publish\nfrom engines.z import z\n\n"
            "from .schemas import DatasetEvent\n",
            "engines/dataset/events/site.py",
            id="first-of-its-group",
        ),
        pytest.param(
            "import os\n\nfrom engines.a import a\nfrom engines.dataset.events.schemas import "
            "DatasetEvent\nfrom engines.export import publish\nfrom engines.z import z\n",
            "engines/x/site.py",
            id="middle-of-its-group",
        ),
        pytest.param(
            "import os\n\nfrom engines.dataset.events.schemas import DatasetEvent\n"
            "from engines.export import publish\n",
            "engines/x/site.py",
            id="last-of-its-group",
        ),
        pytest.param(
            '"""Doc."""\n\nimport attrs\n\nfrom engines.dataset.events.schemas import '
            "DatasetEvent\nfrom engines.export import publish\n\nX = 1\n",
            "engines/x/site.py",
            id="after-a-docstring",
        ),
        pytest.param(
            "from engines.export import publish\n\nfrom .schemas import DatasetEvent\n",
            "engines/dataset/events/site.py",
            id="alone-in-its-group",
        ),
    ],
)
def test_removing_the_sinks_import_never_splits_a_group(
    tmp_path: Path, header: str, name: str
) -> None:
    """Sorted before (``ruff check --select I``), sorted after."""
    path = tmp_path / name
    path.parent.mkdir(parents=True)
    path.write_text(header + SINK_SITE.replace("publish(", "print(publish, DatasetEvent, "))
    for module in MODULES:
        (tmp_path / module).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / module).touch()
    assert ruff_sorted(tmp_path)
    new = migrate_in_tree(tmp_path, header, name)
    assert "publish" not in new.split("def f")[0] and "logkit.emit_event(" in new
    path.write_text(new)
    assert ruff_sorted(tmp_path), new


def ruff_sorted(root: Path) -> bool:
    ruff = Path(sys.executable).parent / "ruff"
    done = subprocess.run(
        [str(ruff), "check", "--select", "I", "--no-cache", "--quiet", "."],
        cwd=root,
        capture_output=True,
        check=False,
    )
    return done.returncode == 0
