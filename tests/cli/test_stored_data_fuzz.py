"""Whatever a store holds, the readers report it: hypothesis writes events of every type with
payloads of any JSON shape under the keys the readers look at (names, statuses, durations,
costs, currencies, tokens, errors: strings that look like rich markup included), and legacy
UsageEvents adapted from rows of any content, to SQLite; then `timeline list`, `timeline show`,
`usage report` and `dsar export` run over them through CliRunner. None may end in a traceback:
each exits 0 (the documented code for a report)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import logkit
from logkit import ContractError, EventType
from logkit.cli.main import app
from tests.conftest import TEST_REDACTION_KEY
from tests.fixtures.legacy_models import UsageEvent

runner = CliRunner()
SCOPE = {"tenant_id": "t_acme", "env": "dev", "project_id": "p_x", "surface_id": "chat"}
MARKUP = st.sampled_from(["[/]", "[/x]", "[bold]", "[red]x[/red]", ":smile:", "[link=x]y", "\\["])
TEXT = st.one_of(st.text(max_size=12), MARKUP)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
READ_KEYS = [
    "name", "status", "kind", "attempt", "duration_ms", "latency_ms", "choice", "options",
    "reason", "key", "seq", "snapshot", "patch", "hash", "cost", "currency", "priced",
    "provider", "model", "model_or_plan_id", "tokens_input", "tokens_output", "call_id",
    "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.tool.name",
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens", "error.type", "error.message",
]  # fmt: skip
PAYLOADS = st.dictionaries(st.sampled_from(READ_KEYS) | st.text(max_size=6), JSON, max_size=6)
TYPES = st.sampled_from([t for t in EventType if t.value not in ("audit_action",)])
STEPS = st.sampled_from([None, "s1", "s2", "s3"])
COSTS = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True, places=6), TEXT, st.integers(), st.none()
)


@st.composite
def native(draw: st.DrawFn, run_id: str) -> logkit.Event | None:
    try:
        return logkit.build_event(
            draw(TYPES),
            draw(PAYLOADS),
            **SCOPE,
            app_id=draw(st.sampled_from(["bot", "[/]", "web"])),
            run_id=run_id,
            step_id=draw(STEPS),
            parent_step_id=draw(STEPS),
            user_id=draw(st.sampled_from([None, "u_fuzz"])),
        )
    except ContractError:
        return None  # the envelope refuses it: never stored, nothing to read


@st.composite
def legacy(draw: st.DrawFn, run_id: str) -> logkit.Event | None:
    row = UsageEvent.model_construct(
        id=f"legacy_{next(IDS)}",  # unique: a repeated id is (rightly) stored once
        tenant_id="t_acme",
        env="dev",
        surface="chat",
        tool_type=draw(TEXT),
        tool_id=None,
        provider=draw(TEXT),
        model_or_plan_id=draw(TEXT),
        tokens_input=draw(st.one_of(st.integers(min_value=-5, max_value=10**9), TEXT)),
        tokens_output=draw(st.integers(min_value=0, max_value=10**6)),
        cost=draw(COSTS),
        currency=draw(TEXT),
        metadata=draw(st.dictionaries(TEXT, JSON, max_size=2)),
        created_at=dt.datetime.now(dt.UTC),
    )
    try:
        return logkit.from_legacy(
            row, project_id="p_x", app_id="bot", run_id=run_id, user_id="u_fuzz"
        )
    except (ContractError, TypeError, ValueError):
        return None


RUNS = itertools.count()
IDS = itertools.count()


@pytest.fixture
def store(in_tmp: Path) -> Path:
    config = in_tmp / "logkit.toml"
    config.write_text(
        'env = "dev"\n[sinks]\ntimeline = "sqlite:///lk.db"\naudit = "sqlite:///lk.db"\n'
        f'[dispatch]\nspool_path = "spool.db"\n[redaction]\nkey = "{TEST_REDACTION_KEY}"\n'
        'encryption_key_dir = "keys"\n'
    )
    logkit.configure(config)
    return config


def invoke(config: Path, *args: str) -> Any:
    result = runner.invoke(app, [*args, "--config", str(config)])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 0, (args, result.output)
    return result


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_readers_report_whatever_was_stored(store: Path, data: st.DataObject) -> None:
    run_id = f"run_fuzz_{next(RUNS)}"
    drawn = data.draw(st.lists(native(run_id) | legacy(run_id), min_size=1, max_size=12))
    events = [e for e in drawn if e is not None]
    assume(events)
    # One ordinary event first, so the run exists whatever the drawn ones become (refused at
    # emit, or of a class that is never stored): `timeline show` then has a run to tell.
    logkit.emit("flow_started", {"name": "anchor"}, **SCOPE, app_id="bot", run_id=run_id)
    for event in events:
        try:
            logkit.emit_event(event)
        except ContractError:
            continue  # e.g. a payload that cannot be encoded: refused at emit, never stored
    assert logkit.flush(10)
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    invoke(store, "timeline", "list", "--tenant", "t_acme", "--since", since)
    invoke(store, "timeline", "show", "--run", run_id, "--tenant", "t_acme")
    story = json.loads(invoke(store, "timeline", "show", "--run", run_id, "--json").stdout)
    assert story["run_id"] == run_id
    for cost in story.get("total_cost", {}).values():
        Decimal(cost)  # only readable costs are summed
    invoke(store, "usage", "report", "--tenant", "t_acme", "--by", "model")
    out = store.parent / f"{run_id}.jsonl"
    exported = invoke(
        store, "dsar", "export", "--tenant", "t_acme", "--run", run_id, "--out", str(out), "--json"
    )
    assert json.loads(exported.stdout)["ok"] is True and out.exists()
