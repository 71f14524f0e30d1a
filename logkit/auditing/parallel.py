"""Verify one long chain on every core: contiguous segments in worker processes.

A segment [start, stop) is verified like the whole chain, starting from the stored hashes of
records start-1 and start-2 (the segment before checks those records themselves). A segment
that ends before ``stop`` reports the missing record. The earliest break of any segment is the
chain's first break. Workers reopen the store from its URI, so only backends that can be
reopened (SQLite, Firestore) are split; below PARALLEL_MIN records it is not worth the start-up.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from logkit.auditing.erasures import Erasures
from logkit.auditing.report import ChainReport
from logkit.auditing.scan import ChainBreak, ScanState, read_page, scan
from logkit.sinks.protocols import AuditStore, Role

PARALLEL_MIN = 200_000


@dataclass
class SegmentResult:
    start: int
    scanned: int
    erased: int
    hashes_at: dict[int, str]
    brk: tuple[int, str, str] | None  # (seq, kind, detail)


def _open(uri: str) -> AuditStore:
    from logkit.sinks.registry import open_backend

    store = open_backend(uri).store(Role.AUDIT)
    assert isinstance(store, AuditStore)
    return store


def verify_segment(
    uri: str, chain_id: str, start: int, stop: int | None, wanted: frozenset[int]
) -> SegmentResult:
    store = _open(uri)
    state = ScanState(expected=start, erasures=Erasures(store))
    if start > 0:
        before = store.records(chain_id, after_seq=start - 3, limit=2)
        by_seq = {r.seq: r.hash for r in before if type(r.seq) is int}
        if start - 1 not in by_seq:  # the segment before reports it as missing
            return SegmentResult(start, 0, 0, {}, None)
        state.prev, state.prev2 = by_seq[start - 1], by_seq.get(start - 2)
    try:
        while batch := read_page(store, chain_id, state.expected):
            if stop is not None:
                batch = [r for r in batch if type(r.seq) is not int or r.seq < stop]
            if not batch:
                break
            scan(batch, chain_id, state, wanted)
            if stop is not None and state.expected >= stop:
                break
        if stop is not None and state.expected < stop:
            raise ChainBreak(state.expected, "missing", f"seq {state.expected} is missing")
    except ChainBreak as brk:
        return SegmentResult(
            start,
            state.expected - start,
            state.erased,
            state.hashes_at,
            (brk.seq, brk.kind, brk.detail),
        )
    return SegmentResult(start, state.expected - start, state.erased, state.hashes_at, None)


def verify_chain_parallel(
    uri: str, chain_id: str, length: int, workers: int, wanted: frozenset[int]
) -> tuple[ChainReport, dict[int, str]]:
    bounds = [length * i // workers for i in range(workers)]
    stops: list[int | None] = [*bounds[1:], None]
    ctx = multiprocessing.get_context("spawn")  # never fork a process that runs threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [
            pool.submit(verify_segment, uri, chain_id, a, b, wanted)
            for a, b in zip(bounds, stops, strict=True)
        ]
        results = [f.result() for f in futures]
    report = ChainReport(chain_id)
    hashes: dict[int, str] = {}
    for result in results:  # in seq order: the first break found is the chain's first break
        report.erased += result.erased
        hashes.update(result.hashes_at)
        if result.brk is not None:
            report.fail(*result.brk)
            report.records = result.start + result.scanned
            break
    else:
        report.records = sum(r.scanned for r in results)
    report.head_seq = report.records - 1 if report.records else None
    return report, hashes
