"""The canonical envelope: required scope, normalisation, JSON round trip, adapters, emit."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import logkit
from logkit import ContractError, Event, EventType, Severity, StorageClass
from logkit.adapters import (
    from_dataset_event,
    from_event_log_entry,
    from_legacy,
    from_model_call_log,
    from_stream_event,
    from_usage_event,
)
from logkit.envelope import CORRELATION_FIELDS, REQUIRED_SCOPE, SCHEMA_VERSION, TRACE_FIELDS
from logkit.testing import capture_events
from tests.conftest import SCOPE
from tests.fixtures.legacy_models import (
    DatasetEvent,
    EventIds,
    EventLogEntry,
    EventMeta,
    ModelCallLog,
    PromptSnapshot,
    RoutingKeys,
    StreamEvent,
    UsageEvent,
)

# --- public surface ---------------------------------------------------------------------------


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert logkit.__all__ == sorted(logkit.__all__)
    for name in logkit.__all__:
        assert getattr(logkit, name) is not None, name


def test_import_pulls_in_no_cloud_sdk_cli_or_otel() -> None:
    code = (
        "import sys, logkit; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('google', 'typer', 'rich', 'starlette', 'opentelemetry')]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_contract_error_is_a_value_error() -> None:
    assert issubclass(ContractError, ValueError)
    assert issubclass(ContractError, logkit.LogkitError)


# --- required scope ---------------------------------------------------------------------------


def test_field_name_lists_follow_the_envelope() -> None:
    # Every list of scope or correlation field names is derived from these two.
    assert list(Event.model_fields)[:14] == [*REQUIRED_SCOPE, *CORRELATION_FIELDS]
    assert set(TRACE_FIELDS) <= set(CORRELATION_FIELDS)


@pytest.mark.parametrize("field", REQUIRED_SCOPE)
def test_missing_scope_field_is_named(field: str) -> None:
    data = {**SCOPE, "event_type": "message"}
    del data[field]
    with pytest.raises(ContractError) as info:
        Event(**data)
    assert info.value.missing == (field,)
    assert field in str(info.value)


@given(st.sets(st.sampled_from(REQUIRED_SCOPE), min_size=1), st.sampled_from([None, "", "drop"]))
def test_every_missing_scope_field_is_named_at_once(missing: set[str], how: Any) -> None:
    data: dict[str, Any] = {**SCOPE, "event_type": "message"}
    for name in missing:
        if how == "drop":
            del data[name]
        else:
            data[name] = how
    with pytest.raises(ContractError) as info:
        Event(**data)
    assert set(info.value.missing) == missing
    for name in missing:
        assert name in str(info.value)


def test_nothing_is_defaulted_from_thin_air() -> None:
    """Only the service's own scope (env from the configuration) is under every event."""
    with pytest.raises(ContractError) as info:
        logkit.emit("message")
    assert set(info.value.missing) == set(REQUIRED_SCOPE) - {"env"}


def test_stage_normalises_to_staging() -> None:
    assert Event(**{**SCOPE, "env": "stage"}, event_type="message").env == "staging"


@pytest.mark.parametrize("env", ["qa", "Prod", "production", "STAGING"])
def test_unknown_env_is_rejected(env: str) -> None:
    with pytest.raises(ContractError) as info:
        Event(**{**SCOPE, "env": env}, event_type="message")
    assert "env" in info.value.problems


@given(st.from_regex(r"^t_[a-z0-9_-]{1,40}$", fullmatch=True))
def test_tenant_pattern_accepts_valid_ids(tenant: str) -> None:
    assert Event(**{**SCOPE, "tenant_id": tenant}, event_type="message").tenant_id == tenant


@given(
    st.text(min_size=1, max_size=40).filter(
        lambda s: not __import__("re").fullmatch(r"t_[a-z0-9_-]+", s)
    )
)
def test_tenant_pattern_rejects_everything_else(tenant: str) -> None:
    with pytest.raises(ContractError) as info:
        Event(**{**SCOPE, "tenant_id": tenant}, event_type="message")
    assert "tenant_id" in info.value.problems


