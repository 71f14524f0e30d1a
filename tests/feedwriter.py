"""A writing process for the multi-replica tests: `python -m tests.feedwriter --config X ...`.

Emits ``--count`` message events (and ``--ephemeral`` stream-class ones after them) for one
tenant and run, flushes, and prints one JSON line: the event ids in emit order, the longest
single emit, and the feed writer's counters.
"""

from __future__ import annotations

import argparse
import json
import time

import logkit
from logkit.runtime import current


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--tenant", default="t_acme")
    parser.add_argument("--project", default="p_support")
    parser.add_argument("--run", default="run_1")
    parser.add_argument("--ephemeral", type=int, default=0)
    args = parser.parse_args()
    logkit.configure(args.config)
    scope = {
        "tenant_id": args.tenant,
        "project_id": args.project,
        "surface_id": "chat",
        "app_id": "support-bot",
        "run_id": args.run,
    }
    ids, gestures, slowest = [], [], 0.0
    with logkit.bind(**scope):
        for i in range(args.start, args.start + args.count):
            began = time.perf_counter()
            ids.append(logkit.emit("message", {"i": i}).event_id)
            slowest = max(slowest, time.perf_counter() - began)
        for i in range(args.ephemeral):
            event = logkit.emit("message", {"typing": i}, storage_class="stream")
            gestures.append(event.event_id)
    flushed = logkit.flush(30)
    writer = current().feed_writer
    stats = writer.stats if writer is not None else None
    print(
        json.dumps(
            {
                "ids": ids,
                "ephemeral": gestures,
                "slowest_emit_s": slowest,
                "flushed": flushed,
                "fed": stats.appended if stats else 0,
                "dropped": stats.dropped if stats else 0,
            }
        )
    )
    logkit.shutdown()


if __name__ == "__main__":
    main()
