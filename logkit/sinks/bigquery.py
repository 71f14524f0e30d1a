"""Google BigQuery backend: one table per role, written through the Storage Write API.

URI: ``bigquery://PROJECT/DATASET`` with optional ``?location=EU&timeout=10&write=storage``
(``timeout``: seconds per API call; ``write``: ``storage``, the default, or ``merge``, the former
one-DML-job-per-batch path kept in logkit.sinks.bigquery_merge). ``google-cloud-bigquery`` and
``google-cloud-bigquery-storage`` are imported only when a backend is built (``logkit[gcp]``).
With ``BIGQUERY_EMULATOR_HOST`` set, the clients talk to that emulator anonymously (its gRPC
port from ``BIGQUERY_STORAGE_EMULATOR_HOST``).

Writes run no job: rows go to a committed write stream at known offsets, exactly once per
append (logkit.sinks.bigquery_write). An event_id written by two different appends (a re-emit,
a spool replayed after a writer died not knowing its outcome) is stored twice, so every read
keeps one row per (tenant_id, event_id): ``query`` with ``QUALIFY ROW_NUMBER() OVER (PARTITION
BY event_id ...) = 1``, ``count`` and ``delete`` with ``COUNT(DISTINCT event_id)``; ``delete``
removes every copy. DML runs only for deletes (erasure, retention), never per batch.
"""

from __future__ import annotations

import functools
import math
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, urlsplit

from logkit.envelope import Event
from logkit.errors import ConfigError, LogkitError, SinkUnavailable, SinkWriteError
from logkit.sinks import cursor
from logkit.sinks.bigquery_write import Column, StreamWriter, check_available
from logkit.sinks.protocols import ROLE_TABLES, Page, Query, Role, Selector, clamp_limit, sequence

T = TypeVar("T")

SCHEMA: tuple[Column, ...] = (
    Column("event_id", "STRING", "REQUIRED"),
    Column("tenant_id", "STRING", "REQUIRED"),
    Column("env", "STRING", "NULLABLE"),
    Column("project_id", "STRING", "NULLABLE"),
    Column("surface_id", "STRING", "NULLABLE"),
    Column("app_id", "STRING", "NULLABLE"),
    Column("run_id", "STRING", "NULLABLE"),
    Column("step_id", "STRING", "NULLABLE"),
    Column("user_id", "STRING", "NULLABLE"),
    Column("event_type", "STRING", "REQUIRED"),
    Column("severity", "STRING", "NULLABLE"),
    Column("storage_class", "STRING", "NULLABLE"),
    Column("ts", "TIMESTAMP", "REQUIRED"),
    Column("ts_us", "INT64", "REQUIRED"),
    Column("body", "STRING", "REQUIRED"),  # Event.model_dump_json(): reads rebuild from it
)
"""Columns of every role table (partitioned by DAY on ``ts``, clustered by tenant_id, run_id)."""

PARTITION_FIELD = "ts"
CLUSTERING_FIELDS = ("tenant_id", "run_id")

WRITE_MODES = ("storage", "merge")
JOB_WAIT_FACTOR = 6  # a job (load, DML) may run for this many API-call timeouts
# One row per (tenant, event_id) whatever the copies: the first in time, ties by body.
DEDUP = "QUALIFY ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY ts_us, body) = 1"