@given(
    st.one_of(
        st.from_regex(r"^t_[a-z0-9_-]{1,140}$", fullmatch=True),
        st.from_regex(r"^t_[a-z0-9_-]{1,20}\n?$", fullmatch=True),
        st.text(max_size=40),
    )
)
def test_every_tenant_check_agrees_with_the_envelope(tenant: str) -> None:
    """Reads, principals, trusted headers and the CLI accept exactly the envelope's tenant ids
    (one rule: a trailing newline or a 129th character is refused everywhere)."""
    import typer

    from logkit.cli.common import check_tenant
    from logkit.envelope import is_reserved_tenant, is_tenant_id
    from logkit.principal import Principal, principal_problem, tenant_header_ok
    from logkit.read import require_tenant

    try:
        Event(**{**SCOPE, "tenant_id": tenant}, event_type="message")
        accepted = True
    except ContractError:
        accepted = False
    assert is_tenant_id(tenant) is accepted
    try:
        require_tenant(tenant)
        read_ok = True
    except ContractError:
        read_ok = False
    try:
        check_tenant(tenant)
        cli_ok = True
    except typer.BadParameter:
        cli_ok = False
    assert read_ok is cli_ok is accepted
    customer = accepted and not is_reserved_tenant(tenant)
    assert tenant_header_ok(tenant) is customer
    assert (principal_problem(Principal(tenant)) is None) is customer


def test_error_messages_never_echo_the_rejected_value() -> None:
    secret = "alice@example.com"
    with pytest.raises(ContractError) as info:
        Event(
            **{**SCOPE, "tenant_id": secret, "user_id": 12},
            event_type="message",
            trace_id=secret,
            payload={"k": {1, 2}},
        )
    assert secret not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_unknown_fields_are_rejected_not_dropped() -> None:
    with pytest.raises(ContractError) as info:
        Event(**SCOPE, event_type="message", tenantId="t_other")
    assert "tenantId" in info.value.problems


def test_naive_timestamps_are_refused_and_aware_ones_become_utc() -> None:
    with pytest.raises(ContractError):
        Event(**SCOPE, event_type="message", ts=dt.datetime(2026, 1, 1, 12))
    plus2 = dt.timezone(dt.timedelta(hours=2))
    event = Event(**SCOPE, event_type="message", ts=dt.datetime(2026, 1, 1, 12, tzinfo=plus2))
    assert event.ts == dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)
    assert event.ts.tzinfo is dt.UTC


def test_payload_must_be_json() -> None:
    with pytest.raises(ContractError) as info:
        Event(**SCOPE, event_type="message", payload={"when": dt.datetime.now(dt.UTC)})
    assert "payload.when" in info.value.problems


def test_defaults_and_event_ids_are_time_ordered_and_unique() -> None:
    events = [Event(**SCOPE, event_type="message") for _ in range(2000)]
    ids = [e.event_id for e in events]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)  # UUIDv7: lexical order is creation order
    first = events[0]
    assert first.schema_version == SCHEMA_VERSION
    assert first.severity is Severity.INFO and first.storage_class is StorageClass.OPS


def test_severity_rank_orders_levels() -> None:
    ranks = [s.rank for s in Severity]
    assert ranks == sorted(ranks) and Severity.ERROR.rank > Severity.WARNING.rank


# --- JSON round trip --------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=20)
    | (st.floats(allow_nan=False, allow_infinity=False))
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
hexes = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-:.", min_size=1, max_size=40)

events = st.builds(
    Event,
    tenant_id=st.from_regex(r"^t_[a-z0-9_-]{1,20}$", fullmatch=True),
    env=st.sampled_from(["dev", "staging", "prod", "stage"]),
    project_id=ids,
    surface_id=ids,
    app_id=ids,
    request_id=st.none() | ids,
    trace_id=st.none() | hexes,
    span_id=st.none() | hexes.map(lambda h: h[:16]),
    run_id=st.none() | ids,
    step_id=st.none() | ids,
    parent_step_id=st.none() | ids,
    user_id=st.none() | st.text(min_size=1, max_size=30),
    actor_type=st.none() | st.sampled_from(["human", "agent", "system"]),
    ts=st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-5))])),
    event_type=st.sampled_from(list(EventType)),
    severity=st.sampled_from(list(Severity)),
    storage_class=st.sampled_from(list(StorageClass)),
    payload=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    seq=st.none() | st.integers(0, 2**40),
    prev_hash=st.none() | (hexes.map(lambda h: h * 2)),
)


