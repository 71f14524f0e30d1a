"""The router: each event goes to the store roles its storage class names.

| storage_class | roles |
|---|---|
| ops | timeline |
| audit | audit and timeline |
| cost | cost and timeline |
| stream | none: live stream only |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from logkit.envelope import Event, StorageClass
from logkit.sinks.protocols import Role

ROUTES: dict[StorageClass, tuple[Role, ...]] = {
    StorageClass.OPS: (Role.TIMELINE,),
    StorageClass.AUDIT: (Role.AUDIT, Role.TIMELINE),
    StorageClass.COST: (Role.COST, Role.TIMELINE),
    StorageClass.STREAM: (),
}


class Submitter(Protocol):
    def submit(self, event: Event) -> None: ...


class Router:
    """A pipeline output: hands each event to the dispatcher of every role it belongs in."""

    def __init__(self, dispatchers: Mapping[Role, Submitter]) -> None:
        self.dispatchers = dict(dispatchers)
        # Resolved once: the router runs for every event.
        self._targets: dict[StorageClass, tuple[Callable[[Event], None], ...]] = {
            storage: tuple(self.dispatchers[role].submit for role in roles)
            for storage, roles in ROUTES.items()
        }

    def __call__(self, event: Event) -> None:
        for submit in self._targets[event.storage_class]:
            submit(event)
