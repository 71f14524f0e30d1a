"""Walk one chain in seq order: hashes, links, contiguity, columns, payload digests, erasures.

Verification hashes the canonical bytes written at append time (no re-canonicalising): per
record one SHA-256 over the record bytes, one over salt + payload bytes, and one JSON parse of
the record bytes to check they say what the store files them as. The store's values are
attacker-controlled: any value of any type in any column ends the walk with a named break
(:class:`ChainBreak`), never with another exception.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from logkit.auditing.erasures import Erasures
from logkit.auditing.report import ChainReport
from logkit.chain import GENESIS
from logkit.errors import LogkitError
from logkit.sinks import cursor
from logkit.sinks.protocols import AuditStore, StoredRecord

PAGE = 5000
_SALT = re.compile(r"[0-9a-f]{32}")
_SHOWN = 60
# The type each column of a StoredRecord must have (a type change is tampering too).
_COLUMN_TYPES: tuple[tuple[str, tuple[type, ...], str], ...] = (
    ("chain_id", (str,), "modified"),
    ("hash", (str,), "modified"),
    ("record_bytes", (bytes,), "modified"),
    ("event_id", (str,), "modified"),
    ("tenant_id", (str,), "modified"),
    ("run_id", (str, type(None)), "modified"),
    ("user_id", (str, type(None)), "modified"),
    ("event_type", (str,), "modified"),
    ("ts_us", (int,), "modified"),
    ("payload_bytes", (bytes, type(None)), "payload_modified"),
    ("payload_salt", (str, type(None)), "payload_modified"),
)


class ChainBreak(Exception):  # noqa: N818 - a result carried by an exception, not an error
    def __init__(self, seq: int, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.seq, self.kind, self.detail = seq, kind, detail


@dataclass
class ScanState:
    """Where a scan of one chain stands: the next expected seq and the last two hashes."""

    expected: int = 0
    prev: str = GENESIS
    prev2: str | None = None
    erased: int = 0
    hashes_at: dict[int, str] = field(default_factory=dict)  # for checkpoint comparison
    # What explains erased records; None: erasures are not checked (a bare scan).
    erasures: Erasures | None = None


def scan(
    records: Iterable[StoredRecord],
    chain_id: str,
    state: ScanState,
    wanted: frozenset[int] = frozenset(),
) -> None:
    """Check records in seq order, advancing ``state``; raise ChainBreak at a break.

    The loop is the hot path of `audit verify` (a million records): the common case is a few
    comparisons inline, and only a record that fails them (or makes them raise: any type in
    any column) goes through ``_diagnose`` to name the kind of break.
    """
    sha256, loads, fromhex = hashlib.sha256, orjson.loads, bytes.fromhex
    expected, prev, prev2 = state.expected, state.prev, state.prev2
    for record in records:
        ok = erased = False
        fields: Any = None
        try:
            if (
                record.seq == expected
                and type(record.seq) is int
                and type(record.ts_us) is int
                and sha256(record.record_bytes).hexdigest() == record.hash
            ):
                fields = loads(record.record_bytes)
                salt, payload = record.payload_salt, record.payload_bytes
                ok = (
                    fields.get("seq") == expected
                    and fields.get("prev_hash") == prev
                    and fields.get("chain_id") == chain_id
                    and record.event_id == fields.get("event_id")
                    and record.tenant_id == fields.get("tenant_id")
                    and record.run_id == fields.get("run_id")
                    and record.user_id == fields.get("user_id")
                    and record.event_type == fields.get("event_type")
                    and _micros(fields.get("ts")) == record.ts_us
                )
                if ok and salt is not None and payload is not None:
                    salt_bytes = fromhex(salt)
                    ok = (
                        salt_bytes.hex() == salt  # exactly as written: lowercase, no spaces
                        and type(payload) is bytes
                        and sha256(salt_bytes + payload).hexdigest() == fields.get("payload_digest")
                    )
                elif ok:
                    ok = erased = salt is None and payload is None
        except Exception:  # a value of an unexpected type: _diagnose names it
            ok = False
        if erased:  # rare: the state is brought up to date first, in case it breaks here
            state.expected, state.prev, state.prev2 = expected, prev, prev2
            _check_erasure(chain_id, expected, fields, state)
        if not ok:
            state.expected, state.prev, state.prev2 = expected, prev, prev2
            _diagnose(record, chain_id, state)
        if expected in wanted:
            state.hashes_at[expected] = record.hash
        prev2, prev = prev, record.hash
        expected += 1
    state.expected, state.prev, state.prev2 = expected, prev, prev2


def _micros(value: Any) -> int | None:
    try:  # Python 3.11's fromisoformat reads the trailing "Z" itself
        return cursor.to_micros(dt.datetime.fromisoformat(value))
    except (TypeError, ValueError, OverflowError):
        return None


def _check_erasure(chain_id: str, seq: int, fields: dict[str, Any], state: ScanState) -> None:
    if state.erasures is not None and not state.erasures.explains(chain_id, seq, fields):
        raise ChainBreak(
            seq,
            "unexplained_erasure",
            f"seq {seq}: payload and salt are gone, but no dsar_erasure or retention_applied "
            "record of the tenant names this erasure",
        )
    state.erased += 1  # erased by DSAR or retention: the digest stays, nothing confirms values


def verify_chain(
    store: AuditStore,
    chain_id: str,
    progress: Callable[[int], None] | None = None,
    wanted: frozenset[int] = frozenset(),
    erasures: Erasures | None = None,
) -> tuple[ChainReport, dict[int, str]]:
    """Walk one chain in seq order: the report of its first break, and hashes at ``wanted``."""
    report = ChainReport(chain_id)
    state = ScanState(erasures=erasures)
    try:
        while batch := read_page(store, chain_id, state.expected):
            scan(batch, chain_id, state, wanted)
            if progress is not None:
                progress(len(batch))
    except ChainBreak as brk:
        report.fail(brk.seq, brk.kind, brk.detail)
    report.records, report.erased = state.expected, state.erased
    report.head_seq = state.expected - 1 if state.expected else None
    report.head_hash = state.prev if state.expected and report.status == "ok" else None
    return report, state.hashes_at


def read_page(store: AuditStore, chain_id: str, expected: int) -> list[StoredRecord]:
    """The next page of records; a store that cannot decode what it holds is a break."""
    try:
        return store.records(chain_id, after_seq=expected - 1, limit=PAGE)
    except LogkitError:
        raise  # an unreachable store is not a finding about the chain
    except Exception as exc:  # a driver choking on tampered values
        raise ChainBreak(
            expected,
            "unreadable",
            f"the store cannot read the records from seq {expected} on ({type(exc).__name__})",
        ) from None


# --- naming a break ---------------------------------------------------------------------------


def _diagnose(record: StoredRecord, chain_id: str, state: ScanState) -> None:
    """Name the break at ``record`` (it failed the fast checks): always raises ChainBreak."""
    expected = state.expected
    hashes = [h for h in (state.prev2, state.prev) if h is not None] if expected else []
    try:
        _check(record, chain_id, expected, hashes, state)
    except ChainBreak:
        raise
    except Exception as exc:  # nothing a store holds may end verification otherwise
        raise ChainBreak(
            expected,
            "modified",
            f"seq {expected}: the stored record cannot be read ({type(exc).__name__})",
        ) from None
    raise ChainBreak(expected, "modified", f"seq {expected} failed a check")


def _check(
    record: StoredRecord, chain_id: str, expected: int, hashes: list[str], state: ScanState
) -> None:
    if type(record.seq) is not int:
        raise ChainBreak(
            expected, "modified", f"seq {expected}: the stored seq is {_kind(record.seq)}"
        )
    if record.seq > expected:
        raise ChainBreak(expected, "missing", f"seq {expected} is missing")
    if record.seq < expected:
        raise ChainBreak(record.seq, "reordered", f"seq {record.seq} appears twice")
    _check_types(record, expected)
    if hashlib.sha256(record.record_bytes).hexdigest() != record.hash:
        raise ChainBreak(
            expected, "modified", f"seq {expected}: record bytes do not match its hash"
        )
    fields = _fields(record, expected)
    if record.chain_id != chain_id or fields.get("chain_id") != chain_id:
        raise ChainBreak(
            expected, "foreign", f"seq {expected} belongs to {_shown(fields.get('chain_id'))}"
        )
    _check_position(fields, expected, hashes)
    _check_columns(record, fields, expected)
    _check_payload(record, fields, expected, chain_id, state)


def _check_types(record: StoredRecord, seq: int) -> None:
    for name, types, kind in _COLUMN_TYPES:
        value = getattr(record, name)
        if type(value) not in types:
            raise ChainBreak(seq, kind, f"seq {seq}: column {name} holds {_kind(value)}")


def _fields(record: StoredRecord, seq: int) -> dict[str, Any]:
    try:
        fields = orjson.loads(record.record_bytes)
    except orjson.JSONDecodeError:
        raise ChainBreak(seq, "modified", f"seq {seq}: record is not JSON") from None
    if not isinstance(fields, dict):
        raise ChainBreak(seq, "modified", f"seq {seq}: record is not a JSON object")
    return fields


def _check_position(fields: dict[str, Any], expected: int, hashes: list[str]) -> None:
    said = fields.get("seq")
    if said != expected or type(said) is not int:
        if said == expected - 1 and len(hashes) >= 2 and fields.get("prev_hash") == hashes[-2]:
            # The record that was at seq - 1 was pushed along by one slipped in before it.
            raise ChainBreak(
                expected - 1,
                "inserted",
                f"seq {expected - 1} was inserted: the chain continues at "
                f"seq {expected} with the record it displaced",
            )
        raise ChainBreak(
            expected,
            "reordered",
            f"the record filed at seq {expected} says it is seq {_shown(said)}",
        )
    previous = hashes[-1] if hashes else GENESIS
    if fields.get("prev_hash") != previous:
        if len(hashes) >= 2 and fields.get("prev_hash") == hashes[-2]:
            raise ChainBreak(
                expected - 1,
                "inserted",
                f"seq {expected - 1} was inserted: seq {expected} links past it",
            )
        raise ChainBreak(
            expected, "broken_link", f"seq {expected} does not link to seq {expected - 1}"
        )


def _check_columns(record: StoredRecord, fields: dict[str, Any], seq: int) -> None:
    """The store's query columns must say what the hashed record says."""
    for name in ("event_id", "tenant_id", "run_id", "user_id", "event_type"):
        if getattr(record, name) != fields.get(name):
            raise ChainBreak(seq, "modified", f"seq {seq}: stored {name} differs from the record")
    if _micros(fields.get("ts")) != record.ts_us:
        raise ChainBreak(seq, "modified", f"seq {seq}: stored ts differs from the record")


def _check_payload(
    record: StoredRecord, fields: dict[str, Any], seq: int, chain_id: str, state: ScanState
) -> None:
    payload, salt = record.payload_bytes, record.payload_salt
    if payload is None and salt is None:
        _check_erasure(chain_id, seq, fields, state)
        return
    if payload is None or salt is None:
        raise ChainBreak(seq, "payload_modified", f"seq {seq}: payload or salt half-erased")
    if not _SALT.fullmatch(salt):
        raise ChainBreak(seq, "payload_modified", f"seq {seq}: salt is not 32 lowercase hex")
    if hashlib.sha256(bytes.fromhex(salt) + payload).hexdigest() != fields.get("payload_digest"):
        raise ChainBreak(seq, "payload_modified", f"seq {seq}: payload does not match its digest")


def _kind(value: object) -> str:
    return "nothing (NULL)" if value is None else f"a {type(value).__name__} value"


def _shown(value: object) -> str:
    """A stored value in a message: bounded, printable, never markup."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return _kind(value)
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"
