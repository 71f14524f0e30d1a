"""What a chain is checked against beyond itself: signed checkpoints and the remembered state.

A hash chain alone cannot show a cut-off tail, a rewritten suffix or a chain deleted whole. Two
kinds of evidence can: signed checkpoints (their head and anchors, see checkpoint.py) and the
*remembered state* (``audit.seen_state``), where `verify` keeps, per chain, the newest
checkpoint it accepted (to refuse rollbacks) and the head it last verified (seq and hash).
Every (seq, hash) they vouch for must still be in the chain with that hash.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logkit.auditing.checkpoint import Checkpoint, Keys, check_signature
from logkit.auditing.report import ChainReport

SEEN_FORMAT = "logkit-audit-seen/2"


@dataclass
class Seen:
    """What `verify` remembers of one chain."""

    checkpoint_seq: int = -1  # the newest checkpoint accepted (older ones are rollbacks)
    head_seq: int = -1  # the head last verified intact
    head_hash: str | None = None

    def points(self) -> dict[int, str]:
        return {self.head_seq: self.head_hash} if self.head_hash and self.head_seq >= 0 else {}


def load_seen(path: Path | None) -> dict[str, Seen]:
    """The remembered state (empty when absent or unreadable: it only ever adds checks)."""
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return {}
    if isinstance(data, dict) and data.get("format") == SEEN_FORMAT:
        chains = data.get("chains")
        return {str(k): _seen(v) for k, v in chains.items()} if isinstance(chains, dict) else {}
    if isinstance(data, dict):  # the first format: chain -> newest checkpoint seq
        return {str(k): Seen(checkpoint_seq=v) for k, v in data.items() if type(v) is int}
    return {}


def _seen(value: Any) -> Seen:
    if not isinstance(value, dict):
        return Seen()
    checkpoint_seq, head_seq, head_hash = (
        value.get(k) for k in ("checkpoint_seq", "head_seq", "head_hash")
    )
    return Seen(
        checkpoint_seq if type(checkpoint_seq) is int else -1,
        head_seq if type(head_seq) is int else -1,
        head_hash if isinstance(head_hash, str) else None,
    )


def save_seen(path: Path, seen: dict[str, Seen]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    chains = {k: v.__dict__ for k, v in sorted(seen.items())}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"format": SEEN_FORMAT, "chains": chains}, indent=2))
    tmp.replace(path)


def wanted(checkpoints: Iterable[Checkpoint], seen: Seen | None) -> frozenset[int]:
    """The seqs whose hashes the scan must keep for the comparison."""
    seqs = {seq for c in checkpoints for seq in c.points()}
    return frozenset(seqs | set(seen.points() if seen else ()))


def apply(
    report: ChainReport,
    hashes: dict[int, str],
    checkpoints: list[Checkpoint],
    problems: list[str],
    keys: Keys,
    *,
    seen: Seen | None,
    stored: bool = True,
) -> None:
    """Check an intact chain against the evidence; on success, update ``seen``.

    ``stored``: the checkpoints are the store's own (not a file covering some chains), so a
    remembered checkpoint that is no longer among them was removed.
    """
    valid = _signed(report, checkpoints, problems, keys)
    if report.status != "ok":
        return
    newest = max(valid, key=lambda c: c.seq, default=None)
    if seen is not None and newest is not None and newest.seq < seen.checkpoint_seq:
        _fail(
            report,
            newest.seq,
            "stale_checkpoint",
            f"checkpoint at seq {newest.seq} is older "
            f"than seq {seen.checkpoint_seq}, already accepted",
        )
        return
    points = _points(valid, seen)
    if points and not _compare(report, hashes, points):
        return
    if seen is not None and newest is None and stored and seen.checkpoint_seq >= 0:
        _fail(
            report,
            seen.checkpoint_seq,
            "stale_checkpoint",
            f"the store keeps no checkpoint of this chain any more; one at seq "
            f"{seen.checkpoint_seq} was accepted before (deleted or moved away)",
        )
        return
    if newest is not None:
        report.checkpoint = "matched"
    if seen is not None:
        _remember(report, seen, newest)


def _signed(
    report: ChainReport, checkpoints: list[Checkpoint], problems: list[str], keys: Keys
) -> list[Checkpoint]:
    """The checkpoints of this chain whose signature verifies; anything else is reported."""
    if problems and report.status == "ok":
        _fail(report, 0, "bad_checkpoint", problems[0])
    mine = sorted((c for c in checkpoints if c.chain_id == report.chain_id), key=lambda c: c.seq)
    for checkpoint in mine:
        verdict = check_signature(checkpoint, keys)
        if verdict != "ok" and report.status == "ok":
            detail = (
                f"checkpoint at seq {checkpoint.seq} was signed with key {checkpoint.key_id!r:.60}"
                ", which is not among the verification keys (a retired key to list in "
                "audit.verify_hmac_keys or audit.verify_ed25519_public_key_files?)"
                if verdict == "unknown_key"
                else f"checkpoint at seq {checkpoint.seq} ({checkpoint.key_id:.60}) "
                "has a bad signature"
            )
            _fail(report, checkpoint.seq, verdict, detail)
    return mine


def _points(checkpoints: list[Checkpoint], seen: Seen | None) -> dict[int, tuple[str, str]]:
    """seq -> (hash, who vouches for it); a checkpoint's word wins over the remembered one."""
    points = {
        seq: (h, "the remembered state") for seq, h in (seen.points() if seen else {}).items()
    }
    for checkpoint in checkpoints:
        for seq, hash_hex in checkpoint.points().items():
            points[seq] = (hash_hex, f"the checkpoint signed at seq {checkpoint.seq}")
    return points


def _compare(
    report: ChainReport, hashes: dict[int, str], points: dict[int, tuple[str, str]]
) -> bool:
    if report.records == 0:
        seq, (_, who) = max(points.items())
        _fail(
            report,
            0,
            "missing_chain",
            f"{who} says seq {seq} exists, but the store holds no record of this chain "
            "(deleted, or moved to another tenant or chain)",
        )
        return False
    differ = sorted(
        seq for seq, (h, _) in points.items() if seq < report.records and hashes.get(seq) != h
    )
    if differ:
        first = differ[0]
        below = [seq for seq in points if seq < first]
        since = f"; it matches up to seq {max(below)}" if below else ""
        _fail(
            report,
            first,
            "rewritten",
            f"the record at seq {first} differs from the one {points[first][1]} "
            f"vouches for{since}: records from seq {first} on were rewritten",
        )
        return False
    beyond = [seq for seq in points if seq >= report.records]
    if beyond:
        seq = max(beyond)
        _fail(
            report,
            report.records,
            "truncated",
            f"the chain ends at seq {report.records - 1}; {points[seq][1]} says seq {seq} exists",
        )
        return False
    return True


def _remember(report: ChainReport, seen: Seen, newest: Checkpoint | None) -> None:
    if newest is not None:
        seen.checkpoint_seq = max(seen.checkpoint_seq, newest.seq)
    if report.head_seq is not None and report.head_hash and report.head_seq >= seen.head_seq:
        seen.head_seq, seen.head_hash = report.head_seq, report.head_hash


def _fail(report: ChainReport, seq: int, kind: str, detail: str) -> None:
    report.fail(seq, kind, detail)
    report.checkpoint = kind
