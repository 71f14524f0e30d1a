"""Where the added ``import logkit`` goes: isort's place in a sorted block, else after the rest."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from logkit.codemods.imports import add_logkit_import
from logkit.codemods.runner import migrate_source

SITE = """

def f(t):
    log_event(DatasetEvent(tenantId=t, env="dev", surface="s", agentId="a", input={}, output={}))
"""


def _fallback(module: cst.Module) -> cst.Module:
    return module.with_changes(body=[*module.body, cst.parse_statement("import logkit  # END\n")])


def place(source: str) -> str:
    first_party = {"engines", "shared"}.__contains__
    return add_logkit_import(cst.parse_module(source), first_party, _fallback).code


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


def test_logkit_testing_binds_logkit_so_no_second_import(tmp_path: Path) -> None:
    source = (
        "from engines.dataset.events.logger import log_event\n"
        "from engines.dataset.events.schemas import DatasetEvent\n"
        "import logkit.testing\n" + SITE
    )
    new, sites = migrate_source(source.encode(), tmp_path / "site.py")
    assert "logkit.emit(" in new.decode()
    assert new.decode().count("import logkit") == 1
    assert [s.action for s in sites] == ["converted"]


def test_first_party_is_the_own_package_and_its_siblings(tmp_path: Path) -> None:
    for package in ("engines/x", "shared"):
        (tmp_path / package).mkdir(parents=True)
    for init in ("engines/__init__.py", "engines/x/__init__.py", "shared/__init__.py"):
        (tmp_path / init).write_text("")
    source = (
        "import os\n\n"
        "from engines.dataset.events.logger import log_event\n"
        "from engines.dataset.events.schemas import DatasetEvent\n"
        "from shared import tools\n" + SITE
    )
    new, _sites = migrate_source(source.encode(), tmp_path / "engines/x/site.py")
    assert new.decode().startswith("import os\n\nimport logkit\n\nfrom shared import tools\n\n")
