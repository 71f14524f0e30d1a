"""The contract-violation policy: ``raise`` (dev and test) or ``record`` (staging and prod).

Recorded, a violation is kept as a ``contract_violation`` ops event that names the missing or
invalid fields (never their values), with the scope that was valid, under the reserved tenant
when none was, and it is counted; the caller goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import logkit
from logkit import ContractError
from logkit.config import load_settings
from logkit.contract import UNSCOPED, contract_policy, set_contract_policy
from logkit.envelope import REQUIRED_SCOPE, UNSCOPED_TENANT, EventType, StorageClass
from logkit.redaction.engine import RegexRedactor
from logkit.redaction.gate import set_redactor
from logkit.testing import capture_events
from tests.conftest import SCOPE

EMAIL = "jane.doe@example.com"


@pytest.fixture
def record() -> Any:
    previous = set_contract_policy("record")
    yield
    set_contract_policy(previous.name, strict_audit=previous.strict_audit)


def counted(name: str) -> int:
    return logkit.counters().get(name, 0)


# --- the setting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "setting", "policy"),
    [
        ("dev", None, "raise"),
        ("staging", None, "record"),
        ("prod", None, "record"),
        ("prod", "raise", "raise"),
        ("dev", "record", "record"),
    ],
)
def test_the_default_raises_in_dev_and_records_elsewhere(
    env: str, setting: str | None, policy: str
) -> None:
    contract = {} if setting is None else {"on_violation": setting}
    loaded = load_settings(env=env, contract=contract)
    assert loaded.contract.policy(loaded.env) == policy


def test_the_policy_comes_from_toml_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "logkit.toml"
    path.write_text('env = "prod"\n[contract]\non_violation = "raise"\n')
    assert load_settings(path).contract.on_violation == "raise"
    monkeypatch.setenv("LOGKIT_CONTRACT__ON_VIOLATION", "record")
    assert load_settings(path).contract.on_violation == "record"
    monkeypatch.setenv("LOGKIT_CONTRACT__ON_VIOLATION", "ignore")
    with pytest.raises(logkit.ConfigError, match=r"contract\.on_violation"):
        load_settings(path)


def test_configure_installs_the_policy(configured: Any, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'p.db'}"
    configured(env="prod", sinks={"timeline": uri, "audit": uri, "cost": uri})
    assert contract_policy().record
    configured(env="dev", sinks={"timeline": "memory://", "audit": "memory://"})
    assert not contract_policy().record


# --- raise ------------------------------------------------------------------------------------


def test_raise_names_every_missing_field() -> None:
    with pytest.raises(ContractError) as caught:
        logkit.emit("message", {"a": 1}, tenant_id="t_acme")
    assert set(caught.value.missing) == set(REQUIRED_SCOPE) - {"tenant_id", "env"}


# --- record -----------------------------------------------------------------------------------


def test_record_keeps_the_event_names_the_fields_and_counts(record: Any) -> None:
    before = counted("contract_violation.recorded"), counted("contract_violation.missing.app_id")
    with capture_events() as events, logkit.bind(tenant_id="t_acme", run_id="run_1"):
        returned = logkit.emit("tool_call_ended", {"rows": 3}, project_id="p_support")
    (event,) = events
    assert returned == event
    assert event.event_type is EventType.CONTRACT_VIOLATION
    assert event.storage_class is StorageClass.OPS and event.severity.value == "warning"
    assert (event.tenant_id, event.project_id, event.run_id) == ("t_acme", "p_support", "run_1")
    assert (event.surface_id, event.app_id) == (UNSCOPED, UNSCOPED)
    assert event.payload == {
        "event_type": "tool_call_ended",
        "missing": ["surface_id", "app_id"],
        "problems": {},
        "payload": {"rows": 3},
    }
    assert counted("contract_violation.recorded") == before[0] + 1
    assert counted("contract_violation.missing.app_id") == before[1] + 1


def test_record_with_no_valid_tenant_uses_the_reserved_tenant_and_never_a_value(
    record: Any,
) -> None:
    with capture_events() as events:
        logkit.emit("message", {}, **{**SCOPE, "tenant_id": f"tenant of {EMAIL}"})
    (event,) = events
    assert event.tenant_id == UNSCOPED_TENANT
    assert list(event.payload["problems"]) == ["tenant_id"]
    assert EMAIL not in event.model_dump_json()


def test_a_recorded_payload_still_passes_the_gate(record: Any) -> None:
    previous = set_redactor(RegexRedactor(b"k" * 32))
    try:
        with capture_events() as events:
            logkit.emit("message", {"note": f"mail {EMAIL}"}, tenant_id="t_acme")
    finally:
        set_redactor(previous)
    (event,) = events
    assert EMAIL not in event.model_dump_json()
    assert "[EMAIL:" in event.payload["payload"]["note"]  # type: ignore[index,call-overload]


def test_an_unknown_event_type_and_a_bad_payload_are_recorded_by_name(record: Any) -> None:
    with capture_events() as events:
        logkit.emit("not_a_type", {"x": 1}, **SCOPE)
        logkit.emit("message", {"x": object()}, **SCOPE)
    first, second = events
    assert first.payload["event_type"] is None and "event_type" in first.payload["problems"]
    assert first.tenant_id == "t_acme" and first.payload["payload"] == {"x": 1}
    assert "payload" not in second.payload  # not JSON: only its field name is kept
    assert any(p.startswith("payload") for p in second.payload["problems"])  # type: ignore[union-attr]


def test_flows_and_steps_go_on_when_recorded(record: Any) -> None:
    with capture_events() as events, logkit.flow("checkout"), logkit.step("pay"):
        logkit.decision("card")
    assert [e.payload["event_type"] for e in events] == [
        "flow_started",
        "step_started",
        "agent_decision",
        "step_ended",
        "flow_ended",
    ]
    assert logkit.current_scope() == {}


def test_a_strict_audit_event_still_raises(record: Any) -> None:
    set_contract_policy("record", strict_audit=True)
    with pytest.raises(ContractError):
        logkit.emit("audit_action", {"action": "x"}, tenant_id="t_acme")
    with pytest.raises(ContractError):
        logkit.emit("message", {}, tenant_id="t_acme", storage_class="audit")
    with capture_events() as events:
        logkit.emit("message", {}, tenant_id="t_acme")
    assert [e.event_type for e in events] == [EventType.CONTRACT_VIOLATION]


scope_values = st.one_of(
    st.none(), st.just(""), st.text(max_size=20), st.sampled_from(["t_ok", "dev"])
)


@settings(max_examples=150, deadline=None)
@given(
    fields=st.fixed_dictionaries({}, optional=dict.fromkeys(REQUIRED_SCOPE, scope_values)),
    event_type=st.sampled_from(["message", "flow_started", "nope", ""]),
    payload=st.one_of(
        st.none(), st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8))
    ),
)
def test_record_never_raises_and_always_stores_a_valid_event(
    fields: dict[str, Any], event_type: str, payload: dict[str, Any] | None
) -> None:
    previous = set_contract_policy("record")
    try:
        with capture_events() as events:
            returned = logkit.emit(event_type, payload, **fields)
    finally:
        set_contract_policy(previous.name, strict_audit=previous.strict_audit)
    assert events == [returned]
    if returned.event_type is EventType.CONTRACT_VIOLATION:
        assert returned.payload["missing"] or returned.payload["problems"]
