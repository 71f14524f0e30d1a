"""What a subscription yields: events with their cursors, and resets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from logkit.sinks.protocols import FeedRow
from logkit.stream.cursor import Cursor

_DETAILS = {
    "expired_cursor": (
        "events before this cursor were removed (retention, erasure or the feed's window); "
        "the stream restarts at the oldest event still kept"
    ),
    "unknown_cursor": "this cursor is not from this stream; it restarts at the oldest event",
    "feed_gap": (
        "events of this tenant are missing from the live feed here (its writer could not reach "
        "it); the timeline store has them: rebuild from it, or from ?from=start"
    ),
}


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one subscriber: its cursor and its JSON.

    ``cursor`` is None for a ``stream``-class event: live only, never stored, so it has no
    position to resume from (and does not move the subscriber's).
    """

    cursor: Cursor | None
    body: str


@dataclass(frozen=True, slots=True)
class Reset:
    """The stream cannot go on as asked; it goes on at ``cursor`` (a valid cursor itself).

    ``expired_cursor`` / ``unknown_cursor``: the requested cursor cannot be honoured.
    ``feed_gap``: the live feed lacks some of the tenant's events at this point.
    """

    reason: str  # "unknown_cursor" | "expired_cursor" | "feed_gap"
    cursor: Cursor

    def json(self) -> str:
        return orjson.dumps(
            {"reason": self.reason, "cursor": str(self.cursor), "detail": _DETAILS[self.reason]}
        ).decode()


class SharedRow:
    """A fanned-out row, its JSON parsed at most once for all subscribers."""

    __slots__ = ("_fields", "row")

    def __init__(self, row: FeedRow) -> None:
        self.row = row
        self._fields: dict[str, Any] | None = None

    @property
    def fields(self) -> dict[str, Any]:
        if self._fields is None:
            self._fields = orjson.loads(self.row.body)
        return self._fields
