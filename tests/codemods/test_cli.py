"""`logkit codemod list|apply` through Typer's CliRunner, as a new user would run them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from logkit.cli.main import app
from tests.codemods.tree import AFTER, BEFORE, copy_tree, python_sources

runner = CliRunner()


@pytest.fixture
def engines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh before tree; the working directory is its root, so paths read `engines/...`."""
    copy_tree(BEFORE, tmp_path / "tree")
    monkeypatch.chdir(tmp_path / "tree")
    yield Path("engines")


def test_list_names_every_codemod() -> None:
    result = runner.invoke(app, ["codemod", "list", "--json"])
    assert result.exit_code == 0
    names = [row["name"] for row in json.loads(result.output)]
    assert names == [
        "dataset-event",
        "model-call-log",
        "event-log-entry",
        "stream-event",
        "usage-event",
    ]
    human = runner.invoke(app, ["codemod", "list"])
    assert human.exit_code == 0 and "dataset-event" in human.output


def test_diff_prints_a_unified_diff_and_writes_nothing(engines: Path) -> None:
    result = runner.invoke(app, ["codemod", "apply", "--diff", str(engines / "chat")])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "--- a/engines/chat/pipeline.py\n+++ b/engines/chat/pipeline.py\n"
    )
    assert "+    logkit.emit(" in result.stdout
    assert python_sources(engines.parent) == python_sources(BEFORE)
    # The report goes to stderr, so `--diff > change.patch` is a clean patch.
    assert "engines/chat/pipeline.py:64: dataset-event left" in result.stderr


def test_check_fails_before_apply_and_passes_after(engines: Path) -> None:
    before = runner.invoke(app, ["codemod", "apply", "--check", str(engines)])
    assert before.exit_code == 1
    assert "28 files scanned, 14 parsed, 6 would change; 6 sites converted" in before.output
    applied = runner.invoke(app, ["codemod", "apply", str(engines), "--jobs", "2"])
    assert applied.exit_code == 0, applied.output
    assert python_sources(engines.parent) == python_sources(AFTER)
    after = runner.invoke(app, ["codemod", "apply", "--check", str(engines)])
    assert after.exit_code == 0, after.output
    assert ", 0 would change; 0 sites converted, 0 adapted" in after.output


def test_json_report_lists_every_site_with_file_line_and_reason(engines: Path) -> None:
    subset = [str(engines / "budget"), str(engines / "rag")]
    result = runner.invoke(app, ["codemod", "apply", "--check", "--json", *subset])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["mode"] == "check" and report["errors"] == []
    assert report["files_parsed"] < report["files_scanned"]
    assert report["files_changed"] == ["engines/rag/embed.py"]
    assert report["counts"] == {
        "converted": sum(s["action"] == "converted" for s in report["sites"]),
        "adapted": sum(s["action"] == "adapted" for s in report["sites"]),
        "left": sum(s["action"] == "left" for s in report["sites"]),
    }
    site = next(s for s in report["sites"] if s["path"] == "engines/budget/charge.py")
    assert site == {
        "path": "engines/budget/charge.py",
        "line": 11,
        "shape": "usage-event",
        "action": "left",
        "reason": site["reason"],
    }
    assert "list_usage/get_totals" in site["reason"]


def test_only_runs_the_named_codemod(engines: Path) -> None:
    result = runner.invoke(
        app, ["codemod", "apply", "--json", "--only", "model-call-log", str(engines)]
    )
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert {s["shape"] for s in report["sites"]} == {"model-call-log"}
    assert sorted(report["files_changed"]) == ["engines/eval/awkward.py", "engines/rag/embed.py"]
    assert b"DatasetEvent(" in (engines / "chat" / "pipeline.py").read_bytes()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--only", "dataset"], "unknown codemod dataset; `logkit codemod list` shows the names"),
        (["no/such/dir"], "no such file or directory: no/such/dir"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    engines: Path, arguments: list[str], message: str
) -> None:
    result = runner.invoke(app, ["codemod", "apply", *arguments, str(engines / "rag")])
    assert result.exit_code == 2
    assert result.stderr == f"logkit: {message}\n"


def test_an_unparsable_file_is_reported_not_crashed(engines: Path) -> None:
    (engines / "rag" / "legacy_py2.py").write_text('print "DatasetEvent"\n')
    result = runner.invoke(app, ["codemod", "apply", str(engines / "rag")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    (line,) = [x for x in result.stderr.splitlines() if "legacy_py2.py" in x]
    assert line.startswith("engines/rag/legacy_py2.py: error: cannot parse:")
    assert b"logkit.emit(" in (engines / "rag" / "embed.py").read_bytes()
