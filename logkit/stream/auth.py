"""Authorizers: turn a connection into the Principal it may stream (or refuse it).

The default trusts the correlation middleware's headers (``X-Tenant-Id``, ``X-Project-Id``):
right behind a gateway that sets them, or in dev. In production plug in one that checks a
token: any callable taking the Starlette connection and returning a Principal (or an awaitable
of one), raising :class:`Unauthorized` to refuse.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable

from starlette.requests import HTTPConnection

from logkit.errors import ConfigError
from logkit.stream.filters import Principal

Authorizer = Callable[[HTTPConnection], Principal | Awaitable[Principal]]

_MAX_ID = 256


class Unauthorized(Exception):  # noqa: N818 - reads as what happened, like starlette's
    """The connection may not stream; the message is safe to show the client."""


def header_authorizer(connection: HTTPConnection) -> Principal:
    tenant = connection.headers.get("x-tenant-id", "").strip()
    project = connection.headers.get("x-project-id", "").strip() or None
    if not tenant:
        raise Unauthorized("missing X-Tenant-Id header")
    if len(tenant) > _MAX_ID or (project is not None and len(project) > _MAX_ID):
        raise Unauthorized("X-Tenant-Id or X-Project-Id is too long")
    return Principal(tenant, project)


async def authorize(authorizer: Authorizer, connection: HTTPConnection) -> Principal:
    principal = authorizer(connection)
    if inspect.isawaitable(principal):
        principal = await principal
    if not isinstance(principal, Principal):
        raise Unauthorized("not authorized")
    return principal


def load_authorizer(spec: str) -> Authorizer:
    """``package.module:callable`` -> the callable (for ``logkit serve --authorizer``)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"an authorizer is given as package.module:callable, got {spec!r}")
    try:
        target: object = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load authorizer {spec!r}: {exc}") from None
    if not callable(target):
        raise ConfigError(f"authorizer {spec!r} is not callable")
    return target
