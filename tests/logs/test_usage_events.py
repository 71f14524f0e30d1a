"""Usage and cost: routing to the durable cost store, exact decimal costs from the price table,
unpriced models, and `logkit usage report`."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import logkit
from logkit import ConfigError, EventType, StorageClass
from logkit.cli import usage as usage_cli
from logkit.sinks.protocols import Query, Role
from logkit.testing import capture_events
from logkit.usage import price_table, record_usage
from tests.conftest import SCOPE, memory_sinks
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


runner = CliRunner()
cli = typer.Typer()
cli.add_typer(usage_cli.app, name="usage")

OVERRIDE = """
[openai."gpt-4o"]
input_per_mtok = "1"
output_per_mtok = "2"

[acme."local-1"]
input_per_mtok = "0.0000001"
output_per_mtok = 3
"""


def usage(provider: str, model: str, **kwargs: Any) -> logkit.Event:
    with capture_events() as events, logkit.bind(**SCOPE, run_id="run_u", step_id="s1"):
        returned = record_usage(provider, model, **kwargs)
    (event,) = events
    assert event is returned
    return event


def test_cost_is_an_exact_decimal_from_the_built_in_table() -> None:
    event = usage("openai", "gpt-4o-mini", input_tokens=1234, output_tokens=567)
    # 1234 * 0.15 + 567 * 0.60 per million tokens: no float ever touches it.
    assert event.payload["cost"] == "0.0005253"
    assert Decimal(str(event.payload["cost"])) == Decimal("525.3") / 1_000_000
    assert event.payload["currency"] == "USD" and event.payload["priced"] is True
    assert event.event_type is EventType.USAGE_RECORDED
    assert event.storage_class is StorageClass.COST
    assert (event.run_id, event.step_id, event.schema_version) == (
        "run_u",
        "s1",
        logkit.SCHEMA_VERSION,
    )
    assert event.payload["gen_ai.provider.name"] == "openai"
    assert event.payload["gen_ai.request.model"] == "gpt-4o-mini"
    assert event.payload["gen_ai.usage.input_tokens"] == 1234
    assert event.payload["gen_ai.usage.output_tokens"] == 567


def test_cached_input_tokens_are_priced_at_the_cache_rate() -> None:
    event = usage(
        "anthropic", "claude-sonnet-4-5", input_tokens=10_000, output_tokens=100, cached_tokens=8000
    )
    # 2000 fresh * 3.00 + 8000 cached * 0.30 + 100 out * 15.00, per million.
    assert event.payload["cost"] == "0.0099"
    assert event.payload["gen_ai.usage.cache_read.input_tokens"] == 8000


def test_tiny_costs_are_plain_digits_not_exponents() -> None:
    event = usage("openai", "gpt-5-mini", input_tokens=1, output_tokens=0, cached_tokens=1)
    assert event.payload["cost"] == "0.000000025"


def test_unknown_model_is_unpriced_never_zero() -> None:
    event = usage("openai", "gpt-unreleased", input_tokens=10, output_tokens=5)
    assert event.payload["priced"] is False
    assert "cost" not in event.payload and "currency" not in event.payload
    assert event.payload["gen_ai.usage.input_tokens"] == 10


def test_override_table_wins_and_adds_models(configured: Any, tmp_path: Path) -> None:
    table = tmp_path / "prices.toml"
    table.write_text(OVERRIDE)
    configured(**memory_sinks(tmp_path), usage={"price_table": table})
    overridden = usage("openai", "gpt-4o", input_tokens=1_000_000, output_tokens=1_000_000)
    assert overridden.payload["cost"] == "3"
    added = usage("acme", "local-1", input_tokens=3, output_tokens=0)
    assert added.payload["cost"] == "0.0000000000003"
    untouched = usage("openai", "gpt-4o-mini", input_tokens=1_000_000, output_tokens=0)
    assert untouched.payload["cost"] == "0.15"


def test_price_table_is_loaded_once() -> None:
    assert price_table() is price_table()


def test_other_currency_never_uses_the_usd_list_prices(configured: Any, tmp_path: Path) -> None:
    table = tmp_path / "eur.toml"
    table.write_text('currency = "EUR"\n' + OVERRIDE)
    configured(**memory_sinks(tmp_path), usage={"price_table": table, "currency": "EUR"})
    assert usage("openai", "gpt-4o", input_tokens=1, output_tokens=0).payload["currency"] == "EUR"
    assert (
        usage("openai", "gpt-4o-mini", input_tokens=1, output_tokens=0).payload["priced"] is False
    )


def test_price_table_in_another_currency_is_refused(configured: Any, tmp_path: Path) -> None:
    table = tmp_path / "eur.toml"
    table.write_text('currency = "EUR"\n' + OVERRIDE)
    configured(**memory_sinks(tmp_path), usage={"price_table": table})
    with pytest.raises(ConfigError, match="is in EUR"), logkit.bind(**SCOPE):
        record_usage("openai", "gpt-4o", input_tokens=1, output_tokens=1)


def test_malformed_price_entry_names_its_place(configured: Any, tmp_path: Path) -> None:
    table = tmp_path / "bad.toml"
    table.write_text('[openai."gpt-4o"]\ninput_per_mtok = "cheap"\noutput_per_mtok = "1"\n')
    configured(**memory_sinks(tmp_path), usage={"price_table": table})
    with pytest.raises(ConfigError, match=r"gpt-4o.*input_per_mtok"), logkit.bind(**SCOPE):
        record_usage("openai", "gpt-4o", input_tokens=1, output_tokens=1)


@pytest.mark.parametrize(
    ("tokens", "problem"),
    [
        ({"input_tokens": -1, "output_tokens": 0}, "input_tokens"),
        ({"input_tokens": 1, "output_tokens": 0, "cached_tokens": 2}, "cannot exceed"),
        ({"input_tokens": 1.5, "output_tokens": 0}, "input_tokens"),
    ],
)
def test_bad_token_counts_are_refused(tokens: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem), logkit.bind(**SCOPE):
        record_usage("openai", "gpt-4o", **tokens)


def test_usage_reaches_the_sqlite_cost_store(configured: Any, tmp_path: Path) -> None:
    runtime = configured(env="prod", sinks=sqlite_everywhere(tmp_path))
    with logkit.bind(**SCOPE, run_id="run_db"):
        event = record_usage("openai", "gpt-4o-mini", input_tokens=1234, output_tokens=567)
    assert logkit.flush(10)
    (stored,) = runtime.stores[Role.COST].query(Query(tenant_id="t_acme")).events
    assert stored == event and stored.run_id == "run_db"
    assert Decimal(str(stored.payload["cost"])) == Decimal("0.0005253")


# --- logkit usage report ----------------------------------------------------------------------


def day(n: int) -> dt.datetime:
    return dt.datetime(2025, 6, n, 12, tzinfo=dt.UTC)


@pytest.fixture
def report_config(configured: Any, tmp_path: Path) -> Path:
    """Four usage events in SQLite (one unpriced, one legacy-shaped) and a config naming it."""
    sinks = sqlite_everywhere(tmp_path)
    configured(env="dev", sinks=sinks)
    with logkit.bind(**SCOPE, run_id="r1"):
        record_usage("openai", "gpt-4o-mini", input_tokens=1234, output_tokens=567, ts=day(1))
        record_usage("acme", "local-1", input_tokens=10, output_tokens=10, ts=day(2))
    with logkit.bind(**SCOPE, run_id="r2"):
        record_usage(
            "openai",
            "gpt-4o-mini",
            input_tokens=1000,
            output_tokens=0,
            cached_tokens=1000,
            ts=day(2),
        )
        # Shaped like an adapted legacy UsageEvent: older key names, cost given by the caller.
        payload = {"provider": "anthropic", "model": "claude-legacy", "tokens_input": 5}
        logkit.emit(
            "usage_recorded",
            {**payload, "tokens_output": 1, "cost": "0.000000123", "currency": "USD"},
            ts=day(1),
        )
    assert logkit.flush(10)
    config = tmp_path / "logkit.toml"
    lines = ['env = "dev"', "[sinks]", *(f'{k} = "{v}"' for k, v in sinks.items())]
    lines += ["[dispatch]", f'spool_path = "{tmp_path / "cli-spool.db"}"']
    config.write_text("\n".join(lines) + "\n")
    return config


def report(config: Path, *args: str) -> dict[str, Any]:
    result = runner.invoke(
        cli, ["usage", "report", "--tenant", "t_acme", "--config", str(config), "--json", *args]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def costs(result: dict[str, Any], by: str) -> dict[str, tuple[dict[str, str], int]]:
    return {g[by]: (g["cost"], g["unpriced_events"]) for g in result["groups"]}


def test_report_by_model_sums_exact_decimals(report_config: Path) -> None:
    result = report(report_config, "--by", "model")
    assert costs(result, "model") == {
        "acme/local-1": ({}, 1),
        "anthropic/claude-legacy": ({"USD": "0.000000123"}, 0),
        "openai/gpt-4o-mini": ({"USD": "0.0006003"}, 0),
    }
    total = result["total"]
    assert total["cost"] == {"USD": "0.000600423"}
    assert (total["events"], total["priced_events"], total["unpriced_events"]) == (4, 3, 1)
    assert (total["input_tokens"], total["output_tokens"], total["cached_tokens"]) == (
        2249,
        578,
        1000,
    )
    assert result["empty"] is False


def test_report_by_run_and_by_day(report_config: Path) -> None:
    assert costs(report(report_config, "--by", "run"), "run") == {
        "r1": ({"USD": "0.0005253"}, 1),
        "r2": ({"USD": "0.000075123"}, 0),
    }
    assert costs(report(report_config, "--by", "day"), "day") == {
        "2025-06-01": ({"USD": "0.000525423"}, 0),
        "2025-06-02": ({"USD": "0.000075"}, 1),
    }


def test_report_window_is_since_inclusive_until_exclusive(report_config: Path) -> None:
    result = report(report_config, "--since", "2025-06-02", "--until", "2025-06-03T00:00Z")
    assert result["total"]["events"] == 2 and result["since"] == "2025-06-02T00:00:00+00:00"


def test_report_table_for_people(report_config: Path) -> None:
    result = runner.invoke(
        cli,
        ["usage", "report", "--tenant", "t_acme", "--config", str(report_config)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "openai/gpt-4o-mini" in result.stdout and "0.000600423 USD" in result.stdout


def test_report_with_nothing_matching_is_empty_not_an_error(report_config: Path) -> None:
    result = report(report_config, "--since", "2030-01-01")
    assert result["empty"] is True and result["groups"] == []
    assert result["message"].startswith("no usage events for tenant t_acme since 2030-01-01")
    plain = runner.invoke(
        cli, ["usage", "report", "--tenant", "t_other", "--config", str(report_config)]
    )
    assert plain.exit_code == 0 and "no usage events for tenant t_other" in plain.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", "week"], "--by must be one of model, run, day"),
        (["--since", "someday"], "--since 'someday' is not a time"),
        (["--since", "2025-06-02", "--until", "2025-06-01"], "--since must be before"),
    ],
)
def test_report_usage_errors_exit_2(report_config: Path, args: list[str], message: str) -> None:
    result = runner.invoke(
        cli, ["usage", "report", "--tenant", "t_acme", "--config", str(report_config), *args]
    )
    assert result.exit_code == 2 and message in result.output


def test_report_bad_config_exits_2(tmp_path: Path, configured: Any) -> None:
    result = runner.invoke(
        cli, ["usage", "report", "--tenant", "t_acme", "--config", str(tmp_path / "missing.toml")]
    )
    assert result.exit_code == 2 and "config file not found" in result.output
