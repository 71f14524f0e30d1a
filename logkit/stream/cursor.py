"""Stream cursors: ``<feed id>-<position>``, the position of an event in the durable feed.

The feed id names the store's position space (see :class:`logkit.sinks.protocols.Feed`), so a
cursor from another database, or from one that was recreated, reads as unknown instead of
resuming at whatever now sits at that number.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Cursor:
    feed_id: str
    position: int

    def __str__(self) -> str:
        return f"{self.feed_id}-{self.position}"


def parse_cursor(text: str) -> Cursor | None:
    """The cursor ``text`` spells, or None when it is not one (never raises)."""
    feed_id, sep, position = text.strip().rpartition("-")
    if not sep or not feed_id or not position.isdigit() or len(position) > 18:
        return None
    return Cursor(feed_id, int(position))
