"""Envelope identifiers through the gate: kept when they are plain ids, pseudonymised otherwise.

Identifiers (``user_id``, ``request_id``, ``run_id``, ...) are not payload: stores index them,
chains hash them, DSAR finds subjects by them. So they are not redacted piecemeal like text;
each one is either kept whole or replaced whole:

* kept when it is a plain identifier (letters, digits and ``_ . : = + / ~ -``, at most 128
  characters) in which no detector finds anything, also with its separators read as spaces (so
  ``req-4111111111111111`` is not a card hidden behind a word boundary);
* otherwise replaced by a keyed pseudonym of the whole value, ``[EMAIL:<32 hex>]`` when one
  find covers it, ``[ID:<32 hex>]`` when not. 128 bits of HMAC-SHA256 under the tenant's key:
  stable (the same user id gives the same pseudonym in every event, so a subject stays one
  subject), unique in practice (no two subjects of a tenant share one), and not reversible
  without the key. For an email the first 8 hex are those of the payload pseudonym
  ``[EMAIL:xxxxxxxx]`` of the same address, so the two correlate.

The mapping is idempotent (a pseudonym is itself kept), so a reader can put a raw id or a stored
one through it and query with the result: ``logkit dsar export --user alice@example.com`` finds
the events stored under ``[EMAIL:...]``.

``tenant_id`` is never pseudonymised (it selects the key): one in which a detector finds
something is refused with a ContractError.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from operator import itemgetter
from typing import Any

from logkit.errors import ContractError

IDENTIFIER_FIELDS: tuple[str, ...] = (
    "project_id",
    "surface_id",
    "app_id",
    "request_id",
    "run_id",
    "step_id",
    "parent_step_id",
    "user_id",
    "event_id",
)
"""Free-form identifier fields of the envelope (tenant_id is checked, never replaced)."""

_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:=+/~-]{0,127}")
# Random ids logkit and the platform generate: nothing to find, and too many to cache.
_GENERATED = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|(?:run|step)_[0-9a-f]{32}"
)
_PSEUDONYM = re.compile(r"\[[A-Z][A-Z0-9_]*:[0-9a-f]{32}\]")
_SEPARATORS = re.compile(r"[_.:=+/~-]")
_MAX_CACHED = 8_192
_UNSEEN = object()
_GETTERS: dict[tuple[str, ...], Callable[[dict[str, Any]], Any]] = {}

Scan = Callable[[str], list[tuple[int, int, str]]]
KeyOf = Callable[[str | None], bytes]


def identifier_pseudonym(kind: str, value: str, key: bytes) -> str:
    """``[KIND:<32 hex>]``: HMAC-SHA256(key, kind + ":" + value), 128 bits."""
    digest = hmac.new(key, f"{kind}:{value}".encode("utf-8", "surrogatepass"), hashlib.sha256)
    return f"[{kind.upper()}:{digest.hexdigest()[:32]}]"


def finds(scan: Scan, value: str, allow: frozenset[str]) -> list[tuple[int, int, str]]:
    """What the detectors find in ``value`` as it is and with its separators read as spaces."""
    found = [f for f in scan(value) if f[2] not in allow]
    spaced = _SEPARATORS.sub(" ", value)
    if spaced != value:
        found += [f for f in scan(spaced) if f[2] not in allow]
    return found


class IdentifierGate:
    """Maps identifiers to what may be stored, for one redactor (its detectors and keys).

    Results are cached per tenant: ids repeat (a request's id, a run's, a user's), so the
    common case costs a dict lookup.
    """

    def __init__(self, scan: Scan, key_of: KeyOf, allow: frozenset[str] = frozenset()) -> None:
        self._scan, self._key_of, self._allow = scan, key_of, allow
        self._cache: dict[str | None, dict[str, str]] = {}
        self._size = 0
        self._tenants: set[str] = set()
        self._combos: dict[tuple[str | None, Any], dict[str, str] | None] = {}

    def __call__(self, value: str, tenant_id: str | None) -> str:
        cache = self._cache.get(tenant_id)
        if cache is not None:
            hit = cache.get(value)
            if hit is not None:
                return hit
        if _GENERATED.fullmatch(value):
            return value
        gated = self._gate(value, tenant_id)
        if self._size >= _MAX_CACHED:
            self._cache.clear()  # bounded: recomputing is cheap, memory is not
            self._size = 0
        self._cache.setdefault(tenant_id, {})[value] = gated
        self._size += 1
        return gated

    def changes(
        self, fields: dict[str, Any], tenant_id: str | None, names: tuple[str, ...]
    ) -> dict[str, str] | None:
        """The fields among ``names`` that the gate changes (None: none). The emit hot path:
        the whole combination of an event's ids repeats (one request, one run), so it is
        cached as one tuple; each id is cached on its own as well."""
        getter = _GETTERS.get(names)
        if getter is None:
            getter = _GETTERS[names] = itemgetter(*names)
        combo = (tenant_id, getter(fields))
        known = self._combos.get(combo, _UNSEEN)
        if known is not _UNSEEN:
            return known  # type: ignore[return-value]
        out = gate_fields(self, fields, tenant_id, names) or None
        if len(self._combos) >= _MAX_CACHED:
            self._combos.clear()
        self._combos[combo] = out
        return out

    def _gate(self, value: str, tenant_id: str | None) -> str:
        if _PSEUDONYM.fullmatch(value):
            return value
        found = finds(self._scan, value, self._allow)
        if not found and _PLAIN.fullmatch(value):
            return value
        whole = [k for s, e, k in found if s == 0 and e == len(value)]
        kind = whole[0] if whole else "id"
        return identifier_pseudonym(kind, value, self._key_of(tenant_id))

    def check_tenant(self, tenant_id: str) -> None:
        """Refuse a tenant id in which a detector finds something (it is never replaced)."""
        if tenant_id in self._tenants:
            return
        found = finds(self._scan, tenant_id, self._allow)
        if found:
            kinds = ", ".join(sorted({k for _, _, k in found}))
            raise ContractError(
                f"tenant_id: holds what looks like personal data or a secret ({kinds}); "
                "tenant ids are identifiers",
                problems={"tenant_id": f"looks like {kinds}"},
            )
        if len(self._tenants) >= _MAX_CACHED:
            self._tenants.clear()
        self._tenants.add(tenant_id)


def gate_fields(
    gate: Callable[[str, str | None], str],
    fields: dict[str, Any],
    tenant_id: str | None,
    names: tuple[str, ...],
) -> dict[str, str]:
    """The fields among ``names`` that the gate changes, with their new values."""
    changes: dict[str, str] = {}
    for name in names:
        value = fields.get(name)
        if isinstance(value, str):
            gated = gate(value, tenant_id)
            if gated is not value and gated != value:
                changes[name] = gated
    return changes