_DATASET = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_PROJECT = re.compile(r"^(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_LOCATION = re.compile(r"^[A-Za-z0-9-]{2,64}$")
# get_table echoes legacy names (INTEGER) in production and INT64 on the emulator.
_TYPE_ALIASES = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN", "STRUCT": "RECORD"}


@dataclass(frozen=True, slots=True)
class Target:
    project: str
    dataset: str
    location: str | None = None
    timeout: float = 10.0
    write: str = "storage"  # storage | merge


def parse_uri(uri: str) -> Target:
    """``bigquery://PROJECT/DATASET[?location=..&timeout=..&write=..]``, or ConfigError."""
    shape = "bigquery://PROJECT/DATASET[?location=EU&timeout=10&write=storage]"
    parts = urlsplit(uri)
    dataset = parts.path[1:]
    if parts.scheme.lower() != "bigquery" or not parts.netloc or parts.fragment:
        raise ConfigError(f"a BigQuery URI looks like {shape}, got {uri!r}")
    if not _PROJECT.fullmatch(parts.netloc):
        raise ConfigError(f"{parts.netloc!r} is not a Google Cloud project id (in {uri!r})")
    if not _DATASET.fullmatch(dataset):
        raise ConfigError(f"the dataset must be one name of letters, digits and _ (in {uri!r})")
    options: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in ("location", "timeout", "write") or key in options:
            raise ConfigError(f"unknown or repeated BigQuery URI option {key!r} (in {uri!r})")
        options[key] = value
    location = options.get("location")
    if location is not None and not _LOCATION.fullmatch(location):
        raise ConfigError(f"location must be a BigQuery location such as EU (in {uri!r})")
    write = options.get("write", "storage")
    if write not in WRITE_MODES:
        raise ConfigError(f"write must be one of {', '.join(WRITE_MODES)} (in {uri!r})")
    timeout = _timeout(options.get("timeout", "10"), uri)
    return Target(parts.netloc, dataset, location, timeout, write)


def _timeout(text: str, uri: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"timeout must be a positive number of seconds (in {uri!r})")
    return seconds


def _translate(exc: Exception, action: str) -> LogkitError | None:
    """The logkit error for a driver error, or None when it is not one (a bug: let it rise).

    Messages name the operation and the status, never the server's text: a load or query error
    may quote row values. The driver error stays attached as ``__cause__``.
    """
    import requests
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    # The events are not at fault for any of these, so the dispatcher should spool and retry
    # rather than bury them: network, quota, credentials, and a dataset or table not created yet.
    unreachable = (api.RetryError, api.ServerError, api.TooManyRequests, TimeoutError)
    refused_access = (api.Unauthorized, api.Forbidden, auth.GoogleAuthError)
    network = (requests.RequestException, ConnectionError)
    from logkit.sinks.credentials import credentials_problem

    problem = credentials_problem(exc)
    if problem is not None:
        return SinkUnavailable(f"BigQuery {action}: {problem}")
    detail = _detail(exc)
    if isinstance(exc, api.NotFound):
        return SinkUnavailable(
            f"BigQuery {action}: not found ({detail}); are the dataset and tables created?"
            " run `logkit check-sinks --create`"
        )
    if isinstance(exc, unreachable + refused_access + network):
        return SinkUnavailable(f"BigQuery unavailable during {action} ({detail})")
    if isinstance(exc, api.GoogleAPICallError) and "concurrent update" in str(exc.message):
        # A serialisation conflict between DML jobs on one table: retrying later succeeds.
        return SinkUnavailable(f"BigQuery {action} lost a concurrent update ({detail})")
    if isinstance(exc, api.GoogleAPIError):
        return SinkWriteError(f"BigQuery refused the {action} ({detail})")
    return None


def _detail(exc: Exception) -> str:
    """The error class, HTTP status and BigQuery reason codes: never the message text."""
    code, errors = getattr(exc, "code", None), getattr(exc, "errors", None) or []
    reasons = [str(e["reason"]) for e in errors if isinstance(e, dict) and "reason" in e]
    parts = [type(exc).__name__, *([f"HTTP {code}"] if code else []), *reasons]
    cause = getattr(exc, "cause", None)  # what a RetryError gave up on
    if isinstance(cause, Exception):
        parts.append(f"last {_detail(cause)}")
    return ", ".join(parts)


def mapped(action: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Map google-cloud errors onto logkit's tree at the boundary."""

    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            try:
                return fn(*args, **kwargs)
            except LogkitError:
                raise
            except Exception as exc:
                error = _translate(exc, action)
                if error is None:
                    raise
                raise error from exc

        return wrapper

    return decorate


def _import_bigquery() -> Any:
    try:
        from google.cloud import bigquery
    except ImportError as exc:
        raise ConfigError(
            "the bigquery backend needs google-cloud-bigquery: pip install 'logkit[gcp]'"
        ) from exc
    return bigquery


class BigQueryBackend:
    scheme: ClassVar[str] = "bigquery"
    durable: ClassVar[bool] = True
    roles: ClassVar[frozenset[Role]] = frozenset(Role)
    chains: ClassVar[bool] = False  # an audit mirror at most: no compare-and-append

    def __init__(self, target: Target) -> None:
        self.target = target
        self.bq = _import_bigquery()
        if target.write == "storage":
            check_available()
        self.dataset_id = f"{target.project}.{target.dataset}"
        # Each RPC gets ``timeout`` seconds including its retries, so a dead endpoint fails
        # fast as SinkUnavailable; retrying over longer spans is the dispatcher's job.
        self.retry = self.bq.DEFAULT_RETRY.with_deadline(target.timeout)
        self.job_wait = target.timeout * JOB_WAIT_FACTOR
        self._client: Any = None
        self._writers: dict[str, StreamWriter] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_uri(cls, uri: str) -> BigQueryBackend:
        return cls(parse_uri(uri))

    def describe(self) -> str:
        where = f" in {self.target.location}" if self.target.location else ""
        return f"bigquery {self.dataset_id}{where}"

    @property
    def client(self) -> Any:
        """Built on first use, so a missing credential surfaces as SinkUnavailable there."""
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        emulator = os.environ.get("BIGQUERY_EMULATOR_HOST")
        if not emulator:
            return self.bq.Client(project=self.target.project, location=self.target.location)
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        if "://" not in emulator:  # other emulators' docs give plain host:port
            emulator = f"http://{emulator}"

        return self.bq.Client(
            project=self.target.project,
            location=self.target.location,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=emulator),
        )

    def writer(
        self, table_id: str, columns: Sequence[Column], key: tuple[str, ...]
    ) -> StreamWriter:
        """The one StreamWriter of a table in this process (one committed stream each)."""
        with self._lock:
            writer = self._writers.get(table_id)
            if writer is None:
                writer = self._writers[table_id] = StreamWriter(self, table_id, columns, key)
            return writer

    def store(self, role: Role) -> BigQueryStore:
        return BigQueryStore(self, f"{self.dataset_id}.{ROLE_TABLES[Role(role)]}")

    def rpc(self) -> dict[str, Any]:
        """Keyword arguments bounding one API call."""
        return {"timeout": self.target.timeout, "retry": self.retry}

    def run(self, sql: str, params: Sequence[Any]) -> tuple[Any, list[Any]]:
        """Run one parameterised statement and wait for it: (the finished job, its rows).

        ``client.query`` + ``result`` rather than ``query_and_wait``: the emulator's fast path
        drops job errors silently. ``job_retry=None``: a failed job surfaces at once, mapped.
        """
        config = self.bq.QueryJobConfig(query_parameters=list(params))
        job = self.client.query(sql, job_config=config, job_retry=None, **self.rpc())
        rows = job.result(timeout=self.job_wait, retry=self.retry, job_retry=None)
        return job, list(rows)

    def table_schema(self, columns: Sequence[Column] = SCHEMA) -> list[Any]:
        return [self.bq.SchemaField(c.name, c.type, mode=c.mode) for c in columns]

    def new_table(
        self,
        table_id: str,
        columns: Sequence[Column] = SCHEMA,
        clustering: Sequence[str] = CLUSTERING_FIELDS,
    ) -> Any:
        table = self.bq.Table(table_id, schema=self.table_schema(columns))
        table.time_partitioning = self.bq.TimePartitioning(
            type_=self.bq.TimePartitioningType.DAY, field=PARTITION_FIELD
        )
        table.clustering_fields = list(clustering)
        return table

    def ensure_table(
        self, table_id: str, columns: Sequence[Column], clustering: Sequence[str]
    ) -> list[str]:
        """Create the table, or add the NULLABLE columns it lacks: additive schema evolution.

        Adding a NULLABLE column rewrites nothing, and older writers keep working: rows without
        the column read it as NULL. A missing REQUIRED column or a changed type cannot be
        evolved; they are returned as problems.
        """
        from google.api_core.exceptions import NotFound

        try:
            table = self.client.get_table(table_id, **self.rpc())
        except NotFound:
            # create_table, not DDL: the emulator drops PARTITION BY/CLUSTER BY given in DDL.
            new = self.new_table(table_id, columns, clustering)
            self.client.create_table(new, exists_ok=True, **self.rpc())
            return []
        have = {field.name for field in table.schema}
        added = [c for c in columns if c.name not in have and c.mode == "NULLABLE"]
        if added:
            table.schema = [*table.schema, *self.table_schema(added)]
            self.client.update_table(table, ["schema"], **self.rpc())
            # A no-op on BigQuery after the update; the emulator keeps its catalog (updated
            # above) apart from its storage, which only DDL alters.
            for c in added:
                self.run(f"ALTER TABLE `{table_id}` ADD COLUMN IF NOT EXISTS {c.name} {c.type}", [])
        return _column_problems(table_id.rsplit(".", 1)[1], table.schema, columns)

    @mapped("schema check")
    def check_schema(self, *, create: bool = False) -> list[str]:
        from google.api_core.exceptions import NotFound

        if create:
            self._create()
        try:
            self.client.get_dataset(self.dataset_id, **self.rpc())
        except NotFound:
            return [f"dataset {self.dataset_id} does not exist"]
        problems: list[str] = []
        for name in ROLE_TABLES.values():
            try:
                table = self.client.get_table(f"{self.dataset_id}.{name}", **self.rpc())
            except NotFound:
                problems.append(f"table {name} does not exist")
                continue
            problems.extend(_column_problems(name, table.schema))
        return problems

    def _create(self) -> None:
        self.create_dataset()
        for name in ROLE_TABLES.values():
            self.ensure_table(f"{self.dataset_id}.{name}", SCHEMA, CLUSTERING_FIELDS)

    def create_dataset(self) -> None:
        dataset = self.bq.Dataset(self.dataset_id)
        if self.target.location:  # never send null: the emulator answers 500 to it
            dataset.location = self.target.location
        self.client.create_dataset(dataset, exists_ok=True, **self.rpc())

    def close(self) -> None:
        with self._lock:
            writers, self._writers = list(self._writers.values()), {}
        for writer in writers:
            writer.close()
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = None


def _normalised(type_name: str) -> str:
    upper = type_name.upper()
    return _TYPE_ALIASES.get(upper, upper)


def _column_problems(
    table: str, schema: Sequence[Any], columns: Sequence[Column] = SCHEMA
) -> list[str]:
    found = {field.name: _normalised(field.field_type) for field in schema}
    missing = [c.name for c in columns if c.name not in found]
    problems = [f"table {table} lacks columns {', '.join(missing)}"] if missing else []
    for column in columns:
        actual = found.get(column.name)
        if actual is not None and actual != _normalised(column.type):
            problems.append(f"column {table}.{column.name} is {actual}, expected {column.type}")
    return problems


def row_values(event: Event) -> dict[str, Any]:
    """The event as one row: every column of SCHEMA, enums as their values, ts in microseconds."""
    micros = cursor.to_micros(event.ts)
    row: dict[str, Any] = {"ts": micros, "ts_us": micros, "body": event.model_dump_json()}
    for column in SCHEMA:
        if column.name not in row:  # the rest are Event fields of the same name
            value = getattr(event, column.name)
            row[column.name] = value.value if isinstance(value, Enum) else value
    return row


class BigQueryStore:
    def __init__(self, backend: BigQueryBackend, table_id: str) -> None:
        self.backend = backend
        self.table_id = table_id
        self.bq = backend.bq

    @mapped("write")
    def write(self, events: Sequence[Event]) -> None:
        unique = sequence(events)
        if not unique:
            return
        rows = [row_values(e) for e in unique]
        if self.backend.target.write == "merge":
            from logkit.sinks.bigquery_merge import MergeWriter

            MergeWriter(self).write(unique, rows)
            return
        self.backend.writer(self.table_id, SCHEMA, ("tenant_id", "event_id")).append(rows)

    def _scalar(self, name: str | None, type_: str, value: Any) -> Any:
        return self.bq.ScalarQueryParameter(name, type_, value)

    @mapped("query")
    def query(self, query: Query) -> Page:
        where, params = self._where(query.tenant_id, query.run_id, query.user_id)
        if query.event_types is not None:
            where.append("event_type IN UNNEST(@event_types)")
            params.append(
                self.bq.ArrayQueryParameter("event_types", "STRING", list(query.event_types))
            )
        if query.since is not None:
            where.append("ts >= @since")  # on ts, the partitioning column, so BigQuery prunes
            params.append(self._scalar("since", "TIMESTAMP", query.since))
        if query.until is not None:
            where.append("ts < @until")
            params.append(self._scalar("until", "TIMESTAMP", query.until))
        if query.cursor is not None:
            c_ts, c_id = cursor.decode(query.cursor)
            # The ts bound only prunes partitions; the exact keyset test is on ts_us, event_id.
            where.append(
                "ts >= TIMESTAMP_MICROS(@c_ts)"
                " AND (ts_us > @c_ts OR (ts_us = @c_ts AND event_id > @c_id))"
            )
            params += [self._scalar("c_ts", "INT64", c_ts), self._scalar("c_id", "STRING", c_id)]
        limit = clamp_limit(query.limit)
        params.append(self._scalar("n", "INT64", limit + 1))  # one more tells if more exist
        sql = (
            f"SELECT body FROM `{self.table_id}` WHERE {' AND '.join(where)}"
            f" {DEDUP} ORDER BY ts_us, event_id LIMIT @n"
        )
        _, rows = self.backend.run(sql, params)
        events = [Event.model_validate_json(row["body"]) for row in rows[:limit]]
        return Page(events, cursor.encode(events[-1]) if len(rows) > limit else None)

    @mapped("delete")
    def delete(self, selector: Selector) -> int:
        """DML DELETE of every copy; returns how many events (distinct event_ids) it removed.

        Rows written by the Storage Write API can be deleted at once (unlike the legacy
        streaming buffer of ``insertAll``), so erasure and retention work on fresh rows.
        """
        where, params = self._selector_where(selector)
        events = self._count(where, params)
        if events:
            self.backend.run(f"DELETE FROM `{self.table_id}` WHERE {where}", params)
        return events

    @mapped("count")
    def count(self, selector: Selector) -> int:
        return self._count(*self._selector_where(selector))

    def _count(self, where: str, params: list[Any]) -> int:
        sql = f"SELECT COUNT(DISTINCT event_id) AS n FROM `{self.table_id}` WHERE {where}"
        _, rows = self.backend.run(sql, params)
        return int(rows[0]["n"]) if rows else 0

    @mapped("tenant listing")
    def tenant_ids(self) -> list[str]:
        _, rows = self.backend.run(f"SELECT DISTINCT tenant_id FROM `{self.table_id}`", [])
        return sorted(str(row["tenant_id"]) for row in rows)

    def _selector_where(self, selector: Selector) -> tuple[str, list[Any]]:
        where, params = self._where(selector.tenant_id, selector.run_id, selector.user_id)
        arrays = (
            ("event_id IN UNNEST(@event_ids)", "event_ids", selector.event_ids),
            ("storage_class IN UNNEST(@classes)", "classes", selector.storage_classes),
            # COALESCE: NOT IN over a NULL app_id would be NULL, and the row never selected.
            (
                "COALESCE(app_id, '') NOT IN UNNEST(@other_apps)",
                "other_apps",
                selector.other_apps or None,
            ),
        )
        for condition, name, values in arrays:
            if values is not None:
                where.append(condition)
                params.append(self.bq.ArrayQueryParameter(name, "STRING", list(values)))
        if selector.app_id is not None:
            where.append("app_id = @app_id")
            params.append(self._scalar("app_id", "STRING", selector.app_id))
        if selector.before is not None:
            where.append("ts < @before")  # on ts, the partitioning column, so BigQuery prunes
            params.append(self._scalar("before", "TIMESTAMP", selector.before))
        return " AND ".join(where), params

    def _where(
        self, tenant_id: str, run_id: str | None, user_id: str | None
    ) -> tuple[list[str], list[Any]]:
        where, params = ["tenant_id = @tenant_id"], [self._scalar("tenant_id", "STRING", tenant_id)]
        for name, value in (("run_id", run_id), ("user_id", user_id)):
            if value is not None:
                where.append(f"{name} = @{name}")
                params.append(self._scalar(name, "STRING", value))
        return where, params
