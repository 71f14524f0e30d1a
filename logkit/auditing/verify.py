"""Verify audit chains: every record (scan.py), then the evidence around them (evidence.py).

``verify`` reports per chain (chain, first bad seq, kind, detail) and never raises on what a
store holds: any bytes in any column, stored checkpoints that are not checkpoints, chains that
are gone. Only an unreachable store (SinkError) or unusable configuration raises.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from pathlib import Path

from logkit.auditing.chains import in_scope
from logkit.auditing.checkpoint import Checkpoint, Keys, parse_documents
from logkit.auditing.erasures import Erasures
from logkit.auditing.evidence import Seen, apply, load_seen, save_seen, wanted
from logkit.auditing.report import BREAKS, ChainReport, VerifyReport
from logkit.auditing.scan import (
    PAGE,
    ChainBreak,
    ScanState,
    scan,
    verify_chain,
)
from logkit.errors import LogkitError
from logkit.sinks.protocols import AuditStore

__all__ = [
    "BREAKS",
    "PAGE",
    "ChainBreak",
    "ChainReport",
    "ScanState",
    "VerifyReport",
    "expected_chains",
    "scan",
    "verify",
    "verify_chain",
]


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
    tenant_id: str | None = None,
    run_id: str | None = None,
) -> VerifyReport:
    """Verify chains; checkpoints come from ``checkpoints`` (a file) or the audit store.

    With ``tenant_id`` (and ``run_id``), chains the checkpoints or the remembered state name in
    that scope are verified too, so a chain deleted whole is reported (``missing_chain``).
    """
    seen = load_seen(seen_path)
    before = {k: Seen(**v.__dict__) for k, v in seen.items()}
    chains = list(dict.fromkeys(str(c) for c in chain_ids))
    if tenant_id is not None:
        named = expected_chains(checkpoints or [], seen, tenant_id, run_id)
        chains += [c for c in named if c not in chains]
    erasures = Erasures(store)
    reports = []
    for chain_id in chains:
        step = None if progress is None else functools.partial(progress, chain_id)
        problems: list[str] = []
        if checkpoints is not None:
            mine = [c for c in checkpoints if c.chain_id == chain_id]
        else:
            mine, problems = _stored_checkpoints(store, chain_id)
        remembered = seen.setdefault(chain_id, Seen()) if seen_path is not None else None
        report, hashes = _verify_one(
            store, chain_id, step, wanted(mine, remembered), erasures, uri=uri, workers=workers
        )
        apply(report, hashes, mine, problems, keys, seen=remembered, stored=checkpoints is None)
        reports.append(report)
    if seen_path is not None:  # only intact chains moved on (apply() updated them)
        kept = {k: v for k, v in seen.items() if v.points() or v.checkpoint_seq >= 0}
        if kept != before:
            save_seen(seen_path, kept)
    return VerifyReport(all(r.status == "ok" for r in reports), reports)


def expected_chains(
    checkpoints: Iterable[Checkpoint], seen: dict[str, Seen], tenant_id: str, run_id: str | None
) -> list[str]:
    """Chains of the scope that checkpoints or the remembered state vouch for."""
    found = {c.chain_id for c in checkpoints} | {k for k, v in seen.items() if v.points()}
    # in_scope: the run's chain, or with run "_tenant" the tenant chain and its writer lanes.
    return sorted(c for c in found if in_scope(c, tenant_id, run_id))


def _stored_checkpoints(store: AuditStore, chain_id: str) -> tuple[list[Checkpoint], list[str]]:
    try:
        documents = store.checkpoints(chain_id)
    except LogkitError:
        raise
    except Exception as exc:  # a driver choking on tampered rows: a finding, not a crash
        return [], [f"the stored checkpoints cannot be read ({type(exc).__name__})"]
    found, problems = parse_documents(documents)
    strays = [c for c in found if c.chain_id != chain_id]
    problems += [f"a stored checkpoint names another chain ({c.chain_id!r:.60})" for c in strays]
    return [c for c in found if c.chain_id == chain_id], problems


def _verify_one(
    store: AuditStore,
    chain_id: str,
    step: Callable[[int], None] | None,
    wanted_seqs: frozenset[int],
    erasures: Erasures,
    *,
    uri: str | None,
    workers: int,
) -> tuple[ChainReport, dict[int, str]]:
    """One chain: split across worker processes when it is long and the store can reopen."""
    from logkit.auditing.checkpoint import chain_head
    from logkit.auditing.parallel import PARALLEL_MIN, verify_chain_parallel

    if uri is not None and workers > 1:
        try:
            head = chain_head(store, chain_id)
        except (TypeError, ValueError):  # a tampered head: the serial walk names the break
            head = None
        length = head[0] + 1 if head and type(head[0]) is int else 0
        if PARALLEL_MIN <= length <= _MAX_SEQ:
            try:
                report, hashes = verify_chain_parallel(uri, chain_id, length, workers, wanted_seqs)
            except Exception:  # a tampered store a worker chokes on: walk it here instead
                return verify_chain(store, chain_id, step, wanted_seqs, erasures)
            if report.status == "ok" and report.records == length and head is not None:
                report.head_hash = head[1]
            if step is not None:
                step(report.records)
            return report, hashes
    return verify_chain(store, chain_id, step, wanted_seqs, erasures)


_MAX_SEQ = 2**53  # beyond any real chain: a head up there is tampering, walked serially
