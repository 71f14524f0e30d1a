"""Scope and correlation bound on contextvars, and W3C trace context parsing.

Fields bound with :func:`bind` are seen by every event emitted in the same context: the same
thread or asyncio task, tasks created from it (asyncio copies the context), and threads started
with a copied context (``contextvars.copy_context().run`` or :func:`propagate`).
"""

from __future__ import annotations

import contextvars
import functools
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ParamSpec, TypeVar

from logkit.errors import ContractError

BINDABLE_FIELDS: frozenset[str] = frozenset(
    {
        "tenant_id",
        "env",
        "project_id",
        "surface_id",
        "app_id",
        "request_id",
        "trace_id",
        "span_id",
        "run_id",
        "step_id",
        "parent_step_id",
        "user_id",
        "actor_type",
    }
)

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_scope: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "logkit_scope", default=_EMPTY
)

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def bind(**fields: Any) -> Iterator[Mapping[str, Any]]:
    """Bind scope and correlation fields for the duration of the ``with`` block.

    Nested binds layer on top of outer ones; a field bound to ``None`` is unbound inside the
    block. Unknown field names are a ContractError, so a typo never silently drops scope.
    """
    unknown = sorted(set(fields) - BINDABLE_FIELDS)
    if unknown:
        raise ContractError(
            "cannot bind unknown field(s): " + ", ".join(unknown),
            problems=dict.fromkeys(unknown, "not a scope or correlation field"),
        )
    layered = {**_scope.get(), **fields}
    merged = MappingProxyType({k: v for k, v in layered.items() if v is not None})
    token = _scope.set(merged)
    try:
        yield merged
    finally:
        _scope.reset(token)


def current_scope() -> dict[str, Any]:
    """The scope and correlation fields bound in this context, with an active OTel span's ids."""
    scope = dict(_scope.get())
    span = active_span_ids()
    if span is not None:
        scope["trace_id"], scope["span_id"] = span
    return scope


def bound_fields() -> Mapping[str, Any]:
    """The raw bound mapping (read-only, no OTel lookup): the emit hot path uses this."""
    return _scope.get()


def propagate(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap ``fn`` so it runs in a copy of the caller's context (for threads and executors)."""
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return ctx.copy().run(fn, *args, **kwargs)

    return run


def active_span_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the active OpenTelemetry span, if the app uses OpenTelemetry.

    If ``opentelemetry.trace`` was never imported no span can be active, so logkit does not
    pay for importing it.
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


# --- W3C Trace Context (https://www.w3.org/TR/trace-context/) -------------------------------

_TRACEPARENT = re.compile(
    r"^(?P<version>[0-9a-f]{2})-(?P<trace_id>[0-9a-f]{32})-(?P<parent_id>[0-9a-f]{16})"
    r"-(?P<flags>[0-9a-f]{2})(?P<rest>.*)$"
)
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


@dataclass(frozen=True, slots=True)
class TraceParent:
    trace_id: str
    parent_id: str
    flags: str = "01"
    version: str = "00"

    def header(self) -> str:
        return f"00-{self.trace_id}-{self.parent_id}-{self.flags}"


def parse_traceparent(value: str | None) -> TraceParent | None:
    """Parse a ``traceparent`` header; None when absent or invalid (the spec says ignore it)."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip(" \t"))
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.group(
        "version", "trace_id", "parent_id", "flags", "rest"
    )
    if version == "ff" or trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    # Version 00 has exactly four fields; a future version may append "-..." fields.
    if rest and (version == "00" or not rest.startswith("-")):
        return None
    return TraceParent(trace_id=trace_id, parent_id=parent_id, flags=flags, version=version)


def new_trace_id() -> str:
    while (value := os.urandom(16).hex()) == _ZERO_TRACE:
        pass
    return value


def new_span_id() -> str:
    while (value := os.urandom(8).hex()) == _ZERO_SPAN:
        pass
    return value
