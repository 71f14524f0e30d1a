"""Shared fixtures: a clean context, a known redactor, test sinks, and the scope events need."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import logkit
from logkit.redaction import PassThroughRedactor, set_redactor
from logkit.runtime import Runtime

SCOPE = {
    "tenant_id": "t_acme",
    "env": "prod",
    "project_id": "p_support",
    "surface_id": "chat",
    "app_id": "support-bot",
}


TEST_REDACTION_KEY = "test-redaction-master-key"


def memory_sinks(tmp: Path) -> dict[str, object]:
    return {
        "env": "dev",
        "sinks": {"timeline": "memory://", "audit": "memory://", "cost": "memory://"},
        "dispatch": {"spool_path": tmp / "spool.db"},
        "redaction": {"key": TEST_REDACTION_KEY, "encryption_key_dir": tmp / "keys"},
    }


@pytest.fixture(autouse=True, scope="session")
def _isolated_configuration(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No LOGKIT_* variable of the machine leaks in; events go to memory unless a test says."""
    for name in [n for n in os.environ if n.startswith("LOGKIT_")]:
        del os.environ[name]
    logkit.configure(**memory_sinks(tmp_path_factory.mktemp("logkit")))
    yield
    logkit.shutdown()


@pytest.fixture
def scope() -> dict[str, str]:
    return dict(SCOPE)


@pytest.fixture(autouse=True)
def _reset_redactor() -> Iterator[None]:
    """Each test starts with the pass-through gate, whatever the previous one installed."""
    previous = set_redactor(PassThroughRedactor())
    yield
    set_redactor(previous)


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[logkit.configure]]:
    """``configured(**settings)``: a runtime for one test; the memory one comes back after."""
    monkeypatch.chdir(tmp_path)
    runtimes: list[Runtime] = []

    def make(*args: object, **kwargs: object) -> Runtime:
        kwargs.setdefault("dispatch", {"spool_path": tmp_path / "spool.db"})
        kwargs.setdefault(
            "redaction", {"key": TEST_REDACTION_KEY, "encryption_key_dir": tmp_path / "keys"}
        )
        runtime = logkit.configure(*args, **kwargs)  # type: ignore[arg-type]
        runtimes.append(runtime)
        return runtime

    yield make  # type: ignore[misc]
    if runtimes:
        logkit.configure(**memory_sinks(tmp_path / "restored"))
