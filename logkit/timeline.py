"""Flows, steps and decisions: the story of a run ("story mode").

``logkit.flow(name)`` and ``logkit.step(name, kind=...)`` are context managers (``with`` and
``async with``) and decorators (sync and async functions). A flow starts a run unless one is
bound; a step gets a fresh ``step_id`` and the enclosing step as ``parent_step_id``. Both are
bound on contextvars, so everything emitted inside (tool and model calls, decisions, pulses,
log events) belongs to the right step, in asyncio tasks and threads started with a copied
context alike. Each is an OpenTelemetry span too (:mod:`logkit.spans`: a real one when an SDK
tracer provider records, else ids logkit makes), whose ``trace_id``/``span_id``/
``parent_span_id`` are bound with the scope, so every event inside names its span. On exit
they emit ``*_ended`` (status ok, duration) or, when an exception escapes, ``*_failed`` (error
type, redacted message) and the exception propagates unchanged.

The context is restored on every way out: an entry whose first event fails (a contract
violation under the ``raise`` policy) unbinds before the error propagates; the last event
carries the scope the span began with, even when a generator holding the span is closed from
another context; decorated generator and async generator functions run in a private copy of
the context (:func:`logkit.context.decorate`), so nothing they bind leaks to their consumer.
A generator closed before it finished (``break``, garbage collection) ends with status
``closed``, not as a failure.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, ExitStack, nullcontext
from types import TracebackType
from typing import Any, TypeVar

from logkit import spans
from logkit.context import bind, bound_fields, decorate, within
from logkit.emit import emit
from logkit.envelope import Event, EventType, new_event_id
from logkit.redaction import redact_text
from logkit.spans import SpanHandle, now_ns, ts_of

F = TypeVar("F", bound=Callable[..., Any])
_MESSAGE_LIMIT = 500

_EVENTS = {
    "flow": (EventType.FLOW_STARTED, EventType.FLOW_ENDED, EventType.FLOW_FAILED),
    "step": (EventType.STEP_STARTED, EventType.STEP_ENDED, EventType.STEP_FAILED),
}


def _new_id(prefix: str) -> str:
    # The whole UUIDv7: time-ordered, and unique even for steps started in the same millisecond.
    return prefix + new_event_id().replace("-", "")


class _Span:
    """One flow or step. A fresh instance per use: decorators create one per call."""

    def __init__(self, what: str, name: str, kind: str | None, fields: dict[str, Any]) -> None:
        self.what, self.name, self.kind, self.fields = what, name, kind, fields
        self._stack: ExitStack | None = None
        self._scope: Mapping[str, Any] | None = None  # what was bound inside, at entry
        self._start = 0.0
        self._span: SpanHandle | None = None
        self.run_id: str | None = None
        self.step_id: str | None = None

    # --- context manager -------------------------------------------------------------------

    def __enter__(self) -> _Span:
        stack = ExitStack()
        bound = bound_fields()
        scope = {k: v for k, v in self.fields.items() if k in _SCOPE_OVERRIDES}
        span = spans.start(self.name, bound=bound)
        stack.callback(span.close)  # ends it if the first event fails
        ids = span.ids()
        if self.what == "flow":
            self.run_id = scope.pop("run_id", None) or bound.get("run_id") or _new_id("run_")
            self._scope = stack.enter_context(bind(**scope, run_id=self.run_id, **ids))
        else:
            self.run_id = scope.get("run_id") or bound.get("run_id")
            self.step_id = _new_id("step_")
            self._scope = stack.enter_context(
                bind(**scope, step_id=self.step_id, parent_step_id=bound.get("step_id"), **ids)
            )
        stack.callback(spans.deactivate, span.activate())
        self._span = span
        with stack.pop_all() as undo:  # unbinds unless the first event made it out
            span.annotate(self._emit(0, {}, ts=span.start_ts))
            self._stack = undo.pop_all()
        self._start = time.perf_counter()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._scope is None or bound_fields() is self._scope:
                self._finish(exc)
            else:  # closed from another context, or after an unbalanced bind: our own scope
                with within(self._scope), self._activated():
                    self._finish(exc)
        finally:
            if self._stack is not None:
                self._stack.close()
        # Returning None: the caller's exception, if any, propagates unchanged.

    def _activated(self) -> AbstractContextManager[None]:
        return self._span.activated() if self._span is not None else nullcontext()

    def _finish(self, exc: BaseException | None) -> None:
        duration = round((time.perf_counter() - self._start) * 1000, 3)
        end = now_ns()
        if exc is None:
            last = self._emit(1, {"status": "ok", "duration_ms": duration}, ts=ts_of(end))
        elif isinstance(exc, GeneratorExit):  # the consumer stopped early: not a failure
            last = self._emit(1, {"status": "closed", "duration_ms": duration}, ts=ts_of(end))
        else:
            message = _limited(
                redact_text(_exception_text(exc), tenant_id=bound_fields().get("tenant_id"))
            )
            last = self._emit(
                2,
                {
                    "status": "failed",
                    "duration_ms": duration,
                    "error.type": type(exc).__qualname__,
                    "error.message": message,
                },
                severity="error",
                ts=ts_of(end),
            )
        if self._span is not None:
            self._span.end(last, end)

    async def __aenter__(self) -> _Span:
        return self.__enter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(kind, exc, tb)

    def _emit(self, which: int, extra: dict[str, Any], **envelope: Any) -> Event:
        payload: dict[str, Any] = {"name": self.name}
        if self.kind is not None:
            payload["kind"] = self.kind
        payload.update({k: v for k, v in self.fields.items() if k not in _SCOPE_OVERRIDES})
        payload.update(extra)
        return emit(_EVENTS[self.what][which], payload, **envelope)

    # --- decorator -------------------------------------------------------------------------

    def __call__(self, fn: F) -> F:
        """Decorate a function, coroutine, generator or async generator function: one span
        per call, covering a generator's whole iteration."""
        return decorate(fn, functools.partial(_Span, self.what, self.name, self.kind, self.fields))


# Scope and correlation a flow or step may set for what runs inside; other keywords go to the
# payload of its events (e.g. attempt=2 on a retried step).
_SCOPE_OVERRIDES = frozenset({"run_id", "user_id", "request_id", "actor_type"})


def _exception_text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # an exception whose __str__ fails still fails the step
        return f"<unprintable {type(exc).__name__}>"


def _limited(text: str) -> str:
    """Cut to _MESSAGE_LIMIT characters: after redaction, so a cut never exposes a prefix of a
    value the gate would have replaced whole (a pseudonym cut short is only a shorter token)."""
    if len(text) <= _MESSAGE_LIMIT:
        return text
    return f"{text[:_MESSAGE_LIMIT]}…[+{len(text) - _MESSAGE_LIMIT} chars]"


def flow(name: str, **fields: Any) -> _Span:
    """A flow: starts a run (unless one is bound) and emits flow_started/ended/failed."""
    return _Span("flow", name, None, fields)


def step(name: str, *, kind: str | None = None, **fields: Any) -> _Span:
    """A step of the current run: emits step_started/ended/failed; nests under the bound step."""
    return _Span("step", name, kind, fields)


def decision(
    choice: str, *, options: list[str] | None = None, reason: str | None = None, **fields: Any
) -> None:
    """Record what the agent chose (``agent_decision``), among which options, and why."""
    payload: dict[str, Any] = {"choice": choice}
    if options is not None:
        payload["options"] = list(options)
    if reason is not None:
        payload["reason"] = reason
    emit(EventType.AGENT_DECISION, payload, **fields)
