"""Process-wide counters of what logkit refused or recorded instead of failing the caller.

Contract violations recorded rather than raised, scope headers ignored because the service or a
verified principal decides that field, principals that could not be resolved: each is counted
here by name, so an operator (or a test) can see that it happens without logkit ever failing a
request over it. ``logkit.counters()`` returns a snapshot.
"""

from __future__ import annotations

import threading
from collections import Counter


class Counters:
    """A thread-safe counter by name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))


COUNTERS = Counters()


def counters() -> dict[str, int]:
    """A snapshot of logkit's counters, by name (sorted)."""
    return COUNTERS.snapshot()
