"""Golden before/after: the fixture tree migrates into the reviewed tree, and stays there."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from logkit.codemods.report import LOGGED_SHAPES, REACHING, Site, coverage
from logkit.codemods.runner import run

from tests.codemods.conftest import Migrated
from tests.codemods.tree import AFTER, BEFORE, REPORT, copy_tree, python_sources

SUMMARY_LINES = 4  # the totals after the site lines of report.txt


def test_apply_turns_the_before_tree_into_the_reviewed_after_tree(migrated: Migrated) -> None:
    assert not migrated.summary.errors
    assert python_sources(migrated.root) == python_sources(AFTER)
    expected = REPORT.read_text().splitlines()[:-SUMMARY_LINES]
    assert [s.line_text() for s in migrated.summary.sites] == expected


def test_a_second_run_changes_nothing_and_reports_the_same_routes(
    tmp_path: Path, migrated: Migrated
) -> None:
    root = copy_tree(AFTER, tmp_path / "tree")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        again = run([Path("engines")], jobs=1)
    assert again.changed == [] and not again.errors
    assert python_sources(root) == python_sources(AFTER)

    # Lines moved (imports were added); what was routed or left stays so, through the same
    # loggers, and a sink call adapted the first time is found adapted.
    def outcome(site: Site) -> tuple[str, str, str, str | None]:
        return (
            site.path,
            site.shape,
            site.action,
            "logkit" if site.action == "adapted" else site.via,
        )

    first = sorted(outcome(s) for s in migrated.summary.sites if s.is_site)
    second = sorted(outcome(s) for s in again.sites if s.is_site)
    assert second == first
    assert coverage(again.sites) == coverage(migrated.summary.sites)


def test_at_least_nine_in_ten_logging_sites_reach_logkit_each_saying_how(
    migrated: Migrated,
) -> None:
    reaching, counted = coverage(migrated.summary.sites)
    assert counted >= 35 and reaching / counted >= 0.9
    for site in migrated.summary.sites:
        if site.action in REACHING:
            assert site.via, site.line_text()
        if site.shape in LOGGED_SHAPES and site.action == "routed":
            assert site.via.startswith("engines."), site.line_text()


def test_every_default_event_logger_and_audit_site_is_routed(migrated: Migrated) -> None:
    by_via: dict[str, list[str]] = {}
    for site in migrated.summary.sites:
        if site.action == "routed" and site.via:
            by_via.setdefault(site.via, []).append(site.where)
    assert len(by_via["engines.logging.event_log.default_event_logger"]) >= 10
    assert by_via["engines.logging.audit._audit_logger"]  # emit_audit_event and key rotation
    assert by_via["engines.chat.history.log_turn"]  # a logger named in the tree's own config


def test_test_code_and_untouched_modules_stay_byte_for_byte() -> None:
    before, after = python_sources(BEFORE), python_sources(AFTER)
    changed = sorted(name for name in before if before[name] != after[name])
    assert changed == [
        "engines/analytics/digest.py",
        "engines/eval/judge.py",
        "engines/logging/events/engine.py",
        "engines/rag/embed.py",
        "engines/rag/ingest.py",
        "engines/services/canvas.py",
    ]
    # The loggers that forward keep every name tests patch (run, _audit_logger, ...).
    for name in ("engines/logging/audit.py", "engines/logging/event_log.py", "conftest.py"):
        assert before[name] == after[name]


def test_run_keeps_its_computation_and_persists_through_logkit() -> None:
    engine = python_sources(AFTER)["engines/logging/events/engine.py"].decode()
    assert "logkit.emit_event(logkit.from_legacy(event))" in engine
    assert "write_event" not in engine and "print(" not in engine
    assert "logger.info(json.dumps(" in engine
    for kept in ("strip_pii", "get_training_pref_service().train_ok(", '"status": "error"'):
        assert kept in engine


@pytest.mark.skipif(
    shutil.which("ruff", path=str(Path(sys.executable).parent)) is None,
    reason="ruff is a dev dependency",
)
def test_files_sorted_before_are_sorted_after(tmp_path: Path, migrated: Migrated) -> None:
    """``ruff check --select I``: every file clean before is clean after (namespace packages
    included: engines/ has no __init__.py)."""
    ruff = str(Path(sys.executable).parent / "ruff")
    before = copy_tree(BEFORE, tmp_path / "before")

    def unsorted(root: Path) -> set[str]:
        done = subprocess.run(
            [ruff, "check", "--select", "I", "--output-format", "concise", "--no-cache", "."],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        return {line.split(":")[0] for line in done.stdout.splitlines() if ".py:" in line}

    assert not (BEFORE / "engines" / "__init__.py").exists()
    assert unsorted(migrated.root) <= unsorted(before)
    assert unsorted(before) == {"engines/rag/embed.py"}  # the one file unsorted to begin with
