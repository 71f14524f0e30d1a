"""The runner: prefilter, parallel workers, verified atomic writes, errors reported per file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from logkit.codemods import runner

from tests.codemods.tree import AFTER, BEFORE, copy_tree, python_sources

# A call of a declared pure sink: the one kind of call site the codemod rewrites.
LEGACY_SITE = b"""from engines.dataset.events.schemas import DatasetEvent
from engines.export import publish


def f(t):
    publish(DatasetEvent(tenantId=t, env="dev", surface="s", agentId="a", input={}, output={}))
"""
CONFIG = '[tool.logkit.codemod]\nsinks = ["engines.export.publish"]\n'


@pytest.fixture
def tmp_path(tmp_path: Path) -> Path:
    """A repository root declaring the sink."""
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    return tmp_path


def test_files_that_name_no_legacy_class_are_not_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "plain.py").write_text("x = 1\n")
    (tmp_path / "legacy.py").write_bytes(LEGACY_SITE)
    (tmp_path / "notes.txt").write_bytes(LEGACY_SITE)  # not Python: never looked at
    parsed: list[str] = []
    real = runner.process_file
    monkeypatch.setattr(runner, "process_file", lambda p, job: parsed.append(p) or real(p, job))
    summary = runner.run([tmp_path], jobs=1)
    assert (summary.files_scanned, summary.files_parsed) == (2, 1)
    assert parsed == [str(tmp_path / "legacy.py")]
    assert summary.changed == [str(tmp_path / "legacy.py")]


def test_an_unparsable_file_is_reported_and_the_rest_migrated(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("from x import DatasetEvent\ndef f(:\n")
    (tmp_path / "legacy.py").write_bytes(LEGACY_SITE)
    summary = runner.run([tmp_path], jobs=1)
    (error,) = summary.errors
    assert error.path.endswith("broken.py") and error.error is not None
    assert error.error.startswith("cannot parse:") and "\n" not in error.error
    assert b"logkit.emit_event(" in (tmp_path / "legacy.py").read_bytes()


def test_a_rewrite_that_does_not_parse_is_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "legacy.py"
    target.write_bytes(LEGACY_SITE)
    monkeypatch.setattr(runner, "migrate_source", lambda *_, **__: (b"def broken(:\n", []))
    summary = runner.run([tmp_path], jobs=1)
    assert summary.changed == [] and len(summary.errors) == 1
    assert target.read_bytes() == LEGACY_SITE


def test_a_failing_transform_leaves_the_file_and_reports_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "legacy.py"
    target.write_bytes(LEGACY_SITE)

    def explode(*_: object, **__: object) -> tuple[bytes, list[object]]:
        raise RuntimeError("unexpected node\nwith detail")

    monkeypatch.setattr(runner, "migrate_source", explode)
    (error,) = runner.run([tmp_path], jobs=1).errors
    assert error.error == "codemod failed, file left unchanged: RuntimeError: unexpected node"
    assert target.read_bytes() == LEGACY_SITE


def test_writes_are_atomic_and_keep_the_file_mode(tmp_path: Path) -> None:
    target = tmp_path / "legacy.py"
    target.write_bytes(LEGACY_SITE)
    target.chmod(0o640)
    runner.run([tmp_path], jobs=1)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    # No temporary file left beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["legacy.py", "pyproject.toml"]


def test_diff_and_check_modes_write_nothing(tmp_path: Path) -> None:
    target = tmp_path / "legacy.py"
    target.write_bytes(LEGACY_SITE)
    diff = runner.run([tmp_path], mode="diff", jobs=1)
    check = runner.run([tmp_path], mode="check", jobs=1)
    assert diff.changed == check.changed == [str(target)]
    (outcome,) = diff.outcomes
    assert outcome.diff.startswith(f"--- a/{target}\n+++ b/{target}\n")
    assert "+import logkit" in outcome.diff
    assert target.read_bytes() == LEGACY_SITE


def test_parallel_workers_give_the_same_tree(tmp_path: Path) -> None:
    root = copy_tree(BEFORE, tmp_path / "tree")
    summary = runner.run([root / "engines"], jobs=2)
    assert python_sources(root) == python_sources(AFTER)
    before, after = python_sources(BEFORE), python_sources(AFTER)
    assert len(summary.changed) == sum(before[name] != after[name] for name in before)
    # Outcomes arrive in completion order; the report is by path all the same.
    assert [o.path for o in summary.outcomes] == sorted(o.path for o in summary.outcomes)


def test_test_files_are_never_changed(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    for name in ("tests/test_export.py", "test_top.py", "conftest.py", "helpers_test.py"):
        (tmp_path / name).write_bytes(LEGACY_SITE)
    (tmp_path / "legacy.py").write_bytes(LEGACY_SITE)
    summary = runner.run([tmp_path], jobs=1)
    assert summary.changed == [str(tmp_path / "legacy.py")]
    assert summary.files_tests == 4 and summary.files_parsed == 1


def test_the_project_is_read_once_and_handed_to_the_workers(tmp_path: Path) -> None:
    (tmp_path / "legacy.py").write_bytes(LEGACY_SITE)
    (tmp_path / "more.py").write_bytes(LEGACY_SITE)
    summary = runner.run([tmp_path], jobs=2)
    assert summary.project is not None and summary.project.root == tmp_path.resolve()
    assert summary.project.config.sinks == ("engines.export.publish",)
    assert sorted(summary.changed) == [str(tmp_path / "legacy.py"), str(tmp_path / "more.py")]
