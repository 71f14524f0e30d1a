"""The judge: the fixture tree's own legacy test suite, before and after ``apply``.

The fixture tree is a repository of its own (engines/, its tests/, a conftest that binds a full
logkit scope the way the platform's request middleware does, its pyproject.toml). Three copies
(before, ``apply``, ``apply --unsafe``) are migrated with the real CLI from their root, as a
user would, and their suites run in a subprocess each, with the copy as rootdir and its own
pyproject.toml as config. Subprocesses rather than pytester's in-process run because the three
trees share module names (``engines.*``) and each suite configures logkit for its process: in
one process every ``engines`` module and logkit's runtime would have to be reset in between,
and this project's conftest would be loaded. The three chains run at the same time.

Behaviour preserved is the bar: every test that passed before passes after.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.codemods.tree import BEFORE, copy_tree


def start(root: Path, apply: list[str] | None) -> subprocess.Popen[bytes]:
    """``logkit codemod apply`` (when ``apply`` is given: its extra options) as a user runs it
    from the tree's root, its JSON report beside the tree; then the tree's own test suite,
    its outcomes in junit XML beside the tree. One process chain per tree."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LOGKIT_", "PYTEST_", "PYTHONPATH", "ENGINES_"))
    }
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    python = shlex.quote(sys.executable)
    suite = (
        f"{python} -m pytest -q -p no:cacheprovider --rootdir . -c pyproject.toml"
        f" --junitxml=../{root.name}-junit.xml"
    )
    script = suite
    if apply is not None:
        options = " ".join(shlex.quote(o) for o in apply)
        report = f"../{root.name}-report.json"
        script = (
            f"{python} -m logkit codemod apply --json -j 1 {options} engines > {report}; {suite}"
        )
    return subprocess.Popen(
        ["sh", "-c", script],
        cwd=root,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@dataclass(frozen=True)
class Suite:
    outcomes: dict[str, str]  # test id -> passed / failure / error / skipped
    output: str
    report: dict[str, Any] | None  # `apply --json` (None for the tree before the migration)

    def passed(self) -> set[str]:
        return {test for test, outcome in self.outcomes.items() if outcome == "passed"}

    def sites(self, action: str) -> list[tuple[str, int]]:
        assert self.report is not None
        return [(s["path"], s["line"]) for s in self.report["sites"] if s["action"] == action]


def finish(process: subprocess.Popen[bytes], root: Path) -> Suite:
    output, _ = process.communicate(timeout=300)
    text = output.decode(errors="replace")
    junit = root.parent / f"{root.name}-junit.xml"
    assert junit.exists(), text
    found: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        found[test_id] = kinds[0] if kinds else "passed"
    report_path = root.parent / f"{root.name}-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return Suite(found, text, report)


@pytest.fixture(scope="module")
def suites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Suite]:
    """The suite's outcomes on the tree before, after `apply` and after `apply --unsafe`:
    three copies, their chains running at the same time."""
    base = tmp_path_factory.mktemp("legacy-suite")
    runs = {"before": None, "safe": [], "unsafe": ["--unsafe"]}
    roots = {name: copy_tree(BEFORE, base / name) for name in runs}
    started = {name: start(roots[name], apply) for name, apply in runs.items()}
    return {name: finish(process, roots[name]) for name, process in started.items()}


def test_the_legacy_suite_is_green_before_the_migration(suites: dict[str, Suite]) -> None:
    before = suites["before"]
    assert len(before.outcomes) >= 50, before.output
    assert before.passed() == set(before.outcomes), before.output


@pytest.mark.parametrize("mode", ["safe", "unsafe"])
def test_every_test_that_passed_before_passes_after_apply(
    suites: dict[str, Suite], mode: str
) -> None:
    after = suites[mode]
    assert after.report is not None and after.report["errors"] == [], after.output
    # The migration did happen: the logger, the hook defaults and the sink calls.
    changed = set(after.report["files_changed"])
    assert "engines/logging/events/engine.py" in changed and len(changed) >= 6
    broken = {
        test: after.outcomes.get(test, "missing")
        for test in suites["before"].passed() - after.passed()
    }
    assert broken == {}, after.output


def test_unsafe_applies_exactly_the_rewrites_the_safe_run_announced(
    suites: dict[str, Suite],
) -> None:
    safe, unsafe = suites["safe"], suites["unsafe"]
    assert safe.report is not None and unsafe.report is not None
    announced = [
        (s["path"], s["line"])
        for s in safe.report["sites"]
        if s["action"] == "adapted" and s["unsafe"]
    ]
    assert announced and safe.sites("converted") == []
    assert unsafe.sites("converted") == announced
    assert all(s["unsafe"] for s in unsafe.report["sites"] if s["action"] == "converted")
