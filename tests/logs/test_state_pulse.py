"""State pulses: snapshot, then JSON Patches; redacted, bounded, and rebuildable by hash."""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logkit
from logkit import EventType, StorageClass
from logkit import pulse as pulse_module
from logkit.chain import canonical, sha256_hex
from logkit.errors import ContractError
from logkit.pulse import StatePulseHook, reconstruct, state_pulse, summarise
from logkit.redaction import set_redactor
from logkit.testing import capture_events
from tests.conftest import SCOPE
from tests.redactors import WordRedactor


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    fake = FakeClock()
    monkeypatch.setattr(pulse_module, "_monotonic", fake)
    pulse_module.reset()
    yield fake
    pulse_module.reset()


def new_run() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


def digest(state: Any) -> str:
    return sha256_hex(canonical(state))


def test_first_pulse_is_a_snapshot_of_the_state() -> None:
    state = {"phase": "plan", "steps": ["a", "b"], "n": 1}
    with capture_events() as events, logkit.bind(**SCOPE, run_id=new_run()):
        returned = state_pulse("agent", state, step_id="s1")
    (event,) = events
    assert returned is not None and returned.event_id == event.event_id
    assert event.event_type == EventType.STATE_PULSE
    assert event.storage_class == StorageClass.OPS and event.step_id == "s1"
    assert event.payload == {"key": "agent", "seq": 0, "hash": digest(state), "snapshot": state}


def test_later_pulses_are_patches_from_the_previous_state() -> None:
    states = [
        {"phase": "plan", "steps": ["a", "b"], "notes": "x" * 200},
        {"phase": "act", "steps": ["a", "b", "c"], "notes": "x" * 200},
        {"phase": "act", "steps": ["b", "c"], "notes": "x" * 200, "done": True},
    ]
    with capture_events() as events, logkit.bind(**SCOPE, run_id=new_run()):
        for state in states:
            state_pulse("agent", state)
    assert [e.payload["seq"] for e in events] == [0, 1, 2]
    assert "snapshot" in events[0].payload
    for event, state in zip(events[1:], states[1:], strict=True):
        assert "snapshot" not in event.payload
        assert isinstance(event.payload["patch"], list) and event.payload["patch"]
        assert event.payload["hash"] == digest(state)
    assert {"op": "replace", "path": "/phase", "value": "act"} in events[1].payload["patch"]
    assert reconstruct(events) == {"agent": states}


def test_an_unchanged_state_emits_nothing(clock: FakeClock) -> None:
    with capture_events() as events, logkit.bind(**SCOPE, run_id=new_run()):
        assert state_pulse("agent", {"a": [1, 2]}) is not None
        clock.now += 3600
        assert state_pulse("agent", {"a": [1, 2]}) is None
        assert state_pulse("agent", {"a": (1, 2)}) is None  # the same JSON
    assert len(events) == 1


def test_heartbeat_emits_an_empty_patch_with_the_same_hash(clock: FakeClock) -> None:
    state = {"phase": "wait"}
    with capture_events() as events, logkit.bind(**SCOPE, run_id=new_run()):
        state_pulse("agent", state, heartbeat_s=30)
        clock.now += 29.9
        assert state_pulse("agent", state, heartbeat_s=30) is None
        clock.now += 0.1
        beat = state_pulse("agent", state, heartbeat_s=30)
        clock.now += 10
        assert state_pulse("agent", state, heartbeat_s=30) is None  # counted from the beat
        clock.now += 20
        assert state_pulse("agent", state, heartbeat_s=30) is not None
    assert beat is not None
    assert beat.payload == {"key": "agent", "seq": 1, "hash": digest(state), "patch": []}
    assert [e.payload["seq"] for e in events] == [0, 1, 2]
    assert reconstruct(events) == {"agent": [state, state, state]}


def test_a_patch_larger_than_the_state_falls_back_to_a_snapshot() -> None:
    with capture_events() as events, logkit.bind(**SCOPE, run_id=new_run()):
        state_pulse("agent", {"a": 1, "b": 2, "c": 3})
        state_pulse("agent", {"x": 9})  # three removes and an add outweigh {"x":9}
    assert events[1].payload["snapshot"] == {"x": 9} and "patch" not in events[1].payload
    assert events[1].payload["seq"] == 1
    assert reconstruct(events)["agent"] == [{"a": 1, "b": 2, "c": 3}, {"x": 9}]


