"""Platform scale: N writer processes (N = 1, 2, 4, 8) against the emulators, new paths beside
today's in the same run.

Timeline: each writer process writes WRITER_EVENTS events in batches of BATCH (what one
instance's dispatcher hands its store every 0.25 s at ~400 events/s) to one BigQuery table,
through the Storage Write API (``storage``) and through one MERGE job per batch (``merge``,
logkit's former path). Target: with 8 writers, storage >= 4x merge. The same pair is also run
with batches of LARGE_BATCH at the most writers, reported only: the emulator runs a MERGE in
~0.1 s with no DML concurrency limit, so large batches amortise it there (on BigQuery, 2
concurrent DML per table cap it whatever the batch size: docs/sinks.md). Every run checks each
event is stored exactly once (rows and distinct event_ids).

Audit: each writer process runs THREADS threads, each appending APPENDS single audit records
(one ``store.append([event])`` at a time, as ``logkit.audit()`` does for concurrent requests)
to one tenant's run-less chain on Firestore: ``record`` (today's: a head read and one commit per
record, one ``_tenant`` chain), ``block`` (group commit of blocks on the one chain) and ``lanes``
(blocks on a lane per writer). Target: with 8 writers, the new path >= 10x ``record``. Every
run verifies the tenant's chains (logkit.auditing.verify) and checks each event once.

Writers are separate processes started once (spawn) and reused; a run's wall time is from the
first writer's start to the last one's end, after every writer has opened its client and
written one warm-up event. Also printed: what reading back one row per event_id costs.

Run: .venv/bin/python bench/scale.py [N,N,... [BATCH]]   (emulators from `make services`)
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: tests.*
from _timing import BENCH_SCOPE, line

from tests import services

WRITERS = [int(n) for n in sys.argv[1].split(",")] if len(sys.argv) > 1 else [1, 2, 4, 8]
# Events per write: what one instance's dispatcher hands its store every 0.25 s at about 400
# events/s. LARGE_BATCH is reported beside it at the most writers (a saturated dispatcher).
BATCH = int(sys.argv[2]) if len(sys.argv) > 2 else 100
LARGE_BATCH = 500
WRITER_EVENTS = 2_000
THREADS = 4
APPENDS = 50  # per thread: long enough that a round is not mostly start-up
PROJECT = "logkit-test"
KEY = "bench-scale-key"


# --- in the writer processes ----------------------------------------------------------------


def _event(run_id: str | None, payload: dict[str, Any], **extra: Any) -> Any:
    from logkit.envelope import Event

    return Event(**{**BENCH_SCOPE, **extra}, run_id=run_id, payload=payload)


def _timeline_job(
    uri: str, writer: int, batch: int
) -> tuple[Callable[[], None], Callable[[], Any]]:
    from logkit.sinks.protocols import Role
    from logkit.sinks.registry import open_backend

    backend = open_backend(uri)
    store = backend.store(Role.TIMELINE)
    store.write([_event(None, {"warm": writer}, tenant_id="t_warm", event_type="message")])
    events = [
        _event(f"run_{writer}", {"writer": writer, "i": i, "tool": "search"}, event_type="message")
        for i in range(WRITER_EVENTS)
    ]

    def run() -> None:
        for start in range(0, len(events), batch):
            store.write(events[start : start + batch])

    def done() -> int:
        backend.close()
        return len(events)

    return run, done


def _audit_job(uri: str, writer: int, _: int) -> tuple[Callable[[], None], Callable[[], Any]]:
    from logkit.errors import SinkUnavailable
    from logkit.sinks.protocols import AuditStore, Role
    from logkit.sinks.registry import open_backend

    backend = open_backend(uri)
    store = backend.store(Role.AUDIT)
    assert isinstance(store, AuditStore)
    kind = {"event_type": "audit_action", "storage_class": "audit"}
    store.append([_event(None, {"warm": writer}, tenant_id="t_warm", **kind)])
    per_thread = [
        [
            _event(None, {"action": "export", "writer": writer, "t": t, "i": i}, **kind)
            for i in range(APPENDS)
        ]
        for t in range(THREADS)
    ]
    retries = [0]

    def thread(events: list[Any]) -> None:
        for event in events:
            while True:  # a lost race 100 times in a row: the dispatcher would retry later
                try:
                    store.append([event])
                    break
                except SinkUnavailable:
                    retries[0] += 1

    def run() -> None:
        threads = [threading.Thread(target=thread, args=(e,)) for e in per_thread]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def done() -> tuple[int, int]:
        backend.close()
        return THREADS * APPENDS, retries[0]

    return run, done


def worker(env: dict[str, str], conn: Connection) -> None:
    os.environ.update(env)
    jobs = {"timeline": _timeline_job, "audit": _audit_job}
    while (message := conn.recv()) is not None:
        kind, uri, writer, batch = message
        try:
            run, done = jobs[kind](uri, writer, batch)
            conn.send(("ready", None))
            conn.recv()  # go
            start = time.time()
            run()
            end = time.time()
            conn.send(("done", (start, end, done())))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class Writers:
    """WRITERS[-1] processes, started once; a run uses the first N of them."""

    def __init__(self, env: dict[str, str], count: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs = []
        for _ in range(count):
            here, there = ctx.Pipe()
            proc = ctx.Process(target=worker, args=(env, there), daemon=True)
            proc.start()
            self.conns.append(here)
            self.procs.append(proc)

    def run(self, kind: str, uri: str, n: int, batch: int = 0) -> tuple[float, list[Any]]:
        """Seconds from the first start to the last end, and each writer's result."""
        conns = self.conns[:n]
        for writer, conn in enumerate(conns):
            conn.send((kind, uri, writer, batch))
        for conn in conns:
            self._expect(conn, "ready")
        for conn in conns:
            conn.send("go")
        spans = [self._expect(conn, "done") for conn in conns]
        return max(s[1] for s in spans) - min(s[0] for s in spans), [s[2] for s in spans]

    @staticmethod
    def _expect(conn: Connection, status: str) -> Any:
        got, value = conn.recv()
        if got != status:
            raise SystemExit(f"a writer failed: {value}")
        return value

    def close(self) -> None:
        for conn in self.conns:
            conn.send(None)
        for proc in self.procs:
            proc.join(30)


