"""Test doubles for users' own tests (like structlog.testing.capture_logs)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from logkit.envelope import Event
from logkit.pipeline import PIPELINE


@contextmanager
def capture_events() -> Iterator[list[Event]]:
    """Collect every event emitted (by any thread) while the block runs, after redaction."""
    captured: list[Event] = []
    lock = threading.Lock()

    def collect(event: Event) -> None:
        with lock:
            captured.append(event)

    PIPELINE.add_output(collect)
    try:
        yield captured
    finally:
        PIPELINE.remove_output(collect)
