"""Which erased audit records are explained by an erasure record.

An erased record (payload and salt gone) verifies only when logkit's own record of the erasure
says so: a ``dsar_erasure`` record names every (chain, seq) it erased; a ``retention_applied``
record names, per app, the time before which audit payloads were erased. Both live on the
tenant's chain (``<tenant>/_tenant``). Only records whose own hash and payload digest check out
count, so a forged or altered explanation explains nothing. Anything else that lost its payload
is ``unexplained_erasure``: NULLing two columns is not a way to hide a record's content.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from logkit.chain import chain_id_of
from logkit.sinks.protocols import AuditStore, StoredRecord

_PAGE = 5000
EXPLAINING = ("dsar_erasure", "retention_applied")


@dataclass(frozen=True, slots=True)
class Cutoff:
    """Retention erased the audit payloads of ``app`` (None: the tenant's apps without a rule
    of their own, i.e. every app but ``except_apps``) older than ``before``."""

    app: str | None
    except_apps: frozenset[str]
    before: dt.datetime

    def covers(self, app: object, ts: dt.datetime) -> bool:
        in_scope = app == self.app if self.app is not None else app not in self.except_apps
        return in_scope and ts < self.before


@dataclass
class TenantErasures:
    positions: set[tuple[str, int]] = field(default_factory=set)
    cutoffs: list[Cutoff] = field(default_factory=list)


class Erasures:
    """Explanations of erased records, read once per tenant from the tenant's chain."""

    def __init__(self, store: AuditStore) -> None:
        self.store = store
        self._tenants: dict[str, TenantErasures] = {}

    def explains(self, chain_id: str, seq: int, fields: dict[str, Any]) -> bool:
        tenant = chain_id.partition("/")[0]
        known = self._tenants.get(tenant)
        if known is None:
            known = self._tenants[tenant] = self._read(tenant)
        if (chain_id, seq) in known.positions:
            return True
        ts = _time(fields.get("ts"))
        app = fields.get("app_id")
        return ts is not None and any(c.covers(app, ts) for c in known.cutoffs)

    def _read(self, tenant: str) -> TenantErasures:
        found = TenantErasures()
        chain_id = chain_id_of(tenant, None)
        after = -1
        while True:
            try:
                page = self.store.records(chain_id, after_seq=after, limit=_PAGE)
            except Exception:  # an unreadable tenant chain explains nothing (and is reported)
                return found
            for record in page:
                payload = _trusted_payload(record, chain_id)
                if payload is not None:
                    _collect(found, *payload)
            if len(page) < _PAGE or not isinstance(page[-1].seq, int):
                return found
            after = page[-1].seq


def _trusted_payload(record: StoredRecord, chain_id: str) -> tuple[str, Any] | None:
    """(event type, payload) of an intact explaining record, or None."""
    try:
        if hashlib.sha256(record.record_bytes).hexdigest() != record.hash:
            return None
        fields = orjson.loads(record.record_bytes)
        if fields.get("event_type") not in EXPLAINING or fields.get("chain_id") != chain_id:
            return None
        salt = bytes.fromhex(record.payload_salt or "")
        payload_bytes = record.payload_bytes
        if payload_bytes is None or len(salt) != 16:
            return None
        if hashlib.sha256(salt + payload_bytes).hexdigest() != fields.get("payload_digest"):
            return None
        return str(fields["event_type"]), orjson.loads(payload_bytes)
    except (TypeError, ValueError, AttributeError):
        return None


def _collect(found: TenantErasures, event_type: str, payload: Any) -> None:
    if not isinstance(payload, dict):
        return
    if event_type == "dsar_erasure":
        erased = payload.get("erased")
        if isinstance(erased, dict):
            for chain, seqs in erased.items():
                if isinstance(seqs, list):
                    found.positions.update((chain, s) for s in seqs if type(s) is int)
        return
    entries = payload.get("erased_before")
    for entry in entries if isinstance(entries, list) else ():
        cutoff = _cutoff(entry)
        if cutoff is not None:
            found.cutoffs.append(cutoff)


def _cutoff(entry: Any) -> Cutoff | None:
    if not isinstance(entry, dict):
        return None
    before = _time(entry.get("before"))
    app = entry.get("app")
    others = entry.get("except_apps") or []
    if before is None or not (app is None or isinstance(app, str)) or not isinstance(others, list):
        return None
    return Cutoff(app, frozenset(o for o in others if isinstance(o, str)), before)


def _time(value: Any) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else None
