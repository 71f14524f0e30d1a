"""The live stream: SSE and WebSocket over the durable timeline, with resumable cursors.

See docs/stream.md. ``create_app`` builds the ASGI app; ``logkit serve`` runs it.
"""

from logkit.principal import Principal, Unauthorized
from logkit.stream.app import create_app
from logkit.stream.auth import Authorizer, header_authorizer, load_authorizer
from logkit.stream.cursor import Cursor, parse_cursor
from logkit.stream.filters import StreamFilter

__all__ = [
    "Authorizer",
    "Cursor",
    "Principal",
    "StreamFilter",
    "Unauthorized",
    "create_app",
    "header_authorizer",
    "load_authorizer",
    "parse_cursor",
]