@settings(max_examples=300)
@given(events)
def test_json_round_trip_is_exact(event: Event) -> None:
    text = event.model_dump_json()
    back = Event.model_validate_json(text)
    assert back == event
    assert back.model_dump_json() == text
    assert Event.model_validate(json.loads(text)) == event


# --- emit -------------------------------------------------------------------------------------


def test_emit_fills_scope_from_context_and_explicit_fields_win() -> None:
    with capture_events() as events, logkit.bind(**SCOPE, run_id="run_1"):
        logkit.emit("step_started", {"name": "retrieve"}, step_id="s1", app_id="other-app")
    (event,) = events
    assert event.tenant_id == "t_acme" and event.run_id == "run_1" and event.step_id == "s1"
    assert event.app_id == "other-app"
    assert event.payload == {"name": "retrieve"}
    assert event.redaction is not None and event.redaction.policy == "none"


def test_emit_implies_storage_class_from_type() -> None:
    with capture_events() as events, logkit.bind(**SCOPE):
        logkit.emit("usage_recorded", {"tokens_input": 3})
        logkit.emit("audit_action", {"action": "login"})
        logkit.emit("message", storage_class="stream")
    assert [e.storage_class for e in events] == [
        StorageClass.COST,
        StorageClass.AUDIT,
        StorageClass.STREAM,
    ]


def test_emit_rejects_unknown_event_type_without_echoing_it() -> None:
    with logkit.bind(**SCOPE), pytest.raises(ContractError, match="event_type"):
        logkit.emit("not_a_type")


def test_emit_missing_scope_emits_nothing() -> None:
    with capture_events() as events, logkit.bind(tenant_id="t_acme"), pytest.raises(ContractError):
        logkit.emit("message")
    assert events == []


