"""Verify audit chains: hashes, links, contiguity, payload digests, and signed checkpoints.

Verification hashes the canonical bytes written at append time (no re-canonicalising): per
record one SHA-256 over the record bytes, one over salt + payload bytes, and one JSON parse of
the record bytes to check they say what the store files them as.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from logkit.auditing.checkpoint import Checkpoint, Keys, parse_stored, signature_ok
from logkit.chain import GENESIS
from logkit.sinks import cursor
from logkit.sinks.protocols import AuditStore, StoredRecord

PAGE = 5000


@dataclass
class ChainReport:
    chain_id: str
    records: int = 0
    erased: int = 0
    status: str = "ok"  # ok | broken
    first_bad_seq: int | None = None
    kind: str | None = None  # what broke, see BREAKS
    detail: str | None = None
    head_seq: int | None = None
    checkpoint: str = "none"  # none | matched | the kind of mismatch

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


BREAKS = {
    "modified": "a hashed field differs from what the record's hash covers",
    "payload_modified": "the payload does not match its salted digest",
    "missing": "a record is missing (deleted) from the chain",
    "reordered": "a record is filed at a position other than its own seq",
    "inserted": "a record that does not belong was inserted into the chain",
    "foreign": "a record from another chain was moved into this one",
    "broken_link": "a record does not link to the one before it",
    "truncated": "the chain ends before the signed checkpoint",
    "rewritten": "the chain differs from the signed checkpoint at its seq",
    "bad_signature": "the checkpoint's signature does not verify",
    "stale_checkpoint": "the checkpoint is older than one already accepted",
}


@dataclass
class VerifyReport:
    ok: bool
    chains: list[ChainReport] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "chains": [c.as_dict() for c in self.chains]}


class _ChainBreakError(Exception):
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


def scan(
    records: Iterable[StoredRecord],
    chain_id: str,
    state: ScanState,
    wanted: frozenset[int] = frozenset(),
) -> None:
    """Check records in seq order, advancing ``state``; raise _ChainBreakError at a break.

    The loop is the hot path of `audit verify` (a million records): the common case is a few
    comparisons inline, and only a record that fails them goes through ``_diagnose`` to name
    the kind of break.
    """
    sha256, loads = hashlib.sha256, orjson.loads
    expected, prev, prev2 = state.expected, state.prev, state.prev2
    for record in records:
        fields = None
        if record.seq == expected and sha256(record.record_bytes).hexdigest() == record.hash:
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
                ok = sha256(bytes.fromhex(salt) + payload).hexdigest() == fields.get(
                    "payload_digest"
                )
            elif ok:
                ok = salt is None and payload is None
                state.erased += ok
        else:
            ok = False
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
    except (TypeError, ValueError):
        return None


def verify_chain(
    store: AuditStore,
    chain_id: str,
    progress: Callable[[int], None] | None = None,
    wanted: frozenset[int] = frozenset(),
) -> tuple[ChainReport, dict[int, str]]:
    """Walk one chain in seq order: the report of its first break, and hashes at ``wanted``."""
    report = ChainReport(chain_id)
    state = ScanState()
    try:
        while batch := store.records(chain_id, after_seq=state.expected - 1, limit=PAGE):
            scan(batch, chain_id, state, wanted)
            if progress is not None:
                progress(len(batch))
    except _ChainBreakError as brk:
        report.status, report.first_bad_seq, report.kind, report.detail = (
            "broken",
            brk.seq,
            brk.kind,
            brk.detail,
        )
    report.records, report.erased = state.expected, state.erased
    report.head_seq = state.expected - 1 if state.expected else None
    return report, state.hashes_at


def _diagnose(record: StoredRecord, chain_id: str, state: ScanState) -> None:
    """Name the break at ``record`` (it failed the fast checks): always raises."""
    hashes = [h for h in (state.prev2, state.prev) if h is not None] if state.expected else []
    report = ChainReport(chain_id)
    _check(record, chain_id, state.expected, hashes, report)
    raise _ChainBreakError(state.expected, "modified", f"seq {state.expected} failed a check")


def _check(
    record: StoredRecord, chain_id: str, expected: int, hashes: list[str], report: ChainReport
) -> None:
    if record.seq > expected:
        raise _ChainBreakError(expected, "missing", f"seq {expected} is missing")
    if record.seq < expected:
        raise _ChainBreakError(record.seq, "reordered", f"seq {record.seq} appears twice")
    if hashlib.sha256(record.record_bytes).hexdigest() != record.hash:
        raise _ChainBreakError(
            expected, "modified", f"seq {expected}: record bytes do not match its hash"
        )
    try:
        fields = orjson.loads(record.record_bytes)
    except orjson.JSONDecodeError:
        raise _ChainBreakError(
            expected, "modified", f"seq {expected}: record is not JSON"
        ) from None
    if fields.get("chain_id") != chain_id:
        raise _ChainBreakError(
            expected, "foreign", f"seq {expected} belongs to {fields.get('chain_id')}"
        )
    if fields.get("seq") != expected:
        if (
            fields.get("seq") == expected - 1
            and len(hashes) >= 2
            and fields.get("prev_hash") == hashes[-2]
        ):
            # The record that was at seq - 1 was pushed along by one slipped in before it.
            raise _ChainBreakError(
                expected - 1,
                "inserted",
                f"seq {expected - 1} was inserted: the chain continues at "
                f"seq {expected} with the record it displaced",
            )
        raise _ChainBreakError(
            expected,
            "reordered",
            f"the record filed at seq {expected} says it is seq {fields.get('seq')}",
        )
    previous = hashes[-1] if hashes else GENESIS
    if fields.get("prev_hash") != previous:
        if len(hashes) >= 2 and fields.get("prev_hash") == hashes[-2]:
            raise _ChainBreakError(
                expected - 1,
                "inserted",
                f"seq {expected - 1} was inserted: seq {expected} links past it",
            )
        raise _ChainBreakError(
            expected, "broken_link", f"seq {expected} does not link to seq {expected - 1}"
        )
    _check_columns(record, fields, expected)
    _check_payload(record, fields, expected, report)


def _check_columns(record: StoredRecord, fields: dict[str, Any], seq: int) -> None:
    """The store's query columns must say what the hashed record says."""
    if (
        record.event_id != fields.get("event_id")
        or record.tenant_id != fields.get("tenant_id")
        or record.run_id != fields.get("run_id")
        or record.user_id != fields.get("user_id")
        or record.event_type != fields.get("event_type")
    ):
        raise _ChainBreakError(
            seq, "modified", f"seq {seq}: a stored column differs from the record"
        )
    try:  # Python 3.11's fromisoformat reads the trailing "Z" itself
        stamp = cursor.to_micros(dt.datetime.fromisoformat(fields["ts"]))
    except (KeyError, TypeError, ValueError):
        stamp = None
    if stamp != record.ts_us:
        raise _ChainBreakError(seq, "modified", f"seq {seq}: stored ts differs from the record")


