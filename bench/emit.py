"""Envelope build+validate throughput vs structlog rendering an equivalent event dict to JSON.

Run: .venv/bin/python bench/emit.py [N]
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import structlog
from _timing import line, per_call_seconds

import logkit
from logkit.envelope import new_event_id
from logkit.redaction import clean_report, redact_event

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
SCOPE = {
    "tenant_id": "t_acme",
    "env": "prod",
    "project_id": "p_support",
    "surface_id": "chat",
    "app_id": "support-bot",
    "request_id": "req-1",
    "run_id": "run_1",
    "step_id": "step_2",
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "span_id": "00f067aa0ba902b7",
    "user_id": "u_1042",
}
PAYLOAD = {"tool": "vector_search", "hits": 3, "duration_ms": 41.5, "query": {"k": 8}}


def main() -> None:
    with logkit.bind(**SCOPE):
        build = per_call_seconds(lambda: logkit.build_event("tool_call_ended", PAYLOAD), N)
        build_json = per_call_seconds(
            lambda: logkit.build_event("tool_call_ended", PAYLOAD).model_dump_json(), N
        )
        clean = clean_report()
        gated = per_call_seconds(
            lambda: redact_event(logkit.build_event("tool_call_ended", PAYLOAD, redaction=clean)),
            N,
        )

    renderer = structlog.processors.JSONRenderer()
    stamper = structlog.processors.TimeStamper(fmt="iso", utc=True)

    def structlog_render() -> str:
        # The equivalent event dict: same scope, id, type, severity and payload, stamped and
        # rendered the way structlog's JSONRenderer does in production pipelines.
        event = {
            **SCOPE,
            "event": "tool_call_ended",
            "event_id": new_event_id(),
            "level": "info",
            **PAYLOAD,
        }
        return renderer(None, "info", stamper(None, "info", event))  # type: ignore[return-value]

    render = per_call_seconds(structlog_render, N)

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamper,
            renderer,
        ],
        logger_factory=structlog.PrintLoggerFactory(io.StringIO()),
        cache_logger_on_first_use=True,
    )
    logger = structlog.get_logger()
    structlog.contextvars.bind_contextvars(**SCOPE)
    full = per_call_seconds(lambda: logger.info("tool_call_ended", **PAYLOAD), N)

    line("logkit build+validate envelope", 1 / build, "events/s", f"{build * 1e6:.2f} us/event")
    line(
        "logkit build+validate+JSON", 1 / build_json, "events/s", f"{build_json * 1e6:.2f} us/event"
    )
    line(
        "logkit build+validate+redaction gate",
        1 / gated,
        "events/s",
        f"{gated * 1e6:.2f} us/event",
    )
    line(
        "structlog render equivalent dict to JSON",
        1 / render,
        "events/s",
        f"{render * 1e6:.2f} us/event",
    )
    line("structlog full logger call to JSON", 1 / full, "events/s", f"{full * 1e6:.2f} us/event")
    line("ratio build+validate / structlog render", build / render, "x", "target <= 2.0")
    line("ratio build+validate+JSON / structlog render", build_json / render, "x")


if __name__ == "__main__":
    main()