def test_keys_and_runs_are_independent() -> None:
    run_a, run_b = new_run(), new_run()
    with capture_events() as events:
        with logkit.bind(**SCOPE, run_id=run_a):
            state_pulse("plan", {"v": 1, "pad": "p" * 50})
            state_pulse("memory", {"v": 1, "pad": "p" * 50})
        with logkit.bind(**SCOPE, run_id=run_b):
            state_pulse("plan", {"v": 1, "pad": "p" * 50})  # same state, other run: snapshot
        with logkit.bind(**SCOPE, run_id=run_a):
            state_pulse("plan", {"v": 2, "pad": "p" * 50})
        with logkit.bind(**SCOPE):
            state_pulse("plan", {"v": 3})  # no run: the tenant bucket
            state_pulse("plan", {"v": 3, "pad": "p" * 50}, run_id=run_b)  # an explicit run_id wins
    shapes = [
        (e.run_id, e.payload["key"], e.payload["seq"], "snapshot" in e.payload) for e in events
    ]
    assert shapes == [
        (run_a, "plan", 0, True),
        (run_a, "memory", 0, True),
        (run_b, "plan", 0, True),
        (run_a, "plan", 1, False),
        (None, "plan", 0, True),
        (run_b, "plan", 1, False),
    ]
    in_a = [e for e in events if e.run_id == run_a]
    assert reconstruct(in_a) == {
        "plan": [{"v": 1, "pad": "p" * 50}, {"v": 2, "pad": "p" * 50}],
        "memory": [{"v": 1, "pad": "p" * 50}],
    }


def test_tenants_are_independent() -> None:
    run = new_run()
    with capture_events() as events:
        with logkit.bind(**SCOPE, run_id=run):
            state_pulse("agent", {"v": 1})
        with logkit.bind(**{**SCOPE, "tenant_id": "t_other"}, run_id=run):
            state_pulse("agent", {"v": 1})
    assert [e.payload["seq"] for e in events] == [0, 0]


def test_state_is_redacted_before_hashing_and_diffing() -> None:
    set_redactor(WordRedactor())
    first = {"user": "ann", "password": "hunter2", "history": ["said hunter2", "ok"]}
    second = {**first, "history": [*first["history"], "hunter2 again"]}
    with capture_events() as events, logkit.bind(**SCOPE, run_id=new_run()):
        state_pulse("agent", first)
        state_pulse("agent", second)
    text = "".join(e.to_json() for e in events)
    assert "hunter2" not in text and "[SECRET:1]" in text
    assert "patch" in events[1].payload
    assert events[0].redaction is not None and events[0].redaction.counts == {"secret": 2}
    expected = json.loads(json.dumps(second).replace("hunter2", "[SECRET:1]"))
    assert events[1].payload["hash"] == digest(expected)
    assert reconstruct(events)["agent"][-1] == expected


def test_the_stored_state_is_a_copy_of_the_callers() -> None:
    state: dict[str, Any] = {"items": [1, 2], "pad": "p" * 50}
    with capture_events() as events, logkit.bind(**SCOPE, run_id=new_run()):
        state_pulse("agent", state)
        state["items"].append(3)  # mutated in place by the orchestrator
        state_pulse("agent", state)
    assert events[1].payload["patch"] == [{"op": "add", "path": "/items/2", "value": 3}]


def test_large_values_are_summarised_deterministically() -> None:
    state = {
        "text": "a" * 1234,
        "items": list(range(150)),
        "deep": (nested := {}),
        "wide": {f"k{i:03}": i for i in range(120)},
        "big": 2**60,
    }
    node = nested
    for _ in range(30):
        node["d"] = {}
        node = node["d"]
    with capture_events() as events, logkit.bind(**SCOPE, run_id=new_run()):
        state_pulse("agent", state)
    snap = events[0].payload["snapshot"]
    assert snap["text"] == "a" * 1000 + "…[+234 chars]"
    assert snap["items"] == [*range(100), "…[+50 items]"]
    assert len(snap["wide"]) == 101 and snap["wide"]["…"] == "[+20 keys]"
    assert snap["wide"]["k099"] == 99 and "k100" not in snap["wide"]
    assert snap["big"] == str(2**60)
    depth, node = 0, snap["deep"]
    while isinstance(node, dict):
        node, depth = node["d"], depth + 1
    assert node == "…[object of 1 keys]" and depth == 19  # state is level 0, deep level 1
    assert summarise(state) == summarise(json.loads(json.dumps(state)))
    assert events[0].payload["hash"] == digest(snap)
    assert reconstruct(events)["agent"] == [snap]


def test_the_whole_state_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    state = {f"field{i}": "x" * 900 for i in range(90)}  # about 83 KB
    summary, data = summarise(state)
    assert len(data) <= pulse_module.MAX_STATE_BYTES and data == canonical(summary)
    assert summary["field0"].startswith("x" * 250 + "…[+650 chars]")
    assert summarise(state) == (summary, data)
    monkeypatch.setattr(pulse_module, "MAX_STATE_BYTES", 10)
    assert summarise(state)[0].startswith("…[state of ")


