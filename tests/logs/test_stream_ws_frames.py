"""WebSocket client frames the stream does not understand get the documented error reply.

Was: a binary frame killed the connection (``KeyError: 'text'``) with no close frame.
"""

from __future__ import annotations

import datetime as dt
import json

from logkit.config import StreamConfig
from logkit.envelope import Event
from logkit.sinks.memory import MemoryStore
from logkit.stream import create_app
from tests.servers import serve
from tests.streams import websocket, ws_messages

ACME = {"X-Tenant-Id": "t_acme"}


def stored(count: int) -> MemoryStore:
    store = MemoryStore()
    store.write(
        [
            Event(
                tenant_id="t_acme",
                env="dev",
                project_id="p",
                surface_id="s",
                app_id="a",
                event_type="message",
                ts=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                payload={"i": i},
            )
            for i in range(count)
        ]
    )
    return store


def test_a_binary_frame_gets_the_error_reply_and_the_stream_goes_on() -> None:
    app = create_app(feed=stored(3), config=StreamConfig(heartbeat_s=5))
    with serve(app) as url, websocket(url.replace("http://", "ws://") + "/ws", ACME) as conn:
        first = ws_messages(conn, 3)
        assert [m["cursor"].rsplit("-", 1)[1] for m in first] == ["1", "2", "3"]
        conn.send(b"\x00\x01 binary")
        (error,) = ws_messages(conn, 1)
        assert error["type"] == "error" and "resume" in error["message"]
        conn.send(b'{"type": "resume", "cursor": "x"}')  # even a JSON body, sent as binary
        assert ws_messages(conn, 1)[0]["type"] == "error"
        conn.send(json.dumps({"type": "resume", "cursor": first[0]["cursor"]}))
        again = ws_messages(conn, 2)
        assert [m["cursor"] for m in again] == [m["cursor"] for m in first[1:]]
