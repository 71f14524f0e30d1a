"""The public read API over the configured stores (what the CLI and the stream server use).

Every read names one tenant: a missing or malformed ``tenant_id`` is a ContractError naming
the field, never a read across tenants.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

from logkit.envelope import Event, is_tenant_id
from logkit.errors import ContractError
from logkit.redaction.gate import redact_identifier
from logkit.runtime import current
from logkit.sinks.protocols import DEFAULT_QUERY_LIMIT, Page, Query, Role


def query_events(
    tenant_id: str,
    *,
    run_id: str | None = None,
    user_id: str | None = None,
    types: Iterable[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = DEFAULT_QUERY_LIMIT,
    cursor: str | None = None,
    role: Role | str = Role.TIMELINE,
) -> Page:
    """One page of a tenant's events in (ts, event_id) order; pass ``next_cursor`` for more.

    ``run_id`` and ``user_id`` may be given raw: they are looked up as the gate stores them.
    """
    require_tenant(tenant_id)
    for name, value in (("run_id", run_id), ("user_id", user_id), ("cursor", cursor)):
        if value is not None and not isinstance(value, str):
            raise ContractError(f"{name} must be a string or None", problems={name: "not a string"})
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ContractError("limit must be an int >= 1", problems={"limit": "not an int >= 1"})
    runtime = current()
    query = Query(
        tenant_id=tenant_id,
        run_id=_stored(run_id, tenant_id),
        user_id=_stored(user_id, tenant_id),
        event_types=tuple(str(t) for t in types) if types is not None else None,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return runtime.stores[Role(role)].query(query)


def require_tenant(tenant_id: object) -> str:
    """``tenant_id`` when it is a tenant id; else a ContractError naming ``tenant_id``."""
    if tenant_id is None:
        raise ContractError(
            "tenant_id is required: every read and delete is scoped to one tenant",
            missing=("tenant_id",),
        )
    if not is_tenant_id(tenant_id):
        raise ContractError(
            "tenant_id must be a tenant id such as t_acme (t_ then a-z, 0-9, _ or -)",
            problems={"tenant_id": "not a tenant id"},
        )
    return tenant_id


def _stored(value: str | None, tenant_id: str) -> str | None:
    return None if value is None else redact_identifier(value, tenant_id=tenant_id)


def iter_events(tenant_id: str, **filters: object) -> Iterator[Event]:
    """Every matching event, paging transparently."""
    require_tenant(tenant_id)  # at the call, not at the first next()
    return _pages(tenant_id, filters)


def _pages(tenant_id: str, filters: dict[str, object]) -> Iterator[Event]:
    cursor: str | None = None
    while True:
        page = query_events(tenant_id, cursor=cursor, **filters)  # type: ignore[arg-type]
        yield from page.events
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def run_events(tenant_id: str, run_id: str, *, role: Role | str = Role.TIMELINE) -> list[Event]:
    """A run's events, in order."""
    if not isinstance(run_id, str) or not run_id:
        raise ContractError("run_id must be a non-empty string", problems={"run_id": "empty"})
    return list(iter_events(tenant_id, run_id=run_id, role=role))
