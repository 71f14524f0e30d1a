"""The stream's ASGI app: ``GET /events`` (SSE) and ``/ws`` (WebSocket), same semantics.

Mount it in a FastAPI/Starlette app (``app.mount("/stream", create_app())``) or run it with
``logkit serve``. The hub starts with the first subscriber, so it works mounted too (Starlette
does not run a mounted app's lifespan).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import orjson
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from logkit.config import StreamConfig
from logkit.errors import ConfigError, ContractError, SinkError
from logkit.pipeline import PIPELINE
from logkit.principal import Principal, Unauthorized
from logkit.runtime import Runtime, ensure_configured
from logkit.sinks.protocols import EventStore, Feed, Role
from logkit.stream.auth import Authorizer, authorize, header_authorizer
from logkit.stream.filters import StreamFilter
from logkit.stream.hub import Delivery, Hub, Reset, Subscription

_STARTS = ("start", "now")
# WebSocket close codes (RFC 6455 / IANA): policy violation, try again later.
_WS_POLICY = 1008
_WS_TRY_AGAIN = 1013


class StreamServer:
    """What the routes share: the feed, the hub, the authorizer and the settings."""

    def __init__(
        self,
        feed: Feed | None,
        authorizer: Authorizer,
        config: StreamConfig | None,
        store: EventStore | None = None,
    ) -> None:
        self._feed = feed
        self._store = store
        self.authorizer = authorizer
        self._config = config
        self.hub: Hub | None = None
        self._lock = asyncio.Lock()
        # The dispatcher's stored-batch listeners the hub's wake() joined (runtime feed only).
        self._woken_by: list[Callable[[], None]] | None = None

    @property
    def config(self) -> StreamConfig:
        return self._config or StreamConfig()

    async def started(self) -> Hub:
        if self.hub is not None:
            return self.hub
        async with self._lock:
            if self.hub is None:
                runtime = None
                feed, store = self._feed, self._store
                if feed is None:
                    runtime = await asyncio.to_thread(ensure_configured)
                    self._config = self._config or runtime.settings.stream
                    feed, store = stream_sources(runtime)
                hub = Hub(feed, self.config, store)
                await hub.start()
                if not hub.live:
                    # This process's stream-class events go live; its stored batches wake the
                    # hub. (A live feed carries both itself, to every replica.)
                    PIPELINE.add_output(hub.publish)
                    if runtime is not None:
                        self._woken_by = runtime.dispatchers[Role.TIMELINE].on_stored
                        self._woken_by.append(hub.wake)
                self.hub = hub
        return self.hub

    async def stop(self) -> None:
        if self.hub is None:
            return
        if self._woken_by is not None:
            with contextlib.suppress(ValueError):
                self._woken_by.remove(self.hub.wake)
            self._woken_by = None
        PIPELINE.remove_output(self.hub.publish)
        await self.hub.stop()
        self.hub = None

    async def subscription(self, connection: HTTPConnection, cursor: str | None) -> Subscription:
        """Authorize, parse the filters and join the hub; raises Unauthorized/ContractError."""
        principal: Principal = await authorize(self.authorizer, connection)
        params = connection.query_params
        stream_filter = StreamFilter.from_params(params)
        start = params.get("from", "start")
        if start not in _STARTS:
            raise ContractError("invalid stream start", problems={"from": "start or now"})
        hub = await self.started()
        subscription = hub.subscribe(principal, stream_filter, cursor, start)
        await subscription.open()
        return subscription


def stream_sources(runtime: Runtime) -> tuple[Feed, EventStore | None]:
    """What the stream reads: the live feed ([sinks] feed) with the timeline store behind it
    for older cursors, or else the timeline store itself, which must number its events."""
    if runtime.feed is not None:
        return runtime.feed, runtime.stores[Role.TIMELINE]
    return timeline_feed(runtime), None


def timeline_feed(runtime: Runtime) -> Feed:
    """The runtime's timeline store as the stream's feed; ConfigError if it has no positions."""
    store = runtime.stores[Role.TIMELINE]
    if not isinstance(store, Feed):
        scheme = runtime.uris[Role.TIMELINE].split(":", 1)[0]
        raise ConfigError(
            f"the live stream needs a timeline store that numbers its events (sqlite does) or "
            f'a live feed ([sinks] feed = "redis://..."); {scheme} alone cannot resume '
            f"without gaps (see docs/stream.md)"
        )
    return store


def create_app(
    *,
    feed: Feed | None = None,
    authorizer: Authorizer | None = None,
    config: StreamConfig | None = None,
    store: EventStore | None = None,
) -> Starlette:
    """The stream app. ``feed`` defaults to the configured live feed ([sinks] feed) or else the
    timeline store (logkit.configure); ``store`` is the timeline store that resumes cursors
    older than a live feed's window (default: the configured one with the default feed).

    ``authorizer`` maps a connection to the Principal it may read; the default trusts the
    ``X-Tenant-Id`` / ``X-Project-Id`` headers (put a token-checking one in front in prod).
    """
    server = StreamServer(feed, authorizer or header_authorizer, config, store)

    async def events(request: Request) -> Response:
        cursor = request.headers.get("last-event-id") or request.query_params.get("cursor")
        try:
            subscription = await server.subscription(request, cursor)
        except Unauthorized as exc:
            return _problem(401, str(exc))
        except ContractError as exc:
            return _problem(400, str(exc), exc.problems)
        except (ConfigError, SinkError) as exc:
            return _problem(503, str(exc))
        c = server.config
        return EventSourceResponse(
            _sse_frames(subscription, c.retry_ms),
            ping=c.heartbeat_s,
            send_timeout=c.send_timeout_s,
            # the subscription leaves the hub even if the stream never started
            background=BackgroundTask(subscription.close),
            # no-transform: proxies must not compress (and so buffer) the stream
            headers={"Cache-Control": "no-store, no-transform", "Connection": "keep-alive"},
        )

    async def websocket(ws: WebSocket) -> None:
        try:
            subscription = await server.subscription(ws, ws.query_params.get("cursor"))
        except (Unauthorized, ContractError, ConfigError) as exc:
            await ws.close(code=_WS_POLICY, reason=str(exc)[:120])
            return
        except SinkError as exc:  # the feed cannot be read now: come back later
            await ws.close(code=_WS_TRY_AGAIN, reason=str(exc)[:120])
            return
        try:
            await ws.accept()
            await _serve_websocket(ws, server, subscription)
        finally:
            subscription.close()

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await server.started()  # standalone: fail at start-up, not at the first client
        yield
        await server.stop()

    app = Starlette(
        routes=[
            Route("/events", events),
            WebSocketRoute("/ws", websocket),
            Route("/healthz", health),
        ],
        lifespan=lifespan,
    )
    app.state.stream = server
    return app


def _problem(status: int, message: str, problems: dict[str, str] | None = None) -> Response:
    body: dict[str, object] = {"error": message}
    if problems:
        body["problems"] = problems
    return JSONResponse(body, status_code=status)


async def _sse_frames(subscription: Subscription, retry_ms: int) -> AsyncIterator[bytes]:
    """SSE framing (sse-starlette's encoder); a batch of events goes out as one chunk."""
    yield ServerSentEvent(comment="logkit stream", retry=retry_ms).encode()
    # aclosing: a disconnect closes the subscription now, not whenever the GC gets to it
    async with contextlib.aclosing(subscription.batches()) as batches:
        async for item in batches:
            if isinstance(item, Reset):
                reset = ServerSentEvent(data=item.json(), event="reset", id=str(item.cursor))
                yield reset.encode()
                continue
            yield "".join(map(_sse_event, item)).encode()


def _sse_event(delivery: Delivery) -> str:
    """One event's frame. Stored bodies are single-line JSON (orjson never writes a newline),
    so the frame is two fields; anything multi-line takes sse-starlette's general encoder.
    The fast path is what makes a 100k-event replay fit in its budget (~0.3 us vs ~7 us)."""
    if delivery.cursor is None:  # live only: no id, so the client's Last-Event-ID stays put
        return ServerSentEvent(data=delivery.body).encode().decode()
    if "\n" in delivery.body or "\r" in delivery.body:
        return ServerSentEvent(data=delivery.body, id=str(delivery.cursor)).encode().decode()
    return f"id: {delivery.cursor}\r\ndata: {delivery.body}\r\n\r\n"


def _ws_event(delivery: Delivery) -> str:
    # The stored body is JSON already: embed it rather than parse and re-serialise it.
    cursor = "null" if delivery.cursor is None else f'"{delivery.cursor}"'
    return f'{{"type":"event","cursor":{cursor},"event":{delivery.body}}}'


_BAD_MESSAGE = orjson.dumps(
    {"type": "error", "message": 'expected {"type": "resume", "cursor": "..."}'}
).decode()


async def _receive(ws: WebSocket) -> str | None:
    """The next client message's text; None for a binary frame (answered like any bad
    message); WebSocketDisconnect when the client has gone."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    return text if isinstance(text, str) else None


def _resume_cursor(text: str | None) -> str | None:
    """The cursor of a ``{"type": "resume", "cursor": ...}`` message; None for anything else."""
    if text is None:
        return None
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict) or message.get("type") != "resume":
        return None
    cursor = message.get("cursor")
    return cursor if isinstance(cursor, str) else None


async def _let_go(ws: WebSocket, subscription: Subscription, timeout: float) -> None:
    """A reader that stopped reading: leave the hub now, then try to say why (1013).

    The close frame waits behind the unread data; we do not wait for it longer than for any
    other write (the transport sends it if the client ever reads on).
    """
    subscription.close()
    with contextlib.suppress(TimeoutError, RuntimeError, WebSocketDisconnect):
        async with asyncio.timeout(timeout):
            await ws.close(_WS_TRY_AGAIN, "slow consumer: resume from your last cursor")


async def _serve_websocket(ws: WebSocket, server: StreamServer, first: Subscription) -> None:
    """Pump events to the socket; a ``{"type": "resume", "cursor": ...}`` restarts the pump."""
    c = server.config
    hub = await server.started()

    async def send(text: str) -> None:
        async with asyncio.timeout(c.send_timeout_s):  # a stalled reader is let go
            await ws.send_text(text)

    async def pump(subscription: Subscription) -> None:
        async with contextlib.aclosing(subscription.batches()) as batches:
            async for item in batches:
                if isinstance(item, Reset):
                    await send(
                        f'{{"type":"reset","cursor":"{item.cursor}","reason":"{item.reason}"}}'
                    )
                    continue
                for delivery in item:
                    await send(_ws_event(delivery))

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(c.heartbeat_s)
            await send('{"type":"heartbeat"}')

    task = asyncio.create_task(pump(first))
    beat = asyncio.create_task(heartbeat())
    try:
        while True:
            receive = asyncio.create_task(_receive(ws))
            done, _ = await asyncio.wait({receive, task, beat}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:
                receive.cancel()
                failed = task if task in done else beat
                if isinstance(failed.exception(), TimeoutError):
                    await _let_go(ws, first, c.send_timeout_s)
                return
            cursor = _resume_cursor(receive.result())
            if cursor is None:
                await ws.send_text(_BAD_MESSAGE)
                continue
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            old = first
            old.close()
            first = hub.subscribe(old.principal, old.filter, cursor, old.start)
            await first.open()
            task = asyncio.create_task(pump(first))
    except WebSocketDisconnect:
        return
    finally:
        for pending in (task, beat):
            pending.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.gather(task, beat, return_exceptions=True)
        first.close()