def test_the_hook_pulses_after_each_transition(clock: FakeClock) -> None:
    hook = StatePulseHook(key="agent_state", heartbeat_s=30, step_id="orchestrator")
    with capture_events() as events, logkit.bind(**SCOPE, run_id=new_run()):
        hook({"phase": "plan"})
        hook.pulse({"phase": "plan"})
        hook({"phase": "act"}, step_id="s2")
        clock.now += 30
        hook({"phase": "act"})
    assert [e.payload["seq"] for e in events] == [0, 1, 2]
    assert [e.step_id for e in events] == ["orchestrator", "s2", "orchestrator"]
    assert events[2].payload["patch"] == []
    assert reconstruct(events) == {
        "agent_state": [{"phase": "plan"}, {"phase": "act"}, {"phase": "act"}]
    }


def test_a_failed_emit_does_not_advance_the_key() -> None:
    run = new_run()
    with pytest.raises(ContractError), logkit.bind(run_id=run):
        state_pulse("agent", {"v": 1}, tenant_id="t_acme")  # the rest of the scope is missing
    with capture_events() as events, logkit.bind(**SCOPE, run_id=run):
        state_pulse("agent", {"v": 1})
    assert events[0].payload["seq"] == 0 and "snapshot" in events[0].payload


def test_reconstruct_rejects_a_wrong_hash_and_an_orphan_patch() -> None:
    with capture_events() as events, logkit.bind(**SCOPE, run_id=new_run()):
        state_pulse("agent", {"v": 1, "pad": "p" * 40})
        state_pulse("agent", {"v": 2, "pad": "p" * 40})
    tampered = events[1].replace(payload={**events[1].payload, "hash": "0" * 64})
    with pytest.raises(ValueError, match=r"'agent' seq 1"):
        reconstruct([events[0], tampered])
    with pytest.raises(ValueError, match=r"'agent' seq 1: a patch with no snapshot"):
        reconstruct(events[1:])
    broken = events[1].replace(
        payload={**events[1].payload, "patch": [{"op": "remove", "path": "/x"}]}
    )
    with pytest.raises(ValueError, match=r"'agent' seq 1: patch does not apply"):
        reconstruct([events[0], broken])


def test_threads_pulsing_their_own_keys() -> None:
    def work(n: int) -> None:
        for i in range(40):
            state_pulse(f"worker{n}", {"i": i, "pad": "p" * 40})

    with capture_events() as events, logkit.bind(**SCOPE, run_id=new_run()):
        threads = [threading.Thread(target=logkit.propagate(work), args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    rebuilt = reconstruct(events)
    assert rebuilt == {
        f"worker{n}": [{"i": i, "pad": "p" * 40} for i in range(40)] for n in range(4)
    }


def test_reconstruct_skips_other_events() -> None:
    with capture_events() as events, logkit.bind(**SCOPE, run_id=new_run()):
        logkit.emit(EventType.MESSAGE, {"text": "hi"})
        state_pulse("agent", {"v": 1})
    assert reconstruct(events) == {"agent": [{"v": 1}]}


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=20,
)
states = st.dictionaries(st.text(max_size=6), json_values, max_size=6)


@st.composite
def state_sequences(draw: st.DrawFn) -> list[Any]:
    """Fresh states, edits of the previous one (so patches win), and repeats (no event)."""
    pad = draw(st.sampled_from(["", "p" * 300]))  # a large constant part favours patches
    sequence = [{**draw(states), "pad": pad}]
    for _ in range(draw(st.integers(min_value=0, max_value=8))):
        prev = sequence[-1]
        step = draw(st.sampled_from(["fresh", "edit", "edit", "repeat"]))
        if step == "fresh":
            sequence.append({**draw(states), "pad": pad})
        elif step == "repeat":
            sequence.append(copy.deepcopy(prev))
        else:
            dropped = draw(st.sets(st.sampled_from(sorted(prev)))) if prev else set()
            kept = {k: copy.deepcopy(v) for k, v in prev.items() if k not in dropped}
            sequence.append({**kept, **draw(states)})
    return sequence


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(state_sequences())
def test_reconstruct_rebuilds_every_emitted_state(sequence: list[Any]) -> None:
    expected: list[Any] = []
    with capture_events() as events, logkit.bind(**SCOPE, run_id=new_run()):
        for state in sequence:
            if not expected or canonical(expected[-1]) != canonical(state):
                expected.append(state)
            state_pulse("agent", state)
    assert len(events) == len(expected)
    rebuilt = reconstruct(events)["agent"]
    assert [canonical(s) for s in rebuilt] == [canonical(s) for s in expected]
    assert [e.payload["hash"] for e in events] == [digest(s) for s in expected]
    assert [e.payload["seq"] for e in events] == list(range(len(expected)))
    assert "snapshot" in events[0].payload
