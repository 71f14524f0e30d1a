"""The live stream over real uvicorn servers: SSE and WebSocket, durable cursors, isolation.

Clients are real: httpx with httpx-sse's parser, the websockets client, a bare socket for a
stalled consumer, another server process, and headless Chromium's own EventSource.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route

import logkit
from logkit.config import StreamConfig
from logkit.runtime import Runtime
from logkit.sinks.protocols import Role, Selector
from logkit.stream import create_app, parse_cursor
from tests.conftest import SCOPE
from tests.replicas import token_authorizer
from tests.servers import free_port, serve
from tests.streams import (
    raw_request,
    raw_socket,
    read_sse,
    read_sse_until_quiet,
    wait_for,
    websocket,
    ws_messages,
)

ACME = {"X-Tenant-Id": "t_acme"}
GLOBEX_SCOPE = {**SCOPE, "tenant_id": "t_globex", "project_id": "p_sales"}
# Heartbeats stay rarer than the clients' "quiet" read timeout, which proves nothing more came.
FAST = StreamConfig(heartbeat_s=5, retry_ms=100, poll_min_s=0.02, poll_max_s=0.1)


@pytest.fixture
def runtime(configured: Any, tmp_path: Path) -> Runtime:
    uri = f"sqlite:///{tmp_path / 'stream.db'}"
    rt: Runtime = configured(env="dev", sinks={"timeline": uri, "audit": uri, "cost": uri})
    return rt


@pytest.fixture
def server(runtime: Runtime) -> Iterator[str]:
    with serve(create_app(config=FAST), lifespan="on") as url:
        yield url


def emit_messages(
    count: int, *, start: int = 0, scope: dict[str, str] = SCOPE, **fields: Any
) -> list[str]:
    """Emit ``count`` message events; returns their event ids in emit order."""
    ids = []
    with logkit.bind(**scope):
        for i in range(start, start + count):
            ids.append(logkit.emit("message", {"i": i}, **fields).event_id)
    return ids


def stored(count: int, **kwargs: Any) -> list[str]:
    ids = emit_messages(count, **kwargs)
    assert logkit.flush(10)
    return ids


# --- replay, ids, framing ------------------------------------------------------------------


def test_replays_stored_events_in_order_with_durable_ids(server: str) -> None:
    ids = stored(30)
    got = read_sse_until_quiet(f"{server}/events", headers=ACME)
    assert got.event_ids == ids
    positions = [parse_cursor(i).position for i in got.ids]  # type: ignore[union-attr]
    assert positions == sorted(positions) and len(set(positions)) == 30
    assert set(got.types) == {"message"}


def test_sse_headers_retry_and_heartbeat(runtime: Runtime) -> None:
    beating = StreamConfig(heartbeat_s=0.2, retry_ms=100)
    with (
        serve(create_app(config=beating), lifespan="on") as server,
        httpx.Client(timeout=5) as client,
        client.stream("GET", f"{server}/events", headers=ACME, params={"from": "now"}) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert "no-store" in resp.headers["cache-control"]
        assert resp.headers["x-accel-buffering"] == "no"
        lines: list[str] = []
        for line in resp.iter_lines():
            lines.append(line)
            if line.startswith(": ping"):
                break
    assert "retry: 100" in lines
    assert any(line.startswith(": ping") for line in lines)  # heartbeat comment (0.2 s here)


def test_disconnect_mid_stream_and_resume_with_last_event_id(server: str) -> None:
    ids = stored(20)
    first = read_sse(f"{server}/events", headers=ACME, count=8)
    assert first.event_ids == ids[:8]
    ids += stored(10, start=20)
    resumed = read_sse_until_quiet(
        f"{server}/events", headers={**ACME, "Last-Event-ID": first.ids[-1]}
    )
    assert resumed.event_ids == ids[8:]  # no gap, no duplicate
    by_query = read_sse_until_quiet(
        f"{server}/events", headers=ACME, params={"cursor": first.ids[-1]}
    )
    assert by_query.event_ids == ids[8:]


def test_live_events_arrive_within_a_second(server: str) -> None:
    stored(5)
    with (
        httpx.Client(timeout=5) as client,
        client.stream("GET", f"{server}/events", headers=ACME, params={"from": "now"}) as resp,
    ):
        lines = resp.iter_lines()
        assert next(lines) == ": logkit stream"  # connected: the subscription is in place
        sent = time.monotonic()
        (event_id,) = emit_messages(1)  # no flush: the dispatcher's own pace
        for line in lines:
            if line.startswith("data: "):
                assert json.loads(line[6:])["event_id"] == event_id
                break
        assert time.monotonic() - sent < 1.0


def test_stream_class_events_go_live_only_without_an_id(server: str) -> None:
    (before,) = stored(1)
    with (
        httpx.Client(timeout=5) as client,
        client.stream("GET", f"{server}/events", headers=ACME, params={"from": "now"}) as resp,
    ):
        lines = resp.iter_lines()
        assert next(lines) == ": logkit stream"
        with logkit.bind(**SCOPE):
            gesture = logkit.emit("message", {"typing": True}, storage_class="stream")
        (kept,) = emit_messages(1)
        frames: list[list[str]] = [[]]
        for line in lines:
            if line:
                frames[-1].append(line)
            elif frames[-1]:
                if len([f for f in frames if any(x.startswith("data: ") for x in f)]) == 2:
                    break
                frames.append([])
    events = [f for f in frames if any(x.startswith("data: ") for x in f)]
    assert [json.loads(f[-1][6:])["event_id"] for f in events] == [gesture.event_id, kept]
    assert not any(x.startswith("id: ") for x in events[0])  # live only: no cursor
    assert any(x.startswith("id: ") for x in events[1])
    # never stored, so never replayed
    replay = read_sse_until_quiet(f"{server}/events", headers=ACME)
    assert replay.event_ids == [before, kept]


def test_reemitted_event_id_is_delivered_once(server: str) -> None:
    with logkit.bind(**SCOPE):
        event = logkit.emit("message", {"once": True})
    logkit.emit_event(event)
    logkit.emit_event(event)
    assert logkit.flush(10)
    got = read_sse_until_quiet(f"{server}/events", headers=ACME)
    assert got.event_ids == [event.event_id]


def test_resume_across_a_server_restart(runtime: Runtime) -> None:
    ids = stored(12)
    port = free_port()
    with serve(create_app(config=FAST), lifespan="on", port=port) as url:
        first = read_sse(f"{url}/events", headers=ACME, count=5)
    ids += stored(3, start=12)  # stored while no server runs
    with serve(create_app(config=FAST), lifespan="on", port=port) as url:
        resumed = read_sse_until_quiet(
            f"{url}/events", headers={**ACME, "Last-Event-ID": first.ids[-1]}
        )
    assert first.event_ids + resumed.event_ids == ids


def test_two_server_processes_share_cursors_and_see_each_others_writes(
    runtime: Runtime, server: str, tmp_path: Path
) -> None:
    ids = stored(10)
    first = read_sse(f"{server}/events", headers=ACME, count=4)
    port = free_port()
    env = {
        **os.environ,
        "LOGKIT_SINKS__TIMELINE": runtime.uris[Role.TIMELINE],
        "LOGKIT_SINKS__AUDIT": runtime.uris[Role.AUDIT],
        "LOGKIT_SINKS__COST": runtime.uris[Role.COST],
        "LOGKIT_DISPATCH__SPOOL_PATH": str(tmp_path / "other-spool.db"),
        "LOGKIT_STREAM__POLL_MAX_S": "0.2",
    }
    other = subprocess.Popen(
        [sys.executable, "-m", "logkit", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _healthy(url) or other.poll() is not None, 20, "the second server")
        assert other.poll() is None, other.stderr.read().decode() if other.stderr else ""
        with (
            httpx.Client(timeout=5) as client,
            client.stream(
                "GET", f"{url}/events", headers={**ACME, "Last-Event-ID": first.ids[-1]}
            ) as resp,
        ):
            seen: list[str] = []
            new_ids: list[str] = []
            for line in resp.iter_lines():
                if not line.startswith("data: "):
                    continue
                seen.append(json.loads(line[6:])["event_id"])
                if len(seen) == 6:  # the replayed rest: now write from this process
                    sent = time.monotonic()
                    new_ids = emit_messages(2, start=10)
                if len(seen) == 8:
                    break
            # another process's write reaches it by polling: documented as within ~1 s
            assert time.monotonic() - sent < 1.5
        assert seen == ids[4:] + new_ids
    finally:
        other.terminate()
        other.wait(10)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# --- cursors that cannot be honoured ---------------------------------------------------------


@pytest.mark.parametrize("cursor", ["garbage", "0123456789ab-3", "-5", "{feed}-999999"], ids=str)
def test_unknown_cursor_gets_a_reset_then_the_stream_from_the_start(
    server: str, cursor: str
) -> None:
    ids = stored(6)
    feed_id = parse_cursor(read_sse(f"{server}/events", headers=ACME, count=1).ids[0]).feed_id  # type: ignore[union-attr]
    got = read_sse_until_quiet(
        f"{server}/events", headers={**ACME, "Last-Event-ID": cursor.format(feed=feed_id)}
    )
    assert got.types[0] == "reset"
    assert got.data[0]["reason"] == "unknown_cursor"
    assert got.event_ids == ids  # never a silent gap: everything still stored follows


def test_expired_cursor_gets_a_reset(server: str, runtime: Runtime) -> None:
    ids = stored(10)
    first = read_sse(f"{server}/events", headers=ACME, count=2)
    doomed = tuple(ids[:5])  # retention removes the oldest, past the client's cursor
    assert runtime.stores[Role.TIMELINE].delete(Selector("t_acme", event_ids=doomed)) == 5
    got = read_sse_until_quiet(f"{server}/events", headers={**ACME, "Last-Event-ID": first.ids[-1]})
    assert got.types[0] == "reset" and got.data[0]["reason"] == "expired_cursor"
    assert got.event_ids == ids[5:]
    # the reset's id is a valid cursor: a client that reconnects with it is not reset again
    again = read_sse_until_quiet(f"{server}/events", headers={**ACME, "Last-Event-ID": got.ids[0]})
    assert again.types[0] == "message" and again.event_ids == ids[5:]


# --- isolation and filters ------------------------------------------------------------------


def test_a_subscriber_never_sees_another_tenants_events(server: str) -> None:
    acme = stored(5, run_id="run_acme")
    globex = stored(5, scope=GLOBEX_SCOPE, run_id="run_globex")
    acme_view = read_sse_until_quiet(f"{server}/events", headers=ACME)
    assert acme_view.event_ids == acme
    # globex asking with acme's cursor and acme's run id still gets only its own
    globex_headers = {"X-Tenant-Id": "t_globex", "Last-Event-ID": acme_view.ids[0]}
    sneaky = read_sse_until_quiet(
        f"{server}/events", headers=globex_headers, params={"run_id": "run_acme"}
    )
    assert sneaky.event_ids == []
    mine = read_sse_until_quiet(f"{server}/events", headers={"X-Tenant-Id": "t_globex"})
    assert mine.event_ids == globex
    assert all(d["tenant_id"] == "t_globex" for d in mine.data)


def test_a_project_scoped_subscriber_sees_only_its_project(server: str) -> None:
    support = stored(3)
    other_project = stored(3, scope={**SCOPE, "project_id": "p_billing"}, start=3)
    got = read_sse_until_quiet(f"{server}/events", headers={**ACME, "X-Project-Id": "p_billing"})
    assert got.event_ids == other_project
    assert (
        read_sse_until_quiet(f"{server}/events", headers=ACME).event_ids == support + other_project
    )


def test_every_filter(server: str) -> None:
    with logkit.bind(**SCOPE, run_id="run_a"), logkit.flow("answer"):
        with logkit.step("retrieve") as retrieve:
            logkit.emit("message", {"where": "retrieve"})
            logkit.emit("message", {"where": "retrieve"}, severity="warning")
        with logkit.step("enrich"):
            logkit.emit("error", {"where": "enrich"}, severity="error")
    stored(2, run_id="run_b")
    events = f"{server}/events"
    by_run = read_sse_until_quiet(events, headers=ACME, params={"run_id": "run_b"})
    assert len(by_run.data) == 2 and {d["run_id"] for d in by_run.data} == {"run_b"}
    by_types = read_sse_until_quiet(
        events, headers=ACME, params={"types": "step_started, step_ended"}
    )
    assert [d["event_type"] for d in by_types.data] == ["step_started", "step_ended"] * 2
    by_severity = read_sse_until_quiet(events, headers=ACME, params={"min_severity": "warning"})
    assert [d["severity"] for d in by_severity.data] == ["warning", "error"]
    by_step = read_sse_until_quiet(events, headers=ACME, params={"step_id": retrieve.step_id})
    assert {d["step_id"] for d in by_step.data} == {retrieve.step_id}
    assert [d["event_type"] for d in by_step.data] == [
        "step_started",
        "message",
        "message",
        "step_ended",
    ]
    combined = read_sse_until_quiet(
        events,
        headers=ACME,
        params={"run_id": "run_a", "types": "error,message", "min_severity": "error"},
    )
    assert [d["payload"]["where"] for d in combined.data] == ["enrich"]


def test_bad_requests_get_clear_errors(server: str) -> None:
    assert httpx.get(f"{server}/events").status_code == 401
    bad = httpx.get(
        f"{server}/events", headers=ACME, params={"types": "nope", "min_severity": "loud"}
    )
    assert bad.status_code == 400
    assert set(bad.json()["problems"]) == {"types", "min_severity"}
    assert (
        httpx.get(f"{server}/events", headers=ACME, params={"from": "yesterday"}).status_code == 400
    )


# --- WebSocket ------------------------------------------------------------------------------


def test_websocket_replays_resumes_and_filters(server: str) -> None:
    ids = stored(10)
    ws_url = server.replace("http://", "ws://") + "/ws"
    with websocket(ws_url, ACME) as conn:
        first = ws_messages(conn, 4)
    assert [m["event"]["event_id"] for m in first] == ids[:4]
    assert all(m["type"] == "event" for m in first)
    ids += stored(2, start=10)
    with websocket(f"{ws_url}?cursor={first[-1]['cursor']}", ACME) as conn:
        rest = ws_messages(conn, 8)
        assert [m["event"]["event_id"] for m in rest] == ids[4:]
        # a resume message restarts the stream from that cursor, exactly once
        conn.send(json.dumps({"type": "resume", "cursor": rest[5]["cursor"]}))
        again = ws_messages(conn, 2)
        assert [m["event"]["event_id"] for m in again] == ids[10:]
        conn.send("not json")
        assert ws_messages(conn, 1)[0]["type"] == "error"
        (live_id,) = emit_messages(1, start=12)  # live, no flush
        assert ws_messages(conn, 1)[0]["event"]["event_id"] == live_id
    with websocket(f"{ws_url}?cursor=garbage&types=message", ACME) as conn:
        reset, *events = ws_messages(conn, 14)
    assert reset["type"] == "reset" and reset["reason"] == "unknown_cursor"
    assert [m["event"]["event_id"] for m in events] == [*ids, live_id]


def test_websocket_refuses_without_a_tenant(server: str) -> None:
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus), websocket(server.replace("http://", "ws://") + "/ws", {}):
        pass


# --- a consumer that stops reading -----------------------------------------------------------


def test_a_stalled_consumer_is_disconnected_and_resumes_without_a_gap(runtime: Runtime) -> None:
    config = StreamConfig(buffer_events=50, send_timeout_s=0.5, poll_min_s=0.02, page_size=200)
    app = create_app(config=config)
    with serve(app, lifespan="on") as url:
        sock = raw_request(url, "/events?from=now", ACME)
        hub_ready = lambda: app.state.stream.hub is not None and app.state.stream.hub.subscriptions  # noqa: E731
        wait_for(hub_ready, what="the subscription")
        ids = emit_messages(12_000)  # ~10 MB: far more than the socket buffers hold
        assert logkit.flush(30)
        # the server gives up on the stalled socket; memory never held more than the buffer
        wait_for(lambda: not app.state.stream.hub.subscriptions, 20, "the disconnect")
        received = b""
        sock.settimeout(5)
        while chunk := sock.recv(1 << 16):
            received += chunk
        sock.close()
        last_id = [
            line
            for line in received.decode(errors="replace").splitlines()
            if line.startswith("id: ")
        ][-1][4:]
        delivered = sum(1 for line in received.splitlines() if line.startswith(b"id: "))
        assert 0 < delivered < len(ids)
        rest = read_sse_until_quiet(f"{url}/events", headers={**ACME, "Last-Event-ID": last_id})
        assert rest.event_ids == ids[delivered:]


def test_a_stalled_websocket_reader_is_closed_and_resumes_without_a_gap(runtime: Runtime) -> None:
    from websockets.client import ClientProtocol
    from websockets.frames import Opcode
    from websockets.uri import parse_uri

    config = StreamConfig(buffer_events=50, send_timeout_s=0.5, poll_min_s=0.02, page_size=200)
    app = create_app(config=config)
    with serve(app, lifespan="on") as url:
        ws_url = url.replace("http://", "ws://") + "/ws"
        # websockets' own protocol (sans-io) over a socket this test then stops reading
        protocol = ClientProtocol(parse_uri(f"{ws_url}?from=now"))
        request = protocol.connect()
        request.headers["X-Tenant-Id"] = "t_acme"
        protocol.send_request(request)
        sock = raw_socket(url)
        sock.sendall(b"".join(protocol.data_to_send()))
        hub = lambda: app.state.stream.hub  # noqa: E731
        wait_for(lambda: hub() is not None and hub().subscriptions, what="the subscription")
        ids = emit_messages(12_000)  # ~10 MB: far more than the socket buffers hold
        assert logkit.flush(30)
        wait_for(lambda: not hub().subscriptions, 20, "the disconnect")
        sock.settimeout(5)
        while protocol.close_rcvd is None and (chunk := sock.recv(1 << 16)):
            protocol.receive_data(chunk)  # read on now: the server's close frame follows the data
        sock.close()
        frames = [
            e for e in protocol.events_received() if getattr(e, "opcode", None) is Opcode.TEXT
        ]
        received = [json.loads(frame.data) for frame in frames]
        assert protocol.close_rcvd is not None and protocol.close_rcvd.code == 1013
        assert 0 < len(received) < len(ids)
        assert [m["event"]["event_id"] for m in received] == ids[: len(received)]
        with websocket(f"{ws_url}?cursor={received[-1]['cursor']}", ACME) as conn:
            rest = ws_messages(conn, len(ids) - len(received), timeout=30)
        assert [m["event"]["event_id"] for m in rest] == ids[len(received) :]


# --- a real browser ---------------------------------------------------------------------------

PAGE = """<!doctype html><meta charset="utf-8"><title>logkit stream</title>
<script>
window.received = []; window.errors = 0; window.lastIds = [];
const source = new EventSource("/stream/events?token=acme-reader&run_id=run_browser");
source.onmessage = (e) => {
  window.received.push(JSON.parse(e.data).event_id);
  window.lastIds.push(e.lastEventId);
};
source.onerror = () => { window.errors += 1; };
</script>"""


class CutAfterFirstChunk:
    """Drops the first stream connection after its first batch of events, like a flaky proxy."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.cut = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.cut or not scope["path"].endswith("/events"):
            await self.app(scope, receive, send)
            return

        async def send_then_cut(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and b"data: " in message.get("body", b""):
                self.cut = True
                raise ConnectionResetError("test: connection dropped")

        await self.app(scope, receive, send_then_cut)


def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    assert os.path.exists(path), (
        "chromium is missing: `make test` installs it (scripts/install-chromium.sh)"
    )
    return path


def test_chromium_eventsource_reconnects_and_resumes_without_a_gap(runtime: Runtime) -> None:
    from playwright.sync_api import sync_playwright

    first = stored(5, run_id="run_browser")
    stream = CutAfterFirstChunk(create_app(authorizer=token_authorizer, config=FAST))
    site = Starlette(
        routes=[Route("/", lambda request: HTMLResponse(PAGE)), Mount("/stream", app=stream)]
    )
    with serve(site) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium(),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function(
                "window.received.length >= 5 && window.errors >= 1", timeout=10_000
            )
            later = stored(4, start=5, run_id="run_browser")  # stored while it reconnects
            page.wait_for_function("window.received.length >= 9", timeout=10_000)
            (live,) = emit_messages(1, start=9, run_id="run_browser")
            page.wait_for_function("window.received.length >= 10", timeout=10_000)
            received = page.evaluate("window.received")
            last_ids = page.evaluate("window.lastIds")
        finally:
            browser.close()
    assert stream.cut
    assert received == first + later + [live]  # reconnected with Last-Event-ID: no gap, no dup
    assert all(parse_cursor(i) is not None for i in last_ids)
