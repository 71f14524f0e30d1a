"""Data subject requests: export everything about a subject, and erase it.

:func:`export` writes every matching event of the timeline, audit and cost stores as JSONL,
plus a manifest beside it (counts per store, SHA-256 of the JSONL, time range, logkit version,
a checkpoint of each audit chain touched), and chains a ``dsar_export`` record.

:func:`delete` removes a subject's (tenant, user) ops and cost events from every store, erases
the payloads of their audit records (the records keep their place and ``payload_digest``, so
the chains still verify; without the salt nothing confirms the erased values), destroys their
sealed-payload key (crypto-shredding), checkpoints local SQLite files so no copy of the
erased values stays in a write-ahead log, and chains a ``dsar_erasure`` record with the counts.

Both return result objects (``as_dict()`` for JSON), so a service can expose them over HTTP;
the CLI is a thin layer over them. Records hold counts, ids and chain positions, never values.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from logkit.envelope import SCHEMA_VERSION, Event, EventType, utc_now
from logkit.erasure import Settled, settle
from logkit.errors import ContractError, RequestRefusedError, SinkError
from logkit.read import require_tenant
from logkit.redaction.gate import redact_identifier
from logkit.runtime import Runtime, current
from logkit.sinks.protocols import AuditStore, Query, Role, Selector

EXPORT_FORMAT = "logkit-dsar-export/1"
PAGE = 5_000
FLUSH_TIMEOUT_S = 30.0
ROLES = (Role.TIMELINE, Role.AUDIT, Role.COST)
RERUN = "run the same `logkit dsar delete` again"

Progress = Callable[[str, int], None]  # (role, events just written)


# --- export ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """Which events an export takes: one tenant, narrowed by user, run and time."""

    tenant_id: str
    user_id: str | None = None
    run_id: str | None = None
    since: dt.datetime | None = None  # inclusive
    until: dt.datetime | None = None  # exclusive

    def __post_init__(self) -> None:
        """One tenant, ids as strings, an aware and non-empty time window (ContractError)."""
        require_tenant(self.tenant_id)
        for name in ("user_id", "run_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ContractError(
                    f"{name} must be a non-empty string or None", problems={name: "empty"}
                )
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, dt.datetime) or value.tzinfo is None):
                raise ContractError(
                    f"{name} must be a timezone-aware datetime", problems={name: "not aware"}
                )
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ContractError(
                "since must be before until (an empty window exports nothing it can vouch for)",
                problems={"since": "not before until"},
            )

    def query(self, cursor: str | None) -> Query:
        return Query(
            self.tenant_id,
            run_id=self.run_id,
            user_id=self.user_id,
            since=self.since,
            until=self.until,
            limit=PAGE,
            cursor=cursor,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in asdict(self).items()
        }


@dataclass
class ExportResult:
    path: Path
    manifest_path: Path
    manifest: dict[str, Any]
    record_id: str  # the dsar_export audit record

    @property
    def total(self) -> int:
        return int(self.manifest["events"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "file": str(self.path),
            "manifest": str(self.manifest_path),
            "record": self.record_id,
            **{k: self.manifest[k] for k in ("events", "counts", "sha256", "time_range")},
        }


def manifest_path_for(out: Path) -> Path:
    """``x.jsonl`` -> ``x.manifest.json`` (``x`` -> ``x.manifest.json``)."""
    return out.with_name(f"{out.stem if out.suffix else out.name}.manifest.json")


def export(
    request: ExportRequest,
    out: Path,
    *,
    progress: Progress | None = None,
    runtime: Runtime | None = None,
    clock: Callable[[], dt.datetime] = utc_now,
) -> ExportResult:
    """Write the matching events of every store to ``out`` (JSONL) and a manifest beside it.

    Each line is ``{"store": role, "event": event}``; audit lines carry the chain fields and
    the salt, so a third party can recompute the digests and hashes (docs/audit-chain.md).
    ``out`` and the manifest must not exist yet (FileExistsError): nothing is overwritten. A
    store error removes the partial file and propagates: a half export is never left looking
    whole.
    """
    runtime = runtime or current()
    manifest_path = manifest_path_for(out)
    if manifest_path.exists():
        raise FileExistsError(manifest_path)
    _flush(runtime)
    handle = out.open("xb")  # exclusive: an existing file is refused (before the try: kept)
    created = [out]
    try:
        tally = _write_lines(handle, _matching(runtime, request, progress))
        manifest = {
            "format": EXPORT_FORMAT,
            "logkit_version": _version(),
            "schema_version": SCHEMA_VERSION,
            "created_at": clock().isoformat(),
            "request": request.as_dict(),
            "file": out.name,
            **tally.summary(),
            "audit_chains": _chain_checkpoints(runtime, sorted(tally.chains), clock()),
        }
        with manifest_path.open("x") as manifest_file:
            created.append(manifest_path)
            json.dump(manifest, manifest_file, indent=2, sort_keys=True)
            manifest_file.write("\n")
        # An export nobody can account for is not handed out: no record, no files.
        record = _record_export(runtime, request, manifest)
    except BaseException:
        handle.close()
        for path in created:
            path.unlink(missing_ok=True)
        raise
    return ExportResult(out, manifest_path, manifest, record.event_id)


def _write_lines(handle: Any, events: Iterator[tuple[Role, Event]]) -> _Tally:
    tally = _Tally()
    with handle:
        for role, event in events:
            handle.write(tally.line(role, event))
        handle.flush()
        os.fsync(handle.fileno())  # on disk before the manifest vouches for it
    return tally


@dataclass
class _Tally:
    """What the manifest says about the lines written: counts, digest, time range, chains."""

    digest: Any = field(default_factory=hashlib.sha256)
    counts: dict[Role, int] = field(default_factory=dict)
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    chains: set[str] = field(default_factory=set)

    def line(self, role: Role, event: Event) -> bytes:
        line = b'{"store":"%s","event":%s}\n' % (role.value.encode(), event.to_json().encode())
        self.digest.update(line)
        self.counts[role] = self.counts.get(role, 0) + 1
        self.first = event.ts if self.first is None else min(self.first, event.ts)
        self.last = event.ts if self.last is None else max(self.last, event.ts)
        if role is Role.AUDIT and event.chain_id:
            self.chains.add(event.chain_id)
        return line

    def summary(self) -> dict[str, Any]:
        """The manifest's account of the lines: digest, counts per store, time range."""
        return {
            "sha256": self.digest.hexdigest(),
            "events": sum(self.counts.values()),
            "counts": {role.value: self.counts.get(role, 0) for role in ROLES},
            "time_range": {
                "first": self.first.isoformat() if self.first else None,
                "last": self.last.isoformat() if self.last else None,
            },
        }


