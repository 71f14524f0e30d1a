"""`logkit demo` and `logkit version` through Typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from logkit.cli.main import app

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("in_tmp")  # the demo writes to ./.logkit


def test_demo_json_prints_the_story_of_the_run() -> None:
    result = runner.invoke(app, ["demo", "--json"])
    assert result.exit_code == 0, result.output
    story = json.loads(result.output)
    assert story["type"] == "run" and story["status"] == "ok"
    (flow,) = story["children"]
    assert flow["name"] == "answer_ticket"
    steps = [c for c in flow["children"] if c["type"] == "step"]
    assert [s["name"] for s in steps] == ["plan", "retrieve", "enrich", "enrich", "answer"]
    assert [s["status"] for s in steps] == ["ok", "ok", "failed", "ok", "ok"]
    assert steps[2]["error"]["type"] == "CRMTimeoutError" and steps[3]["attempt"] == 2
    answer = steps[-1]
    assert {c["type"] for c in answer["children"]} == {"model_call", "decision", "pulse"}
    assert story["total_cost"] == {"USD": "0.003396"}


def test_demo_table_and_log_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "read back from sqlite" in result.output and "logging.googleapis.com" in result.output
    assert (tmp_path / ".logkit" / "logkit.db").exists()  # the embedded default, no config


def test_demo_with_a_bad_config_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--config", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2 and "config file not found" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0 and result.output.startswith("logkit ")


def test_demo_pii_never_reaches_the_terminal_or_the_store(tmp_path: Path) -> None:
    import sqlite3

    table = runner.invoke(app, ["demo"])
    lines = runner.invoke(app, ["demo", "--json"])
    assert table.exit_code == 0 and lines.exit_code == 0
    db = sqlite3.connect(tmp_path / ".logkit" / "logkit.db")
    bodies = " ".join(b for (b,) in db.execute("SELECT body FROM timeline_events"))
    db.close()
    assert "[EMAIL:" in bodies and "[CARD:" in bodies and "[PHONE:" in bodies
    raw = ("maria.gonzalez@example.org", "5425 2334 3010 9903", "+44 20 7946 0958")
    files = [p for p in (tmp_path / ".logkit").iterdir() if ".db" in p.name]
    for value in raw:
        assert value not in table.output and value not in lines.output and value not in bodies
        for path in files:
            assert value.encode() not in path.read_bytes(), path.name
