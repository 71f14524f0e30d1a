"""Google BigQuery backend: one table per role, idempotent writes through MERGE.

URI: ``bigquery://PROJECT/DATASET`` with optional ``?location=EU&timeout=10`` (seconds per API
call). ``google-cloud-bigquery`` is imported only when a backend is built (``logkit[gcp]``).
With ``BIGQUERY_EMULATOR_HOST`` set, the client talks to that emulator anonymously.

Writes never stream (``insert_rows_json``): real BigQuery refuses DML on rows still in the
streaming buffer, and ``delete`` must work on fresh rows. Every write is a MERGE that inserts
the event_ids not stored yet, either straight from an ARRAY<STRUCT> parameter (small batches)
or from a staging table filled by a load job (large ones).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import json
import math
import os
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, NamedTuple, TypeVar
from urllib.parse import parse_qsl, urlsplit

from logkit.envelope import Event
from logkit.errors import ConfigError, LogkitError, SinkUnavailable, SinkWriteError
from logkit.sinks import cursor
from logkit.sinks.protocols import ROLE_TABLES, Page, Query, Role, Selector, clamp_limit, sequence

T = TypeVar("T")


class Column(NamedTuple):
    name: str
    type: str
    mode: str


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

# What a write sends: ts is left out and derived in SQL as TIMESTAMP_MICROS(ts_us), so the two
# columns cannot disagree and no timestamp text format is involved.
_SENT = tuple(c for c in SCHEMA if c.name != "ts")

SMALL_BATCH_ROWS = 50
"""Batches up to this many rows MERGE straight from a query parameter (one job); larger ones
are loaded into a staging table first (a load job and a MERGE job, but far faster per row)."""
SMALL_BATCH_BYTES = 1_000_000  # stays well under BigQuery's request size limit
STAGING_TTL = dt.timedelta(hours=1)  # a crashed writer's staging table expires by itself
JOB_WAIT_FACTOR = 6  # a job (load, MERGE) may run for this many API-call timeouts

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


def parse_uri(uri: str) -> Target:
    """``bigquery://PROJECT/DATASET[?location=..&timeout=..]``, or ConfigError saying why not."""
    shape = "bigquery://PROJECT/DATASET[?location=EU&timeout=10]"
    parts = urlsplit(uri)
    dataset = parts.path[1:]
    if parts.scheme.lower() != "bigquery" or not parts.netloc or parts.fragment:
        raise ConfigError(f"a BigQuery URI looks like {shape}, got {uri!r}")
    if not _PROJECT.match(parts.netloc):
        raise ConfigError(f"{parts.netloc!r} is not a Google Cloud project id (in {uri!r})")
    if not _DATASET.match(dataset):
        raise ConfigError(f"the dataset must be one name of letters, digits and _ (in {uri!r})")
    options: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in ("location", "timeout") or key in options:
            raise ConfigError(f"unknown or repeated BigQuery URI option {key!r} (in {uri!r})")
        options[key] = value
    location = options.get("location")
    if location is not None and not _LOCATION.match(location):
        raise ConfigError(f"location must be a BigQuery location such as EU (in {uri!r})")
    return Target(parts.netloc, dataset, location, _timeout(options.get("timeout", "10"), uri))


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
        self.dataset_id = f"{target.project}.{target.dataset}"
        # Each RPC gets ``timeout`` seconds including its retries, so a dead endpoint fails
        # fast as SinkUnavailable; retrying over longer spans is the dispatcher's job.
        self.retry = self.bq.DEFAULT_RETRY.with_deadline(target.timeout)
        self.job_wait = target.timeout * JOB_WAIT_FACTOR
        self._client: Any = None
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

    def new_table(self, table_id: str) -> Any:
        table = self.bq.Table(table_id, schema=self.table_schema())
        table.time_partitioning = self.bq.TimePartitioning(
            type_=self.bq.TimePartitioningType.DAY, field=PARTITION_FIELD
        )
        table.clustering_fields = list(CLUSTERING_FIELDS)
        return table

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
        dataset = self.bq.Dataset(self.dataset_id)
        if self.target.location:  # never send null: the emulator answers 500 to it
            dataset.location = self.target.location
        self.client.create_dataset(dataset, exists_ok=True, **self.rpc())
        for name in ROLE_TABLES.values():
            # create_table, not DDL: the emulator drops PARTITION BY/CLUSTER BY given in DDL.
            table = self.new_table(f"{self.dataset_id}.{name}")
            self.client.create_table(table, exists_ok=True, **self.rpc())

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = None


def _normalised(type_name: str) -> str:
    upper = type_name.upper()
    return _TYPE_ALIASES.get(upper, upper)


def _column_problems(table: str, schema: Sequence[Any]) -> list[str]:
    found = {field.name: _normalised(field.field_type) for field in schema}
    missing = [c.name for c in SCHEMA if c.name not in found]
    problems = [f"table {table} lacks columns {', '.join(missing)}"] if missing else []
    for column in SCHEMA:
        actual = found.get(column.name)
        if actual is not None and actual != _normalised(column.type):
            problems.append(f"column {table}.{column.name} is {actual}, expected {column.type}")
    return problems


def _row(event: Event) -> dict[str, Any]:
    """One row to send (the columns of _SENT), enums as their plain values."""
    row: dict[str, Any] = {"ts_us": cursor.to_micros(event.ts), "body": event.model_dump_json()}
    for column in _SENT:
        if column.name not in row:  # the rest are Event fields of the same name
            value = getattr(event, column.name)
            row[column.name] = value.value if isinstance(value, Enum) else value
    return row


