"""What only the BigQuery backend has: its URI, error mapping, table layout and staged writes.

Runs against the BigQuery emulator (``make services``); each test owns a dataset and drops it.
"""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logkit import ConfigError, Event, SinkUnavailable, SinkWriteError
from logkit.sinks import bigquery, bigquery_merge
from logkit.sinks.bigquery import SCHEMA, BigQueryBackend, Target, parse_uri
from logkit.sinks.protocols import ROLE_TABLES, Query, Role, Selector
from logkit.sinks.registry import open_backend
from tests.conftest import SCOPE
from tests.sinks.backends import uri_for

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def ev(n: int, **fields: Any) -> Event:
    data: dict[str, Any] = {**SCOPE, "event_type": "message", "payload": {"n": n}}
    data["ts"] = T0 + dt.timedelta(seconds=n)
    data.update(fields)
    return Event(**data)


def read_all(backend: BigQueryBackend, role: Role = Role.TIMELINE, **kw: Any) -> list[Event]:
    store, events, cursor = backend.store(role), [], None
    while True:
        page = store.query(Query(tenant_id="t_acme", limit=1000, cursor=cursor, **kw))
        events.extend(page.events)
        if page.next_cursor is None:
            return events
        cursor = page.next_cursor


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[BigQueryBackend]:
    """A backend on a fresh dataset nobody created yet; the dataset is dropped afterwards."""
    backend = BigQueryBackend.from_uri(uri_for("bigquery", tmp_path))
    yield backend
    backend.client.delete_dataset(backend.dataset_id, delete_contents=True, not_found_ok=True)
    backend.close()


@pytest.fixture
def backend(empty: BigQueryBackend) -> BigQueryBackend:
    assert empty.check_schema(create=True) == []
    return empty


@pytest.fixture
def merging(tmp_path: Path) -> Iterator[BigQueryBackend]:
    """A backend on today's former write path, one MERGE job per batch (``?write=merge``)."""
    backend = BigQueryBackend.from_uri(uri_for("bigquery", tmp_path) + "?write=merge")
    assert backend.check_schema(create=True) == []
    yield backend
    backend.client.delete_dataset(backend.dataset_id, delete_contents=True, not_found_ok=True)
    backend.close()


# --- URI --------------------------------------------------------------------------------------


