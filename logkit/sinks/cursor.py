"""Opaque paging cursors: the (ts, event_id) of the last event of a page."""

from __future__ import annotations

import base64
import datetime as dt
import json

import orjson

from logkit.envelope import Event
from logkit.errors import ContractError

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


_ONE_MICROSECOND = dt.timedelta(microseconds=1)


def to_micros(ts: dt.datetime) -> int:
    """Exact integer microseconds since the epoch (timedelta arithmetic, no float rounding)."""
    return (ts - EPOCH) // _ONE_MICROSECOND


def encode(event: Event) -> str:
    return encode_at(to_micros(event.ts), event.event_id)


def encode_at(ts_us: int, event_id: str = "") -> str:
    """The cursor of a place in (ts, event_id) order; ``event_id=""`` is before every event
    of that microsecond."""
    raw = orjson.dumps([ts_us, event_id])  # compact JSON, as json.dumps(separators=(",", ":"))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[int, str]:
    """(ts in microseconds, event_id) of the last event already returned."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        micros, event_id = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(micros, int) or not isinstance(event_id, str):
            raise TypeError
    except (ValueError, TypeError) as exc:
        raise ContractError("invalid paging cursor", problems={"cursor": "not a cursor"}) from exc
    return micros, event_id


def after(event: Event, position: tuple[int, str]) -> bool:
    return (to_micros(event.ts), event.event_id) > position
