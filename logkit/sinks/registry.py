"""Backends by URI scheme, through the ``logkit.sinks`` entry-point group.

logkit's own backends are registered in pyproject.toml exactly the way a third-party package
registers one::

    [project.entry-points."logkit.sinks"]
    mysink = "mypackage.sink:MyBackend"
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, cast

from logkit.errors import ConfigError
from logkit.sinks.protocols import Backend

if TYPE_CHECKING:
    from logkit.config import StreamConfig
    from logkit.sinks.protocols import LiveFeed

GROUP = "logkit.sinks"


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def schemes() -> list[str]:
    return sorted(_entry_points())


def scheme_of(uri: str) -> str:
    scheme, sep, _ = uri.partition("://")
    if not sep or not scheme:
        raise ConfigError(f"a sink is a URI such as sqlite:///.logkit/logkit.db, got {uri!r}")
    return scheme.lower()


def backend_class(uri: str) -> type[Backend]:
    scheme = scheme_of(uri)
    ep = _entry_points().get(scheme)
    if ep is None:
        known = ", ".join(schemes()) or "none installed"
        raise ConfigError(f"no sink backend for scheme {scheme!r} (known: {known})")
    try:
        return cast(type[Backend], ep.load())
    except ImportError as exc:
        extra = _EXTRAS.get(scheme, "gcp")
        raise ConfigError(
            f"the {scheme!r} backend cannot be imported ({exc.name or exc}); "
            f"install logkit's extra: pip install 'logkit[{extra}]'"
        ) from exc


_EXTRAS = {"redis": "redis", "rediss": "redis"}


def open_backend(uri: str) -> Backend:
    """Build the backend a URI names (the cloud SDK, if any, is imported here)."""
    return backend_class(uri).from_uri(uri)


def open_feed(uri: str, config: StreamConfig) -> LiveFeed:
    """The live feed a URI names (``[sinks] feed``); ConfigError for a backend without one."""
    cls = backend_class(uri)
    opener = getattr(cls, "open_feed", None)
    if opener is None:
        raise ConfigError(f"{cls.scheme} cannot be the live feed (redis:// can)")
    feed: LiveFeed = opener(uri, config)
    return feed


def offers_feed(uri: str) -> bool:
    return getattr(backend_class(uri), "open_feed", None) is not None
