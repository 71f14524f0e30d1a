"""The audit mirror: copy a tenant's chains to BigQuery, and check the copy against the primary.

``sync`` appends to the mirror every record the primary has past the mirror's head of each
chain (Storage Write API), then erases in the mirror what the primary has erased since (one
batched MERGE): a DSAR erasure reaches the mirror on the next sync.

``compare`` is what ``logkit audit verify --mirror`` adds. The mirror's chains are verified on
their own (the same walk as the primary's), then both sides are read in seq order, chain by
chain, and every disagreement is reported:

- ``differs``: the two sides hold different records at one seq (a rewrite on one side: with
  valid hashes, a rewritten primary suffix is invisible without a checkpoint, but not to the
  mirror), or the mirror holds two different rows at one seq;
- ``missing_in_primary``: the mirror has records (or a whole chain) the primary lacks: the
  primary lost its tail, or a chain, after they were mirrored;
- ``erasure_pending``: erased in the primary, still holding its payload in the mirror;
- ``erased_in_mirror_only``: erased in the mirror, not in the primary.

Records the primary has and the mirror does not have *yet* are reported as ``behind`` (the
mirror lags by design) and do not fail the check.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

from logkit.auditing.checkpoint import Keys
from logkit.auditing.verify import PAGE, VerifyReport, verify
from logkit.sinks.protocols import AuditStore, StoredRecord

if TYPE_CHECKING:
    from logkit.sinks.bigquery_mirror import BigQueryMirror

DISAGREEMENTS = {
    "differs": "the mirror and the primary hold different records at this seq",
    "missing_in_primary": "the mirror holds a record the primary no longer has",
    "erasure_pending": "erased in the primary, the mirror still holds the payload",
    "erased_in_mirror_only": "erased in the mirror but not in the primary",
}


@dataclass
class Disagreement:
    chain_id: str
    seq: int | None  # None: the whole chain
    kind: str
    detail: str


@dataclass
class MirrorReport:
    ok: bool
    mirror: VerifyReport
    disagreements: list[Disagreement] = field(default_factory=list)
    behind: dict[str, int] = field(default_factory=dict)  # chain -> records not mirrored yet

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "chains": self.mirror.as_dict()["chains"],
            "disagreements": [asdict(d) for d in self.disagreements],
            "behind": self.behind,
        }


@dataclass
class SyncReport:
    copied: int = 0
    erased: int = 0
    chains: int = 0


def open_mirror(uri: str) -> BigQueryMirror:
    """The mirror a ``bigquery://PROJECT/DATASET`` URI names (ConfigError otherwise)."""
    from logkit.errors import ConfigError
    from logkit.sinks.bigquery import BigQueryBackend
    from logkit.sinks.bigquery_mirror import BigQueryMirror
    from logkit.sinks.registry import scheme_of

    if scheme_of(uri) != "bigquery":
        raise ConfigError(f"the audit mirror is a BigQuery dataset (bigquery://...), got {uri!r}")
    return BigQueryMirror(BigQueryBackend.from_uri(uri))


def _walk(store: Any, chain_id: str) -> Iterator[StoredRecord]:
    after = -1
    while batch := store.records(chain_id, after_seq=after, limit=PAGE):
        yield from batch
        after = batch[-1].seq


def sync(primary: AuditStore, mirror: BigQueryMirror, tenant_id: str) -> SyncReport:
    """Copy what the mirror lacks, then erase in it what the primary has erased."""
    report = SyncReport()
    mirror.ensure()
    heads = mirror.heads(tenant_id)
    unerased = mirror.unerased(tenant_id)
    doomed: list[tuple[str, int]] = []
    for chain_id in primary.chain_ids(tenant_id):
        report.chains += 1
        head = heads.get(chain_id, -1)
        fresh: list[StoredRecord] = []
        for record in _walk(primary, chain_id):
            if record.seq > head:
                fresh.append(record)
            elif record.payload_salt is None and (chain_id, record.seq) in unerased:
                doomed.append((chain_id, record.seq))
            if len(fresh) >= PAGE:
                mirror.write(fresh)
                report.copied, fresh = report.copied + len(fresh), []
        mirror.write(fresh)
        report.copied += len(fresh)
    if doomed:
        report.erased = mirror.erase(tenant_id, doomed)
    return report


def compare(
    primary: AuditStore,
    mirror: BigQueryMirror,
    chain_ids: list[str],
    keys: Keys,
    *,
    tenant_id: str,
    run_id: str | None = None,
) -> MirrorReport:
    """Verify the mirror's chains and report every disagreement with the primary's
    ``chain_ids`` (the chains of the tenant, or of one run, that the primary lists)."""
    mirrored = sorted(mirror.chain_ids(tenant_id, run_id))
    # verify() reads records() and checkpoints() only, which the mirror provides.
    verified = verify(cast(AuditStore, mirror), mirrored, keys, checkpoints=[])
    report = MirrorReport(ok=verified.ok, mirror=verified)
    for chain_id in sorted(set(chain_ids) | set(mirrored)):
        if chain_id not in chain_ids:
            detail = "the primary has no such chain; the mirror holds its records"
            report.disagreements.append(Disagreement(chain_id, None, "missing_in_primary", detail))
            continue
        _compare_chain(primary, mirror, chain_id, report)
    report.ok = verified.ok and not report.disagreements
    return report


def _compare_chain(
    primary: AuditStore, mirror: BigQueryMirror, chain_id: str, report: MirrorReport
) -> None:
    """Merge both sides in seq order; records the primary lacks are reported once, as a run."""
    theirs, mine = _walk(mirror, chain_id), _walk(primary, chain_id)
    ours, copy = next(mine, None), next(theirs, None)
    behind, lost, first_lost = 0, 0, -1
    while ours is not None or copy is not None:
        if copy is None or (ours is not None and ours.seq < copy.seq):
            behind += 1  # not mirrored yet
            ours = next(mine, None)
        elif ours is None or copy.seq < ours.seq:
            lost, first_lost = lost + 1, first_lost if lost else copy.seq
            copy = next(theirs, None)
        else:
            _compare_record(ours, copy, report)
            copy = next(theirs, None)
            while copy is not None and copy.seq == ours.seq:  # a second, different row
                _add(report, chain_id, copy.seq, "differs")
                copy = next(theirs, None)
            ours = next(mine, None)
    if lost:
        detail = f"{DISAGREEMENTS['missing_in_primary']} ({lost} from seq {first_lost})"
        report.disagreements.append(
            Disagreement(chain_id, first_lost, "missing_in_primary", detail)
        )
    if behind:
        report.behind[chain_id] = behind


def _compare_record(ours: StoredRecord, copy: StoredRecord, report: MirrorReport) -> None:
    hashed = (ours.hash, ours.record_bytes, ours.columns)
    if hashed != (copy.hash, copy.record_bytes, copy.columns):
        _add(report, ours.chain_id, ours.seq, "differs")
    elif (ours.payload_salt is None) != (copy.payload_salt is None):
        kind = "erasure_pending" if ours.payload_salt is None else "erased_in_mirror_only"
        _add(report, ours.chain_id, ours.seq, kind)
    elif (ours.payload_bytes, ours.payload_salt) != (copy.payload_bytes, copy.payload_salt):
        _add(report, ours.chain_id, ours.seq, "differs")


def _add(report: MirrorReport, chain_id: str, seq: int, kind: str) -> None:
    report.disagreements.append(Disagreement(chain_id, seq, kind, DISAGREEMENTS[kind]))
