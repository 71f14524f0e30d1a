"""`logkit demo` and `logkit version` through Typer's CliRunner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import logkit
from logkit import Event, EventType, StorageClass
from logkit.cli.main import app
from tests.conftest import memory_sinks

runner = CliRunner()


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The demo writes to ./.logkit: keep it in a temp dir, then restore the memory runtime."""
    monkeypatch.chdir(tmp_path)
    yield
    logkit.configure(**memory_sinks(tmp_path / "restored"))


def test_demo_json_prints_a_valid_run() -> None:
    result = runner.invoke(app, ["demo", "--json"])
    assert result.exit_code == 0, result.output
    events = [Event.model_validate(json.loads(line)) for line in result.output.splitlines()]
    types = [e.event_type for e in events]
    assert types[0] is EventType.FLOW_STARTED and types[-1] is EventType.FLOW_ENDED
    assert {
        EventType.TOOL_CALL_ENDED,
        EventType.MODEL_CALL_ENDED,
        EventType.USAGE_RECORDED,
        EventType.AGENT_DECISION,
        EventType.DATASET_EVENT,
        EventType.ERROR,
    } <= set(types)
    assert len({e.run_id for e in events if e.event_type is not EventType.DATASET_EVENT}) == 1
    assert all(e.tenant_id == "t_acme" for e in events)
    assert next(e for e in events if e.event_type is EventType.USAGE_RECORDED).storage_class is (
        StorageClass.COST
    )


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
    table = runner.invoke(app, ["demo"])
    lines = runner.invoke(app, ["demo", "--json"])
    assert table.exit_code == 0 and lines.exit_code == 0
    assert "[EMAIL:" in lines.output and "[CARD:" in lines.output
    raw = ("maria.gonzalez@example.org", "5425 2334 3010 9903", "+44 20 7946 0958")
    files = [p for p in (tmp_path / ".logkit").iterdir() if ".db" in p.name]
    for value in raw:
        assert value not in table.output and value not in lines.output
        for path in files:
            assert value.encode() not in path.read_bytes(), path.name
