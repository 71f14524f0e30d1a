"""Behaviour: run the fixture functions before and after migration and compare what is logged.

Before, the legacy loggers keep the objects they are handed; what those objects mean as
canonical events is what the adapters make of them in the same context. After, the migrated
code emits canonical events itself (sites left alone still go through the legacy logger).
Both must carry the same information, and the migrated events the scope from the context.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import logkit
from logkit.testing import capture_events
from tests.codemods.conftest import Migrated
from tests.codemods.tree import BEFORE, copy_tree
from tests.conftest import SCOPE

CONTEXT = {**SCOPE, "run_id": "run_1", "step_id": "step_1"}
# Fields that differ by construction (ids, clocks, the chain's bookkeeping) are not compared.
COMPARED = (
    "event_type",
    "severity",
    "storage_class",
    "tenant_id",
    "env",
    "project_id",
    "surface_id",
    "app_id",
    "request_id",
    "trace_id",
    "actor_type",
    "run_id",
    "step_id",
    "user_id",
)

Scenario = tuple[str, Callable[[], Any]]


def _clean(value: Any) -> Any:
    """Payload information: None and empty containers carry none; the snapshot time is ts."""
    if isinstance(value, dict):
        cleaned = {k: _clean(v) for k, v in value.items() if k != "created_at"}
        return {k: v for k, v in cleaned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _information(event: logkit.Event) -> dict[str, Any]:
    fields = {name: str(getattr(event, name)) for name in COMPARED if getattr(event, name)}
    return {**fields, "payload": _clean(event.payload)}


def _key(information: dict[str, Any]) -> str:
    return json.dumps(information, sort_keys=True)


def _result(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return _result(dump(exclude={"call_id"})) if callable(dump) else value


@pytest.fixture
def load(tmp_path: Path) -> Iterator[Callable[[Path], Callable[[str], ModuleType]]]:
    """``load(root)(name)`` imports ``engines.*`` from ``root``; each root is a fresh import."""
    saved_path = list(sys.path)

    def forget() -> None:
        for name in [n for n in sys.modules if n == "engines" or n.startswith("engines.")]:
            del sys.modules[name]

    def from_root(root: Path) -> Callable[[str], ModuleType]:
        forget()
        sys.path[:] = [str(root), *saved_path]
        importlib.invalidate_caches()
        return importlib.import_module

    yield from_root
    forget()
    sys.path[:] = saved_path


def scenarios(load: Callable[[str], ModuleType]) -> list[Scenario]:
    pipeline = load("engines.chat.pipeline")
    builders = load("engines.dataset.events.builders")
    aliases = load("engines.eval.aliases")
    awkward = load("engines.eval.awkward")
    embed = load("engines.rag.embed")
    transport = load("engines.realtime.transport")
    logger = load("engines.dataset.events.logger")
    ctx = load("engines.common.identity").RequestContext(
        tenant_id="t_acme", env="prod", request_id="req-42"
    )
    embedder = embed.Embedder("t_acme", "prod", logger.LOGGED.append)
    doc = embed.Doc("what does my order 1042 contain?", episode="ep_7")
    when = dt.datetime(2026, 1, 2, 3, 4, 5)
    created: list[dict[str, Any]] = []
    sent: list[Any] = []
    model_call = {
        "tenant_id": "t_acme",
        "env": "prod",
        "model_id": "judge-2",
        "purpose": "eval:extra",
        "prompt": {"text": "grade this"},
        "output_dimensions": 2,
    }
    return [
        ("greet", lambda: pipeline.greet(ctx, "agent_1")),
        ("rate", lambda: pipeline.rate(ctx, "agent_1", 5)),
        ("answer", lambda: pipeline.answer(ctx, "agent_1", "where is 1042?", "shipped")),
        ("keep", lambda: (pipeline.answer_and_keep(ctx, "agent_1", "faq?", created), created)),
        ("checked", lambda: pipeline.answer_checked(ctx, "agent_1")),
        ("builder", lambda: pipeline.build_event(ctx, "agent_1")),
        (
            "replay",
            lambda: pipeline.replay(
                ctx, {"surface": "chat", "agentId": "a", "input": {}, "output": {"n": 1}}
            ),
        ),
        ("write_through", lambda: pipeline.write_through(ctx, logger.Backend(), "agent_1", None)),
        ("audit", lambda: pipeline.audit_login(ctx, "u_1")),
        ("conditional", lambda: pipeline.conditional(ctx, "agent_1", True)),
        ("conditional_off", lambda: pipeline.conditional(ctx, "agent_1", False)),
        ("feedback", lambda: builders.record_feedback("t_acme", "prod", "agent_2", 4)),
        ("module_alias", lambda: aliases.score("t_acme", "prod", "agent_3", "smoke")),
        ("class_alias", lambda: aliases.score_alias("t_acme", "prod", "agent_3")),
        ("traced", lambda: awkward.traced("t_acme")),
        ("one_line", lambda: awkward.quick("t_acme", True)),
        ("keyword", lambda: awkward.keyword_logger("t_acme")),
        ("loop", lambda: awkward.in_a_loop("t_acme", ["a", "b"])),
        ("rebound", lambda: awkward.rebound("t_acme", "first", "second")),
        ("judge", lambda: awkward.judge("t_acme", "is this right?", model_call)),
        ("embed", lambda: embedder.embed(doc)),
        ("evaluate", lambda: embedder.evaluate(doc, "relevance")),
        ("backfill", lambda: embedder.backfill(doc, when)),
        ("asset", lambda: transport.asset_created("t_acme", "img_1", "u_1")),
        ("gesture", lambda: (transport.gesture("t_acme", sent.append), [s.type for s in sent])),
    ]


def observe(load: Callable[[str], ModuleType]) -> dict[str, tuple[Any, list[dict[str, Any]]]]:
    """Each scenario's result and the canonical information of what it logged."""
    logged: list[Any] = load("engines.dataset.events.logger").LOGGED
    seen = {}
    for name, scenario in scenarios(load):
        logged.clear()
        with logkit.bind(**CONTEXT), capture_events() as events:
            result = _result(scenario())
            legacy = [logkit.from_legacy(obj) for obj in logged]
        # Order across the two paths is not information: a left-alone site logs through the
        # legacy logger in both trees, while its neighbours now emit directly.
        information = sorted((_information(e) for e in [*events, *legacy]), key=_key)
        seen[name] = (result, information)
    return seen


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the legacy code calls .dict()
def test_migrated_code_logs_the_same_information_with_the_context_scope(
    tmp_path: Path, migrated: Migrated, load: Callable[[Path], Callable[[str], ModuleType]]
) -> None:
    before = observe(load(copy_tree(BEFORE, tmp_path / "before").parent))
    after = observe(load(migrated.root))

    assert before.keys() == after.keys()
    for name in before:
        assert after[name] == before[name], name
    events = [e for _, logged in after.values() for e in logged]
    assert len(events) >= 25
    for event in events:
        # Scope the legacy objects never had comes from the bound context.
        assert event["project_id"] == "p_support" and event["app_id"] == "support-bot"
        assert event["run_id"] == "run_1" and event["step_id"] == "step_1"
    kinds = {e["event_type"] for e in events}
    # EventLogEntry's "asset_created" is no canonical type: the adapter makes it a message.
    assert kinds == {"dataset_event", "audit_action", "model_call_ended", "message"}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_migrated_sites_emit_through_logkit_not_the_legacy_logger(
    migrated: Migrated, load: Callable[[Path], Callable[[str], ModuleType]]
) -> None:
    modules = load(migrated.root)
    logged = modules("engines.dataset.events.logger").LOGGED
    pipeline = modules("engines.chat.pipeline")
    ctx = modules("engines.common.identity").RequestContext(tenant_id="t_acme", env="prod")
    logged.clear()
    with logkit.bind(**CONTEXT), capture_events() as events:
        pipeline.greet(ctx, "agent_1")  # converted
        pipeline.answer_and_keep(ctx, "agent_1", "q", [])  # adapted
        assert pipeline.answer_checked(ctx, "agent_1") is True  # left: the legacy logger answers
    assert [e.event_type for e in events] == ["dataset_event", "dataset_event"]
    assert len(logged) == 1
