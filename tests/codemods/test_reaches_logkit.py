"""After ``apply``, what the legacy code logs reaches logkit, carrying what the legacy loggers
computed; and where logkit refuses, the legacy contracts decide what callers see.

The migrated fixture tree is imported in this process (``engines.*`` from its root) and driven
the way its services are, with and without a bound scope.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

import logkit
from logkit.adapters import from_legacy
from logkit.testing import capture_events
from tests.codemods.conftest import Migrated

SCOPE = {
    "tenant_id": "t_acme",
    "env": "dev",
    "project_id": "p_engines",
    "surface_id": "api",
    "app_id": "engines-api",
}
Load = Callable[[str], ModuleType]


@pytest.fixture
def engines(migrated: Migrated) -> Iterator[Load]:
    """``engines(name)`` imports a module of the migrated tree (fresh for each test)."""
    saved = list(sys.path)

    def forget() -> None:
        for name in [n for n in sys.modules if n == "engines" or n.startswith("engines.")]:
            del sys.modules[name]

    forget()
    sys.path[:] = [str(migrated.root), *saved]
    importlib.invalidate_caches()
    yield importlib.import_module
    forget()
    sys.path[:] = saved


def _ctx(engines: Load, **fields: Any) -> Any:
    return engines("engines.common.identity").RequestContext(
        tenant_id="t_acme", env="dev", **fields
    )


def test_run_persists_what_it_computed_and_answers_as_before(engines: Load) -> None:
    engine = engines("engines.logging.events.engine")
    schemas = engines("engines.dataset.events.schemas")
    engines("engines.privacy.training").get_training_pref_service().opt_out("t_acme", "u_9")
    event = schemas.DatasetEvent(
        tenantId="t_acme",
        env="dev",
        surface="chat",
        agentId="u_9",
        input={"q": "write to ann@example.com"},
        output={},
    )
    with logkit.bind(**SCOPE), capture_events() as events:
        result = engine.run(event)
    assert result == {"status": "accepted", "tenantId": "t_acme", "pii_flags": ["email"]}
    assert event.train_ok is False and event.input == {"q": "write to [email]"}  # mutated
    (emitted,) = events
    assert emitted.event_type == "dataset_event" and emitted.project_id == "p_engines"
    # The opt-out and the PII findings survive the migration, in the payload.
    assert emitted.payload["train_ok"] is False
    assert emitted.payload["pii_flags"] == {"flags": ["email"], "policy_reason": "pii_detected"}
    assert engines("engines.nexus.backends").get_backend().list_events("t_acme") == []


def test_run_writes_its_line_through_logging_not_stdout(
    engines: Load, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    engine = engines("engines.logging.events.engine")
    event = engines("engines.dataset.events.schemas").DatasetEvent(
        tenantId="t_acme", env="dev", surface="chat", agentId="a", input={}, output={}
    )
    with caplog.at_level(logging.INFO, logger=engine.__name__), logkit.bind(**SCOPE):
        engine.run(event)
    assert capsys.readouterr().out == ""
    assert [r.getMessage() for r in caplog.records if r.name == engine.__name__] == [
        '{"event": "dataset_event", "tenantId": "t_acme", "surface": "chat"}'
    ]


def test_when_logkit_refuses_the_legacy_error_contracts_hold(engines: Load) -> None:
    """No project/app bound: logkit's ContractError becomes run's error dict, the audit
    RuntimeError and default_event_logger's RuntimeError, each with the error text."""
    engine = engines("engines.logging.events.engine")
    event = engines("engines.dataset.events.schemas").DatasetEvent(
        tenantId="t_acme", env="dev", surface="chat", agentId="a", input={}, output={}
    )
    result = engine.run(event)
    assert result["status"] == "error" and result["tenantId"] == "t_acme"
    assert "project_id" in result["error"] and "app_id" in result["error"]
    with pytest.raises(RuntimeError, match="project_id"):
        engines("engines.logging.audit").emit_audit_event(_ctx(engines), "login")
    event_log = engines("engines.logging.event_log")
    with pytest.raises(RuntimeError, match="project_id"):
        event_log.default_event_logger(event_log.EventLogEntry(event_type="x", tenant_id="t_acme"))