def stored_forms(tenant_id: str, value: str | None) -> list[str | None]:
    """The forms an identifier given by an operator is stored under: the gated one (what the
    redaction gate stores since it covers identifiers) and, when different, the raw one
    (events stored by an older logkit)."""
    if value is None:
        return [None]
    gated = redact_identifier(value, tenant_id=tenant_id)
    return [gated] if gated == value else [gated, value]


def _variants(request: ExportRequest) -> list[ExportRequest]:
    return [
        replace(request, user_id=user, run_id=run)
        for user in stored_forms(request.tenant_id, request.user_id)
        for run in stored_forms(request.tenant_id, request.run_id)
    ]


def _matching(
    runtime: Runtime, request: ExportRequest, progress: Progress | None
) -> Iterator[tuple[Role, Event]]:
    for role, variant in itertools.product(ROLES, _variants(request)):
        store = runtime.stores.get(role)
        if store is None:
            continue
        cursor: str | None = None
        while True:
            page = store.query(variant.query(cursor))
            for event in page.events:
                yield role, event
            if progress is not None and page.events:
                progress(role.value, len(page.events))
            if page.next_cursor is None:
                break
            cursor = page.next_cursor


def _chain_checkpoints(
    runtime: Runtime, chain_ids: list[str], now: dt.datetime
) -> list[dict[str, Any]]:
    """The head of each chain touched, with a checkpoint signed now (when a key is configured;
    otherwise the newest one kept in the store), so the export can be checked against it."""
    from logkit.auditing.checkpoint import checkpoint_chains, load_keys, parse_stored

    store = _audit_store(runtime)
    keys = load_keys(runtime.settings.audit, runtime.settings.env)
    entries = []
    for chain_id in chain_ids:
        head = store.head(chain_id)
        checkpoint: dict[str, Any] | None = None
        if keys.signer is not None:
            made = checkpoint_chains(store, [chain_id], keys, now)
            checkpoint = asdict(made[0]) if made else None
        else:
            stored = parse_stored(store.checkpoints(chain_id))
            checkpoint = asdict(stored[-1]) if stored else None
        entries.append(
            {
                "chain_id": chain_id,
                "head_seq": head[0] if head else None,
                "head_hash": head[1] if head else None,
                "checkpoint": checkpoint,
            }
        )
    return entries


def _record_export(runtime: Runtime, request: ExportRequest, manifest: dict[str, Any]) -> Event:
    from logkit.auditing.write import record_operation

    payload = {
        "request": request.as_dict(),
        "counts": manifest["counts"],
        "events": manifest["events"],
        "sha256": manifest["sha256"],
        "chains": [c["chain_id"] for c in manifest["audit_chains"]],
    }
    return record_operation(runtime, EventType.DSAR_EXPORT, request.tenant_id, payload)


