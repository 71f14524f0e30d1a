"""`logkit demo` and `logkit version` through Typer's CliRunner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from logkit import Event, EventType, StorageClass
from logkit.cli.main import app

runner = CliRunner()


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


def test_demo_table_and_log_line() -> None:
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "canonical events" in result.output and "logging.googleapis.com" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0 and result.output.startswith("logkit ")
