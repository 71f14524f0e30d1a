"""OpenTelemetry: what spans cost logkit's callers, beside the OTel SDK's own span cost, and how
fast the OTLP exporter sends a timeline to a real backend (Phoenix, from `make services`).

- emit inside a step, and a step (started + ended events), with spans off (no tracer provider:
  logkit makes the ids) and on (an SDK tracer provider recording logkit's spans, batch span
  processor, an exporter that discards: the cost of recording, not of the network);
- the OTel SDK's own span (start as current + end, same processor), measured in the same run;
- OTLP export throughput: events emitted with ``[export] otlp`` = Phoenix until the exporter has
  handed every span to Phoenix (flush), in events/s and spans/s.

Run: .venv/bin/python bench/otel.py [N]   (Phoenix's URL from .logkit/services.env)
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from _timing import BENCH_SCOPE, line, per_call_seconds
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import logkit
from tests import services

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
FLOWS = 300  # export: each flow has 5 steps with a tool call each: 22 spans, 44 events


class Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def sdk_provider() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=100_000))
    return provider


def emit_in_step() -> float:
    with logkit.bind(**BENCH_SCOPE), logkit.flow("bench"), logkit.step("s"):
        return per_call_seconds(lambda: logkit.emit("message", {"n": 1}), N // 5)


def step() -> float:
    def one() -> None:
        with logkit.step("noop", kind="compute"):
            pass

    with logkit.bind(**BENCH_SCOPE), logkit.flow("bench"):
        return per_call_seconds(one, N // 10)


def sdk_span(provider: TracerProvider) -> float:
    tracer = provider.get_tracer("bench")

    def one() -> None:
        with tracer.start_as_current_span("noop") as span:
            span.set_attribute("kind", "compute")

    return per_call_seconds(one, N // 5)


def measured(fn: Callable[[], float], provider: TracerProvider | None) -> float:
    logkit.use_tracer_provider(provider)
    try:
        return fn()
    finally:
        logkit.use_tracer_provider(None)
        logkit.flush(120)


def off_and_on(fn: Callable[[], float], provider: TracerProvider) -> tuple[float, float]:
    """Best of three rounds each, off and on interleaved (the machine is shared)."""
    rounds = [(measured(fn, None), measured(fn, provider)) for _ in range(3)]
    return min(r[0] for r in rounds), min(r[1] for r in rounds)


def export_throughput(url: str, tmp: str) -> tuple[float, int, int]:
    project = f"bench-{uuid.uuid4().hex[:8]}"
    logkit.configure(
        env="prod",
        sinks={"timeline": f"sqlite:///{tmp}/x.db", "audit": f"sqlite:///{tmp}/x.db"},
        redaction={"key": "bench"},
        dispatch={"spool_path": f"{tmp}/xspool.db"},
        export={
            "otlp": url,
            "resource": {"openinference.project.name": project},
            "queue_size": 100_000,
        },
    )
    before = logkit.counters().get("export.otlp.spans", 0)
    start = time.perf_counter()
    with logkit.bind(**BENCH_SCOPE):
        for i in range(FLOWS):
            with logkit.flow("export_bench", attempt=i):
                for _ in range(5):
                    with (
                        logkit.step("work", kind="tool"),
                        logkit.tool_call("search", input={"q": i}),
                    ):
                        pass
    if not logkit.flush(300):
        raise SystemExit("the OTLP export did not finish: is Phoenix up (make services)?")
    elapsed = time.perf_counter() - start
    spans = logkit.counters().get("export.otlp.spans", 0) - before
    events = FLOWS * 22 * 2
    logkit.shutdown()
    return elapsed, events, spans


def main() -> None:
    url = services.load().get("PHOENIX_URL")
    if not url:
        raise SystemExit("PHOENIX_URL unknown: run `make services` first")
    with tempfile.TemporaryDirectory() as tmp:
        logkit.configure(
            env="prod",
            sinks={"timeline": f"sqlite:///{tmp}/t.db", "audit": f"sqlite:///{tmp}/t.db"},
            redaction={"key": "bench"},
            dispatch={"spool_path": f"{tmp}/spool.db"},
        )
        on = sdk_provider()
        emit_off, emit_on = off_and_on(emit_in_step, on)
        step_off, step_on = off_and_on(step, on)
        peer = min(sdk_span(sdk_provider()) for _ in range(3))
        logkit.shutdown()
        elapsed, events, spans = export_throughput(url, tmp)
    line("emit inside a step, spans off (no tracer provider)", emit_off * 1e6, "us/event")
    line("emit inside a step, spans on (SDK recording)", emit_on * 1e6, "us/event")
    line("logkit step, spans off (2 events to SQLite, logkit ids)", step_off * 1e6, "us/step")
    line("logkit step, spans on (2 events + an SDK span)", step_on * 1e6, "us/step")
    line("span overhead of a step (on - off)", (step_on - step_off) * 1e6, "us/step")
    line("OpenTelemetry SDK span alone (same processor)", peer * 1e6, "us/span")
    line("ratio step overhead / SDK span", (step_on - step_off) / peer, "x")
    line(
        "OTLP export to Phoenix",
        events / elapsed,
        "events/s",
        f"{events} events, {spans} spans, emit to flushed in {elapsed:.2f} s",
    )
    line("OTLP export to Phoenix", spans / elapsed, "spans/s")


if __name__ == "__main__":
    main()
