"""The BigQuery write path through the Storage Write API, against the emulator's gRPC port.

No job per batch (counted on the emulator), exactly once per append across lost answers and
retries, one row per event_id in every read whatever copies exist, and schema evolution in both
directions (an older table lacking a column, a newer one with a column logkit does not know).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logkit import Event, SinkUnavailable
from logkit.sinks import bigquery_write
from logkit.sinks.bigquery import SCHEMA, BigQueryBackend, BigQueryStore
from logkit.sinks.bigquery_write import StreamWriter
from logkit.sinks.protocols import Query, Role, Selector
from tests.conftest import SCOPE
from tests.sinks.backends import uri_for

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def ev(n: int, **fields: Any) -> Event:
    data: dict[str, Any] = {**SCOPE, "event_type": "message", "payload": {"n": n}}
    data["ts"] = T0 + dt.timedelta(seconds=n)
    data.update(fields)
    return Event(**data)


def open_backend(tmp_path: Path, dataset: str | None = None, options: str = "") -> BigQueryBackend:
    uri = uri_for("bigquery", tmp_path)
    if dataset is not None:
        uri = uri.rsplit("/", 1)[0] + "/" + dataset
    return BigQueryBackend.from_uri(uri + options)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[BigQueryBackend]:
    backend = open_backend(tmp_path)
    assert backend.check_schema(create=True) == []
    yield backend
    backend.client.delete_dataset(backend.dataset_id, delete_contents=True, not_found_ok=True)
    backend.close()


def rows(backend: BigQueryBackend, table: str = "timeline_events") -> int:
    """Physical rows, duplicates included (no dedup)."""
    sql = f"SELECT COUNT(*) AS n FROM `{backend.dataset_id}.{table}`"
    return int(next(iter(backend.client.query(sql).result()))["n"])


def read_all(store: BigQueryStore, limit: int = 7, **kw: Any) -> list[Event]:
    events, cursor = [], None
    while True:
        page = store.query(Query(tenant_id="t_acme", limit=limit, cursor=cursor, **kw))
        events.extend(page.events)
        if page.next_cursor is None:
            return events
        cursor = page.next_cursor


def writer_of(store: BigQueryStore) -> StreamWriter:
    return store.backend.writer(store.table_id, SCHEMA, ("tenant_id", "event_id"))


# --- no job on the write path --------------------------------------------------------------


def jobs_on(backend: BigQueryBackend, since: dt.datetime) -> list[Any]:
    """Every job created since ``since`` that names this backend's dataset."""
    dataset = backend.dataset_id.split(".")[1]
    found = []
    for job in backend.client.list_jobs(min_creation_time=since, all_users=True):
        text = getattr(job, "query", None) or ""
        destination = getattr(job, "destination", None)
        if dataset in text or (destination is not None and destination.dataset_id == dataset):
            found.append(job)
    return found


def test_writes_run_no_job_at_all(backend: BigQueryBackend, tmp_path: Path) -> None:
    store = backend.store(Role.TIMELINE)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    batches = [[ev(b * 100 + i, run_id="run_jobs") for i in range(60)] for b in range(20)]
    for batch in batches:
        store.write(batch)
    store.write(batches[0])  # a re-write too
    backend.store(Role.COST).write([ev(5000 + i) for i in range(10)])
    assert jobs_on(backend, since) == []
    assert rows(backend) == 20 * 60 + 60  # the re-write is a second append: dedup'd on read
    assert read_all(store, limit=2000, run_id="run_jobs") == [e for b in batches for e in b]

    # The measure can see jobs: the MERGE path runs one DML job per batch.
    merging = open_backend(tmp_path, backend.dataset_id.split(".")[1], "?write=merge")
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    for batch in range(3):
        merging.store(Role.TIMELINE).write([ev(9000 + batch * 10 + i) for i in range(5)])
    kinds = [job.statement_type for job in jobs_on(backend, since)]
    merging.close()
    assert kinds.count("MERGE") == 3


# --- exactly once per append ------------------------------------------------------------------


