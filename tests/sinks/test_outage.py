"""A real backend (the BigQuery emulator behind a TCP proxy) goes away mid-stream and comes back:
nothing is lost, nothing is stored twice, and emit keeps returning at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

import logkit
from logkit.sinks.protocols import Query, Role
from tests import services
from tests.conftest import SCOPE
from tests.proxy import TcpProxy


class Proxies:
    """The emulator's REST port (jobs: reads, deletes) and gRPC port (Storage Write API)."""

    def __init__(self, *proxies: TcpProxy) -> None:
        self.proxies = proxies

    def cut(self) -> None:
        for proxy in self.proxies:
            proxy.cut()

    def restore(self) -> None:
        for proxy in self.proxies:
            proxy.restore()


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxies]:
    rest = urlparse(services.require("BIGQUERY_EMULATOR_HOST"))
    grpc_host, _, grpc_port = services.require("BIGQUERY_STORAGE_EMULATOR_HOST").rpartition(":")
    proxies = Proxies(
        TcpProxy(rest.hostname or "127.0.0.1", rest.port or 80).start(),
        TcpProxy(grpc_host, int(grpc_port)).start(),
    )
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", f"http://{proxies.proxies[0].address}")
    monkeypatch.setenv("BIGQUERY_STORAGE_EMULATOR_HOST", proxies.proxies[1].address)
    yield proxies
    proxies.cut()


def all_events(runtime: Any, role: Role) -> list[logkit.Event]:
    events, cursor = [], None
    while True:
        page = runtime.stores[role].query(Query(tenant_id="t_acme", limit=500, cursor=cursor))
        events.extend(page.events)
        if page.next_cursor is None:
            return events
        cursor = page.next_cursor


def test_bigquery_outage_mid_stream_loses_nothing(
    proxy: Proxies, configured: Any, tmp_path: Path
) -> None:
    dataset = f"outage_{uuid.uuid4().hex[:12]}"
    runtime = configured(
        env="prod",
        sinks={
            "timeline": f"bigquery://logkit-test/{dataset}?timeout=2",
            "audit": f"sqlite:///{tmp_path / 'audit.db'}",
        },
        dispatch={
            "spool_path": tmp_path / "spool.db",
            "batch_size": 40,
            "retry_attempts": 2,
            "retry_initial_s": 0.01,
            "retry_max_s": 0.02,
            "replay_interval_s": 0.05,
        },
    )
    backend = runtime.backends[runtime.uris[Role.TIMELINE]]
    assert backend.check_schema(create=True) == []
    sent: list[logkit.Event] = []
    with logkit.bind(**SCOPE, run_id="run_outage"):
        sent += [logkit.emit("message", {"n": i}) for i in range(60)]
        assert logkit.flush(30)
        proxy.cut()
        sent += [logkit.emit("message", {"n": i}) for i in range(60, 150)]
        assert logkit.flush(30)
        dispatcher = runtime.dispatchers[Role.TIMELINE]
        assert dispatcher.spool.count(dispatcher.sink) == 90  # held durably, not in memory
        proxy.restore()
        sent += [logkit.emit("message", {"n": i}) for i in range(150, 170)]
        assert logkit.flush(30)
    stored = all_events(runtime, Role.TIMELINE)
    assert sorted(e.payload["n"] for e in stored) == list(range(170))  # type: ignore[type-var]
    assert {e.event_id for e in stored} == {e.event_id for e in sent}
    assert dispatcher.pending() == 0
