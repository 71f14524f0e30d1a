"""Closing dispatchers together, within bounds that fit Cloud Run (SIGTERM, then 10 s).

Exit and SIGTERM close every dispatcher of the runtime at once, so the bound holds for all of
them together rather than one after the other.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from logkit.dispatch import Dispatcher


class Deadline:
    """What is left of one time budget shared by several waits (None: no bound)."""

    def __init__(self, timeout: float | None) -> None:
        self._end = None if timeout is None else time.monotonic() + timeout

    def left(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - time.monotonic())


def close_all(dispatchers: Sequence[Dispatcher], timeout: float | None) -> bool:
    """Shut dispatchers down together: True when every event is stored or spooled (False
    only when both a backend and the spool failed, which is logged as critical).

    1. For up to half of ``shutdown_spool_s`` the workers go on as usual (a healthy backend
       takes the queue directly). 2. Whatever is still queued or in flight is spooled by this
       thread, so within ``shutdown_spool_s`` every unacknowledged event is in the spool. 3.
       The workers replay the spool with what is left of ``timeout``, stopping at an outage.
    """
    if not dispatchers:
        return True
    deadline = Deadline(timeout)
    bound = min(d.config.shutdown_spool_s for d in dispatchers)
    if timeout is not None:
        bound = min(bound, timeout)
    spool_by = time.monotonic() + bound
    grace_end = time.monotonic() + bound / 2
    for dispatcher in dispatchers:
        dispatcher.wait_idle(grace_end - time.monotonic())
    kept = [d.hand_over(spool_by - time.monotonic(), stop=True) for d in dispatchers]
    for dispatcher in dispatchers:
        dispatcher.start_drain()
    for dispatcher in dispatchers:
        dispatcher.wait_drained(deadline.left())
    for dispatcher in dispatchers:
        dispatcher.finish()
    return all(kept) and not any(d.stats.dropped for d in dispatchers)
