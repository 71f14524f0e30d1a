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
    root = copy_tree(BEFORE, tmp_path / "tree")
    monkeypatch.chdir(root)
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
    result = runner.invoke(app, ["codemod", "apply", "--diff", str(engines / "analytics")])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "--- a/engines/analytics/digest.py\n+++ b/engines/analytics/digest.py\n"
    )
    assert "+        logkit.emit_event(" in result.stdout
    assert python_sources(engines.parent) == python_sources(BEFORE)
    # The report goes to stderr, so `--diff > change.patch` is a clean patch.
    assert (
        "engines/analytics/nightly.py:11: dataset-event left via "
        "engines.analytics.export.publish_export: tests replace publish_export" in result.stderr
    )


def test_check_fails_before_apply_and_passes_after(engines: Path) -> None:
    before = runner.invoke(app, ["codemod", "apply", "--check", "-j", "1", str(engines)])
    assert before.exit_code == 1
    assert "6 would change" in before.output
    assert "migrated: 1 logger implementation, 7 hook defaults; sites: 35 routed" in before.output
    applied = runner.invoke(app, ["codemod", "apply", str(engines), "--jobs", "2"])
    assert applied.exit_code == 0, applied.output
    assert python_sources(engines.parent) == python_sources(AFTER)
    after = runner.invoke(app, ["codemod", "apply", "--check", "-j", "1", str(engines)])
    assert after.exit_code == 0, after.output
    assert ", 0 would change" in after.output
    assert "migrated: 0 logger implementations, 0 hook defaults; sites: 35 routed" in after.output


def test_json_report_names_how_each_site_reaches_logkit(engines: Path) -> None:
    result = runner.invoke(app, ["codemod", "apply", "--check", "--json", "-j", "1", str(engines)])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["mode"] == "check" and report["errors"] == []
    assert report["config"].endswith("pyproject.toml")
    assert report["counts"] == {
        action: sum(s["action"] == action for s in report["sites"])
        for action in ("routed", "converted", "adapted", "left")
    }
    assert report["migrated"] == {"logger": 1, "hook": 7}
    reach = report["reach_logkit"]
    assert reach["sites"] / reach["of"] >= 0.9
    site = next(s for s in report["sites"] if s["path"] == "engines/services/projects.py")
    assert site == {
        "path": "engines/services/projects.py",
        "line": 8,
        "shape": "event-log-entry",
        "action": "routed",
        "reason": "default_event_logger() -> run() persists through logkit; "
        "the call site is unchanged",
        "via": "engines.logging.event_log.default_event_logger",
        "unsafe": None,
        "logs": True,
    }


def test_unsafe_applies_the_announced_conversions(engines: Path) -> None:
    analytics = str(engines / "analytics")
    safe = json.loads(
        runner.invoke(app, ["codemod", "apply", "--diff", "--json", analytics]).stdout
    )
    announced = [s for s in safe["sites"] if s["unsafe"]]
    assert safe["unsafe_available"] == len(announced) == 1
    result = runner.invoke(app, ["codemod", "apply", "--unsafe", "--json", analytics])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    (converted,) = [s for s in report["sites"] if s["action"] == "converted"]
    assert (converted["path"], converted["line"]) == (announced[0]["path"], announced[0]["line"])
    assert "no longer built" in converted["unsafe"]
    assert 'logkit.emit(\n        "dataset_event",' in (engines / "analytics/digest.py").read_text()


def test_only_runs_the_named_codemod(engines: Path) -> None:
    result = runner.invoke(
        app, ["codemod", "apply", "--json", "--only", "model-call-log", str(engines)]
    )
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert {s["shape"] for s in report["sites"]} == {"model-call-log", "hook"}
    assert sorted(report["files_changed"]) == [
        "engines/eval/judge.py",
        "engines/rag/embed.py",
        "engines/rag/ingest.py",
    ]
    engine = (engines / "logging" / "events" / "engine.py").read_text()
    assert "get_backend().write_event(event)" in engine  # run() takes a DatasetEvent


def test_config_names_extra_loggers_and_a_bad_table_is_a_usage_error(
    engines: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "logkit.toml"
    bad.write_text('[codemod]\nloggerz = ["x.y"]\n')
    result = runner.invoke(app, ["codemod", "apply", "--config", str(bad), str(engines)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"logkit: {bad}: invalid codemod table: loggerz: ")
    good = tmp_path / "other.toml"
    good.write_text("[tool.logkit.codemod]\nsinks = []\n")
    # Without the tree's own table, log_turn() is not a logger: its site is left.
    result = runner.invoke(
        app, ["codemod", "apply", "--check", "--json", "--config", str(good), str(engines / "chat")]
    )
    sites = json.loads(result.stdout)["sites"]
    turn = next(s for s in sites if s["path"] == "engines/chat/history.py")
    assert turn["action"] == "left" and "log_turn(), not a known logger" in turn["reason"]


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
    (engines / "analytics" / "legacy_py2.py").write_text('print "DatasetEvent"\n')
    result = runner.invoke(app, ["codemod", "apply", str(engines / "analytics")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    (line,) = [x for x in result.stderr.splitlines() if "legacy_py2.py" in x]
    assert line.startswith("engines/analytics/legacy_py2.py: error: cannot parse:")
    assert b"logkit.emit_event(" in (engines / "analytics" / "digest.py").read_bytes()


def test_the_runtimes_config_file_is_not_the_codemods(
    engines: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "logkit.toml"
    runtime.write_text('env = "prod"\n')
    monkeypatch.setenv("LOGKIT_CONFIG", str(runtime))
    result = runner.invoke(app, ["codemod", "apply", "--check", "--json", str(engines / "chat")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["config"].endswith("tree/pyproject.toml")
