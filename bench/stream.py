"""The live stream: replay of stored events, and live latency with many subscribers.

Prints:
- the time to replay 100k stored events to one SSE client (target <= 3 s), parsed by a real
  SSE parser (httpx-sse) on the client side;
- p50/p99 live latency (stored -> received) with 100 concurrent SSE subscribers, events written
  by the server's own process (in-process wake-up; target <= 1 s);
- the same with the events written by another process (the server finds them by polling).

The server runs in its own process (uvicorn, as `logkit serve` runs it); the clients run here.
Run: .venv/bin/python bench/stream.py [N_REPLAY] [SUBSCRIBERS]
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from httpx_sse import aconnect_sse, connect_sse

sys.path.insert(0, str(Path(__file__).parent))
from _timing import BENCH_SCOPE, line

import logkit

N_REPLAY = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 100_000
SUBSCRIBERS = int(sys.argv[2]) if len(sys.argv) > 2 else 100
LIVE_EVENTS = 100
LIVE_INTERVAL_S = 0.02
HEADERS = {"X-Tenant-Id": BENCH_SCOPE["tenant_id"]}
PAYLOAD = {"tool": "vector_search", "hits": 3, "duration_ms": 41.5}


# --- the server process ----------------------------------------------------------------------


def serve(port: int, db: str, spool: str) -> None:
    """The stream app plus one route that emits events from this process (the in-process path)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    from logkit.stream import create_app

    runtime = logkit.configure(
        env="dev",
        sinks={"timeline": db, "audit": db, "cost": db},
        dispatch={"spool_path": spool},
        stream={"poll_max_s": 0.5},
    )

    async def emit(request: Request) -> PlainTextResponse:
        count = int(request.query_params["count"])
        with logkit.bind(**BENCH_SCOPE, run_id="run_live"):
            for i in range(count):
                logkit.emit("tool_call_ended", {**PAYLOAD, "i": i})
                await asyncio.sleep(LIVE_INTERVAL_S)
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[
            Route("/emit", emit, methods=["POST"]),
            Mount("/", create_app(config=runtime.settings.stream)),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio")


# --- the clients -----------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def store(n: int) -> None:
    with logkit.bind(**BENCH_SCOPE, run_id="run_replay"):
        for i in range(n):
            logkit.emit("tool_call_ended", {**PAYLOAD, "i": i})
    assert logkit.flush(120)


def replay_seconds(url: str, n: int) -> float:
    received = 0
    start = time.perf_counter()
    with (
        httpx.Client(timeout=60) as client,
        connect_sse(client, "GET", f"{url}/events", headers=HEADERS) as source,
    ):
        for sse in source.iter_sse():
            if sse.data:
                received += 1
                if received == n:
                    break
    return time.perf_counter() - start


async def subscriber(url: str, ready: asyncio.Event, counter: list[int], want: int) -> list[float]:
    latencies: list[float] = []
    async with (
        httpx.AsyncClient(timeout=60) as client,
        aconnect_sse(
            client, "GET", f"{url}/events", headers=HEADERS, params={"from": "now"}
        ) as source,
    ):
        counter[0] += 1
        if counter[0] == SUBSCRIBERS:
            ready.set()
        async for sse in source.aiter_sse():
            if not sse.data:
                continue
            arrived = dt.datetime.now(dt.UTC)
            event = json.loads(sse.data)
            latencies.append((arrived - dt.datetime.fromisoformat(event["ts"])).total_seconds())
            if len(latencies) == want:
                return latencies
    return latencies


async def live_latencies(url: str, trigger: object) -> list[float]:
    ready = asyncio.Event()
    counter = [0]
    tasks = [
        asyncio.create_task(subscriber(url, ready, counter, LIVE_EVENTS))
        for _ in range(SUBSCRIBERS)
    ]
    await asyncio.wait_for(ready.wait(), 60)
    await asyncio.to_thread(trigger)  # type: ignore[arg-type]
    results = await asyncio.wait_for(asyncio.gather(*tasks), 120)
    return [x for r in results for x in r]


def quantiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        db = f"sqlite:///{tmp / 'stream.db'}"
        logkit.configure(
            env="dev",
            sinks={"timeline": db, "audit": db, "cost": db},
            dispatch={"spool_path": tmp / "spool.db"},
        )
        store(N_REPLAY)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port), db, str(tmp / "server-spool.db")],
            cwd=tmp,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline and server.poll() is None, "server did not start"
                time.sleep(0.05)
            seconds = replay_seconds(url, N_REPLAY)
            line(
                f"stream replay of {N_REPLAY:,} stored events to one SSE client",
                seconds,
                "s",
                f"{N_REPLAY / seconds:,.0f} events/s parsed by httpx-sse; target <= 3 s",
            )

            def in_process() -> None:
                httpx.post(f"{url}/emit", params={"count": LIVE_EVENTS}, timeout=120)

            p50, p99 = quantiles(asyncio.run(live_latencies(url, in_process)))
            note = (
                f"{SUBSCRIBERS} subscribers x {LIVE_EVENTS} events, written by the server process"
            )
            line("stream live latency p50", p50, "ms", note)
            line("stream live latency p99", p99, "ms", note + "; target <= 1,000 ms")

            def other_process() -> None:
                with logkit.bind(**BENCH_SCOPE, run_id="run_other"):
                    for i in range(LIVE_EVENTS):
                        logkit.emit("tool_call_ended", {**PAYLOAD, "i": i})
                        time.sleep(LIVE_INTERVAL_S)
                logkit.flush(30)

            p50, p99 = quantiles(asyncio.run(live_latencies(url, other_process)))
            note = f"{SUBSCRIBERS} subscribers, written by another process: found by polling"
            line("stream cross-process latency p50", p50, "ms", note)
            line("stream cross-process latency p99", p99, "ms", note)
        finally:
            server.terminate()
            server.wait(30)
            logkit.shutdown()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        main()
