"""Golden before/after: the fixture tree migrates into the reviewed tree, and stays there."""

from __future__ import annotations

from pathlib import Path

from codemods.report import Site
from codemods.runner import run
from tests.codemods.conftest import Migrated
from tests.codemods.tree import AFTER, BEFORE, REPORT, copy_tree, python_sources


def _report_lines(sites: list[Site]) -> list[str]:
    """The report as `logkit codemod apply` prints it (the golden report.txt, less its total)."""
    return [f"{s.where}: {s.shape} {s.action}: {s.reason}" for s in sites]


def test_apply_turns_the_before_tree_into_the_reviewed_after_tree(migrated: Migrated) -> None:
    assert not migrated.summary.errors
    assert python_sources(migrated.root) == python_sources(AFTER)
    *expected, _total = REPORT.read_text().splitlines()
    assert _report_lines(migrated.summary.sites) == expected


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    engines = copy_tree(AFTER, tmp_path / "tree")
    summary = run([engines], jobs=1)
    assert summary.changed == []
    assert python_sources(tmp_path / "tree") == python_sources(AFTER)
    # Only the sites a reviewer still has to look at are reported again.
    assert {s.action for s in summary.sites} == {"left"}


def test_class_definitions_loggers_and_lookalikes_are_untouched() -> None:
    untouched = [
        "engines/dataset/events/schemas.py",
        "engines/dataset/events/logger.py",
        "engines/nexus/logging.py",
        "engines/analytics/models.py",
        "engines/analytics/track.py",
        "engines/budget/charge.py",
    ]
    before, after = python_sources(BEFORE), python_sources(AFTER)
    for name in untouched:
        assert before[name] == after[name], name


def test_every_legacy_shape_of_the_tree_is_reported() -> None:
    report = REPORT.read_text()
    for shape in (
        "dataset-event",
        "model-call-log",
        "event-log-entry",
        "stream-event",
        "usage-event",
    ):
        assert f" {shape} " in report
    for action in ("converted", "adapted", "left"):
        assert f" {action}: " in report


def test_the_after_tree_imports_logkit_only_where_it_emits() -> None:
    for name, source in python_sources(AFTER).items():
        emits = b"logkit.emit" in source
        assert emits == (b"import logkit\n" in source), name


def test_legacy_imports_go_only_when_nothing_uses_them() -> None:
    after = python_sources(AFTER)
    embed = after["engines/rag/embed.py"].decode()
    # ModelCallLog is still used (a type annotation, the adapted site): the import stays whole.
    assert (
        "from engines.nexus.logging import ModelCallLog, ModelCallLogger, PromptSnapshot" in embed
    )
    pipeline = after["engines/chat/pipeline.py"].decode()
    assert "_audit_logger" not in pipeline and "log_event," not in pipeline
    assert "log_dataset_event" in pipeline  # answer_checked still uses it
    aliases = after["engines/eval/aliases.py"].decode()
    assert "from engines.dataset.events.logger import log_event" not in aliases