# --- checks and figures in the main process -------------------------------------------------


def timeline_round(writers: Writers, path: str, n: int, batch: int = BATCH) -> float:
    from logkit.sinks.bigquery import BigQueryBackend

    dataset = f"scale_{path}_{n}_{uuid.uuid4().hex[:8]}"
    options = "?write=merge&timeout=60" if path == "merge" else "?timeout=60"
    uri = f"bigquery://{PROJECT}/{dataset}{options}"
    backend = BigQueryBackend.from_uri(uri)
    assert backend.check_schema(create=True) == []
    try:
        seconds, results = writers.run("timeline", uri, n, batch)
        total = sum(results)
        sql = (
            "SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS d"
            f" FROM `{backend.dataset_id}.timeline_events` WHERE tenant_id = 't_bench'"
        )
        row = next(iter(backend.client.query(sql).result()))
        if not row["n"] == row["d"] == total:
            raise SystemExit(f"{path} N={n}: {row['n']} rows, {row['d']} events, {total} sent")
        if n == WRITERS[-1] and path == "storage" and batch == BATCH:
            dedup_cost(backend)
    finally:
        backend.client.delete_dataset(backend.dataset_id, delete_contents=True, not_found_ok=True)
        backend.close()
    return total / seconds


def dedup_cost(backend: Any) -> None:
    """One page of a run (500 events) and a tenant count, with and without one-row-per-event."""
    from logkit.sinks.bigquery import DEDUP

    table = f"`{backend.dataset_id}.timeline_events`"
    where = "WHERE tenant_id = 't_bench' AND run_id = 'run_0'"
    page = f"SELECT body FROM {table} {where} {{}} ORDER BY ts_us, event_id LIMIT 500"
    queries = {
        "page of a run, plain": page.format(""),
        "page of a run, one row per event_id": page.format(DEDUP),
        "tenant count, COUNT(*)": f"SELECT COUNT(*) FROM {table} WHERE tenant_id = 't_bench'",
        "tenant count, COUNT(DISTINCT event_id)": (
            f"SELECT COUNT(DISTINCT event_id) FROM {table} WHERE tenant_id = 't_bench'"
        ),
    }
    for name, sql in queries.items():
        best = min(
            _timed(lambda sql=sql: list(backend.client.query(sql).result())) for _ in range(5)
        )
        line(f"BigQuery read: {name}", best * 1000, "ms", "best of 5, emulator")


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


