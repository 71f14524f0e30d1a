"""Trusted scope (issue 15): the service decides env/project/app, a verified principal decides the
tenant, and logging never fails a request.

A FastAPI service wired the way a new user would: ``app.add_middleware(CorrelationMiddleware,
...)``, a handler that opens a flow and emits, and a token resolver shared with the stream.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import HTTPConnection
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

import logkit
from logkit import ConfigError, ContractError, CorrelationMiddleware, Principal, Unauthorized
from logkit.envelope import PROBE_TENANT, UNSCOPED_TENANT, EventType
from logkit.runtime import Runtime
from logkit.sinks.protocols import Role
from logkit.testing import capture_events
from tests.servers import serve

SERVICE = {"project_id": "p_support", "app_id": "support-bot", "surface_id": "chat"}
TOKENS = {
    "acme-token": Principal("t_acme", user_id="u_1"),
    "globex-token": Principal("t_globex", project_id="p_sales"),
    "probe-token": Principal(PROBE_TENANT),
}


def token_resolver(connection: HTTPConnection) -> Principal | None:
    """A verified credential decides the tenant (the shape the stream's authorizer has too)."""
    header = connection.headers.get("authorization", "")
    if not header:
        return None
    principal = TOKENS.get(header.removeprefix("Bearer "))
    if principal is None:
        raise Unauthorized("unknown token")
    return principal


async def async_token_resolver(connection: HTTPConnection) -> Principal | None:
    return token_resolver(connection)


def broken_resolver(connection: HTTPConnection) -> Principal:
    raise RuntimeError("the identity provider is down")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def service_app(**middleware: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(CorrelationMiddleware, **middleware)

    @app.get("/work")
    async def work() -> dict[str, Any]:
        with logkit.flow("handle"):
            event = logkit.emit("message", {"hello": "world"})
        return event.model_dump(mode="json")

    @app.post("/audit")
    async def audited() -> dict[str, Any]:
        return logkit.audit("login").model_dump(mode="json")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(logkit.emit("message").model_dump(mode="json"))
        await websocket.close()

    return app


@pytest.fixture
def staging(configured: Any, tmp_path: Path) -> Runtime:
    """A staging service on SQLite with its [service] scope; the contract policy is its
    default (record)."""
    uri = f"sqlite:///{tmp_path / 'svc.db'}"
    runtime: Runtime = configured(
        env="staging", sinks={"timeline": uri, "audit": uri, "cost": uri}, service=SERVICE
    )
    return runtime


def counted(name: str) -> int:
    return logkit.counters().get(name, 0)


# --- the reproductions --------------------------------------------------------------


def test_a_request_without_x_env_is_200_and_env_is_the_services(staging: Runtime) -> None:
    """Was: HTTP 500 (ContractError: missing env) raised from flow() inside the handler."""
    with TestClient(service_app(resolver=token_resolver)) as client:
        response = client.get("/work", headers=bearer("acme-token"))
    assert response.status_code == 200
    event = response.json()
    assert event["env"] == "staging" and event["tenant_id"] == "t_acme"
    assert (event["project_id"], event["app_id"], event["surface_id"]) == (
        "p_support",
        "support-bot",
        "chat",
    )
    assert event["user_id"] == "u_1"


@pytest.mark.parametrize("trust", [{"trust_headers": True}, {"resolver": token_resolver}])
def test_x_env_cannot_change_the_services_env(staging: Runtime, trust: dict[str, Any]) -> None:
    """Was: ``X-Env: prod`` accepted by a staging service. Now ignored and counted."""
    before = counted("scope_header.ignored.x-env")
    headers = {**bearer("acme-token"), "X-Tenant-Id": "t_acme", "X-Env": "prod"}
    with TestClient(service_app(**trust)) as client, capture_events() as events:
        response = client.get("/work", headers=headers)
    assert response.status_code == 200
    assert {e.env.value for e in events} == {"staging"}
    assert counted("scope_header.ignored.x-env") == before + 1


def test_service_fields_are_never_taken_from_headers(staging: Runtime) -> None:
    headers = {
        "X-Tenant-Id": "t_acme",
        "X-Project-Id": "p_other",
        "X-App-Id": "evil-app",
        "X-Surface-Id": "chat",  # agrees with the service: nothing to count
    }
    before = logkit.counters()
    with TestClient(service_app(trust_headers=True)) as client:
        event = client.get("/work", headers=headers).json()
    assert (event["project_id"], event["app_id"], event["surface_id"]) == (
        "p_support",
        "support-bot",
        "chat",
    )
    after = logkit.counters()
    for header, more in (("x-project-id", 1), ("x-app-id", 1), ("x-surface-id", 0)):
        name = f"scope_header.ignored.{header}"
        assert after.get(name, 0) == before.get(name, 0) + more, header


def test_a_spoofed_tenant_header_never_reaches_another_tenants_audit_chain(
    staging: Runtime,
) -> None:
    """Was: ``X-Tenant-Id: t_victim`` from any client appended t_victim/_tenant seq 0."""
    before = counted("scope_header.ignored.x-tenant-id")
    headers = {**bearer("acme-token"), "X-Tenant-Id": "t_victim"}
    with TestClient(service_app(resolver=token_resolver)) as client:
        response = client.post("/audit", headers=headers)
    assert response.status_code == 200 and response.json()["tenant_id"] == "t_acme"
    store: Any = staging.stores[Role.AUDIT]
    assert store.chain_ids("t_victim") == []
    assert store.chain_ids("t_acme") == ["t_acme/_tenant"]
    assert counted("scope_header.ignored.x-tenant-id") == before + 1


def test_outside_dev_header_trust_must_be_said_or_start_up_fails(staging: Runtime) -> None:
    """Was: every client's X-Tenant-Id trusted in prod. Now refused at start-up, like serve."""
    with pytest.raises(ConfigError, match="resolver="), TestClient(service_app()):
        pass
    with TestClient(service_app(trust_headers=False)) as client, capture_events() as events:
        response = client.get("/work", headers={"X-Tenant-Id": "t_victim"})
    assert response.status_code == 200  # recorded, not raised: logging never fails it
    assert {e.tenant_id for e in events} == {UNSCOPED_TENANT}


def test_resolver_and_trusted_headers_are_one_or_the_other() -> None:
    with pytest.raises(ConfigError, match="not both"):
        CorrelationMiddleware(FastAPI(), resolver=token_resolver, trust_headers=True)


# --- duplicate scope headers: a 400 in the middleware and in the stream ---------------------


def test_duplicate_tenant_headers_are_a_400_in_the_middleware_over_real_http(
    staging: Runtime,
) -> None:
    """Was: the stream's authorizer took the first X-Tenant-Id and the middleware the last."""
    with serve(service_app(trust_headers=True)) as url, capture_events() as events:
        response = httpx.get(
            f"{url}/work", headers=[("X-Tenant-Id", "t_acme"), ("X-Tenant-Id", "t_victim")]
        )
        listed = httpx.get(f"{url}/work", headers={"X-Tenant-Id": "t_acme, t_victim"})
    assert response.status_code == 400 and listed.status_code == 400
    assert response.json()["problems"] == {"x-tenant-id": "sent more than once"}
    assert events == []  # the app never ran


def test_duplicate_scope_headers_close_a_websocket_before_the_app_runs(staging: Runtime) -> None:
    ran: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        ran.append(scope["type"])

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"x-user-id", b"u_1"), (b"x-user-id", b"u_2"), (b"x-tenant-id", b"t_acme")]
    scope = {"type": "websocket", "path": "/ws", "headers": headers}
    asyncio.run(CorrelationMiddleware(app, trust_headers=True)(scope, receive, send))
    assert ran == [] and [(m["type"], m["code"]) for m in sent] == [("websocket.close", 1008)]


