"""A writer process for the multi-writer audit tests: one "instance" appending audit records.

Each process opens its own backend (its own client, its own writer id: another machine, as far
as Firestore can tell) and runs ``threads`` threads, each appending ``per_thread`` single
records one call at a time, the way ``logkit.audit()`` does for concurrent requests.
"""

from __future__ import annotations

import threading

from logkit.envelope import Event
from logkit.sinks.protocols import AuditStore, Role
from logkit.sinks.registry import open_backend
from tests.conftest import SCOPE


def append_records(
    uri: str, writer: int, threads: int, per_thread: int, run_id: str | None
) -> list[tuple[str, str, int]]:
    """(event_id, chain_id, seq) of every record this process appended."""
    backend = open_backend(uri)
    store = backend.store(Role.AUDIT)
    assert isinstance(store, AuditStore)
    out: list[tuple[str, str, int]] = []
    errors: list[BaseException] = []

    def run(thread: int) -> None:
        try:
            for i in range(per_thread):
                event = Event(
                    **SCOPE,
                    run_id=run_id,
                    event_type="audit_action",
                    storage_class="audit",
                    payload={"action": "export", "writer": writer, "thread": thread, "i": i},
                )
                (chained,) = store.append([event])
                out.append((chained.event_id, chained.chain_id or "", chained.seq or 0))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    backend.close()
    if errors:
        raise errors[0]
    return out