def test_audit_events_reach_the_audit_chain(engines: Load) -> None:
    audit = engines("engines.logging.audit")
    ctx = engines("engines.common.identity").RequestContext(
        tenant_id="t_codemod_audit", env="dev", user_id="u_1"
    )
    with logkit.bind(**{**SCOPE, "tenant_id": "t_codemod_audit"}):
        audit.emit_audit_event(ctx, "export", metadata={"rows": 3})
    assert logkit.flush(timeout=10)
    page = logkit.query_events("t_codemod_audit", role="audit")
    (record,) = page.events
    assert record.event_type == "audit_action" and record.payload["action"] == "export"
    assert record.seq == 0 and record.hash and record.actor_type == "human"


def test_every_default_event_logger_site_reaches_logkit(engines: Load) -> None:
    assets = engines("engines.services.assets")
    with logkit.bind(**SCOPE), capture_events() as events:
        asset = assets.create_asset(_ctx(engines, user_id="u_1"), "image", "logo.png")
    (emitted,) = events
    assert emitted.event_type == "dataset_event" and emitted.actor_type == "human"
    assert emitted.payload["metadata"]["asset_id"] == asset["id"]


def test_hook_defaults_send_model_calls_and_usage_to_logkit(engines: Load) -> None:
    ingest = engines("engines.rag.ingest")
    embed = engines("engines.rag.embed")
    with logkit.bind(**SCOPE), capture_events() as events:
        ingest.Ingestor("t_acme", "dev", {}).ingest("d1", "some text")
        embed.Embedder("t_acme", "dev").embed("three small words")
    kinds = [e.event_type for e in events]
    assert kinds == ["model_call_ended", "model_call_ended", "usage_recorded"]
    assert events[0].payload["purpose"] == "embed_upsert"
    assert events[0].payload["prompt"]["text"] == "some text"  # the gate redacts it, if PII
    assert events[2].payload["tokens_input"] == 3


def test_a_hook_default_never_changes_what_the_caller_sees(
    engines: Load, caplog: pytest.LogCaptureFixture
) -> None:
    """No scope bound: logkit refuses every event; ingestion still works, and an empty
    document is still the IngestError (a 400), not a logging error."""
    ingest = engines("engines.rag.ingest")
    ingestor = ingest.Ingestor("t_acme", "dev", {})
    with capture_events() as events:
        assert ingestor.ingest("d1", "text") == [4.0, 0.5, 0.25]
        with pytest.raises(ingest.IngestError) as raised:
            ingestor.ingest("d2", " ")
    assert raised.value.status_code == 400 and events == []
    warnings = [r.getMessage() for r in caplog.records if r.name == "logkit.codemods.runtime"]
    assert warnings == ["legacy ModelCallLog not logged: ContractError"]


def test_injected_hooks_are_called_and_the_default_is_not(engines: Load) -> None:
    ingest = engines("engines.rag.ingest")
    calls: list[Any] = []
    with logkit.bind(**SCOPE), capture_events() as events:
        ingest.Ingestor("t_acme", "dev", {}, model_call_logger=calls.append).ingest("d", "x")
    assert [c.purpose for c in calls] == ["embed_upsert"] and events == []


def test_a_dataset_event_hook_default_goes_through_run(engines: Load) -> None:
    """The judge's event_logger defaulted to a no-op: its events now go through run(), so the
    training opt-out applies to them too."""
    engines("engines.privacy.training").get_training_pref_service().opt_out("t_acme")
    judge = engines("engines.eval.judge").Judge("t_acme")
    try:
        with logkit.bind(**SCOPE), capture_events() as events:
            judge.grade("Is Paris in France?", "paris")
    finally:
        engines("engines.privacy.training").get_training_pref_service().clear()
    dataset = [e for e in events if e.event_type == "dataset_event"]
    assert len(dataset) == 1 and dataset[0].payload["train_ok"] is False


@pytest.mark.parametrize(
    ("legacy", "train_ok", "pii_flags"),
    [
        ({}, True, {}),  # a mapping without them: the legacy model's defaults
        ({"train_ok": False, "pii_flags": {"flags": ["email"]}}, False, {"flags": ["email"]}),
        ({"analytics_event_type": "audit", "analytics_platform": "internal"}, True, {}),
    ],
)
def test_from_legacy_always_carries_the_consent_fields(
    legacy: dict[str, Any], train_ok: bool, pii_flags: dict[str, Any]
) -> None:
    base = {"tenantId": "t_acme", "env": "dev", "surface": "s", "agentId": "a"}
    event = from_legacy({**base, **legacy}, project_id="p", app_id="a")
    assert event.payload["train_ok"] is train_ok and event.payload["pii_flags"] == pii_flags