def test_duplicate_tenant_headers_are_a_400_in_the_stream_too(staging: Runtime) -> None:
    from websockets.exceptions import InvalidStatus

    from logkit.sinks.memory import MemoryStore
    from logkit.stream import create_app
    from tests.streams import websocket

    twice = [("X-Tenant-Id", "t_acme"), ("X-Tenant-Id", "t_victim")]
    with serve(create_app(feed=MemoryStore())) as url:
        response = httpx.get(f"{url}/events", headers=twice)
        listed = httpx.get(f"{url}/events", headers={"X-Tenant-Id": "t_acme,t_victim"})
        with (
            pytest.raises(InvalidStatus),
            websocket(url.replace("http://", "ws://") + "/ws", twice),  # type: ignore[arg-type]
        ):
            pass
    assert response.status_code == 400 and listed.status_code == 400
    assert response.json()["problems"] == {"x-tenant-id": "sent more than once"}


def test_headers_nobody_reads_may_repeat(staging: Runtime) -> None:
    """With a resolver the scope headers are not read: repeating one changes nothing."""
    headers = [("Authorization", "Bearer acme-token"), ("X-Tenant-Id", "a"), ("X-Tenant-Id", "b")]
    with TestClient(service_app(resolver=token_resolver)) as client:
        response = client.get("/work", headers=headers)
    assert response.status_code == 200 and response.json()["tenant_id"] == "t_acme"


