"""The live stream: replay of stored events, and live latency with many subscribers.

Prints, on the SQLite timeline alone (one machine):
- the time to replay 100k stored events to one SSE client (target <= 3 s), parsed by a real
  SSE parser (httpx-sse) on the client side;
- p50/p99 live latency (emit -> received) with 100 concurrent SSE subscribers, events written
  by the server's own process (in-process wake-up);
- the same with the events written by another process (the server finds them by polling).

Then the same figures in the production shape, in the same run: a Redis feed (a redis-server
this script starts, AOF on), two `logkit serve` replicas, 100 subscribers split over them, the
writer in a third process (target emit -> SSE client p50 <= 20 ms, p99 <= 100 ms).

Run: .venv/bin/python bench/stream.py [N_REPLAY] [SUBSCRIBERS]
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
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

_ARGS = (
    [a for a in sys.argv[1:] if a.isdigit()]
    if sys.argv[1:2] not in (["--serve"], ["--write"])
    else []
)
N_REPLAY = int(_ARGS[0]) if _ARGS else 100_000
SUBSCRIBERS = int(_ARGS[1]) if len(_ARGS) > 1 else 100
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


async def subscriber(
    url: str, ready: asyncio.Event, counter: list[int], want: int, total: int = SUBSCRIBERS
) -> list[float]:
    latencies: list[float] = []
    async with (
        httpx.AsyncClient(timeout=60) as client,
        aconnect_sse(
            client, "GET", f"{url}/events", headers=HEADERS, params={"from": "now"}
        ) as source,
    ):
        counter[0] += 1
        if counter[0] == total:
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


async def live_latencies(url: str | list[str], trigger: object) -> list[float]:
    """Subscribers (split evenly over ``url``s) wait for the trigger's events; latencies."""
    urls = [url] if isinstance(url, str) else url
    ready = asyncio.Event()
    counter = [0]
    tasks = [
        asyncio.create_task(subscriber(urls[i % len(urls)], ready, counter, LIVE_EVENTS))
        for i in range(SUBSCRIBERS)
    ]
    await asyncio.wait_for(ready.wait(), 60)
    await asyncio.to_thread(trigger)  # type: ignore[arg-type]
    results = await asyncio.wait_for(asyncio.gather(*tasks), 120)
    return [x for r in results for x in r]


def quantiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


def wait_healthy(
    url: str, proc: subprocess.Popen[bytes], *, timeout_s: float = 60, what: str = "a replica"
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline and proc.poll() is None, f"{what} did not start"
        time.sleep(0.05)


def sqlite_figures(tmp: Path) -> None:
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
        wait_healthy(url, server, timeout_s=30, what="server")
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
        note = f"{SUBSCRIBERS} subscribers x {LIVE_EVENTS} events, written by the server process"
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


# --- the production shape: a Redis feed, two replicas, a writer process ----------------------


def start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    import redis

    port = free_port()
    directory = tmp / "redis"
    directory.mkdir()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory)]
    command += ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 20
    while True:
        try:
            if client.ping():
                break
        except redis.exceptions.RedisError:
            pass
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    client.close()
    return proc, f"redis://127.0.0.1:{port}/0"


def write(config: str, count: int, interval: float) -> None:
    """The writer process: emit ``count`` events ``interval`` apart, flush."""
    logkit.configure(config)
    with logkit.bind(**{**BENCH_SCOPE, "env": "dev"}, run_id="run_redis"):
        for i in range(count):
            logkit.emit("tool_call_ended", {**PAYLOAD, "i": i})
            if interval:
                time.sleep(interval)
    assert logkit.flush(300)
    logkit.shutdown()


def redis_figures(tmp: Path) -> None:
    redis_proc, redis_url = start_redis(tmp)
    db = f"sqlite:///{tmp / 'redis-timeline.db'}"
    config = tmp / "redis.toml"
    config.write_text(
        f'env = "dev"\n[sinks]\ntimeline = "{db}"\naudit = "{db}"\nfeed = "{redis_url}"\n'
        f"[stream]\nfeed_maxlen = {max(N_REPLAY * 2, 100_000)}\n"
    )
    env = {**os.environ, "LOGKIT_DISPATCH__SPOOL_PATH": str(tmp / "writer-spool.db")}

    def writer(count: int, interval: float) -> None:
        command = [sys.executable, __file__, "--write", str(config), str(count), str(interval)]
        subprocess.run(command, cwd=tmp, env=env, check=True)

    replicas: list[subprocess.Popen[bytes]] = []
    try:
        started = time.perf_counter()
        writer(N_REPLAY, 0)
        seconds = time.perf_counter() - started
        line(
            f"redis feed: {N_REPLAY:,} events emitted by a writer process, stored and fed",
            seconds,
            "s",
            f"{N_REPLAY / seconds:,.0f} events/s including the process start",
        )
        urls = []
        for index in range(2):
            port = free_port()
            replica_env = {**env, "LOGKIT_DISPATCH__SPOOL_PATH": str(tmp / f"r{index}.db")}
            command = [sys.executable, "-m", "logkit", "serve", "--config", str(config)]
            command += ["--port", str(port), "--log-level", "warning"]
            replicas.append(subprocess.Popen(command, cwd=tmp, env=replica_env))
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, replicas, strict=True):
            wait_healthy(url, proc)
        seconds = replay_seconds(urls[0], N_REPLAY)
        line(
            f"redis feed: stream replay of {N_REPLAY:,} events to one SSE client (XRANGE)",
            seconds,
            "s",
            f"{N_REPLAY / seconds:,.0f} events/s; target <= 3 s",
        )
        p50, p99 = quantiles(
            asyncio.run(live_latencies(urls, lambda: writer(LIVE_EVENTS, LIVE_INTERVAL_S)))
        )
        note = (
            f"{SUBSCRIBERS} subscribers over 2 replicas x {LIVE_EVENTS} events, "
            "writer in a third process, XREAD BLOCK"
        )
        line("redis feed: emit -> SSE client latency p50", p50, "ms", note + "; target <= 20 ms")
        line("redis feed: emit -> SSE client latency p99", p99, "ms", note + "; target <= 100 ms")
    finally:
        for proc in replicas:
            proc.terminate()
            proc.wait(30)
        redis_proc.terminate()
        redis_proc.wait(30)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_dir:
        sqlite_figures(Path(tmp_dir))
    if shutil.which("redis-server") is None and not Path("/usr/bin/redis-server").exists():
        print("redis feed: skipped (no redis-server: `make services` installs it)")
        return
    with tempfile.TemporaryDirectory() as tmp_dir:
        redis_figures(Path(tmp_dir))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif len(sys.argv) > 1 and sys.argv[1] == "--write":
        write(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        main()