def _check_payload(
    record: StoredRecord, fields: dict[str, Any], seq: int, report: ChainReport
) -> None:
    if record.payload_bytes is None and record.payload_salt is None:
        report.erased += 1  # erased by DSAR: the digest stays, nothing confirms the values
        return
    if record.payload_bytes is None or record.payload_salt is None:
        raise _ChainBreakError(seq, "payload_modified", f"seq {seq}: payload or salt half-erased")
    try:
        salt = bytes.fromhex(record.payload_salt)
    except ValueError:
        raise _ChainBreakError(seq, "payload_modified", f"seq {seq}: salt is not hex") from None
    if hashlib.sha256(salt + record.payload_bytes).hexdigest() != fields.get("payload_digest"):
        raise _ChainBreakError(
            seq, "payload_modified", f"seq {seq}: payload does not match its digest"
        )


def apply_checkpoints(
    report: ChainReport,
    hashes: dict[int, str],
    checkpoints: Iterable[Checkpoint],
    keys: Keys,
    seen: dict[str, int],
) -> None:
    """Compare an intact chain against its newest signed checkpoint (and refuse rollbacks)."""
    mine = sorted((c for c in checkpoints if c.chain_id == report.chain_id), key=lambda c: c.seq)
    if not mine:
        return
    for checkpoint in mine:
        if not signature_ok(checkpoint, keys):
            _fail(
                report,
                checkpoint.seq,
                "bad_signature",
                f"checkpoint at seq {checkpoint.seq} ({checkpoint.key_id}) has a bad signature",
            )
            return
    newest = mine[-1]
    if newest.seq < seen.get(report.chain_id, -1):
        _fail(
            report,
            newest.seq,
            "stale_checkpoint",
            f"checkpoint at seq {newest.seq} is older "
            f"than seq {seen[report.chain_id]}, already accepted",
        )
        return
    if report.status != "ok":
        return
    if newest.seq >= report.records:
        _fail(
            report,
            report.records,
            "truncated",
            f"the chain ends at seq {report.records - 1}; the "
            f"signed checkpoint says seq {newest.seq} exists",
        )
        return
    if hashes.get(newest.seq) != newest.hash:
        intact = [c.seq for c in mine if hashes.get(c.seq) == c.hash]
        start = intact[-1] + 1 if intact else 0
        _fail(
            report,
            start,
            "rewritten",
            f"the chain differs from the checkpoint at seq "
            f"{newest.seq}; records after seq {start - 1} were rewritten",
        )
        return
    report.checkpoint = "matched"
    seen[report.chain_id] = max(seen.get(report.chain_id, -1), newest.seq)


