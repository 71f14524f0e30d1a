"""Run an ASGI app under a real uvicorn server on a free loopback port, for HTTP-level tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(
    app: Any, timeout: float = 10.0, *, lifespan: str = "off", port: int | None = None
) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a thread; yields its base URL; stops it on exit."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan=lifespan,
        ws="websockets-sansio",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()

    # uvicorn sets `started` from its own loop; wait on it with a bounded poll.
    def ready() -> bool:
        return bool(server.started) or not thread.is_alive()

    for _ in range(int(timeout / 0.01)):
        if ready():
            break
        started.wait(0.01)
    if not server.started:
        raise RuntimeError(f"uvicorn did not start on port {port} within {timeout}s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
