"""Sink selection: config file, env overrides, defaults, and fail-fast outside dev."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from typer.testing import CliRunner

import logkit
from logkit import ConfigError
from logkit.cli.main import app as cli
from logkit.config import DEFAULT_SQLITE_URI, load_settings
from logkit.sinks.protocols import Role
from tests.conftest import SCOPE, memory_sinks
from tests.servers import free_port

runner = CliRunner()


def sqlite(tmp_path: Path, name: str = "logkit.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- fail fast outside dev --------------------------------------------------------------------


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_no_sinks_outside_dev_is_a_config_error_naming_roles(configured: Any, env: str) -> None:
    with pytest.raises(ConfigError) as info:
        configured(env=env)
    assert "timeline" in str(info.value) and "audit" in str(info.value)


def test_missing_audit_in_prod_is_named(configured: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'audit'"):
        configured(env="prod", sinks={"timeline": sqlite(tmp_path)})


@pytest.mark.parametrize("role", ["timeline", "audit", "cost"])
def test_in_memory_backend_is_refused_in_prod(configured: Any, tmp_path: Path, role: str) -> None:
    sinks = {r: sqlite(tmp_path) for r in ("timeline", "audit", "cost")}
    sinks[role] = "memory://"
    with pytest.raises(ConfigError, match=f"'{role}' uses non-durable"):
        configured(env="prod", sinks=sinks)


def test_ops_and_audit_configured_passes_in_prod(configured: Any, tmp_path: Path) -> None:
    runtime = configured(
        env="prod",
        sinks={"timeline": sqlite(tmp_path, "ops.db"), "audit": sqlite(tmp_path, "audit.db")},
    )
    # Cost shares the timeline's durable backend when it is not named.
    assert runtime.uris[Role.COST] == runtime.uris[Role.TIMELINE]
    with logkit.bind(**SCOPE):
        event = logkit.emit("message", {"hello": "prod"})
    assert logkit.flush(10)
    stored = logkit.query_events("t_acme").events
    assert [e.event_id for e in stored] == [event.event_id]


def test_unknown_scheme_lists_the_known_ones(configured: Any) -> None:
    with pytest.raises(
        ConfigError, match="known: bigquery, firestore, memory, redis, rediss, sqlite"
    ):
        configured(env="dev", sinks={"timeline": "kafka://x", "audit": "memory://"})


def test_no_config_at_all_is_sqlite_in_dev(configured: Any, tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.env == "dev"
    assert {settings.sink_uri(r) for r in Role} == {DEFAULT_SQLITE_URI}
    runtime = configured()
    with logkit.bind(**SCOPE):
        event = logkit.emit("message")
    assert logkit.flush(10)
    assert (tmp_path / ".logkit" / "logkit.db").exists()  # relative to the working directory
    assert runtime.stores[Role.TIMELINE].query(
        logkit.sinks.protocols.Query(tenant_id="t_acme")
    ).events == [event]


# --- config file and environment --------------------------------------------------------------


def test_toml_file_with_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_toml(
        tmp_path / "logkit.toml",
        f"""
env = "prod"
[sinks]
timeline = "{sqlite(tmp_path, "t.db")}"
audit = "{sqlite(tmp_path, "a.db")}"
cost = "{sqlite(tmp_path, "c.db")}"
[dispatch]
batch_size = 50
""",
    )
    settings = load_settings(path)
    assert settings.env == "prod" and settings.dispatch.batch_size == 50
    monkeypatch.setenv("LOGKIT_ENV", "staging")
    monkeypatch.setenv("LOGKIT_SINKS__AUDIT", sqlite(tmp_path, "other.db"))
    settings = load_settings(path)
    assert settings.env == "staging" and settings.sinks.audit.endswith("other.db")
    assert settings.sinks.timeline.endswith("t.db")
    # Explicit arguments beat the environment.
    assert load_settings(path, env="dev").env == "dev"


def test_config_path_from_logkit_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_toml(tmp_path / "x.toml", 'env = "staging"\n')
    monkeypatch.setenv("LOGKIT_CONFIG", str(path))
    assert load_settings().env == "staging"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("env = ", "not valid TOML"),
        ('env = "qa"', "env"),
        ("[sinks]\nqueue = 'x://'", "sinks.queue"),
        ("[dispatch]\nbatch_size = 0", "dispatch.batch_size"),
    ],
)
def test_bad_config_is_a_clear_config_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write_toml(tmp_path / "bad.toml", text))


# --- ASGI start-up ----------------------------------------------------------------------------


def asgi_app() -> Starlette:
    app = Starlette()
    app.add_middleware(logkit.CorrelationMiddleware, trust_headers=True)
    return app


def test_app_start_up_fails_fast_without_prod_sinks(
    monkeypatch: pytest.MonkeyPatch, configured: Any
) -> None:
    logkit.shutdown()
    monkeypatch.setenv("LOGKIT_ENV", "prod")
    monkeypatch.setenv("LOGKIT_SINKS__TIMELINE", "memory://")
    with pytest.raises(ConfigError, match="non-durable"), TestClient(asgi_app()):
        pass


def test_app_start_up_passes_with_durable_sinks(
    monkeypatch: pytest.MonkeyPatch, configured: Any, tmp_path: Path
) -> None:
    logkit.shutdown()
    configured  # noqa: B018 - restores the memory runtime afterwards
    monkeypatch.setenv("LOGKIT_ENV", "prod")
    monkeypatch.setenv("LOGKIT_SINKS__TIMELINE", sqlite(tmp_path))
    monkeypatch.setenv("LOGKIT_SINKS__AUDIT", sqlite(tmp_path))
    monkeypatch.setenv("LOGKIT_DISPATCH__SPOOL_PATH", str(tmp_path / "spool.db"))
    monkeypatch.setenv("LOGKIT_REDACTION__KEY", "test-redaction-master-key")
    with TestClient(asgi_app()) as client:
        assert client.get("/nothing").status_code == 404
    logkit.configure(**memory_sinks(tmp_path / "s2"))


# --- check-sinks ------------------------------------------------------------------------------


def test_check_sinks_ok_on_sqlite(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path / "ok.toml",
        f'env = "prod"\n[sinks]\ntimeline = "{sqlite(tmp_path)}"\naudit = "{sqlite(tmp_path)}"\n'
        f'[redaction]\nkey = "k"\nencryption_key_dir = "{tmp_path / "keys"}"\n',
    )
    result = runner.invoke(cli, ["check-sinks", "--config", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    sinks = [c for c in report["checks"] if c["kind"] == "sink"]
    assert report["ok"] and [c["role"] for c in sinks] == ["timeline", "audit", "cost"]
    assert all(c["ok"] and c["latency_ms"] is not None for c in sinks)


def test_check_sinks_refuses_memory_in_prod(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path / "mem.toml",
        f'env = "prod"\n[sinks]\ntimeline = "memory://"\naudit = "{sqlite(tmp_path)}"\n',
    )
    result = runner.invoke(cli, ["check-sinks", "--config", str(path), "--json"])
    assert result.exit_code == 1
    checks = {c["role"]: c for c in json.loads(result.output)["checks"]}
    assert "not durable" in checks["timeline"]["problem"] and checks["audit"]["ok"]


def test_check_sinks_usage_errors_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(cli, ["check-sinks", "--config", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2 and "config file not found" in result.output
    bad = write_toml(tmp_path / "bad.toml", 'env = "qa"\n')
    assert runner.invoke(cli, ["check-sinks", "--config", str(bad)]).exit_code == 2


@pytest.mark.parametrize(
    ("scheme", "variable"),
    [
        ("firestore://logkit-test?root=x&timeout=2", "FIRESTORE_EMULATOR_HOST"),
        ("bigquery://logkit-test/ds?timeout=2", "BIGQUERY_EMULATOR_HOST"),
    ],
)
def test_check_sinks_unreachable_backend_exits_1_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheme: str, variable: str
) -> None:
    port = free_port()  # nothing listens there
    address = (
        f"127.0.0.1:{port}" if variable.startswith("FIRESTORE") else f"http://127.0.0.1:{port}"
    )
    monkeypatch.setenv(variable, address)
    path = write_toml(
        tmp_path / "down.toml",
        f'env = "prod"\n[sinks]\ntimeline = "{scheme}"\naudit = "{sqlite(tmp_path)}"\n',
    )
    started = time.monotonic()
    result = runner.invoke(cli, ["check-sinks", "--config", str(path), "--timeout", "5"])
    assert result.exit_code == 1
    assert time.monotonic() - started < 15
    assert "Traceback" not in result.output and "FAIL" in result.output
