"""What `audit verify` reports: one line per chain, and the kinds of break it names."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
    head_hash: str | None = None
    checkpoint: str = "none"  # none | matched | the kind of mismatch

    def as_dict(self) -> dict[str, Any]:
        """Every field, null where it does not apply (a stable shape for --json readers)."""
        return asdict(self)

    def fail(self, seq: int, kind: str, detail: str) -> None:
        self.status, self.first_bad_seq, self.kind, self.detail = "broken", seq, kind, detail


BREAKS = {
    "modified": "a hashed field, a stored column or its type differs from what the hash covers",
    "payload_modified": "the payload does not match its salted digest",
    "unexplained_erasure": "a payload was erased without a dsar_erasure or retention record",
    "missing": "a record is missing (deleted) from the chain",
    "reordered": "a record is filed at a position other than its own seq",
    "inserted": "a record that does not belong was inserted into the chain",
    "foreign": "a record from another chain was moved into this one",
    "broken_link": "a record does not link to the one before it",
    "unreadable": "the store could not read the chain's records back",
    "missing_chain": "a chain a checkpoint or the remembered state vouches for is gone",
    "truncated": "the chain ends before a signed checkpoint or the remembered head",
    "rewritten": "a record differs from the one a checkpoint or the remembered head vouches for",
    "bad_checkpoint": "a stored checkpoint is not a valid checkpoint document",
    "bad_signature": "the checkpoint's signature does not verify",
    "unknown_key": "the checkpoint was signed with a key that is not among the verification keys",
    "stale_checkpoint": "the checkpoint is older than one already accepted",
}


@dataclass
class VerifyReport:
    ok: bool
    chains: list[ChainReport] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "chains": [c.as_dict() for c in self.chains]}
