"""WHERE clauses for the SQLite tables (every role's table has the same query columns)."""

from __future__ import annotations

from typing import Any

from logkit.sinks import cursor
from logkit.sinks.protocols import Query, Selector


def marks(values: tuple[str, ...]) -> str:
    """Placeholders for an ``IN (...)`` list; an empty list reads ``IN (NULL)``, which matches
    nothing (as an empty tuple of wanted values means)."""
    return ", ".join("?" * len(values)) or "NULL"


def scope_where(
    tenant_id: str | None, run_id: str | None, user_id: str | None
) -> tuple[list[str], list[Any]]:
    """Equality conditions on the scope columns that are given (None: any value)."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("tenant_id", tenant_id), ("run_id", run_id), ("user_id", user_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    return where, params


def feed_where(
    tenant_id: str,
    position: int,
    run_id: str | None,
    event_types: tuple[str, ...] | None,
) -> tuple[str, list[Any]]:
    """``tenant_id = ? AND tpos > ? AND ...`` for a read of one tenant's feed."""
    where, params = scope_where(tenant_id, run_id, None)
    where.insert(1, "tpos > ?")
    params.insert(1, position)
    if event_types is not None:
        where.append(f"event_type IN ({marks(event_types)})")
        params.extend(event_types)
    return " AND ".join(where), params


def query_where(query: Query) -> tuple[str, list[Any]]:
    """``tenant_id = ? AND ...`` for a Query, cursor included, with its parameters."""
    where, params = scope_where(query.tenant_id, query.run_id, query.user_id)
    if query.event_types is not None:
        where.append(f"event_type IN ({marks(query.event_types)})")
        params.extend(query.event_types)
    if query.since is not None:
        where.append("ts_us >= ?")
        params.append(cursor.to_micros(query.since))
    if query.until is not None:
        where.append("ts_us < ?")
        params.append(cursor.to_micros(query.until))
    if query.cursor is not None:
        ts_us, event_id = cursor.decode(query.cursor)
        # The plain lower bound lets SQLite range-scan the (tenant, ts) index from the cursor;
        # the OR alone makes it scan from the tenant's first event on every page.
        where.append("ts_us >= ? AND (ts_us > ? OR (ts_us = ? AND event_id > ?))")
        params.extend((ts_us, ts_us, ts_us, event_id))
    return " AND ".join(where), params


def selector_where(selector: Selector, body: str = "body") -> tuple[str, list[Any]]:
    """``tenant_id = ? AND ...`` for a Selector, with its parameters.

    App and storage class are not columns: they are read from the JSON ``body`` expression
    (only retention selects on them, and it runs rarely, so no index is paid for on insert).
    """
    where, params = scope_where(selector.tenant_id, selector.run_id, selector.user_id)
    if selector.event_ids is not None:
        where.append(f"event_id IN ({marks(selector.event_ids)})")
        params.extend(selector.event_ids)
    if selector.before is not None:
        where.append("ts_us < ?")
        params.append(cursor.to_micros(selector.before))
    if selector.app_id is not None:
        where.append(f"json_extract({body}, '$.app_id') = ?")
        params.append(selector.app_id)
    if selector.other_apps:
        where.append(f"json_extract({body}, '$.app_id') NOT IN ({marks(selector.other_apps)})")
        params.extend(selector.other_apps)
    if selector.storage_classes is not None:
        classes = marks(selector.storage_classes)
        where.append(f"json_extract({body}, '$.storage_class') IN ({classes})")
        params.extend(selector.storage_classes)
    return " AND ".join(where), params
