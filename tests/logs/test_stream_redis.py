"""The live stream in its production shape: a Redis feed, `logkit serve` replicas, writers in
other processes (issue 17).

Everything is real: redis-server (the one `make services` started, or a private one a test
stops and restarts), `logkit serve` subprocesses, writer subprocesses, httpx-sse and websockets
clients, the Firestore emulator as a timeline store, and headless Chromium's EventSource.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from logkit.sinks.protocols import Query, Role
from logkit.sinks.registry import open_backend
from logkit.stream import parse_cursor
from tests import services
from tests.replicas import RedisServer, Replica, run_writer, write_config
from tests.streams import Received, read_sse, read_sse_until_quiet, wait_for, websocket, ws_messages

ACME = {"X-Tenant-Id": "t_acme"}
GLOBEX = {"X-Tenant-Id": "t_globex"}


def feed_uri(url: str) -> str:
    return f"{url}?prefix=lkt{uuid.uuid4().hex[:10]}"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """SQLite timeline + audit, the shared redis-server as the feed (a prefix of its own)."""
    redis_url = services.require("REDIS_URL")
    timeline = f"sqlite:///{tmp_path / 'timeline.db'}"
    return write_config(tmp_path, timeline=timeline, feed=feed_uri(redis_url))


@pytest.fixture
def replicas(config: Path, tmp_path: Path) -> Iterator[tuple[Replica, Replica]]:
    a, b = Replica(config, tmp_path), Replica(config, tmp_path)
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


class SseClient(threading.Thread):
    """Reads one SSE stream in the background until ``total`` events (resets included)."""

    def __init__(self, url: str, headers: dict[str, str], total: int) -> None:
        super().__init__(daemon=True)
        self.url, self.headers, self.total = url, headers, total
        self.got = Received([], [], [])
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(60, read=60)) as client,
                connect_sse(client, "GET", self.url, headers=self.headers) as source,
            ):
                for sse in source.iter_sse():
                    self.got.add(sse)
                    if len(self.got.data) >= self.total:
                        return
        except BaseException as exc:
            self.error = exc


class WsClient(threading.Thread):
    def __init__(self, url: str, headers: dict[str, str], total: int) -> None:
        super().__init__(daemon=True)
        self.url, self.headers, self.total = url, headers, total
        self.messages: list[dict[str, Any]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with websocket(self.url, self.headers) as conn:
                while len(self.messages) < self.total:
                    self.messages.extend(ws_messages(conn, 1, timeout=60))
        except BaseException as exc:
            self.error = exc


def finished(*clients: SseClient | WsClient) -> None:
    for client in clients:
        client.join(60)
        assert not client.is_alive(), "a client did not get everything within 60 s"
        assert client.error is None, repr(client.error)


def stored_ids(got: Received) -> list[str]:
    return [d["event_id"] for d in got.data if d.get("storage_class") != "stream"]


# --- many replicas, many writers ------------------------------------------------------------


def test_every_event_once_and_in_order_on_both_replicas_over_sse_and_websocket(
    replicas: tuple[Replica, Replica], config: Path, tmp_path: Path
) -> None:
    a, b = replicas
    first = run_writer(config, tmp_path, count=30)["ids"]
    total = 30 + 30 + 2  # two writes of 30 stored events, two gestures (stream class)
    clients = [
        SseClient(f"{a.url}/events", ACME, total),
        SseClient(f"{b.url}/events", ACME, total),
        WsClient(a.ws_url, ACME, total),
        WsClient(b.ws_url, ACME, total),
    ]
    for client in clients:
        client.start()
    # all four caught up from the feed: they are live now
    wait_for(lambda: all(_count(c) >= 30 for c in clients), 30, "the catch-up on every client")
    second = run_writer(config, tmp_path, count=30, start=30, ephemeral=2)
    finished(*clients)
    sse_a, sse_b, ws_a, ws_b = clients
    assert isinstance(sse_a, SseClient) and isinstance(sse_b, SseClient)
    assert isinstance(ws_a, WsClient) and isinstance(ws_b, WsClient)
    expected = first + second["ids"]
    for sse in (sse_a, sse_b):
        assert stored_ids(sse.got) == expected  # every stored event once, in order
        gestures = [d["event_id"] for d in sse.got.data if d["storage_class"] == "stream"]
        assert gestures == second["ephemeral"]  # the other process's gestures, on every replica
    for ws in (ws_a, ws_b):
        events = [m for m in ws.messages if m["type"] == "event"]
        kept = [m for m in events if m["event"]["storage_class"] != "stream"]
        assert [m["event"]["event_id"] for m in kept] == expected
        assert [m["cursor"] for m in events if m["event"]["storage_class"] == "stream"] == [
            None,
            None,
        ]
    # one feed: the same cursor for the same event on every replica and transport
    cursors_a = [
        i
        for i, d in zip(sse_a.got.ids, sse_a.got.data, strict=True)
        if d["storage_class"] != "stream"
    ]
    cursors_ws = [m["cursor"] for m in ws_b.messages if m["event"]["storage_class"] != "stream"]
    assert cursors_a == cursors_ws
    assert all(parse_cursor(c) is not None for c in cursors_a)


def _count(client: SseClient | WsClient) -> int:
    return len(client.got.data) if isinstance(client, SseClient) else len(client.messages)


def test_resume_on_the_other_replica_with_last_event_id(
    replicas: tuple[Replica, Replica], config: Path, tmp_path: Path
) -> None:
    a, b = replicas
    ids = run_writer(config, tmp_path, count=20)["ids"]
    first = read_sse(f"{a.url}/events", headers=ACME, count=8)
    rest = read_sse_until_quiet(f"{b.url}/events", headers={**ACME, "Last-Event-ID": first.ids[-1]})
    assert first.event_ids + rest.event_ids == ids
    with websocket(f"{b.ws_url}?cursor={first.ids[3]}", ACME) as conn:
        resumed = ws_messages(conn, 16)
    assert [m["event"]["event_id"] for m in resumed] == ids[4:]


def test_resume_after_a_replica_restart(
    replicas: tuple[Replica, Replica], config: Path, tmp_path: Path
) -> None:
    a, _ = replicas
    ids = run_writer(config, tmp_path, count=6)["ids"]
    first = read_sse(f"{a.url}/events", headers=ACME, count=4)
    a.stop()
    ids += run_writer(config, tmp_path, count=5, start=6)["ids"]  # while the replica is down
    a.start()  # the same port, a new process
    rest = read_sse_until_quiet(f"{a.url}/events", headers={**ACME, "Last-Event-ID": first.ids[-1]})
    assert first.event_ids + rest.event_ids == ids


# --- Redis going away -------------------------------------------------------------------------


def test_a_redis_restart_keeps_cursors_and_an_outage_is_a_reset_never_a_slow_emit(
    tmp_path: Path,
) -> None:
    redis = RedisServer(tmp_path / "redis", aof=True).start()
    timeline = f"sqlite:///{tmp_path / 'timeline.db'}"
    config = write_config(tmp_path, timeline=timeline, feed=redis.url, feed_timeout_s=0.5)
    replica = Replica(config, tmp_path)
    try:
        replica.start()
        ids = run_writer(config, tmp_path, count=10)["ids"]
        live = SseClient(f"{replica.url}/events", ACME, 10 + 10 + 5)
        live.start()
        wait_for(lambda: len(live.got.data) >= 10, 20, "the live client's first events")
        before = live.got.ids[9]
        redis.stop()
        down = run_writer(config, tmp_path, count=10, start=10)  # Redis is down
        assert down["flushed"] and down["dropped"] == 10 and down["fed"] == 0
        assert down["slowest_emit_s"] < 0.25  # bounded: emit never waits on Redis
        redis.start()  # same port and directory: the AOF brings the feed back
        # the replica notices, marks the gap, and its subscriber gets the missed events from
        # the store
        wait_for(lambda: len(live.got.data) >= 20, 30, "the missed events from the store")
        after = run_writer(config, tmp_path, count=5, start=20)
        assert after["fed"] == 5
        finished(live)
        # connected through it: what Redis missed came from the store, then the rest
        assert "reset" not in live.got.types
        assert stored_ids(live.got) == ids + down["ids"] + after["ids"]
        # the timeline store got everything, the outage included
        backend = open_backend(timeline)
        page = backend.store(Role.TIMELINE).query(Query(tenant_id="t_acme", limit=100))
        backend.close()
        assert [e.event_id for e in page.events] == ids + down["ids"] + after["ids"]
        # a cursor from before the restart still resumes (same feed, kept by the AOF)
        resumed = read_sse_until_quiet(
            f"{replica.url}/events", headers={**ACME, "Last-Event-ID": before}
        )
        assert stored_ids(resumed) == down["ids"] + after["ids"]  # the hub marked the outage
    finally:
        replica.stop()
        redis.stop()


def test_a_redis_without_persistence_loses_the_feed_and_cursors_resume_from_the_store(
    tmp_path: Path,
) -> None:
    redis = RedisServer(tmp_path / "redis", aof=False).start()
    timeline = f"sqlite:///{tmp_path / 'timeline.db'}"
    config = write_config(tmp_path, timeline=timeline, feed=redis.url, feed_timeout_s=0.5)
    replica = Replica(config, tmp_path)
    try:
        replica.start()
        ids = run_writer(config, tmp_path, count=8)["ids"]
        first = read_sse(f"{replica.url}/events", headers=ACME, count=3)
        redis.stop()
        redis.start()  # empty: a new feed identity
        later = run_writer(config, tmp_path, count=4, start=8)["ids"]
        rest = read_sse_until_quiet(
            f"{replica.url}/events", headers={**ACME, "Last-Event-ID": first.ids[-1]}
        )
        assert first.event_ids + stored_ids(rest) == ids + later
    finally:
        replica.stop()
        redis.stop()


# --- beyond the feed's window -----------------------------------------------------------------


@pytest.mark.parametrize("timeline_kind", ["sqlite", "firestore"])
def test_a_cursor_older_than_the_feed_resumes_from_the_timeline_store(
    timeline_kind: str, tmp_path: Path
) -> None:
    redis_url = services.require("REDIS_URL")
    if timeline_kind == "firestore":
        services.require("FIRESTORE_EMULATOR_HOST")
        timeline = f"firestore://logkit-test?root=t{uuid.uuid4().hex[:12]}"
    else:
        timeline = f"sqlite:///{tmp_path / 'timeline.db'}"
    config = write_config(tmp_path, timeline=timeline, feed=feed_uri(redis_url), feed_maxlen=20)
    a, b = Replica(config, tmp_path), Replica(config, tmp_path)
    try:
        a.start()
        b.start()
        ids = run_writer(config, tmp_path, count=10)["ids"]
        first = read_sse(f"{a.url}/events", headers=ACME, count=4)
        ids += run_writer(config, tmp_path, count=400, start=10)["ids"]  # trims the feed
        window = read_sse_until_quiet(f"{b.url}/events", headers=ACME)
        assert 20 <= len(window.event_ids) < 200  # the feed keeps about its maxlen
        assert window.event_ids == ids[-len(window.event_ids) :]  # from=start: the window
        # the old cursor, on the other replica: the store fills in what the feed lost
        # (an emulator's query can take longer than the default quiet moment)
        rest = read_sse_until_quiet(
            f"{b.url}/events", headers={**ACME, "Last-Event-ID": first.ids[-1]}, quiet=3
        )
        assert "reset" not in rest.types
        assert first.event_ids + rest.event_ids == ids
        # a cursor given out during the store replay resumes the replay (on the other one)
        middle = rest.ids[100]
        assert parse_cursor(middle).position == 0  # type: ignore[union-attr]
        again = read_sse_until_quiet(
            f"{a.url}/events", headers={**ACME, "Last-Event-ID": middle}, quiet=3
        )
        assert again.event_ids == ids[4 + 101 :]
    finally:
        a.stop()
        b.stop()


# --- isolation ------------------------------------------------------------------------------


def test_crafted_cursors_never_cross_tenants(
    replicas: tuple[Replica, Replica], config: Path, tmp_path: Path
) -> None:
    a, b = replicas
    acme = run_writer(config, tmp_path, count=5)["ids"]
    globex = run_writer(
        config, tmp_path, count=5, tenant="t_globex", project="p_sales", run="run_g"
    )["ids"]
    theirs = read_sse(f"{a.url}/events", headers=GLOBEX, count=5)
    cursor = parse_cursor(theirs.ids[0])
    assert cursor is not None and cursor.hint is not None
    crafted = [
        theirs.ids[0],  # another tenant's real cursor: a position in its own space
        f"{cursor.feed_id}-0.{cursor.hint}",  # "replay from the store after their event"
        f"{cursor.feed_id}-{cursor.position + 10**9}.{cursor.hint}",  # beyond our newest
        f"0123456789ab-{cursor.position}.{cursor.hint}",  # another feed, their hint
        f"{cursor.feed_id}-1.AAAA",  # a hint that is not one
    ]
    for text in crafted:
        for replica in (a, b):
            got = read_sse_until_quiet(
                f"{replica.url}/events",
                headers={**ACME, "Last-Event-ID": text},
                params={"run_id": "run_g"},
            )
            assert got.event_ids == [], text  # their run id: nothing of theirs, ever
            mine = read_sse_until_quiet(
                f"{replica.url}/events", headers={**ACME, "Last-Event-ID": text}
            )
            assert set(mine.event_ids) <= set(acme), text
            assert all(d.get("tenant_id", "t_acme") == "t_acme" for d in mine.data)
            assert not set(mine.event_ids) & set(globex)


# --- a real browser -----------------------------------------------------------------------------

PAGE = """<!doctype html><meta charset="utf-8"><title>logkit stream</title>
<script>
window.received = []; window.errors = 0;
const source = new EventSource("/events?token=acme-reader&run_id=run_browser");
source.onmessage = (e) => { window.received.push(JSON.parse(e.data).event_id); };
source.onerror = () => { window.errors += 1; };
</script>"""


def test_chromium_eventsource_follows_a_replica_and_resumes_on_the_other(
    config: Path, tmp_path: Path
) -> None:
    """Behind a "load balancer" (a TCP proxy): the browser's stream to replica A is cut, A is
    gone, the proxy sends the reconnect to B, which resumes from the browser's Last-Event-ID."""
    from playwright.sync_api import sync_playwright

    from tests.logs.test_stream_replay import chromium
    from tests.proxy import TcpProxy

    authorizer = "tests.replicas:token_authorizer"
    a, b = Replica(config, tmp_path, authorizer), Replica(config, tmp_path, authorizer)
    a.start()
    b.start()
    balancer = TcpProxy("127.0.0.1", a.port).start()
    origin = f"http://{balancer.address}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium(),
                args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
            )
            try:
                page = browser.new_page()
                page.route(
                    f"{origin}/", lambda route: route.fulfill(body=PAGE, content_type="text/html")
                )
                page.goto(f"{origin}/")
                first = run_writer(config, tmp_path, count=5, run="run_browser")["ids"]
                page.wait_for_function("window.received.length >= 5", timeout=20_000)
                balancer.cut()
                a.stop()
                later = run_writer(config, tmp_path, count=4, start=5, run="run_browser")["ids"]
                balancer.target = ("127.0.0.1", b.port)
                balancer.restore()
                page.wait_for_function("window.received.length >= 9", timeout=20_000)
                live = run_writer(config, tmp_path, count=1, start=9, run="run_browser")["ids"]
                page.wait_for_function("window.received.length >= 10", timeout=20_000)
                received = page.evaluate("window.received")
                errors = page.evaluate("window.errors")
            finally:
                browser.close()
    finally:
        balancer.cut()
        a.stop()
        b.stop()
    assert errors >= 1  # it did lose its connection
    assert received == first + later + live  # Last-Event-ID on B: no gap, no duplicate
    assert json.dumps(received)  # plain ids, as the page saw them
