"""Stream clients for the tests: a real SSE parser (httpx-sse) and a real WebSocket client."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, connect_sse
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect


@dataclass
class Received:
    """What one SSE connection delivered: events (id, type, data) in arrival order."""

    ids: list[str]
    types: list[str]
    data: list[dict[str, Any]]

    def add(self, sse: ServerSentEvent) -> bool:
        """Keep one parsed event; False for a frame without data, which WHATWG says
        dispatches no event (the ``retry:`` preamble)."""
        if not sse.data:
            return False
        self.ids.append(sse.id)
        self.types.append(sse.event)
        self.data.append(json.loads(sse.data))
        return True

    @property
    def event_ids(self) -> list[str]:
        return [d["event_id"] for d in self.data if "event_id" in d]


def read_sse(
    url: str,
    *,
    headers: dict[str, str],
    count: int,
    timeout: float = 10.0,
    params: dict[str, str] | None = None,
) -> Received:
    """Open ``GET url``, read ``count`` events (reset events included), then disconnect.

    Fails if ``count`` events do not arrive within ``timeout`` (a gap or a lost wake-up).
    """
    got = Received([], [], [])
    deadline = time.monotonic() + timeout
    timeouts = httpx.Timeout(timeout, read=timeout)
    with (
        httpx.Client(timeout=timeouts) as client,
        connect_sse(client, "GET", url, headers=headers, params=params) as source,
    ):
        source.response.raise_for_status()
        for sse in source.iter_sse():
            if not got.add(sse):
                continue
            if len(got.ids) >= count:
                break
            if time.monotonic() > deadline:
                break
    assert len(got.ids) >= count, f"got {len(got.ids)} of {count} events within {timeout}s"
    return got


def read_sse_until_quiet(
    url: str, *, headers: dict[str, str], quiet: float = 0.4, params: dict[str, str] | None = None
) -> Received:
    """Read until no event arrives for ``quiet`` seconds: proves nothing more is sent."""
    got = Received([], [], [])
    with (
        httpx.Client(timeout=httpx.Timeout(10.0, read=quiet)) as client,
        connect_sse(client, "GET", url, headers=headers, params=params) as source,
    ):
        source.response.raise_for_status()
        try:
            for sse in source.iter_sse():
                got.add(sse)
        except httpx.ReadTimeout:
            pass
    return got


@contextmanager
def websocket(url: str, headers: dict[str, str]) -> Iterator[ClientConnection]:
    with ws_connect(url, additional_headers=headers, open_timeout=10) as conn:
        yield conn


def ws_messages(conn: ClientConnection, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The next ``count`` non-heartbeat messages."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"got {len(out)} of {count} messages within {timeout}s"
        message = json.loads(conn.recv(timeout=left))
        if message["type"] != "heartbeat":
            out.append(message)
    return out


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll a condition with a deadline (background work we cannot join)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def raw_socket(base_url: str) -> socket.socket:
    """A connection with a tiny receive window: once the test stops reading, it stalls."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: no autotuning
    sock.connect((host, int(port)))
    return sock


def raw_request(base_url: str, path: str, headers: dict[str, str]) -> socket.socket:
    """A GET sent on a bare socket that then reads nothing: a consumer that stalls."""
    host = base_url.removeprefix("http://").split(":")[0]
    sock = raw_socket(base_url)
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"] + [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock
