"""Usage and cost events reach the durable cost store (and the timeline); never memory in prod."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import logkit
from logkit import ConfigError, StorageClass
from logkit.sinks.protocols import Query, Role
from tests.conftest import SCOPE
from tests.fixtures.legacy_models import UsageEvent


def sqlite_everywhere(tmp_path: Path) -> dict[str, str]:
    uri = f"sqlite:///{tmp_path / 'logkit.db'}"
    return {"timeline": uri, "audit": uri, "cost": uri}


def stored(runtime: Any, role: Role) -> list[logkit.Event]:
    return runtime.stores[role].query(Query(tenant_id="t_acme", limit=1000)).events


def test_usage_recorded_reaches_cost_and_timeline(configured: Any, tmp_path: Path) -> None:
    runtime = configured(env="prod", sinks=sqlite_everywhere(tmp_path))
    with logkit.bind(**SCOPE, run_id="run_u", step_id="s1"):
        usage = logkit.emit(
            "usage_recorded",
            {
                "provider": "openai",
                "model": "gpt-x",
                "tokens_input": 10,
                "tokens_output": 2,
                "cost": "0.00042",
                "currency": "USD",
            },
        )
        step = logkit.emit("step_ended", {"name": "answer"})
    assert usage.storage_class is StorageClass.COST
    assert logkit.flush(10)
    assert stored(runtime, Role.COST) == [usage]
    assert stored(runtime, Role.TIMELINE) == [usage, step]
    cost = stored(runtime, Role.COST)[0]
    assert (cost.run_id, cost.step_id, cost.schema_version) == (
        "run_u",
        "s1",
        logkit.SCHEMA_VERSION,
    )


def test_legacy_usage_event_keeps_its_exact_cost(configured: Any, tmp_path: Path) -> None:
    runtime = configured(env="staging", sinks=sqlite_everywhere(tmp_path))
    legacy = UsageEvent(
        tenant_id="t_acme",
        env="staging",
        surface="rag",
        tool_type="llm",
        provider="anthropic",
        model_or_plan_id="claude",
        tokens_input=5,
        tokens_output=1,
        cost=Decimal("0.000000123"),
    )
    logkit.emit_event(logkit.from_legacy(legacy, project_id="p", app_id="a"))
    assert logkit.flush(10)
    (cost,) = stored(runtime, Role.COST)
    assert Decimal(str(cost.payload["cost"])) == legacy.cost and cost.event_id == legacy.id


def test_audit_goes_to_audit_and_timeline_stream_to_neither(
    configured: Any, tmp_path: Path
) -> None:
    runtime = configured(env="dev", sinks=sqlite_everywhere(tmp_path))
    with logkit.bind(**SCOPE):
        audit = logkit.emit("audit_action", {"action": "export"})
        logkit.emit("message", {"delta": "Hel"}, storage_class="stream")
    assert logkit.flush(10)
    (chained,) = stored(runtime, Role.AUDIT)
    assert chained.event_id == audit.event_id and chained.seq == 0 and chained.hash
    assert stored(runtime, Role.TIMELINE) == [audit]
    assert stored(runtime, Role.COST) == []


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_in_memory_usage_path_is_refused_outside_dev(
    configured: Any, tmp_path: Path, env: str
) -> None:
    sinks = sqlite_everywhere(tmp_path)
    sinks["cost"] = "memory://"
    with pytest.raises(ConfigError, match="'cost' uses non-durable 'memory://'"):
        configured(env=env, sinks=sinks)


def test_unset_cost_shares_the_durable_timeline(configured: Any, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'ops.db'}"
    runtime = configured(env="prod", sinks={"timeline": uri, "audit": uri})
    with logkit.bind(**SCOPE):
        usage = logkit.emit("usage_recorded", {"tokens_input": 1})
    assert logkit.flush(10)
    assert runtime.uris[Role.COST] == uri and stored(runtime, Role.COST) == [usage]
