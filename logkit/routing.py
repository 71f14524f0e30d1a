"""The router: each event goes to the store roles its storage class names.

| storage_class | roles |
|---|---|
| ops | timeline |
| audit | audit and timeline |
| cost | cost and timeline |
| stream | none: live stream only |
"""

from __future__ import annotations

from collections.abc import Mapping
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

    def __call__(self, event: Event) -> None:
        for role in ROUTES[event.storage_class]:
            self.dispatchers[role].submit(event)
