"""Build each backend for tests: SQLite in a temp dir, memory, and the two emulators; read a
store back."""

from __future__ import annotations

import uuid
from pathlib import Path

from logkit.sinks.protocols import Backend, EventStore, Query
from logkit.sinks.registry import open_backend
from tests import services

KINDS = ("sqlite", "memory", "firestore", "bigquery")
DURABLE_KINDS = ("sqlite", "firestore", "bigquery")


def uri_for(kind: str, tmp_path: Path) -> str:
    unique = uuid.uuid4().hex[:12]
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'logkit.db'}"
    if kind == "memory":
        return "memory://"
    if kind == "firestore":
        services.require("FIRESTORE_EMULATOR_HOST")
        return f"firestore://logkit-test?root=t{unique}"
    if kind == "bigquery":
        services.require("BIGQUERY_EMULATOR_HOST")
        services.require("BIGQUERY_STORAGE_EMULATOR_HOST")
        return f"bigquery://logkit-test/ds_{unique}"
    raise ValueError(kind)


def make_backend(kind: str, tmp_path: Path) -> Backend:
    backend = open_backend(uri_for(kind, tmp_path))
    backend.check_schema(create=True)
    return backend


def discard(backend: Backend) -> None:
    """Drop what a test created (BigQuery datasets stay in the emulator's memory otherwise)."""
    client = getattr(backend, "_client", None)
    dataset_id = getattr(backend, "dataset_id", None)
    if client is not None and dataset_id is not None:
        client.delete_dataset(dataset_id, delete_contents=True, not_found_ok=True)
    backend.close()


def stored_numbers(store: EventStore) -> list[int]:
    """The payload numbers ("n") of every t_acme event in ``store``, sorted."""
    events, cursor = [], None
    while True:
        page = store.query(Query(tenant_id="t_acme", limit=1000, cursor=cursor))
        events += page.events
        if page.next_cursor is None:
            return sorted(int(e.payload["n"]) for e in events)  # type: ignore[arg-type]
        cursor = page.next_cursor
