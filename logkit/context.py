"""Scope and correlation bound on contextvars, and W3C trace context parsing.

Fields bound with :func:`bind` are seen by every event emitted in the same context: the same
thread or asyncio task, tasks created from it (asyncio copies the context), and threads started
with a copied context (``contextvars.copy_context().run`` or :func:`propagate`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import re
import sys
import types
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, ParamSpec, TypeVar

from logkit.envelope import CORRELATION_FIELDS, REQUIRED_SCOPE
from logkit.errors import ContractError

BINDABLE_FIELDS: frozenset[str] = frozenset((*REQUIRED_SCOPE, *CORRELATION_FIELDS))
SERVICE_FIELDS: tuple[str, ...] = ("env", "project_id", "app_id", "surface_id")
"""What the service's configuration (``[service]`` and ``env``) may fix for the process."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_scope: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "logkit_scope", default=_EMPTY
)
# The service scope: the base layer under every context's bound fields (set by configure()).
_service: Mapping[str, Any] = _EMPTY

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])


def refuse_unknown(
    fields: Iterable[str], allowed: AbstractSet[str], message: str, problem: str
) -> None:
    """A ContractError naming (sorted) every field not in ``allowed``: ``message`` then the
    names, and ``problem`` for each."""
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ContractError(message + ", ".join(unknown), problems=dict.fromkeys(unknown, problem))