AUDIT_PATHS = {"record": "&append=record", "block": "", "lanes": "&lanes=writer"}


def audit_round(writers: Writers, path: str, n: int) -> tuple[float, int]:
    from logkit.auditing.checkpoint import load_keys
    from logkit.auditing.verify import verify
    from logkit.config import AuditConfig
    from logkit.envelope import Env
    from logkit.sinks.firestore import FirestoreBackend
    from logkit.sinks.protocols import AuditStore, Role

    uri = f"firestore://{PROJECT}?root=scale{uuid.uuid4().hex[:10]}&timeout=30{AUDIT_PATHS[path]}"
    seconds, results = writers.run("audit", uri, n)
    total, retries = sum(r[0] for r in results), sum(r[1] for r in results)
    backend = FirestoreBackend.from_uri(uri)
    store = backend.store(Role.AUDIT)
    assert isinstance(store, AuditStore)
    chains = store.chain_ids("t_bench")
    keys = load_keys(AuditConfig(hmac_key=KEY), Env.PROD)  # type: ignore[arg-type]
    report = verify(store, chains, keys, checkpoints=[])
    records = [r for chain_id in chains for r in store.records(chain_id, limit=100_000)]
    backend.close()
    if not report.ok or len(records) != total or len({r.event_id for r in records}) != total:
        raise SystemExit(f"audit {path} N={n}: chains {report.as_dict()}, {len(records)} records")
    return total / seconds, retries


def main() -> None:
    env = services.load()
    if not env:
        raise SystemExit("no emulator addresses: run `make services` first")
    os.environ.update(env)
    writers = Writers(env, max(WRITERS))
    try:
        timeline: dict[tuple[str, int], float] = {}
        for n in WRITERS:
            for path in ("merge", "storage"):
                timeline[(path, n)] = rate = timeline_round(writers, path, n)
                line(
                    f"timeline writes, {path}, {n} writer(s)",
                    rate,
                    "events/s",
                    f"batches of {BATCH}",
                )
            ratio = timeline[("storage", n)] / timeline[("merge", n)]
            line(f"timeline writes, storage / merge, {n} writer(s)", ratio, "x", "target >= 4 at 8")
        n = max(WRITERS)
        large = {
            path: timeline_round(writers, path, n, LARGE_BATCH) for path in ("merge", "storage")
        }
        for path, rate in large.items():
            line(
                f"timeline writes, {path}, {n} writer(s)",
                rate,
                "events/s",
                f"batches of {LARGE_BATCH}, reported only",
            )
        ratio = large["storage"] / large["merge"]
        line(
            f"timeline writes, storage / merge, {n} writer(s), batches of {LARGE_BATCH}",
            ratio,
            "x",
            "reported only",
        )
        audit: dict[tuple[str, int], float] = {}
        for n in WRITERS:
            for path in AUDIT_PATHS:
                rate, retries = audit_round(writers, path, n)
                audit[(path, n)] = rate
                note = f"{THREADS} threads each, chains verified"
                note += f", {retries} appends re-tried after 100 lost races" if retries else ""
                line(
                    f"audit appends, one tenant's run-less chain, {path}, {n} writer(s)",
                    rate,
                    "appends/s",
                    note,
                )
            for path in ("block", "lanes"):
                ratio = audit[(path, n)] / audit[("record", n)]
                line(
                    f"audit appends, {path} / record, {n} writer(s)",
                    ratio,
                    "x",
                    "target >= 10 at 8",
                )
    finally:
        writers.close()


if __name__ == "__main__":
    main()
