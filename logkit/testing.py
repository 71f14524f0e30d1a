"""Test doubles for users' own tests (like structlog.testing.capture_logs).

Nothing here writes to the working directory: :func:`configure_memory` sets logkit up on
``memory://`` stores, with the spool and the dev keys in a temporary directory of the process
(see logkit.config). The pytest plugin (``logkit_events`` fixture) is built on these.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from logkit.envelope import Event, EventType
from logkit.pipeline import PIPELINE
from logkit.runtime import Runtime

MEMORY_SINKS = {"timeline": "memory://", "audit": "memory://", "cost": "memory://"}


class CapturedEvents(list[Event]):
    """The events emitted while capturing (after redaction), with small helpers."""

    def of_type(self, *types: EventType | str) -> list[Event]:
        """The captured events of these types, in order."""
        wanted = {str(EventType(t).value) for t in types}
        return [e for e in self if e.event_type.value in wanted]

    def types(self) -> list[str]:
        """The event types in the order they were emitted."""
        return [e.event_type.value for e in self]


def configure_memory(**overrides: Any) -> Runtime:
    """Configure logkit for tests: dev, every store ``memory://``, nothing on disk here.

    ``overrides`` are settings as :func:`logkit.configure` takes them (e.g. ``service=...``).
    """
    from logkit.runtime import configure

    settings: dict[str, Any] = {"env": "dev", "sinks": dict(MEMORY_SINKS)}
    settings.update(overrides)
    return configure(**settings)


@contextmanager
def capture_events() -> Iterator[CapturedEvents]:
    """Collect every event emitted (by any thread) while the block runs, after redaction.

    Where logkit has not been configured yet, it is configured in memory first
    (:func:`configure_memory`), so capturing never creates ``./.logkit``.
    """
    if not PIPELINE.configured:
        configure_memory()
    captured = CapturedEvents()
    lock = threading.Lock()

    def collect(event: Event) -> None:
        with lock:
            captured.append(event)

    PIPELINE.add_output(collect)
    try:
        yield captured
    finally:
        PIPELINE.remove_output(collect)


@contextmanager
def memory_runtime(**overrides: Any) -> Iterator[Runtime]:
    """A memory runtime for the block; the runtime configured before comes back after it
    (configured again from the same settings), or none if there was none."""
    from logkit import runtime as runtimes

    with runtimes._lock:
        previous = runtimes._runtime
    settings = previous.settings.model_dump() if previous is not None else None
    try:
        yield configure_memory(**overrides)
    finally:
        if settings is not None:
            runtimes.configure(**settings)
        else:
            runtimes.shutdown()
