"""Sink throughput and the caller's emit latency during an outage.

Prints: emit->SQLite ops events/s (target >= 50k/s), the same through the Firestore and BigQuery
emulators (reported, not targeted), and p50/p99 emit latency while the backend is unreachable
(target p99 < 1 ms). The emulators' addresses come from .logkit/services.env (`make services`).

Run: .venv/bin/python bench/sinks.py [N_SQLITE]
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _timing import BENCH_SCOPE, line

import logkit

N_SQLITE = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
N_EMULATOR = 3_000
N_OUTAGE = 20_000
ROOT = Path(__file__).resolve().parent.parent
SCOPE = {
    **BENCH_SCOPE,
    "run_id": "run_bench",
    "step_id": "step_1",
    "request_id": "req-1",
}
PAYLOAD = {"tool": "vector_search", "hits": 3, "duration_ms": 41.5}


def services_env() -> dict[str, str]:
    path = ROOT / ".logkit" / "services.env"
    if not path.exists():
        return {}
    pairs = (row.split("=", 1) for row in path.read_text().splitlines() if "=" in row)
    return {k.strip(): v.strip() for k, v in pairs}


def configure(tmp: Path, timeline: str, **dispatch: object) -> None:
    logkit.configure(
        env="prod",
        sinks={"timeline": timeline, "audit": f"sqlite:///{tmp / 'audit.db'}"},
        dispatch={"spool_path": tmp / "spool.db", **dispatch},
        redaction={"key": "bench-redaction-key"},
    )


def throughput(n: int) -> float:
    """Events/s from the first emit until flush() says every event is stored."""
    with logkit.bind(**SCOPE):
        start = time.perf_counter()
        for _ in range(n):
            logkit.emit("tool_call_ended", PAYLOAD)
        if not logkit.flush(600):
            raise SystemExit("flush timed out")
        return n / (time.perf_counter() - start)


def outage_latencies(n: int) -> list[float]:
    samples = []
    with logkit.bind(**SCOPE):
        for _ in range(n):
            start = time.perf_counter_ns()
            logkit.emit("tool_call_ended", PAYLOAD)
            samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    env = services_env()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        runs = []
        for attempt in range(5):  # this machine is shared and noisy: median and best of 5
            configure(tmp, f"sqlite:///{tmp / f'bench{attempt}.db'}")
            runs.append(throughput(N_SQLITE))
        line(
            "emit->SQLite ops events (median of 5)",
            statistics.median(runs),
            "events/s",
            f"n={N_SQLITE} each, target >= 50,000",
        )
        line(
            "emit->SQLite ops events (best of 5)",
            max(runs),
            "events/s",
            "runs: " + ", ".join(f"{r:,.0f}" for r in runs),
        )
        if "FIRESTORE_EMULATOR_HOST" in env:
            os.environ["FIRESTORE_EMULATOR_HOST"] = env["FIRESTORE_EMULATOR_HOST"]
            configure(tmp, f"firestore://logkit-test?root=bench{int(time.time())}")
            line(
                "emit->Firestore emulator events",
                throughput(N_EMULATOR),
                "events/s",
                f"n={N_EMULATOR}, reported only",
            )
        if "BIGQUERY_EMULATOR_HOST" in env:
            os.environ["BIGQUERY_EMULATOR_HOST"] = env["BIGQUERY_EMULATOR_HOST"]
            os.environ["BIGQUERY_STORAGE_EMULATOR_HOST"] = env["BIGQUERY_STORAGE_EMULATOR_HOST"]
            uri = f"bigquery://logkit-test/bench{int(time.time())}"
            configure(tmp, uri)
            logkit.runtime.current().backends[uri].check_schema(create=True)
            line(
                "emit->BigQuery emulator events",
                throughput(N_EMULATOR),
                "events/s",
                f"n={N_EMULATOR}, reported only",
            )
        os.environ["BIGQUERY_EMULATOR_HOST"] = f"http://127.0.0.1:{closed_port()}"
        os.environ["BIGQUERY_STORAGE_EMULATOR_HOST"] = f"127.0.0.1:{closed_port()}"
        configure(tmp, "bigquery://logkit-test/down?timeout=1", retry_attempts=2)
        samples = outage_latencies(N_OUTAGE)
        quantiles = statistics.quantiles(samples, n=100)
        line("emit latency p50, backend unreachable", quantiles[49], "us")
        line("emit latency p99, backend unreachable", quantiles[98], "us", "target < 1,000 us")
        line("emit latency max, backend unreachable", max(samples), "us")
        logkit.flush(60)
        runtime = logkit.runtime.current()
        dispatcher = runtime.dispatchers[logkit.sinks.protocols.Role.TIMELINE]
        line(
            "events spooled during the outage",
            dispatcher.spool.count(dispatcher.sink),
            "events",
            f"of {N_OUTAGE} emitted, none lost",
        )
        logkit.shutdown(5)


if __name__ == "__main__":
    main()
