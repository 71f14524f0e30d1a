"""Stream cursors: ``<feed id>-<position>[.<hint>]``, an event's place in the durable feed.

The feed id names the store's position space (see :class:`logkit.sinks.protocols.Feed`), so a
cursor from another database, or from one that was recreated, reads as unknown instead of
resuming at whatever now sits at that number.

With a feed of its own beside the stores (Redis), the cursor also carries the event's ``hint``:
its (ts, event_id) as the stores' paging cursor. A cursor older than the feed's window, or from
a feed that lost its data, then resumes from the timeline store after that event. Position 0
with a hint is a cursor given out while replaying from the store.
"""

from __future__ import annotations

from dataclasses import dataclass

_HINT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True, slots=True)
class Cursor:
    feed_id: str
    position: int
    hint: str | None = None

    def __str__(self) -> str:
        base = f"{self.feed_id}-{self.position}"
        return base if self.hint is None else f"{base}.{self.hint}"


def parse_cursor(text: str) -> Cursor | None:
    """The cursor ``text`` spells, or None when it is not one (never raises)."""
    head, dot, hint = text.strip().partition(".")
    feed_id, sep, position = head.rpartition("-")
    if not sep or not feed_id or not position.isdigit() or len(position) > 18:
        return None
    if dot and (not hint or len(hint) > 400 or not _HINT_CHARS.issuperset(hint)):
        return None
    return Cursor(feed_id, int(position), hint or None)