# --- the resolver -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "resolver",
    [
        token_resolver,
        async_token_resolver,
        "tests.logs.test_trusted_scope:async_token_resolver",
    ],
    ids=["sync", "async", "loaded by name"],
)
def test_the_resolver_decides_tenant_user_and_open_project(
    configured: Any, tmp_path: Path, resolver: Any
) -> None:
    uri = f"sqlite:///{tmp_path / 'svc.db'}"
    configured(
        env="prod",
        sinks={"timeline": uri, "audit": uri, "cost": uri},
        service={"app_id": "gateway", "surface_id": "api"},  # a service of several projects
    )
    with TestClient(service_app(resolver=resolver)) as client:
        event = client.get("/work", headers=bearer("globex-token")).json()
    assert (event["tenant_id"], event["project_id"], event["app_id"]) == (
        "t_globex",
        "p_sales",
        "gateway",
    )


def test_a_refused_or_reserved_principal_binds_no_tenant(staging: Runtime) -> None:
    before = counted("principal.refused")
    with TestClient(service_app(resolver=token_resolver)) as client, capture_events() as events:
        assert client.get("/work", headers=bearer("stolen")).status_code == 200
        assert client.get("/work", headers=bearer("probe-token")).status_code == 200
    assert {e.tenant_id for e in events} == {UNSCOPED_TENANT}
    assert counted("principal.refused") == before + 2


def test_a_broken_resolver_never_fails_a_request_in_production(staging: Runtime) -> None:
    before = counted("principal.error")
    with TestClient(service_app(resolver=broken_resolver)) as client:
        assert client.get("/work").status_code == 200
    assert counted("principal.error") == before + 1


def test_a_broken_resolver_shows_in_dev(configured: Any, tmp_path: Path) -> None:
    configured(env="dev", sinks={"timeline": "memory://", "audit": "memory://"})
    client = TestClient(service_app(resolver=broken_resolver))
    with pytest.raises(RuntimeError, match="identity provider"):
        client.get("/work")


def test_a_reserved_tenant_header_is_never_bound(configured: Any) -> None:
    configured(env="dev", sinks={"timeline": "memory://", "audit": "memory://"})
    with TestClient(service_app()) as client, pytest.raises(ContractError, match="tenant_id"):
        client.get("/work", headers={"X-Tenant-Id": PROBE_TENANT, "X-Project-Id": "p"})