def set_service_scope(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    """Install the process's service scope (env, project, app, surface); returns the previous.

    It is the base layer of every event: bound fields and explicit arguments are layered on top
    (code may narrow it), but the ASGI middleware never binds a field the service fixes.
    """
    global _service
    refuse_unknown(
        fields,
        frozenset(SERVICE_FIELDS),
        "not service scope field(s): ",
        "not a service scope field",
    )
    previous, _service = _service, MappingProxyType({k: v for k, v in fields.items() if v})
    return previous


def service_scope() -> Mapping[str, Any]:
    """The service scope installed by :func:`logkit.configure` (read-only)."""
    return _service


class _Binding:
    """What :func:`bind` returns: a context manager, and a decorator for any kind of function."""

    __slots__ = ("_fields", "_tokens")

    def __init__(self, fields: dict[str, Any]) -> None:
        refuse_unknown(
            fields,
            BINDABLE_FIELDS,
            "cannot bind unknown field(s): ",
            "not a scope or correlation field",
        )
        self._fields = fields
        self._tokens: list[contextvars.Token[Mapping[str, Any]]] = []

    def __enter__(self) -> Mapping[str, Any]:
        layered = {**_scope.get(), **self._fields}
        merged = MappingProxyType({k: v for k, v in layered.items() if v is not None})
        self._tokens.append(_scope.set(merged))
        return merged

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        restore(self._tokens.pop())

    def __call__(self, fn: F) -> F:
        return decorate(fn, lambda: _Binding(self._fields))


def bind(**fields: Any) -> _Binding:
    """Bind scope and correlation fields for the duration of the ``with`` block.

    Nested binds layer on top of outer ones; a field bound to ``None`` is unbound inside the
    block. Unknown field names are a ContractError, so a typo never silently drops scope.
    Used as a decorator, it binds for each call of the function (coroutine, generator and
    async generator functions included: see :func:`decorate`).
    """
    return _Binding(fields)


def restore(token: contextvars.Token[Mapping[str, Any]]) -> None:
    """Undo a bind. A token made in another context (a generator closed by the garbage
    collector in another thread or task) is left alone: that context is not ours to change,
    and raising there would only surface as an "unraisable" warning."""
    with contextlib.suppress(ValueError):
        _scope.reset(token)


@contextmanager
def within(scope: Mapping[str, Any]) -> Iterator[None]:
    """Run the block with exactly ``scope`` bound (a span ending outside the context it began
    in emits its last event with the scope it began with)."""
    token = _scope.set(scope)
    try:
        yield
    finally:
        restore(token)


def bound_scope() -> dict[str, Any]:
    """What an event starts from: the service scope, with the bound fields on top."""
    return {**_service, **_scope.get()}


def current_scope() -> dict[str, Any]:
    """The scope and correlation fields bound in this context, with an active OTel span's ids
    (and its parent's).

    The service scope (:func:`service_scope`) lies under these in every event; it is not
    repeated here, so an empty result means nothing is bound.
    """
    scope = dict(_scope.get())
    layer_span_ids(scope)
    if scope.get("parent_span_id", "") is None:
        del scope["parent_span_id"]
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


def decorate(fn: F, make: Callable[[], AbstractContextManager[Any]]) -> F:
    """Wrap ``fn`` so each call runs inside a fresh ``make()`` context manager.

    Plain and coroutine functions run inside it from call to return. A generator or async
    generator function's body runs, from its first step to its last, in a private copy of the
    context taken at its first step (as an asyncio task does): what it binds never leaks to the
    code iterating it while it is suspended at a ``yield``, and closing it early (``break``,
    garbage collection, cancellation) exits the manager in that same private context.
    """
    if inspect.isasyncgenfunction(fn):
        return _async_generator(fn, make)  # type: ignore[return-value]
    if inspect.isgeneratorfunction(fn):
        return _generator(fn, make)  # type: ignore[return-value]
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            with make():
                return await fn(*args, **kwargs)

        return run_async  # type: ignore[return-value]

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        with make():
            return fn(*args, **kwargs)

    return run  # type: ignore[return-value]


def _generator(
    fn: Callable[..., Generator[Any, Any, Any]], make: Callable[[], AbstractContextManager[Any]]
) -> Callable[..., Generator[Any, Any, Any]]:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        ctx = contextvars.copy_context()
        manager = make()
        ctx.run(manager.__enter__)
        try:
            result = yield from _steps(ctx, ctx.run(fn, *args, **kwargs))
        except BaseException as exc:
            if not ctx.run(manager.__exit__, type(exc), exc, exc.__traceback__):
                raise
            return None
        ctx.run(manager.__exit__, None, None, None)
        return result

    return run


def _steps(ctx: contextvars.Context, inner: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    """Delegate to ``inner`` like ``yield from``, running each of its steps inside ``ctx``."""
    sent: Any = None
    thrown: BaseException | None = None
    while True:
        try:
            item = ctx.run(inner.send, sent) if thrown is None else ctx.run(inner.throw, thrown)
        except StopIteration as stop:
            return stop.value
        try:
            sent, thrown = (yield item), None
        except GeneratorExit:
            ctx.run(inner.close)
            raise
        except BaseException as exc:  # thrown in by the consumer (or a cancellation): inward
            sent, thrown = None, exc


def _async_generator(
    fn: Callable[..., Any], make: Callable[[], AbstractContextManager[Any]]
) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> Any:
        ctx = contextvars.copy_context()
        manager = make()
        ctx.run(manager.__enter__)
        try:
            inner = ctx.run(fn, *args, **kwargs)
            sent: Any = None
            thrown: BaseException | None = None
            while True:
                step = inner.asend(sent) if thrown is None else inner.athrow(thrown)
                try:
                    item = await _in_context(ctx, step)
                except StopAsyncIteration:
                    break
                try:
                    sent, thrown = (yield item), None
                except GeneratorExit:
                    await _in_context(ctx, inner.aclose())
                    raise
                except BaseException as exc:
                    sent, thrown = None, exc
        except BaseException as exc:
            if not ctx.run(manager.__exit__, type(exc), exc, exc.__traceback__):
                raise
            return
        ctx.run(manager.__exit__, None, None, None)

    return run


@types.coroutine
def _in_context(ctx: contextvars.Context, awaitable: Any) -> Generator[Any, Any, Any]:
    """Await ``awaitable`` with every one of its steps run inside ``ctx``.

    What it yields (the futures it waits on) goes to the event loop unchanged, and what the
    loop sends or throws back (results, cancellation) goes to it inside ``ctx``.
    """
    return (yield from _steps(ctx, awaitable.__await__()))


def active_span_ids() -> tuple[str, str, str | None] | None:
    """(trace_id, span_id, parent_span_id) of the active OpenTelemetry span, if any.

    The parent is known for an SDK span (it keeps its parent's context); a span that does not
    say (a propagated or logkit-made non-recording span) gives None. If
    ``opentelemetry.trace`` was never imported no span can be active, so logkit does not pay
    for importing it.
    """
    global _last_span  # noqa: PLW0603 - a one-entry cache of the last span's formatted ids
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    span = trace.get_current_span()
    last = _last_span
    if last[0] is span:  # the same span as the last event's (the common case): no formatting
        return last[1]
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    parent = getattr(span, "parent", None)
    ids = (
        format(ctx.trace_id, "032x"),
        format(ctx.span_id, "016x"),
        format(parent.span_id, "016x") if parent is not None and parent.is_valid else None,
    )
    _last_span = (span, ids)  # one tuple swapped atomically: safe across threads
    return ids


_last_span: tuple[object, tuple[str, str, str | None]] = (object(), ("", "", None))


def layer_span_ids(fields: dict[str, Any]) -> None:
    """Put the active OpenTelemetry span's ids over the bound ones in ``fields``.

    The parent goes with them: the span's own when it knows it, the bound one when the active
    span is the one logkit bound (a flow, step or call without an SDK), else none.
    """
    span = active_span_ids()
    if span is None:
        return
    trace_id, span_id, parent = span
    if parent is not None or fields.get("span_id") != span_id:
        fields["parent_span_id"] = parent
    fields["trace_id"], fields["span_id"] = trace_id, span_id


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
