"""The public read API over the configured stores (what the CLI and the stream server use)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

from logkit.envelope import Event
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


def _stored(value: str | None, tenant_id: str) -> str | None:
    return None if value is None else redact_identifier(value, tenant_id=tenant_id)


def iter_events(tenant_id: str, **filters: object) -> Iterator[Event]:
    """Every matching event, paging transparently."""
    cursor: str | None = None
    while True:
        page = query_events(tenant_id, cursor=cursor, **filters)  # type: ignore[arg-type]
        yield from page.events
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def run_events(tenant_id: str, run_id: str, *, role: Role | str = Role.TIMELINE) -> list[Event]:
    """A run's events, in order."""
    return list(iter_events(tenant_id, run_id=run_id, role=role))