def test_uri_with_defaults_and_with_options() -> None:
    assert parse_uri("bigquery://logkit-test/ds_1") == Target("logkit-test", "ds_1", None, 10.0)
    assert parse_uri("bigquery://my-project-42/Logs?location=europe-west1&timeout=2.5") == (
        Target("my-project-42", "Logs", "europe-west1", 2.5)
    )
    assert parse_uri("bigquery://example.com:my-project/ds").project == "example.com:my-project"
    assert parse_uri("bigquery://logkit-test/ds_1").write == "storage"
    assert parse_uri("bigquery://logkit-test/ds_1?write=merge").write == "merge"


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("bigquery://", "looks like"),
        ("bigquery:///ds", "looks like"),
        ("firestore://logkit-test/ds", "looks like"),
        ("bigquery://logkit-test/ds#frag", "looks like"),
        ("bigquery://Logkit_Test/ds", "project id"),
        ("bigquery://p/ds", "project id"),
        ("bigquery://user@logkit-test/ds", "project id"),
        ("bigquery://logkit-test", "dataset"),
        ("bigquery://logkit-test/", "dataset"),
        ("bigquery://logkit-test/a/b", "dataset"),
        ("bigquery://logkit-test/my-ds", "dataset"),
        ("bigquery://logkit-test/ds?colour=red", "unknown or repeated"),
        ("bigquery://logkit-test/ds?timeout=1&timeout=2", "unknown or repeated"),
        ("bigquery://logkit-test/ds?timeout=0", "timeout"),
        ("bigquery://logkit-test/ds?timeout=-3", "timeout"),
        ("bigquery://logkit-test/ds?timeout=soon", "timeout"),
        ("bigquery://logkit-test/ds?timeout=inf", "timeout"),
        ("bigquery://logkit-test/ds?location=", "location"),
        ("bigquery://logkit-test/ds?location=eu%27%3B", "location"),
        ("bigquery://logkit-test/ds?write=insertall", "write must be"),
    ],
)
def test_bad_uris_are_config_errors(uri: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_uri(uri)


def test_the_registry_builds_it_from_its_uri() -> None:
    backend = open_backend("bigquery://logkit-test/ds_x?location=EU&timeout=3")
    assert isinstance(backend, BigQueryBackend)
    assert backend.describe() == "bigquery logkit-test.ds_x in EU"
    assert backend.store(Role.AUDIT).table_id == "logkit-test.ds_x.audit_events"
    backend.close()


def test_importing_logkit_does_not_import_the_sdk() -> None:
    code = (
        "import sys, logkit, logkit.sinks.bigquery;"
        "assert 'google.cloud.bigquery' not in sys.modules, 'imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_missing_sdk_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if the package were not installed: the import of google.cloud.bigquery fails.
    monkeypatch.delattr("google.cloud.bigquery")
    monkeypatch.setitem(sys.modules, "google.cloud.bigquery", None)
    with pytest.raises(ConfigError, match=r"pip install 'logkit\[gcp\]'"):
        BigQueryBackend.from_uri("bigquery://logkit-test/ds")


# --- error mapping ----------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_backend_is_unavailable_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("BIGQUERY_STORAGE_EMULATOR_HOST", f"127.0.0.1:{closed_port()}")
    backend = BigQueryBackend.from_uri("bigquery://logkit-test/ds_down?timeout=1")
    merging = BigQueryBackend.from_uri("bigquery://logkit-test/ds_down?timeout=1&write=merge")
    store = backend.store(Role.TIMELINE)
    secret = ev(1, payload={"card": "4111-1111-1111-1111"})
    big = [ev(i) for i in range(bigquery_merge.SMALL_BATCH_ROWS + 1)]
    calls = {
        "write": lambda: store.write([secret]),
        "merge write": lambda: merging.store(Role.TIMELINE).write([secret]),
        "staged merge write": lambda: merging.store(Role.TIMELINE).write(big),
        "query": lambda: store.query(Query(tenant_id="t_acme")),
        "delete": lambda: store.delete(Selector(tenant_id="t_acme")),
        "check_schema": lambda: backend.check_schema(create=True),
    }
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(SinkUnavailable) as info:
            call()
        assert time.monotonic() - started < 5, name  # bounded by the 1 s timeout, no retry loop
        assert "4111" not in str(info.value) and info.value.__cause__ is not None
    backend.close()
    merging.close()


def test_driver_errors_map_onto_logkit_errors() -> None:
    from google.api_core import exceptions as api

    refused = api.BadRequest(
        "Could not parse 'sk-live-secret' as INT64",
        errors=[{"reason": "invalidQuery", "message": "sk-live-secret"}],
    )
    error = bigquery._translate(refused, "write")
    assert isinstance(error, SinkWriteError)
    assert "secret" not in str(error) and "400" in str(error) and "invalidQuery" in str(error)
    conflict = api.BadRequest("Could not serialize access to table due to concurrent update")
    assert isinstance(bigquery._translate(conflict, "write"), SinkUnavailable)
    for transient in (
        api.ServiceUnavailable("down"),
        api.TooManyRequests("slow down"),
        api.Forbidden("quota"),
        api.RetryError("gave up", cause=None),
    ):
        assert isinstance(bigquery._translate(transient, "query"), SinkUnavailable)
    assert bigquery._translate(KeyError("a bug"), "write") is None  # bugs are not disguised


def test_missing_tables_are_unavailable_not_rejected(empty: BigQueryBackend) -> None:
    # Not the events' fault: the dispatcher must spool them, not bury them as rejects.
    with pytest.raises(SinkUnavailable, match="check-sinks --create"):
        empty.store(Role.TIMELINE).write([ev(1)])
    with pytest.raises(SinkUnavailable, match="check-sinks --create"):
        empty.store(Role.TIMELINE).query(Query(tenant_id="t_acme"))


# --- layout and schema check ------------------------------------------------------------------


def test_tables_are_day_partitioned_on_ts_and_clustered(backend: BigQueryBackend) -> None:
    normal = {"INT64": "INTEGER"}
    for name in ROLE_TABLES.values():
        table = backend.client.get_table(f"{backend.dataset_id}.{name}")
        assert table.time_partitioning.type_ == "DAY"
        assert table.time_partitioning.field == "ts"
        assert table.clustering_fields == ["tenant_id", "run_id"]
        got = [(f.name, normal.get(f.field_type, f.field_type), f.mode) for f in table.schema]
        assert got == [(c.name, normal.get(c.type, c.type), c.mode) for c in SCHEMA]
    required = {c.name for c in SCHEMA if c.mode == "REQUIRED"}
    assert required == {"event_id", "tenant_id", "event_type", "ts", "ts_us", "body"}


def test_check_schema_reports_what_is_missing(empty: BigQueryBackend) -> None:
    bq = empty.bq
    assert empty.check_schema() == [f"dataset {empty.dataset_id} does not exist"]
    empty.client.create_dataset(empty.dataset_id)
    table = bq.Table(
        f"{empty.dataset_id}.timeline_events",
        schema=[
            bq.SchemaField(c.name, "STRING" if c.name == "ts_us" else c.type, mode=c.mode)
            for c in SCHEMA
            if c.name != "body"
        ],
    )
    empty.client.create_table(table)
    assert empty.check_schema() == [
        "table timeline_events lacks columns body",
        "column timeline_events.ts_us is STRING, expected INT64",
        "table audit_events does not exist",
        "table cost_events does not exist",
    ]
    # create adds what is missing but never alters an existing table
    assert empty.check_schema(create=True) == [
        "table timeline_events lacks columns body",
        "column timeline_events.ts_us is STRING, expected INT64",
    ]


# --- writes -----------------------------------------------------------------------------------


def count(backend: BigQueryBackend, table: str = "timeline_events") -> int:
    sql = f"SELECT COUNT(*) AS n FROM `{backend.dataset_id}.{table}`"  # counts duplicates too
    return int(next(iter(backend.client.query(sql).result()))["n"])


def tables(backend: BigQueryBackend) -> set[str]:
    return {t.table_id for t in backend.client.list_tables(backend.dataset_id)}


def test_staged_merges_stay_idempotent_and_leave_no_staging_table(
    merging: BigQueryBackend,
) -> None:
    backend = merging
    n = bigquery_merge.SMALL_BATCH_ROWS * 3
    events = [ev(i, run_id="run_big") for i in range(n)]
    more = [ev(n + i, run_id="run_big") for i in range(n // 2)]
    store = backend.store(Role.TIMELINE)
    store.write(events)
    store.write(events)  # again, whole
    store.write(events[: n // 2] + more)  # half old, half new
    store.write(events[:3])  # and a little, through the small-batch path
    expected = events + more
    assert count(backend) == len(expected)
    assert [e.event_id for e in read_all(backend)] == [e.event_id for e in expected]
    assert read_all(backend) == expected
    assert tables(backend) == set(ROLE_TABLES.values())


def test_concurrent_staged_mergers_keep_their_own_rows(merging: BigQueryBackend) -> None:
    backend = merging
    n = bigquery_merge.SMALL_BATCH_ROWS * 2
    batches = [[ev(i, run_id=f"run_{w}") for i in range(n)] for w in range(4)]
    store, failures = backend.store(Role.TIMELINE), []

    def writer(batch: list[Event]) -> None:
        try:
            store.write(batch)
        except Exception as exc:  # surfaced by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    for w, batch in enumerate(batches):
        assert read_all(backend, run_id=f"run_{w}") == batch
    assert count(backend) == 4 * n


def test_a_merge_across_midnight_is_deduplicated_on_both_days(
    merging: BigQueryBackend,
) -> None:
    backend = merging
    midnight = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    events = [ev(i, ts=midnight + dt.timedelta(minutes=i - 3)) for i in range(6)]
    store = backend.store(Role.TIMELINE)
    store.write(events)
    store.write(events)
    store.write(events[2:4])  # a window covering only the two sides of midnight
    assert count(backend) == 6
    assert read_all(backend) == events


def test_ts_and_ts_us_columns_agree(backend: BigQueryBackend) -> None:
    event = ev(0, ts=dt.datetime(2026, 11, 3, 4, 5, 6, 789012, tzinfo=dt.UTC), run_id="r1")
    backend.store(Role.COST).write([event])
    sql = (
        "SELECT ts, ts_us, env, run_id, event_type, severity, storage_class"
        f" FROM `{backend.dataset_id}.cost_events`"
    )
    (row,) = list(backend.client.query(sql).result())
    assert row["ts"] == event.ts and row["ts_us"] == 1_793_678_706_789_012
    assert (row["env"], row["run_id"], row["event_type"]) == ("prod", "r1", "message")
    assert (row["severity"], row["storage_class"]) == ("info", "ops")
