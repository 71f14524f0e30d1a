"""DSAR on SQLite: export rate over 1M events of one subject, and the time to erase one subject
among 1,000 (their ops, cost and audit events, with the audit payloads erased in the chains).

Run: .venv/bin/python bench/dsar.py [N_EXPORT]
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _timing import BENCH_SCOPE, line

import logkit
from logkit import dsar
from logkit.envelope import Event
from logkit.runtime import Runtime
from logkit.sinks.protocols import AuditStore, Role

N_EXPORT = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
SUBJECTS = 1_000
PER_SUBJECT = {"ops": 50, "cost": 5, "audit": 5}  # 60,000 events in all, 10x that on the timeline
T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
BATCH = 5_000


def event(i: int, user: str, kind: str = "ops") -> Event:
    types = {"ops": "tool_call_ended", "cost": "usage_recorded", "audit": "audit_action"}
    return Event(
        **BENCH_SCOPE,
        user_id=user,
        run_id=f"run_{user}_{i % 10}",
        event_type=types[kind],
        storage_class=kind,
        ts=T0 + dt.timedelta(microseconds=i * 1_000),
        payload={"tool": "crm.lookup", "i": i, "output": {"orders": 3, "tier": "gold"}},
    )


def configure(tmp: Path) -> Runtime:
    db = f"sqlite:///{tmp / 'logkit.db'}"
    return logkit.configure(
        env="dev",
        sinks={"timeline": db, "audit": db, "cost": db},
        dispatch={"spool_path": tmp / "spool.db"},
        redaction={"key": "bench-key", "encryption_key_dir": tmp / "keys"},
        audit={"hmac_key": "bench-checkpoint-key"},
    )


def bench_export(tmp: Path) -> None:
    runtime = configure(tmp)
    timeline = runtime.stores[Role.TIMELINE]
    for start in range(0, N_EXPORT, BATCH):
        timeline.write([event(i, "u_subject") for i in range(start, min(start + BATCH, N_EXPORT))])
    request = dsar.ExportRequest("t_bench", user_id="u_subject")
    start = time.perf_counter()
    result = dsar.export(request, tmp / "export.jsonl")
    seconds = time.perf_counter() - start
    assert result.total == N_EXPORT, result.total
    line(
        f"dsar export from SQLite, {N_EXPORT:,} events of one subject",
        N_EXPORT / seconds,
        "events/s",
        f"{seconds:.1f} s incl. manifest and SHA-256; "
        f"{(tmp / 'export.jsonl').stat().st_size / seconds / 1e6:.0f} MB/s of JSONL",
    )
    logkit.shutdown()


def bench_delete(tmp: Path) -> None:
    runtime = configure(tmp)
    audit = runtime.stores[Role.AUDIT]
    assert isinstance(audit, AuditStore)
    for first in range(0, SUBJECTS, 100):
        ops, cost, chained = [], [], []
        for s in range(first, first + 100):
            user = f"u_{s}"
            ops += [event(s * 100 + i, user) for i in range(PER_SUBJECT["ops"])]
            cost += [event(s * 100 + 50 + i, user, "cost") for i in range(PER_SUBJECT["cost"])]
            audit_events = [
                event(s * 100 + 60 + i, user, "audit") for i in range(PER_SUBJECT["audit"])
            ]
            chained += audit.append(audit_events)
        runtime.stores[Role.COST].write(cost)
        runtime.stores[Role.TIMELINE].write(ops + cost + chained)
    start = time.perf_counter()
    result = dsar.delete("t_bench", "u_500")
    seconds = time.perf_counter() - start
    counts = result.counts()
    assert counts == {"timeline_deleted": 60, "audit_erased": 5, "cost_deleted": 5}, counts
    line(
        f"dsar delete of one subject among {SUBJECTS:,} (SQLite)",
        seconds * 1000,
        "ms",
        f"{sum(counts.values())} events deleted or erased of "
        f"{SUBJECTS * sum(PER_SUBJECT.values()):,}, audit record included",
    )
    logkit.shutdown()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        (Path(tmp_name) / "export").mkdir()
        bench_export(Path(tmp_name) / "export")
    with tempfile.TemporaryDirectory() as tmp_name:
        bench_delete(Path(tmp_name))


if __name__ == "__main__":
    main()