def test_the_same_resolver_authorizes_the_stream(staging: Runtime) -> None:
    from logkit.sinks.memory import MemoryStore
    from logkit.stream import create_app

    stream = create_app(feed=MemoryStore(), authorizer=token_resolver)
    with TestClient(stream) as client:
        assert client.get("/events", headers=bearer("stolen")).status_code == 401
        assert client.get("/events").status_code == 401  # nobody: not authorized


# --- the done-when FastAPI test: record vs raise ----------------------------------------------


def test_no_scope_headers_record_mode_is_200_with_a_contract_violation(staging: Runtime) -> None:
    before = counted("contract_violation.recorded")
    with TestClient(service_app(resolver=token_resolver)) as client, capture_events() as events:
        response = client.get("/work")
    assert response.status_code == 200
    assert [e.event_type for e in events] == [EventType.CONTRACT_VIOLATION] * 3
    assert [e.payload["event_type"] for e in events] == ["flow_started", "message", "flow_ended"]
    violation = events[1]
    assert violation.payload["missing"] == ["tenant_id"]
    assert violation.tenant_id == UNSCOPED_TENANT and violation.env.value == "staging"
    assert (violation.project_id, violation.app_id) == ("p_support", "support-bot")
    assert violation.payload["payload"] == {"hello": "world"}  # the event is kept
    assert violation.request_id == response.json()["request_id"]
    assert counted("contract_violation.recorded") == before + 3


def test_no_scope_headers_raise_mode_is_a_contract_error(configured: Any, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'svc.db'}"
    configured(
        env="staging",
        sinks={"timeline": uri, "audit": uri, "cost": uri},
        service=SERVICE,
        contract={"on_violation": "raise"},
    )
    with TestClient(service_app(resolver=token_resolver)) as client:
        with pytest.raises(ContractError, match="tenant_id"):
            client.get("/work")
        assert client.get("/work", headers=bearer("acme-token")).status_code == 200
    assert logkit.current_scope() == {}


# --- where the service scope comes from -------------------------------------------------------


def test_service_scope_from_toml_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configured: Any
) -> None:
    from logkit.config import load_settings
    from logkit.context import service_scope

    uri = f"sqlite:///{tmp_path / 'svc.db'}"
    path = tmp_path / "logkit.toml"
    path.write_text(
        f'env = "prod"\n[sinks]\ntimeline = "{uri}"\naudit = "{uri}"\n'
        '[service]\nproject_id = "p_support"\napp_id = "support-bot"\n'
    )
    monkeypatch.setenv("LOGKIT_SERVICE__SURFACE_ID", "voice")
    monkeypatch.setenv("LOGKIT_SERVICE__APP_ID", "support-bot-2")
    assert load_settings(path).service_scope() == {
        "env": logkit.Env.PROD,
        "project_id": "p_support",
        "app_id": "support-bot-2",  # LOGKIT_* wins over the file
        "surface_id": "voice",
    }
    configured(path)
    assert dict(service_scope()) == load_settings(path).service_scope()
    event = logkit.emit("message", tenant_id="t_acme")
    assert (event.env, event.project_id, event.app_id, event.surface_id) == (
        logkit.Env.PROD,
        "p_support",
        "support-bot-2",
        "voice",
    )
    with logkit.bind(app_id="batch-job"):  # code may narrow the base layer; requests may not
        assert logkit.emit("message", tenant_id="t_acme").app_id == "batch-job"
    from tests.logs.test_event_contract import full_dataset_event

    legacy = logkit.from_legacy(full_dataset_event(env="stage"))  # the service fills the rest
    assert (legacy.env, legacy.project_id, legacy.app_id) == (
        logkit.Env.STAGING,  # what the legacy record says wins over the base layer
        "p_support",
        "support-bot-2",
    )
    monkeypatch.setenv("LOGKIT_SERVICE__ENV", "dev")
    with pytest.raises(ConfigError, match="service"):
        load_settings(path)  # env is the top-level setting, one place only
    for name in ("ENV", "APP_ID", "SURFACE_ID"):  # before `configured` restores the runtime
        monkeypatch.delenv(f"LOGKIT_SERVICE__{name}")
