"""Authorizers: turn a connection into the Principal it may stream (or refuse it).

The Principal, the callable shape and the ``package.module:callable`` loader are the ASGI
middleware's too (:mod:`logkit.principal`), so one token check serves both. The default trusts
the ``X-Tenant-Id`` / ``X-Project-Id`` headers: right behind a gateway that sets them, or in
dev. In production plug in one that checks a token: any callable taking the Starlette
connection and returning a Principal (or an awaitable of one), raising :class:`Unauthorized`
to refuse.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import HTTPConnection

from logkit.principal import (
    Principal,
    Unauthorized,
    load_callable,
    principal_problem,
    resolve,
    single_headers,
)

Authorizer = Callable[[HTTPConnection], Principal | Awaitable[Principal]]

_TENANT, _PROJECT = b"x-tenant-id", b"x-project-id"


def header_authorizer(connection: HTTPConnection) -> Principal:
    """Trust ``X-Tenant-Id`` / ``X-Project-Id``; each at most once (a duplicate is a 400)."""
    values = single_headers(connection.scope.get("headers", ()), (_TENANT, _PROJECT))
    tenant = values.get(_TENANT)
    if not tenant:
        raise Unauthorized("missing X-Tenant-Id header")
    principal = Principal(tenant, values.get(_PROJECT))
    problem = principal_problem(principal)
    if problem is not None:
        raise Unauthorized(f"X-Tenant-Id or X-Project-Id: {problem}")
    return principal


async def authorize(authorizer: Authorizer, connection: HTTPConnection) -> Principal:
    """The connection's principal; Unauthorized when refused, unusable or nobody."""
    principal = await resolve(authorizer, connection)
    if principal is None:
        raise Unauthorized("not authorized")
    return principal


def load_authorizer(spec: str) -> Authorizer:
    """``package.module:callable`` -> the callable (for ``logkit serve --authorizer``)."""
    return load_callable(spec, "authorizer")
