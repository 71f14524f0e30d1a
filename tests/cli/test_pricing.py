"""Pricing by pattern: provider-prefixed, routed, dated and versioned model names find their
entry by a named rule; current Vertex AI, Gemini, OpenAI and Anthropic models are priced;
unpriced stays unpriced (never 0, never a neighbour's price); `logkit usage prices`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

import logkit
from logkit.cli.main import app
from logkit.pricing import load_table
from logkit.testing import capture_events
from logkit.usage import record_usage
from tests.conftest import SCOPE

runner = CliRunner()
TABLE = load_table(None, "USD")


@pytest.mark.parametrize(
    ("provider", "model", "entry", "rule"),
    [
        ("gcp.vertex_ai", "gemini-2.5-flash", "gcp.vertex_ai/gemini-2.5-flash", "exact"),
        (
            "gcp.vertex_ai",
            "gcp.vertex_ai/gemini-2.5-flash",
            "gcp.vertex_ai/gemini-2.5-flash",
            "route",
        ),
        ("vertex_ai", "gemini-2.5-pro", "gcp.vertex_ai/gemini-2.5-pro", "provider alias"),
        ("litellm", "vertex_ai/gemini-2.5-flash", "gcp.vertex_ai/gemini-2.5-flash", "route"),
        (
            "gcp.vertex_ai",
            "projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash-001",
            "gcp.vertex_ai/gemini-2.0-flash",
            "version suffix -001",
        ),
        ("gcp.vertex_ai", "claude-sonnet-4-5@20250929", "gcp.vertex_ai/claude-sonnet-4-5", "date"),
        ("openai", "gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini", "date suffix -2024-07-18"),
        ("openai", "gpt-4.1-2025-04-14", "openai/gpt-4.1", "date"),
        ("openrouter", "openai/gpt-4o", "openai/gpt-4o", "route"),
        ("anthropic", "claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5", "date suffix"),
        ("anthropic", "claude-3-5-haiku-latest", "anthropic/claude-3-5-haiku", "version suffix"),
        ("anthropic", "claude-opus-4-1-20250805", "anthropic/claude-opus-4-1", "date"),
        ("openrouter", "anthropic/claude-sonnet-4.5", "anthropic/claude-sonnet-4-5", "dots"),
        ("gcp.gemini", "models/gemini-2.5-flash-lite", "gcp.gemini/gemini-2.5-flash-lite", "route"),
        ("OpenAI", " GPT-4o ", "openai/gpt-4o", "case"),
    ],
)
def test_names_find_their_entry_by_a_named_rule(
    provider: str, model: str, entry: str, rule: str
) -> None:
    found = TABLE.match(provider, model)
    assert found is not None and found.entry == entry
    assert rule in found.rule


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o-audio-preview"),  # audio tokens cost more: not gpt-4o's price
        ("openai", "gpt-4o-mini-realtime-preview-2024-12-17"),
        ("gcp.vertex_ai", "gemini-2.5-flash-preview-05-20"),
        ("anthropic", "claude-3-haiku-20240307"),  # not in the table: not claude-3-5-haiku
        ("openai", "gpt-unreleased"),
        ("acme", "gpt-4o"),  # an unknown host is not OpenAI
        ("gcp.vertex_ai", "llama-3-405"),
    ],
)
def test_anything_else_stays_unpriced(provider: str, model: str) -> None:
    assert TABLE.match(provider, model) is None


@given(st.text(max_size=40), st.text(max_size=60))
def test_matching_never_raises_and_only_names_real_entries(provider: str, model: str) -> None:
    found = TABLE.match(provider, model)
    assert found is None or (found.provider, found.model) in TABLE.prices


def test_current_models_of_each_provider_are_priced() -> None:
    for provider, model in [
        ("gcp.vertex_ai", "gemini-2.5-pro"),
        ("gcp.vertex_ai", "gemini-2.5-flash-lite"),
        ("gcp.vertex_ai", "claude-opus-4-5"),
        ("gcp.gemini", "gemini-2.5-flash"),
        ("openai", "gpt-5"),
        ("openai", "gpt-5-nano"),
        ("openai", "o4-mini"),
        ("anthropic", "claude-haiku-4-5"),
        ("anthropic", "claude-opus-4-5"),
    ]:
        assert TABLE.match(provider, model) is not None, (provider, model)


def usage(provider: str, model: str, **tokens: Any) -> logkit.Event:
    with capture_events() as events, logkit.bind(**SCOPE, run_id="run_p"):
        record_usage(provider, model, **tokens)
    (event,) = events
    return event


def test_a_dated_name_is_priced_as_its_entry_and_says_so() -> None:
    dated = usage("openai", "gpt-4o-mini-2024-07-18", input_tokens=1234, output_tokens=567)
    assert dated.payload["priced"] is True and dated.payload["cost"] == "0.0005253"
    assert dated.payload["priced_as"] == "openai/gpt-4o-mini"
    assert dated.payload["gen_ai.request.model"] == "gpt-4o-mini-2024-07-18"
    exact = usage("openai", "gpt-4o-mini", input_tokens=1234, output_tokens=567)
    assert exact.payload["cost"] == "0.0005253" and "priced_as" not in exact.payload
    vertex = usage("gcp.vertex_ai", "gemini-2.5-flash", input_tokens=1_000_000, output_tokens=0)
    assert vertex.payload["cost"] == "0.3"


def test_unpriced_is_distinct_from_zero() -> None:
    event = usage("openai", "gpt-4o-audio-preview", input_tokens=10, output_tokens=5)
    assert event.payload["priced"] is False
    assert "cost" not in event.payload and "priced_as" not in event.payload


def test_usage_prices_shows_the_table_and_which_rule_priced_what(in_tmp: Path) -> None:
    names = ["openai/gpt-4o-mini-2024-07-18", "gcp.vertex_ai/gemini-2.5-flash"]
    result = runner.invoke(app, ["usage", "prices", *names, "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["currency"] == "USD"
    entries = {(e["provider"], e["model"]): e for e in shown["entries"]}
    assert entries[("openai", "gpt-4o-mini")] == {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input_per_mtok": "0.15",
        "output_per_mtok": "0.60",
        "cached_input_per_mtok": "0.075",
        "source": "built-in",
    }
    assert [(m["entry"], m["rule"]) for m in shown["matches"]] == [
        ("openai/gpt-4o-mini", "date suffix -2024-07-18 dropped"),
        ("gcp.vertex_ai/gemini-2.5-flash", "exact"),
    ]
    table = runner.invoke(app, ["usage", "prices", *names], env={"COLUMNS": "80"})
    assert "date suffix -2024-07-18 dropped" in table.stdout and "built-in" in table.stdout


def test_usage_prices_exits_1_when_a_name_is_unpriced(in_tmp: Path) -> None:
    result = runner.invoke(app, ["usage", "prices", "openai/gpt-4o-audio-preview", "--json"])
    assert result.exit_code == 1
    (match,) = json.loads(result.stdout)["matches"]
    assert match == {
        "provider": "openai",
        "model": "gpt-4o-audio-preview",
        "priced": False,
        "entry": None,
        "rule": None,
    }
    bad = runner.invoke(app, ["usage", "prices", "gpt-4o"])
    assert bad.exit_code == 2 and "PROVIDER/MODEL" in bad.stderr


def test_usage_prices_of_a_tenant_and_an_override_file(in_tmp: Path) -> None:
    (in_tmp / "prices.toml").write_text(
        '[acme."house-model"]\ninput_per_mtok = "1"\noutput_per_mtok = "2"\n'
    )
    (in_tmp / "logkit.toml").write_text(
        'env = "dev"\n[sinks]\ntimeline = "sqlite:///lk.db"\naudit = "sqlite:///lk.db"\n'
        '[usage]\nprice_table = "prices.toml"\n[redaction]\nkey = "k"\n'
    )
    logkit.configure(in_tmp / "logkit.toml")
    with logkit.bind(**{**SCOPE, "env": "dev"}):
        record_usage("acme", "house-model-001", input_tokens=1, output_tokens=1)
        record_usage("openai", "gpt-4o-audio-preview", input_tokens=1, output_tokens=1)
    assert logkit.flush(10)
    result = runner.invoke(
        app, ["usage", "prices", "--tenant", "t_acme", "--config", "logkit.toml", "--json"]
    )
    assert result.exit_code == 1  # the audio preview is unpriced
    shown = json.loads(result.stdout)
    assert {(m["model"], m["entry"]) for m in shown["matches"]} == {
        ("house-model-001", "acme/house-model"),
        ("gpt-4o-audio-preview", None),
    }
    (house,) = [e for e in shown["entries"] if e["provider"] == "acme"]
    assert house["source"] == str(in_tmp / "prices.toml")
