"""Flows and steps: events, nesting across asyncio and threads, decisions, and the story."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import logkit
from logkit import EventType
from logkit.cli.main import app as cli
from logkit.story import build_story
from logkit.testing import capture_events
from tests.conftest import SCOPE, memory_sinks
from tests.sinks.backends import uri_for

runner = CliRunner()


def types(events: list[logkit.Event]) -> list[str]:
    return [e.event_type.value for e in events]


def test_flow_starts_a_run_and_steps_nest() -> None:
    with (
        capture_events() as events,
        logkit.bind(**SCOPE),
        logkit.flow("answer") as run,
        logkit.step("outer", kind="plan") as outer,
        logkit.step("inner", kind="llm") as inner,
    ):
        logkit.decision("answer", options=["answer", "escalate"], reason="known")
    assert types(events) == [
        "flow_started",
        "step_started",
        "step_started",
        "agent_decision",
        "step_ended",
        "step_ended",
        "flow_ended",
    ]
    assert {e.run_id for e in events} == {run.run_id} and run.run_id.startswith("run_")
    started_inner = events[2]
    assert started_inner.step_id == inner.step_id
    assert started_inner.parent_step_id == outer.step_id
    assert events[3].step_id == inner.step_id
    assert events[3].payload == {
        "choice": "answer",
        "options": ["answer", "escalate"],
        "reason": "known",
    }
    ended = events[4]
    assert ended.payload["status"] == "ok" and ended.payload["duration_ms"] >= 0
    assert ended.payload["kind"] == "llm" and logkit.current_scope() == {}


def test_a_bound_run_is_kept() -> None:
    with capture_events() as events, logkit.bind(**SCOPE, run_id="run_given"), logkit.flow("f"):
        pass
    assert {e.run_id for e in events} == {"run_given"}


def test_failures_are_recorded_and_the_exception_propagates() -> None:
    with (
        capture_events() as events,
        logkit.bind(**SCOPE),
        pytest.raises(KeyError),
        logkit.flow("f"),
        logkit.step("lookup", attempt=1),
    ):
        raise KeyError("order 1042 for maria@example.org")
    failed = [e for e in events if e.event_type is EventType.STEP_FAILED]
    assert failed and failed[0].payload["error.type"] == "KeyError"
    assert failed[0].payload["attempt"] == 1 and failed[0].severity.value == "error"
    assert events[-1].event_type is EventType.FLOW_FAILED


def test_decorators_sync_and_async() -> None:
    @logkit.step("double", kind="compute")
    def double(x: int) -> int:
        return 2 * x

    @logkit.step("fetch", kind="io")
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    with capture_events() as events, logkit.bind(**SCOPE), logkit.flow("f"):
        assert double(4) == 8
        assert asyncio.run(fetch(1)) == 2
        assert double(5) == 10
    steps = [e for e in events if e.event_type is EventType.STEP_STARTED]
    assert [s.payload["name"] for s in steps] == ["double", "fetch", "double"]
    assert len({s.step_id for s in steps}) == 3  # a fresh step per call


def test_concurrent_asyncio_tasks_keep_their_parents() -> None:
    async def worker(i: int) -> tuple[str | None, str | None]:
        async with logkit.step(f"worker-{i}") as mine:
            await asyncio.sleep(0)
            async with logkit.step(f"child-{i}") as child:
                await asyncio.sleep(0)
                logkit.emit("message", {"i": i})
            return mine.step_id, child.step_id

    async def main() -> list[tuple[str | None, str | None]]:
        async with logkit.step("root") as root:
            pairs = await asyncio.gather(*(worker(i) for i in range(20)))
        return [(root.step_id, None), *pairs]

    with capture_events() as events, logkit.bind(**SCOPE), logkit.flow("f"):
        pairs = asyncio.run(main())
    root_id = pairs[0][0]
    parents = {
        e.step_id: e.parent_step_id for e in events if e.event_type is EventType.STEP_STARTED
    }
    for mine, child in pairs[1:]:
        assert parents[mine] == root_id and parents[child] == mine
    for e in events:
        if e.event_type is EventType.MESSAGE:
            assert parents[e.step_id or ""] in {m for m, _ in pairs[1:]}


def test_threads_with_a_copied_context_keep_their_parent() -> None:
    seen: list[str | None] = []
    with (
        capture_events() as events,
        logkit.bind(**SCOPE),
        logkit.flow("f"),
        logkit.step("parent") as parent,
    ):

        def work() -> None:
            with logkit.step("in-thread"):
                seen.append(logkit.current_scope().get("parent_step_id"))

        threads = [threading.Thread(target=logkit.propagate(work)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert seen == [parent.step_id] * 4
    assert len([e for e in events if e.payload.get("name") == "in-thread"]) == 8


def test_calls_inside_a_step_are_its_children() -> None:
    with (
        capture_events() as events,
        logkit.bind(**SCOPE),
        logkit.flow("f"),
        logkit.step("answer", kind="llm") as step,
    ):
        with logkit.model_call("openai", "gpt-4o", input={"q": "hi"}) as call:
            call.record_usage(input_tokens=10, output_tokens=5)
        with logkit.tool_call("search", input={"q": "x"}):
            pass
    calls = [
        e for e in events if e.event_type.value.startswith(("model_call", "tool_call", "usage"))
    ]
    assert calls and {e.step_id for e in calls} == {step.step_id}


def test_story_tree_has_steps_calls_decisions_tokens_and_cost() -> None:
    with capture_events() as events, logkit.bind(**SCOPE), logkit.flow("answer") as run:
        with logkit.step("retrieve", kind="retrieval"), logkit.tool_call("search"):
            pass
        with logkit.step("answer", kind="llm"):
            with logkit.model_call("openai", "gpt-4o") as call:
                call.record_usage(input_tokens=1000, output_tokens=100)
            logkit.decision("answer", reason="found")
        with pytest.raises(ValueError), logkit.step("enrich", attempt=1):
            raise ValueError("boom")
    story = build_story(run.run_id or "", events)
    (flow,) = story["children"]
    steps = {s["name"]: s for s in flow["children"] if s["type"] == "step"}
    assert steps["retrieve"]["children"][0] == {
        **steps["retrieve"]["children"][0],
        "type": "tool_call",
        "status": "ok",
    }
    answer = steps["answer"]
    assert [c["type"] for c in answer["children"]] == ["model_call", "decision"]
    assert answer["tokens"] == {"input": 1000, "output": 100} and "USD" in answer["cost"]
    assert steps["enrich"]["status"] == "failed"
    assert steps["enrich"]["error"]["type"] == "ValueError"
    assert flow["status"] == "ok" and story["total_tokens"] == {"input": 1000, "output": 100}


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    logkit.configure(**memory_sinks(tmp_path / "restored"))


def test_demo_story_and_timeline_show_give_the_same_tree(in_tmp: Path) -> None:
    demo = runner.invoke(cli, ["demo", "--json"])
    assert demo.exit_code == 0, demo.output
    story = json.loads(demo.output)
    shown = runner.invoke(cli, ["timeline", "show", "--run", story["run_id"], "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output) == story
    kinds = json.dumps(story)
    for needle in (
        '"type": "decision"',
        '"type": "pulse"',
        '"type": "tool_call"',
        '"type": "model_call"',
        '"status": "failed"',
        '"attempt": 2',
    ):
        assert needle in kinds, needle
    table = runner.invoke(cli, ["timeline", "show", "--run", story["run_id"]])
    assert table.exit_code == 0 and "answer_ticket" in table.output
    runs = runner.invoke(cli, ["timeline", "list", "--tenant", "t_acme", "--json"])
    assert runs.exit_code == 0
    (row,) = json.loads(runs.output)["runs"]
    assert row["run_id"] == story["run_id"] and row["status"] == "ok" and row["cost"]


def test_timeline_usage_errors(in_tmp: Path) -> None:
    missing = runner.invoke(cli, ["timeline", "show", "--run", "run_nope"])
    assert missing.exit_code == 2 and "not found" in missing.output  # docs/cli.md: not_found
    bad = runner.invoke(cli, ["timeline", "list", "--tenant", "t_acme", "--since", "someday"])
    assert bad.exit_code == 2


@pytest.mark.parametrize("kind", ["sqlite", "firestore", "bigquery"])
def test_timeline_show_works_on_every_backend(
    kind: str, tmp_path: Path, configured: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = uri_for(kind, tmp_path)
    audit = f"sqlite:///{tmp_path / 'audit.db'}"
    runtime = configured(env="dev", sinks={"timeline": uri, "audit": audit, "cost": uri})
    backend = runtime.backends[uri]
    assert backend.check_schema(create=True) == []
    with logkit.bind(**SCOPE), logkit.flow("tiny") as run, logkit.step("only"):
        logkit.decision("go")
    assert logkit.flush(30)
    toml = tmp_path / "lk.toml"
    toml.write_text(
        f'env = "dev"\n[sinks]\ntimeline = "{uri}"\naudit = "{audit}"\n'
        f'[redaction]\nkey = "k"\n[dispatch]\nspool_path = "{tmp_path / "s.db"}"\n'
    )
    shown = runner.invoke(
        cli,
        [
            "timeline",
            "show",
            "--run",
            run.run_id or "",
            "--tenant",
            "t_acme",
            "--json",
            "--config",
            str(toml),
        ],
    )
    assert shown.exit_code == 0, shown.output
    story = json.loads(shown.output)
    assert story["children"][0]["children"][0]["children"][0]["choice"] == "go"
    listed = runner.invoke(
        cli, ["timeline", "list", "--tenant", "t_acme", "--json", "--config", str(toml)]
    )
    assert [r["run_id"] for r in json.loads(listed.output)["runs"]] == [run.run_id]
