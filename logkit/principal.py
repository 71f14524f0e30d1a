"""Who is asking: the verified Principal, the resolvers that produce it, and the scope headers.

Shared by the ASGI middleware (``CorrelationMiddleware(resolver=...)``) and the live stream
(``create_app(authorizer=...)``, ``logkit serve --authorizer``): one Principal type, one
callable shape (a Starlette ``HTTPConnection`` in, a Principal out, sync or async, raising
:class:`Unauthorized` to refuse), one loader for ``package.module:callable`` and one rule for
the headers both read when they are trusted (a scope header sent twice is refused). No
Starlette import here: this module sits below both users.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from logkit.envelope import is_reserved_tenant, is_tenant_id
from logkit.errors import ConfigError, ContractError

_MAX_ID = 256


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller: one tenant, optionally one project of it, optionally a user.

    The stream lets a principal read its tenant (and only its project when one is set); the
    middleware binds its tenant, user and (when the service does not fix one) project.
    """

    tenant_id: str
    project_id: str | None = None
    user_id: str | None = None


class Unauthorized(Exception):  # noqa: N818 - reads as what happened, like starlette's
    """The connection is refused; the message is safe to show the client."""


Resolver = Callable[[Any], "Principal | Awaitable[Principal | None] | None"]
"""Takes a Starlette ``HTTPConnection``; returns a Principal (None: nobody), maybe awaitable."""


class DuplicateHeaderError(ContractError):
    """A scope header came more than once (or as a comma list): ambiguous, so refused (400)."""


def load_callable(spec: str, what: str = "resolver") -> Callable[..., Any]:
    """``package.module:callable`` (or ``package.module:Class.method``) -> the callable."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"a {what} is given as package.module:callable, got {spec!r}")
    try:
        target: object = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load {what} {spec!r}: {exc}") from None
    if not callable(target):
        raise ConfigError(f"{what} {spec!r} is not callable")
    return target


async def resolve(resolver: Resolver, connection: Any) -> Principal | None:
    """Call ``resolver`` (sync or async). Raises Unauthorized for a refusal or for anything
    that is not a usable Principal (a reserved or malformed tenant included)."""
    principal = resolver(connection)
    if inspect.isawaitable(principal):
        principal = await principal
    if principal is None:
        return None
    if not isinstance(principal, Principal):
        raise Unauthorized("not authorized")
    problem = principal_problem(principal)
    if problem is not None:
        raise Unauthorized(problem)
    return principal


def principal_problem(principal: Principal) -> str | None:
    """Why ``principal`` cannot be used, or None. Never echoes the values."""
    tenant = principal.tenant_id
    if not is_tenant_id(tenant):
        return "not a valid tenant id"
    if is_reserved_tenant(tenant):
        return "a reserved tenant cannot be claimed"
    for other in (principal.project_id, principal.user_id):
        if other is not None and (not isinstance(other, str) or not 0 < len(other) <= _MAX_ID):
            return "project or user id is empty or too long"
    return None


def tenant_header_ok(value: str) -> bool:
    """Whether a trusted ``X-Tenant-Id`` value may be used as a tenant."""
    return is_tenant_id(value) and not is_reserved_tenant(value)


def single_headers(
    raw_headers: Iterable[tuple[bytes, bytes]], names: Iterable[bytes]
) -> dict[bytes, str]:
    """The values of the ``names`` headers (lowercase bytes) in raw ASGI headers, stripped.

    A name sent twice, or once as a comma list (which HTTP defines as the same thing), is a
    DuplicateHeaderError naming every such header: a request that names two tenants names none.
    """
    wanted = set(names)
    values: dict[bytes, str] = {}
    repeated: list[str] = []
    for raw_name, raw_value in raw_headers:
        name = raw_name.lower()
        if name not in wanted:
            continue
        value = raw_value.decode("latin-1").strip()
        if name in values or "," in value:
            repeated.append(name.decode("latin-1"))
        values[name] = value
    if repeated:
        unique = sorted(set(repeated))
        raise DuplicateHeaderError(
            "scope header(s) sent more than once: " + ", ".join(unique),
            problems=dict.fromkeys(unique, "sent more than once"),
        )
    return {name: value for name, value in values.items() if value}
