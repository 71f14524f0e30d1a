"""Flow/step overhead: a 10-step flow with no work inside, per step, and the same nesting with
OpenTelemetry SDK spans exported to an in-memory exporter (the peer), in the same run.

Run: .venv/bin/python bench/timeline.py [N_FLOWS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _timing import BENCH_SCOPE, line
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import logkit

N_FLOWS = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
STEPS = 10
SCOPE = BENCH_SCOPE


def logkit_per_step() -> float:
    start = time.perf_counter()
    with logkit.bind(**SCOPE):
        for _ in range(N_FLOWS):
            with logkit.flow("bench"):
                for _ in range(STEPS):
                    with logkit.step("noop", kind="compute"):
                        pass
    return (time.perf_counter() - start) / (N_FLOWS * STEPS)


def otel_per_step() -> float:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    start = time.perf_counter()
    for _ in range(N_FLOWS):
        with tracer.start_as_current_span("bench"):
            for _ in range(STEPS):
                with tracer.start_as_current_span("noop") as span:
                    span.set_attribute("kind", "compute")
        exporter.clear()  # keep memory flat, as a real exporter would
    return (time.perf_counter() - start) / (N_FLOWS * STEPS)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sinks = {"timeline": f"sqlite:///{tmp}/t.db", "audit": f"sqlite:///{tmp}/t.db"}
        logkit.configure(
            env="prod",
            sinks=sinks,
            redaction={"key": "bench"},
            dispatch={"spool_path": f"{tmp}/spool.db"},
        )
        ours = logkit_per_step()
        logkit.flush(120)
        logkit.shutdown()
    peer = otel_per_step()
    line(
        "logkit step (started + ended events, to SQLite)",
        ours * 1e6,
        "us/step",
        f"{N_FLOWS} flows x {STEPS} steps",
    )
    line("OpenTelemetry SDK span (in-memory exporter)", peer * 1e6, "us/span")
    line("ratio logkit step / OTel span", ours / peer, "x")


if __name__ == "__main__":
    main()
