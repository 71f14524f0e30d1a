"""The router: each event goes to the store roles its storage class names.

| storage_class | roles |
|---|---|
| ops | timeline |
| audit | audit and timeline |
| cost | cost and timeline |
| stream | none: live stream only |

With a live feed (``[sinks] feed``), every event the timeline gets and every stream-class
event also goes to the feed writer (:mod:`logkit.feeding`).
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


def fed(storage: StorageClass) -> bool:
    """Whether the live feed carries a storage class: what the timeline gets, and ``stream``."""
    return storage is StorageClass.STREAM or Role.TIMELINE in ROUTES[storage]


class Router:
    """A pipeline output: hands each event to the dispatcher of every role it belongs in, and
    to the live feed (when one is configured) beside them."""

    def __init__(
        self, dispatchers: Mapping[Role, Submitter], feed: Submitter | None = None
    ) -> None:
        self.dispatchers = dict(dispatchers)
        # Resolved once: the router runs for every event. The feed goes first: its queue never
        # waits, and a store submit may (durability = "spool").
        self._targets: dict[StorageClass, tuple[Callable[[Event], None], ...]] = {
            storage: (
                *((feed.submit,) if feed is not None and fed(storage) else ()),
                *(self.dispatchers[role].submit for role in roles),
            )
            for storage, roles in ROUTES.items()
        }

    def __call__(self, event: Event) -> None:
        for submit in self._targets[event.storage_class]:
            submit(event)