# --- delete ----------------------------------------------------------------------------------


@dataclass
class StoreOutcome:
    role: str
    backend: str
    action: str  # "delete" | "erase_payloads"
    count: int = 0
    error: str | None = None


@dataclass
class DeleteResult:
    tenant_id: str
    user_id: str
    dry_run: bool
    stores: list[StoreOutcome] = field(default_factory=list)
    erased_chains: dict[str, list[int]] = field(default_factory=dict)  # chain -> seqs
    keys_destroyed: int = 0
    dead_letters_deleted: int = 0
    record_id: str | None = None  # the dsar_erasure audit record (None on a dry run)
    disk: Settled | None = None  # what may be left in local files (None on a dry run)

    @property
    def failures(self) -> list[StoreOutcome]:
        return [s for s in self.stores if s.error is not None]

    @property
    def warnings(self) -> list[str]:
        """Erased values that may still be on disk (a reader's snapshot kept a WAL)."""
        return [] if self.disk is None else self.disk.warnings()

    @property
    def ok(self) -> bool:
        return not self.failures and not self.warnings

    @property
    def total(self) -> int:
        counts = sum(s.count for s in self.stores)
        return counts + self.keys_destroyed + self.dead_letters_deleted

    @property
    def nothing_left(self) -> bool:
        """Nothing of the subject was (or, on a dry run, would be) found: already erased."""
        return self.ok and self.total == 0

    def counts(self) -> dict[str, int]:
        return {f"{s.role}_{'erased' if s.action == 'erase_payloads' else 'deleted'}": s.count
                for s in self.stores}  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "tenant_id": self.tenant_id,
            "user_id": self.user_id,
            "nothing_left": self.nothing_left,
            "counts": self.counts(),
            "keys_destroyed": self.keys_destroyed,
            "dead_letters_deleted": self.dead_letters_deleted,
            "erased_chains": self.erased_chains,
            "failures": [f"{s.backend} ({s.role}): {s.error}" for s in self.failures],
            "warnings": self.warnings,
            "residue": [] if self.disk is None else self.disk.as_dict(),
            "record": self.record_id,
        }


def delete(
    tenant_id: str, user_id: str, *, dry_run: bool = False, runtime: Runtime | None = None
) -> DeleteResult:
    """Erase a subject (tenant, user) from every store; ``dry_run`` only counts.

    Refused (RequestRefusedError, nothing changed) under a legal hold on the tenant or any of
    its apps, or while events wait in the spool for a backend (they would come back after the
    erasure). A store that fails does not stop the others: it is named in ``failures`` and the
    ``dsar_erasure`` record says so; running again finishes the job (it is idempotent).
    When a reader's snapshot keeps erased values in a local SQLite file's WAL, ``warnings``
    names the file and the processes holding it, and ``ok`` is false: run again once they close.
    """
    require_tenant(tenant_id)
    if not isinstance(user_id, str) or not user_id.strip():
        raise ContractError(
            "user_id must name the subject: erasure is per (tenant, user)",
            missing=("user_id",),
        )
    runtime = runtime or current()
    _refuse_if_held(runtime, tenant_id)
    _flush(runtime)
    result = DeleteResult(tenant_id, user_id, dry_run)
    forms = [f for f in stored_forms(tenant_id, user_id) if f is not None]
    for form in forms:
        subject = Selector(tenant_id, user_id=form)
        for role in ROLES:
            if role in runtime.stores:
                _add_outcome(result, _erase_from(runtime, role, subject, result))
        if runtime.feed is not None:  # the live feed's window holds copies too
            _add_outcome(result, _erase_from_feed(runtime, subject, dry_run))
        result.keys_destroyed += _shred_key(runtime, tenant_id, form, dry_run)
        result.dead_letters_deleted += runtime.spool.purge_dead(tenant_id, form, dry_run=dry_run)
    if not dry_run:
        result.disk = settle(runtime, RERUN)
        try:
            result.record_id = _record_erasure(runtime, result).event_id
        except SinkError as exc:
            raise SinkError(
                f"the subject was erased ({result.total} item(s)) but the dsar_erasure record "
                f"could not be chained: {exc}. Counts: {result.counts()}"
            ) from exc
    return result


def _add_outcome(result: DeleteResult, outcome: StoreOutcome) -> None:
    """One outcome per store, summed over the forms the subject's id is stored under."""
    for known in result.stores:
        if (known.role, known.backend, known.action) == (
            outcome.role,
            outcome.backend,
            outcome.action,
        ):
            known.count += outcome.count
            known.error = known.error or outcome.error
            return
    result.stores.append(outcome)