class LostAnswers:
    """The real write client, except that chosen appends lose their answer in transit.

    ``after``: the append reaches BigQuery and is stored, then the caller sees a deadline
    (the ambiguous case offsets exist for). ``before``: the connection fails before sending.
    """

    def __init__(self, real: Any, plan: list[str]) -> None:
        self.real, self.plan, self.transport = real, plan, real.transport

    def append_rows(self, requests: Any, **kwargs: Any) -> Any:
        from google.api_core import exceptions as api

        step = self.plan.pop(0) if self.plan else "ok"
        if step == "before":
            raise api.ServiceUnavailable("connection reset")
        answers = list(self.real.append_rows(requests, **kwargs))
        if step == "after":
            raise api.DeadlineExceeded("answer lost")
        return iter(answers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def lose(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``lose(plan)``: every write client built from now on follows one shared plan (a writer
    builds a new client after a transport failure)."""
    real = bigquery_write.write_client

    def install(plan: list[str]) -> None:
        monkeypatch.setattr(bigquery_write, "write_client", lambda: LostAnswers(real(), plan))

    return install


def test_a_retried_append_whose_answer_was_lost_is_stored_once(
    backend: BigQueryBackend, lose: Any
) -> None:
    lose(["ok", "after"])  # the stream moves on from offset 0, then an answer is lost
    store = backend.store(Role.TIMELINE)
    first, second = [ev(i) for i in range(30)], [ev(100 + i) for i in range(20)]
    store.write(first[:5])
    with pytest.raises(SinkUnavailable):
        store.write(first[5:])
    store.write(first[5:])  # the dispatcher's retry: same events, same offset, stored once
    store.write(second)
    assert rows(backend) == 50  # physically once: no duplicate for reads to hide
    assert read_all(store) == first + second


def test_an_unknown_append_is_settled_before_a_different_batch(
    backend: BigQueryBackend, lose: Any
) -> None:
    lose(["after", "before"])
    store = backend.store(Role.TIMELINE)
    lost, other = [ev(i) for i in range(10)], [ev(50 + i) for i in range(10)]
    with pytest.raises(SinkUnavailable):
        store.write(lost)  # stored, answer lost
    with pytest.raises(SinkUnavailable):
        store.write(other)  # the settling re-send fails before reaching BigQuery
    store.write(other)  # settles `lost` at its offset (already there), then appends `other`
    store.write(lost + other)  # a spool replay of both: a second copy, hidden by the reads
    assert rows(backend) == 20 + 20
    assert read_all(store) == lost + other
    assert store.count(Selector(tenant_id="t_acme")) == 20


def test_a_refused_stream_is_replaced_without_losing_events(backend: BigQueryBackend) -> None:
    store = backend.store(Role.TIMELINE)
    store.write([ev(i) for i in range(3)])
    writer = writer_of(store)
    stream = writer._stream
    assert stream is not None
    writer.client.finalize_write_stream(name=stream.name)  # e.g. cleaned up behind our back
    with pytest.raises(SinkUnavailable, match="new stream"):
        store.write([ev(10)])
    store.write([ev(10)])
    assert writer._stream is not None and writer._stream.name != stream.name
    assert [e.payload["n"] for e in read_all(store)] == [0, 1, 2, 10]
    assert rows(backend) == 4


def test_instances_write_concurrently_each_through_its_own_stream(
    backend: BigQueryBackend, tmp_path: Path
) -> None:
    dataset = backend.dataset_id.split(".")[1]
    instances = [open_backend(tmp_path, dataset) for _ in range(4)]
    batches = [[ev(w * 1000 + i, run_id=f"run_{w}") for i in range(120)] for w in range(4)]
    failures: list[Exception] = []

    def run(instance: BigQueryBackend, batch: list[Event]) -> None:
        try:
            for start in range(0, len(batch), 40):
                instance.store(Role.TIMELINE).write(batch[start : start + 40])
        except Exception as exc:  # surfaced by the assertion below
            failures.append(exc)

    pairs = zip(instances, batches, strict=True)
    threads = [threading.Thread(target=run, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    streams = [writer_of(i.store(Role.TIMELINE))._stream for i in instances]
    for instance in instances:
        instance.close()
    assert failures == [] and len({s.name for s in streams if s is not None}) == 4
    store = backend.store(Role.TIMELINE)
    for w, batch in enumerate(batches):
        assert read_all(store, limit=50, run_id=f"run_{w}") == batch
    assert rows(backend) == 4 * 120


# --- one row per event_id in every read ----------------------------------------------------


def test_copies_written_by_two_instances_read_as_one_event(
    backend: BigQueryBackend, tmp_path: Path
) -> None:
    events = [ev(i, run_id="run_d", user_id=f"u{i % 2}") for i in range(12)]
    other = open_backend(tmp_path, backend.dataset_id.split(".")[1])
    backend.store(Role.TIMELINE).write(events)
    other.store(Role.TIMELINE).write(events[4:])  # a replay elsewhere: second copies
    other.close()
    store = backend.store(Role.TIMELINE)
    assert rows(backend) == 20
    assert read_all(store) == events
    assert read_all(store, run_id="run_d", user_id="u1") == events[1::2]
    u0 = Selector(tenant_id="t_acme", user_id="u0")
    assert store.count(u0) == 6
    assert store.delete(u0) == 6  # events, not rows: every copy goes
    assert store.count(u0) == 0 and rows(backend) == 20 - 10
    assert store.tenant_ids() == ["t_acme"]


# --- schema evolution -----------------------------------------------------------------------


def create_table(backend: BigQueryBackend, schema: list[Any]) -> None:
    backend.create_dataset()
    table = backend.new_table(f"{backend.dataset_id}.timeline_events")
    table.schema = schema
    backend.client.create_table(table)


def test_an_older_table_without_a_column_takes_rows_then_gains_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = open_backend(tmp_path)
    older = [f for f in backend.table_schema() if f.name != "severity"]
    create_table(backend, older)
    store = backend.store(Role.TIMELINE)
    try:
        store.write([ev(1, severity="warning")])  # the table lacks severity: NULL, no error
        problems = backend.check_schema(create=True)  # a deploy adds the NULLABLE column
        assert problems == [] and any(
            f.name == "severity"
            for f in backend.client.get_table(f"{backend.dataset_id}.timeline_events").schema
        )
        monkeypatch.setattr(bigquery_write, "STREAM_RECHECK_S", 0.0)
        store.write([ev(2, severity="error")])  # a fresh stream that knows the column
        sql = f"SELECT ts_us, severity FROM `{backend.dataset_id}.timeline_events` ORDER BY ts_us"
        got = [row["severity"] for row in backend.client.query(sql).result()]
        assert got == [None, "error"]
        assert [e.severity.value for e in read_all(store)] == ["warning", "error"]  # from body
    finally:
        backend.client.delete_dataset(backend.dataset_id, delete_contents=True)
        backend.close()


def test_a_newer_table_with_a_column_logkit_does_not_know_takes_rows(tmp_path: Path) -> None:
    backend = open_backend(tmp_path)
    newer = [*backend.table_schema(), backend.bq.SchemaField("region", "STRING", mode="NULLABLE")]
    create_table(backend, newer)
    try:
        assert backend.check_schema(create=True) == []  # an unknown column is no problem
        store = backend.store(Role.TIMELINE)
        events = [ev(i) for i in range(3)]
        store.write(events)
        assert read_all(store) == events
        table = f"{backend.dataset_id}.timeline_events"
        sql = f"SELECT COUNT(*) AS n FROM `{table}` WHERE region IS NULL"
        assert next(iter(backend.client.query(sql).result()))["n"] == 3
    finally:
        backend.client.delete_dataset(backend.dataset_id, delete_contents=True)
        backend.close()


def test_reads_while_instances_append_neither_block_nor_miss_rows(
    backend: BigQueryBackend, tmp_path: Path
) -> None:
    """The live shape: writers append (gRPC) while readers page (REST jobs), all at once."""
    dataset = backend.dataset_id.split(".")[1]
    instances = [open_backend(tmp_path, dataset) for _ in range(3)]
    store = backend.store(Role.TIMELINE)
    written: list[Event] = []
    done = threading.Event()
    failures: list[BaseException] = []

    def write(instance: BigQueryBackend, w: int) -> None:
        try:
            for b in range(12):
                batch = [ev(w * 1000 + b * 10 + i, run_id="run_live") for i in range(10)]
                instance.store(Role.TIMELINE).write(batch)
                written.extend(batch)
        except BaseException as exc:
            failures.append(exc)

    def read() -> None:
        try:
            while not done.is_set():
                store.query(Query(tenant_id="t_acme", run_id="run_live", limit=50))
                store.count(Selector(tenant_id="t_acme"))
        except BaseException as exc:
            failures.append(exc)

    writers = [threading.Thread(target=write, args=(i, w)) for w, i in enumerate(instances)]
    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in writers + readers:
        thread.start()
    for thread in writers:
        thread.join(120)
    done.set()
    for thread in readers:
        thread.join(120)
    for instance in instances:
        instance.close()
    assert failures == [] and not any(t.is_alive() for t in writers + readers)
    got = read_all(store, limit=500, run_id="run_live")
    assert got == sorted(written, key=lambda e: (e.ts, e.event_id))
