"""legacy_hook: the default of a migrated injected hook behaves like "nothing injected" in
every way a caller can see, and hands the object on to logkit."""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest
from logkit.codemods.runtime import legacy_hook

import logkit
from logkit.testing import capture_events
from tests.conftest import SCOPE
from tests.fixtures.legacy_models import DatasetEvent, ModelCallLog, PromptSnapshot


@pytest.fixture
def logger_module() -> Iterator[types.ModuleType]:
    """A stand-in for engines.logging.events.engine: its run() mutates what it is handed."""
    module = types.ModuleType("fake_engine")
    module.seen = []  # type: ignore[attr-defined]

    def run(event: Any) -> dict[str, str]:
        event.train_ok = False
        event.input = {"stripped": True}
        module.seen.append(event)  # type: ignore[attr-defined]
        return {"status": "accepted"}

    module.run = run  # type: ignore[attr-defined]
    sys.modules["fake_engine"] = module
    yield module
    del sys.modules["fake_engine"]


def _event() -> DatasetEvent:
    return DatasetEvent(
        tenantId="t_acme", env="dev", surface="s", agentId="a", input={"q": 1}, output={}
    )


def _call() -> ModelCallLog:
    return ModelCallLog(
        tenant_id="t_acme",
        env="dev",
        model_id="m",
        purpose="embed_upsert",
        prompt=PromptSnapshot(text="hello"),
        output_dimensions=3,
    )


def test_without_a_route_the_object_goes_to_logkit_through_the_adapter() -> None:
    with logkit.bind(**SCOPE), capture_events() as events:
        assert legacy_hook()(_call()) is None
    (event,) = events
    assert event.event_type == "model_call_ended" and event.payload["purpose"] == "embed_upsert"


def test_a_routed_class_goes_to_its_logger_as_a_copy(logger_module: types.ModuleType) -> None:
    hook = legacy_hook({"DatasetEvent": "fake_engine.run"})
    event = _event()
    hook(event)
    (handed,) = logger_module.seen
    assert handed is not event and handed.train_ok is False
    assert event.train_ok is True and event.input == {"q": 1}  # the caller's object is intact


def test_routes_match_the_qualified_name_and_subclasses(logger_module: types.ModuleType) -> None:
    class Sub(DatasetEvent):
        pass

    qualified = f"{DatasetEvent.__module__}.{DatasetEvent.__qualname__}"
    legacy_hook({qualified: "fake_engine.run"})(Sub(**_event().model_dump()))
    assert len(logger_module.seen) == 1


@pytest.mark.parametrize(
    "failure",
    [
        lambda: legacy_hook()(_call()),  # no scope bound: logkit refuses (ContractError)
        lambda: legacy_hook()(object()),  # not a legacy envelope at all
        lambda: legacy_hook({"DatasetEvent": "no_such_module.run"})(_event()),
        lambda: legacy_hook({"DatasetEvent": "fake_engine.missing"})(_event()),
    ],
)
def test_it_never_raises_and_never_logs_a_value(
    failure: Any, caplog: pytest.LogCaptureFixture, logger_module: types.ModuleType
) -> None:
    with caplog.at_level(logging.WARNING, logger="logkit.codemods.runtime"):
        failure()
    (record,) = caplog.records
    assert record.getMessage().startswith("legacy ") and " not logged: " in record.getMessage()
    assert "hello" not in record.getMessage() and "t_acme" not in record.getMessage()
    assert record.exc_info is None