def _refuse_if_held(runtime: Runtime, tenant_id: str) -> None:
    from logkit.retention import held

    holds = held(runtime.settings.retention, tenant_id)
    if holds:
        raise RequestRefusedError(
            f"legal hold on {', '.join(holds)}: DSAR deletion refused, nothing was deleted "
            "(lift the hold in [retention] rules first)"
        )


def _flush(runtime: Runtime) -> None:
    """Everything emitted so far must be in its store: otherwise an export misses it, or it
    is written after an erasure and the subject's data comes back."""
    if not runtime.flush(FLUSH_TIMEOUT_S):
        raise RequestRefusedError(
            f"events still on their way to the stores after {FLUSH_TIMEOUT_S:.0f} s: "
            "nothing was changed; try again when the backends keep up"
        )
    pending = runtime.spool.count()
    if pending:
        raise RequestRefusedError(
            f"{pending} event(s) wait in the spool for an unreachable backend: nothing was "
            "changed; run again once `logkit check-sinks` passes and the spool has drained"
        )


def _erase_from(
    runtime: Runtime, role: Role, subject: Selector, result: DeleteResult
) -> StoreOutcome:
    action = "erase_payloads" if role is Role.AUDIT else "delete"
    outcome = StoreOutcome(role.value, runtime.describe(role), action)
    dry_run = result.dry_run
    try:
        if role is Role.AUDIT:
            audit = _audit_store(runtime)
            for chain, seqs in _erasable(audit, subject).items():
                result.erased_chains[chain] = sorted({*result.erased_chains.get(chain, ()), *seqs})
            outcome.count = audit.erase_payloads(subject, dry_run=dry_run)
        else:
            store = runtime.stores[role]
            outcome.count = store.count(subject) if dry_run else store.delete(subject)
    except SinkError as exc:
        outcome.error = str(exc)
    return outcome


def _erase_from_feed(runtime: Runtime, subject: Selector, dry_run: bool) -> StoreOutcome:
    feed = runtime.feed
    assert feed is not None
    outcome = StoreOutcome("feed", feed.describe(), "delete")
    try:
        outcome.count = feed.count(subject) if dry_run else feed.delete(subject)
    except SinkError as exc:
        outcome.error = str(exc)
    return outcome


def _erasable(store: AuditStore, subject: Selector) -> dict[str, list[int]]:
    """Chain positions of the subject's records that still hold a payload (what is erased)."""
    positions: dict[str, list[int]] = {}
    request = ExportRequest(subject.tenant_id, user_id=subject.user_id)
    cursor: str | None = None
    while True:
        page = store.query(request.query(cursor))
        for event in page.events:
            if event.payload_salt is not None and event.chain_id and event.seq is not None:
                positions.setdefault(event.chain_id, []).append(event.seq)
        if page.next_cursor is None:
            return {chain: sorted(seqs) for chain, seqs in sorted(positions.items())}
        cursor = page.next_cursor


def _shred_key(runtime: Runtime, tenant_id: str, user_id: str, dry_run: bool) -> int:
    """Destroy (or count) the key of the subject (tenant, user), and its legacy key file if
    payloads were sealed under one before canonical subjects (logkit.redaction.keys)."""
    from logkit.redaction.sealing import legacy_subject, subject_of

    keys = runtime.keys
    if keys is None:
        return 0
    subject = subject_of(tenant_id, user_id)
    if dry_run:
        names = [subject, legacy_subject(subject)]
        return int(any(keys.key(s, create=False) is not None for s in names if s))
    return int(keys.destroy(subject))


def _record_erasure(runtime: Runtime, result: DeleteResult) -> Event:
    from logkit.auditing.write import record_operation

    payload = {
        # The subject's id as the erased records' own envelopes carry it (hashed): the gated
        # form, so the record that proves the erasure does not hold the id in the clear.
        "user_id": stored_forms(result.tenant_id, result.user_id)[0],
        "counts": result.counts(),
        "erased": result.erased_chains,
        "keys_destroyed": result.keys_destroyed,
        "dead_letters_deleted": result.dead_letters_deleted,
        "failed": [f"{s.backend} ({s.role})" for s in result.failures],
        # Local files where a reader's snapshot may still keep erased values (run again).
        "disk_residue": [f for r in (result.disk.residue if result.disk else []) for f in r.files],
    }
    return record_operation(runtime, EventType.DSAR_ERASURE, result.tenant_id, payload)


# --- shared ----------------------------------------------------------------------------------


def _audit_store(runtime: Runtime) -> AuditStore:
    store = runtime.stores[Role.AUDIT]
    if not isinstance(store, AuditStore):
        raise SinkError(f"the audit role's store {type(store).__name__} keeps no chain")
    return store


def _version() -> str:
    from logkit import __version__

    return __version__