def _fail(report: ChainReport, seq: int, kind: str, detail: str) -> None:
    report.status, report.first_bad_seq, report.kind, report.detail = "broken", seq, kind, detail
    report.checkpoint = kind


def verify(
    store: AuditStore,
    chain_ids: Iterable[str],
    keys: Keys,
    *,
    checkpoints: list[Checkpoint] | None = None,
    seen_path: Path | None = None,
    progress: Callable[[str, int], None] | None = None,
    uri: str | None = None,
    workers: int = 1,
) -> VerifyReport:
    """Verify chains; checkpoints come from ``checkpoints`` (a file) or the audit store."""
    seen = _load_seen(seen_path)
    reports = []
    for chain_id in chain_ids:
        step: Callable[[int], None] | None = None
        if progress is not None:
            step = functools.partial(progress, chain_id)
        stored = (
            checkpoints if checkpoints is not None else parse_stored(store.checkpoints(chain_id))
        )
        wanted = frozenset(c.seq for c in stored if c.chain_id == chain_id)
        report, hashes = _verify_one(store, chain_id, step, wanted, uri=uri, workers=workers)
        apply_checkpoints(report, hashes, stored, keys, seen)
        reports.append(report)
    if seen_path is not None and all(r.status == "ok" for r in reports):
        _save_seen(seen_path, seen)
    return VerifyReport(all(r.status == "ok" for r in reports), reports)


def _verify_one(
    store: AuditStore,
    chain_id: str,
    step: Callable[[int], None] | None,
    wanted: frozenset[int],
    *,
    uri: str | None,
    workers: int,
) -> tuple[ChainReport, dict[int, str]]:
    """One chain: split across worker processes when it is long and the store can reopen."""
    from logkit.auditing.checkpoint import chain_head
    from logkit.auditing.parallel import PARALLEL_MIN, verify_chain_parallel

    if uri is not None and workers > 1:
        head = chain_head(store, chain_id)
        length = head[0] + 1 if head else 0
        if length >= PARALLEL_MIN:
            report, hashes = verify_chain_parallel(uri, chain_id, length, workers, wanted)
            if step is not None:
                step(report.records)
            return report, hashes
    return verify_chain(store, chain_id, step, wanted)


def _load_seen(path: Path | None) -> dict[str, int]:
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        return {str(k): int(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def _save_seen(path: Path, seen: dict[str, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(seen, indent=2, sort_keys=True))
    tmp.replace(path)