def _day_window(events: Sequence[Event]) -> tuple[dt.datetime, dt.datetime]:
    """The UTC days the batch falls in, as [start, end): the MERGE only scans those partitions."""
    first = min(e.ts for e in events).astimezone(dt.UTC)
    last = max(e.ts for e in events).astimezone(dt.UTC)
    start = dt.datetime(first.year, first.month, first.day, tzinfo=dt.UTC)
    end = dt.datetime(last.year, last.month, last.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
    return start, end


class BigQueryStore:
    def __init__(self, backend: BigQueryBackend, table_id: str) -> None:
        self.backend = backend
        self.table_id = table_id
        self.bq = backend.bq
        sent = ", ".join(c.name for c in _SENT)
        values = ", ".join(f"S.{c.name}" for c in _SENT)
        # Explicit column lists (the emulator needs them); the ts window lets BigQuery prune
        # partitions instead of scanning the whole table on every write. A re-written event
        # carries the same ts, so it always falls inside the window of its own batch.
        self._merge = (
            f"MERGE `{table_id}` AS T USING {{source}} AS S"
            " ON T.tenant_id = S.tenant_id AND T.event_id = S.event_id"
            " AND T.ts >= @lo AND T.ts < @hi"
            f" WHEN NOT MATCHED THEN INSERT ({sent}, ts)"
            f" VALUES ({values}, TIMESTAMP_MICROS(S.ts_us))"
        )
        picked = ", ".join(f"r.{c.name} AS {c.name}" for c in _SENT)
        self._unnest = f"(SELECT {picked} FROM UNNEST(@rows) AS r)"

    @mapped("write")
    def write(self, events: Sequence[Event]) -> None:
        unique = sequence(events)
        if not unique:
            return
        rows = [_row(e) for e in unique]
        lo, hi = _day_window(unique)
        window = [self._scalar("lo", "TIMESTAMP", lo), self._scalar("hi", "TIMESTAMP", hi)]
        size = sum(len(r["body"]) for r in rows)
        if len(rows) <= SMALL_BATCH_ROWS and size <= SMALL_BATCH_BYTES:
            rows_param = self.bq.ArrayQueryParameter(
                "rows", "STRUCT", [self._struct(r) for r in rows]
            )
            self.backend.run(self._merge.format(source=self._unnest), [*window, rows_param])
        else:
            self._merge_staged(rows, window)

    def _merge_staged(self, rows: list[dict[str, Any]], window: list[Any]) -> None:
        """Load into a staging table of this call's own, MERGE from it, drop it."""
        client, rpc = self.backend.client, self.backend.rpc()
        dataset, table = self.table_id.rsplit(".", 1)
        # A unique name per call: concurrent writers never share (or truncate) staging data.
        staging_id = f"{dataset}.logkit_staging_{table}_{uuid.uuid4().hex}"
        staging = self.bq.Table(staging_id, schema=self.backend.table_schema(_SENT))
        staging.expires = dt.datetime.now(dt.UTC) + STAGING_TTL
        client.create_table(staging, **rpc)
        try:
            ndjson = "\n".join(json.dumps(r, separators=(",", ":")) for r in rows).encode()
            config = self.bq.LoadJobConfig(
                schema=staging.schema, source_format=self.bq.SourceFormat.NEWLINE_DELIMITED_JSON
            )
            # No size=: a resumable upload, which production and an unpatched emulator accept.
            job = client.load_table_from_file(
                io.BytesIO(ndjson),
                staging,
                job_config=config,
                num_retries=2,
                timeout=self.backend.target.timeout,
            )
            job.result(timeout=self.backend.job_wait, retry=self.backend.retry)
            self.backend.run(self._merge.format(source=f"`{staging_id}`"), window)
        finally:
            self._drop(staging)

    def _drop(self, staging: Any) -> None:
        # Best effort, and never masking the write's own error: the table expires by itself.
        with contextlib.suppress(Exception):
            self.backend.client.delete_table(staging, not_found_ok=True, **self.backend.rpc())

    def _scalar(self, name: str | None, type_: str, value: Any) -> Any:
        return self.bq.ScalarQueryParameter(name, type_, value)

    def _struct(self, row: dict[str, Any]) -> Any:
        fields = [self._scalar(c.name, c.type, row[c.name]) for c in _SENT]
        return self.bq.StructQueryParameter(None, *fields)

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
            " ORDER BY ts_us, event_id LIMIT @n"
        )
        _, rows = self.backend.run(sql, params)
        events = [Event.model_validate_json(row["body"]) for row in rows[:limit]]
        return Page(events, cursor.encode(events[-1]) if len(rows) > limit else None)

    @mapped("delete")
    def delete(self, selector: Selector) -> int:
        """DML DELETE. Rows fresh from a write are deletable: writes never use streaming."""
        where, params = self._selector_where(selector)
        job, _ = self.backend.run(f"DELETE FROM `{self.table_id}` WHERE {where}", params)
        return int(job.num_dml_affected_rows or 0)

    @mapped("count")
    def count(self, selector: Selector) -> int:
        where, params = self._selector_where(selector)
        _, rows = self.backend.run(
            f"SELECT COUNT(*) AS n FROM `{self.table_id}` WHERE {where}", params
        )
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