def test_capture_collects_from_threads_and_stops_at_exit() -> None:
    with capture_events() as events:
        workers = [
            threading.Thread(target=logkit.emit, args=("message", {"i": i}), kwargs=SCOPE)
            for i in range(20)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    logkit.emit("message", **SCOPE)
    assert sorted(e.payload["i"] for e in events) == list(range(20))


# --- adapters ---------------------------------------------------------------------------------


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _assert_nothing_dropped(legacy: Any, event: Event) -> None:
    """Every non-empty legacy leaf value is on the envelope or in its payload."""
    found = {
        json.dumps(v, sort_keys=True, default=str)
        for v in _leaves(json.loads(event.model_dump_json()))
    }
    for value in _leaves(legacy.model_dump(mode="json")):
        if value in (None, "", {}, []):
            continue
        rendered = json.dumps(value, sort_keys=True, default=str)
        if value == "stage":
            rendered = json.dumps("staging")
        assert rendered in found or any(rendered.strip('"') in f for f in found), value


def full_dataset_event(**overrides: Any) -> DatasetEvent:
    values: dict[str, Any] = {
        "tenantId": "t_acme",
        "env": "prod",
        "surface": "chat",
        "agentId": "agent-7",
        "input": {"q": "hi"},
        "output": {"a": "hello"},
        "pii_flags": {"email": True},
        "train_ok": False,
        "metadata": {"k": "v"},
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "fall",
        "utm_term": "agents",
        "utm_content": "c1",
        "seo_slug": "slug",
        "seo_title": "Title",
        "seo_description": "Desc",
        "asset_alt_text": "alt",
        "analytics_event_type": "chat_turn",
        "analytics_platform": "web",
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "requestId": "req-1",
        "actorType": "human",
    }
    return DatasetEvent(**{**values, **overrides})


def test_dataset_event_maps_every_field() -> None:
    legacy = full_dataset_event()
    event = from_dataset_event(legacy, project_id="p_support", app_id="support-bot")
    assert event.event_type is EventType.DATASET_EVENT
    assert (event.tenant_id, event.env, event.surface_id) == ("t_acme", "prod", "chat")
    assert event.trace_id == legacy.traceId and event.request_id == "req-1"
    assert event.actor_type == "human"
    assert event.payload["utm"]["utm_campaign"] == "fall"
    assert event.payload["train_ok"] is False
    _assert_nothing_dropped(legacy, event)


def test_audit_dataset_event_becomes_audit_action() -> None:
    legacy = full_dataset_event(
        analytics_event_type="audit",
        analytics_platform="internal",
        metadata={"action": "key.rotate", "actor_type": "system"},
        actorType=None,
    )
    event = from_legacy(legacy, project_id="p", app_id="a")
    assert event.event_type is EventType.AUDIT_ACTION
    assert event.storage_class is StorageClass.AUDIT
    assert event.payload["action"] == "key.rotate" and event.actor_type == "system"


def test_adapter_scope_comes_from_context_when_legacy_lacks_it() -> None:
    with logkit.bind(project_id="p_ctx", app_id="app_ctx"):
        event = from_legacy(full_dataset_event())
    assert (event.project_id, event.app_id) == ("p_ctx", "app_ctx")


def test_adapter_without_scope_raises_naming_fields() -> None:
    with pytest.raises(ContractError) as info:
        from_legacy(full_dataset_event())
    assert set(info.value.missing) == {"project_id", "app_id"}


def test_adapter_refuses_to_reattribute_tenant() -> None:
    with pytest.raises(ContractError, match="tenant_id"):
        from_legacy(full_dataset_event(), tenant_id="t_other", project_id="p", app_id="a")


def test_non_w3c_legacy_trace_id_is_kept_in_payload() -> None:
    event = from_legacy(full_dataset_event(traceId="abc-123"), project_id="p", app_id="a")
    assert event.trace_id is None and event.payload["legacy_trace_id"] == "abc-123"


def test_stream_event_maps_routing_ids_and_meta() -> None:
    legacy = StreamEvent(
        type="token.delta",
        seq=7,
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        span_id="00f067aa0ba902b7",
        ids=EventIds(request_id="r1", correlation_id="c1", run_id="run_1", step_id="s1"),
        routing=RoutingKeys(
            tenant_id="t_acme",
            env="stage",
            project_id="p",
            app_id="a",
            surface_id="chat",
            thread_id="th1",
            actor_id="u1",
            actor_type="human",
            session_id="sess",
        ),
        data={"delta": "Hel"},
        meta=EventMeta(priority="gesture", persist="never"),
    )
    event = from_stream_event(legacy)
    assert event.env == "staging" and event.run_id == "run_1" and event.step_id == "s1"
    assert event.event_id == legacy.event_id and event.ts == legacy.ts
    assert event.event_type is EventType.MESSAGE and event.payload["legacy_type"] == "token.delta"
    assert event.storage_class is StorageClass.STREAM
    assert event.payload["routing"]["thread_id"] == "th1"
    _assert_nothing_dropped(legacy, event)


def test_persisted_stream_event_with_canonical_type_goes_to_ops() -> None:
    legacy = StreamEvent(
        type="step_started",
        routing=RoutingKeys(
            tenant_id="t_acme", env="dev", project_id="p", app_id="a", surface_id="s"
        ),
        meta=EventMeta(priority="truth", persist="always"),
    )
    event = from_legacy(legacy)
    assert event.event_type is EventType.STEP_STARTED and event.storage_class is StorageClass.OPS


@pytest.mark.parametrize("legacy_type", [["step_started"], {"t": 1}, 7, None])
def test_a_legacy_type_that_is_not_text_is_kept_not_hashed(legacy_type: Any) -> None:
    """Legacy dicts carry any JSON there: a list or dict is kept as legacy_type, never a bare
    TypeError (unhashable) out of the adapter."""
    routing = {"tenant_id": "t_acme", "env": "dev", "project_id": "p", "app_id": "a"}
    legacy = {
        "v": 1,
        "type": legacy_type,
        "ts": "2026-01-01T00:00:00+00:00",
        "event_id": "e1",
        "routing": {**routing, "surface_id": "s"},
        "ids": {},
        "data": {},
        "meta": {},
    }
    event = from_legacy(legacy)
    assert event.event_type is EventType.MESSAGE
    assert event.payload.get("legacy_type") == legacy_type


def test_legacy_actor_types_and_ids_of_any_shape_are_kept_in_the_payload() -> None:
    """An actor type that is a list, and a trace id with a trailing newline, are not envelope
    values: they go to the payload, never a TypeError or a refused event."""
    legacy = {
        "v": 1,
        "type": "message",
        "ts": "2026-01-01T00:00:00+00:00",
        "event_id": "e1",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736\n",
        "routing": {
            "tenant_id": "t_acme",
            "env": "dev",
            "project_id": "p",
            "app_id": "a",
            "surface_id": "s",
            "actor_type": ["human"],
        },
        "ids": {},
        "data": {},
        "meta": {},
    }
    event = from_legacy(legacy)
    assert event.actor_type is None and event.payload["legacy_actor_type"] == "['human']"
    assert event.trace_id is None
    assert event.payload["legacy_trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736\n"


def test_event_log_entry_maps_and_keeps_origin() -> None:
    legacy = EventLogEntry(
        event_type="asset.created",
        asset_type="doc",
        asset_id="d1",
        tenant_id="t_acme",
        user_id="u1",
        request_id="r1",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        actor_type="agent",
        origin_ref={"kind": "upload"},
        episode_id="ep1",
        metadata={"x": 1},
        created_at=dt.datetime(2026, 1, 2, 3, 4, 5),
    )
    event = from_event_log_entry(legacy, env="dev", project_id="p", app_id="a")
    assert event.ts == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)  # naive read as UTC
    assert event.surface_id == "event" and event.user_id == "u1"
    assert event.payload["legacy_type"] == "asset.created"
    _assert_nothing_dropped(legacy, event)


def test_usage_event_is_cost_and_keeps_exact_decimal() -> None:
    legacy = UsageEvent(
        tenant_id="t_acme",
        env="prod",
        surface="rag",
        tool_type="llm",
        tool_id="gen",
        provider="openai",
        model_or_plan_id="gpt-x",
        tokens_input=1200,
        tokens_output=80,
        cost=Decimal("0.000123456789"),
        metadata={"run": "r"},
    )
    event = from_usage_event(legacy, project_id="p", app_id="a")
    assert event.event_type is EventType.USAGE_RECORDED
    assert event.storage_class is StorageClass.COST and event.event_id == legacy.id
    assert event.payload["cost"] == "0.000123456789"
    _assert_nothing_dropped(legacy, event)


def test_model_call_log_keeps_prompt_for_the_gate() -> None:
    legacy = ModelCallLog(
        tenant_id="t_acme",
        env="dev",
        model_id="text-embed-3",
        purpose="embed_upsert",
        prompt=PromptSnapshot(text="doc body"),
        output_dimensions=1536,
        episode_id="ep",
    )
    event = from_model_call_log(legacy, surface_id="rag", project_id="p", app_id="a")
    assert event.event_type is EventType.MODEL_CALL_ENDED and event.event_id == legacy.call_id
    assert event.payload["prompt"]["text"] == "doc body"
    _assert_nothing_dropped(legacy, event)


def test_adapters_accept_mappings_too() -> None:
    event = from_legacy(full_dataset_event().model_dump(), project_id="p", app_id="a")
    assert event.event_type is EventType.DATASET_EVENT


def test_unrecognised_legacy_shape_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="not a recognised legacy envelope"):
        from_legacy(object())


def test_adapter_rejects_unknown_overrides() -> None:
    with pytest.raises(ContractError, match="payload"):
        from_legacy(full_dataset_event(), project_id="p", app_id="a", payload={})


def test_replace_matches_model_copy_and_leaves_the_original_alone() -> None:
    event = Event(**SCOPE, event_type="message", payload={"a": 1})
    report = logkit.RedactionReport(policy="p", counts={"email": 1})
    fast = event.replace(payload={"a": 2}, redaction=report)
    slow = event.model_copy(update={"payload": {"a": 2}, "redaction": report})
    assert fast == slow and fast.model_dump_json() == slow.model_dump_json()
    assert fast.model_fields_set == slow.model_fields_set
    assert event.payload == {"a": 1} and event.redaction is None


@settings(max_examples=200)
@given(events)
def test_fast_json_body_matches_pydantic_and_round_trips(event: Event) -> None:
    assert json.loads(event.to_json()) == json.loads(event.model_dump_json())
    assert Event.model_validate_json(event.to_json()) == event


def test_fast_json_body_falls_back_for_wide_integers() -> None:
    event = Event(**SCOPE, event_type="message", payload={"big": 2**80})
    assert Event.model_validate_json(event.to_json()).payload["big"] == 2**80
