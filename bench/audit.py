"""Audit chain: chained appends/s on SQLite, verify records/s over 1M records, and the machine's
raw SHA-256 chain-step rate as the physical reference.

Run: .venv/bin/python bench/audit.py [N_VERIFY]
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _timing import BENCH_SCOPE, line

import logkit
from logkit.auditing.checkpoint import load_keys
from logkit.auditing.verify import verify
from logkit.chain import chain_id_of
from logkit.config import AuditConfig
from logkit.envelope import Env, Event
from logkit.sinks.protocols import Role
from logkit.sinks.sqlite import SQLiteBackend

N_APPEND = 20_000
N_VERIFY = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
SCOPE = {
    **BENCH_SCOPE,
    "user_id": "u_1",
    "actor_type": "human",
}


def event(i: int, run_id: str) -> Event:
    return Event(
        **SCOPE,
        run_id=run_id,
        event_type="audit_action",
        storage_class="audit",
        payload={"action": "export", "rows": i, "target": "s3://exports/t_bench"},
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "audit.db"
        backend = SQLiteBackend(db)
        store = backend.store(Role.AUDIT)
        store.append([event(-1, "run_append")])  # schema and connection outside the timing
        events = [event(i, "run_append") for i in range(N_APPEND)]
        start = time.perf_counter()
        for e in events:  # one compare-and-append transaction each, as logkit.audit() does
            store.append([e])
        single = N_APPEND / (time.perf_counter() - start)
        batched_events = [event(i, "run_batched") for i in range(N_APPEND)]
        start = time.perf_counter()
        for i in range(0, N_APPEND, 500):  # what the dispatcher does with audit events
            store.append(batched_events[i : i + 500])
        store_batched = N_APPEND / (time.perf_counter() - start)
        line(
            "chained appends, batches of 500 (SQLite store)",
            store_batched,
            "appends/s",
            "target >= 20,000",
        )
        line(
            "chained appends, one per transaction (SQLite)",
            single,
            "appends/s",
            "the synchronous store step of logkit.audit()",
        )

        logkit.configure(
            env="dev",
            sinks={"timeline": f"sqlite:///{tmp / 'b.db'}", "audit": f"sqlite:///{tmp / 'b.db'}"},
            dispatch={"spool_path": tmp / "spool.db"},
        )
        with logkit.bind(**SCOPE, run_id="run_emit"):
            start = time.perf_counter()
            for i in range(N_APPEND):  # audit events through the dispatcher: chained in batches
                logkit.emit("audit_action", {"action": "export", "rows": i})
            logkit.flush(120)
            batched = N_APPEND / (time.perf_counter() - start)
        line(
            "audit events end to end: emit -> dispatcher -> chain + timeline copy",
            batched,
            "appends/s",
        )

        logkit.configure(
            env="dev",
            sinks={"timeline": f"sqlite:///{tmp / 't.db'}", "audit": f"sqlite:///{tmp / 'a.db'}"},
            dispatch={"spool_path": tmp / "spool.db"},
        )
        with logkit.bind(**SCOPE, run_id="run_api"):
            start = time.perf_counter()
            for i in range(N_APPEND):
                logkit.audit("export", {"rows": i})
            api = N_APPEND / (time.perf_counter() - start)
        logkit.shutdown()
        line("logkit.audit() end to end (gate, chain, timeline copy)", api, "appends/s")

        batch = [event(i, "run_verify") for i in range(N_VERIFY)]
        for i in range(0, N_VERIFY, 5000):  # batched appends just to build the big chain
            store.append(batch[i : i + 5000])
        del batch
        chain_id = chain_id_of("t_bench", "run_verify")
        keys = load_keys(AuditConfig(hmac_key="bench"), Env.PROD)  # type: ignore[arg-type]
        start = time.perf_counter()
        report = verify(store, [chain_id], keys, checkpoints=[])
        one_core = N_VERIFY / (time.perf_counter() - start)
        assert report.ok and report.chains[0].records == N_VERIFY, report.as_dict()
        workers = os.cpu_count() or 1
        start = time.perf_counter()  # what `logkit audit verify` does: every core
        report = verify(
            store, [chain_id], keys, checkpoints=[], uri=f"sqlite:///{db}", workers=workers
        )
        elapsed = time.perf_counter() - start
        assert report.ok and report.chains[0].records == N_VERIFY, report.as_dict()
        line(
            f"verify over {N_VERIFY:,} records (SQLite, {workers} processes)",
            N_VERIFY / elapsed,
            "records/s",
            "target >= 200,000",
        )
        line(f"verify over {N_VERIFY:,} records (SQLite, one process)", one_core, "records/s")

        sample = store.records(chain_id, limit=1)[0]
        record, payload = sample.record_bytes, sample.payload_bytes or b""
        prev = b"0" * 64
        start = time.perf_counter()
        for _ in range(N_VERIFY):  # the physical floor: two SHA-256 per record, nothing else
            prev = hashlib.sha256(prev + record).hexdigest().encode()
            hashlib.sha256(payload)
        raw = N_VERIFY / (time.perf_counter() - start)
        line(
            "raw SHA-256 chain steps (record + payload hash, one core)",
            raw,
            "steps/s",
            f"{len(record)}-byte records",
        )
        backend.close()


if __name__ == "__main__":
    main()
