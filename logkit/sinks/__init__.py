"""Stores and their backends: the roles (timeline, audit, cost) and the built-in backends.

Backends register under the ``logkit.sinks`` entry-point group (built-ins exactly like a
third-party one) and are selected by URI scheme. Cloud SDKs are imported only when their
backend is built.
"""

from __future__ import annotations

from logkit.sinks.protocols import Backend, EventStore, Page, Query, Role, Selector

__all__ = ["Backend", "EventStore", "Page", "Query", "Role", "Selector"]
