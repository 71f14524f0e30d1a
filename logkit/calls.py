"""Tool and model call accountability: started/ended/failed events around one call.

``tool_call(...)`` and ``model_call(...)`` work as ``with`` / ``async with`` blocks and as
decorators of sync or async functions::

    with logkit.calls.model_call("openai", "gpt-4o", input=messages) as call:
        reply = client.chat(...)
        call.set_output(reply.text)
        call.record_usage(input_tokens=812, output_tokens=64)

    @logkit.calls.tool_call("vector_search")
    async def search(query: str) -> list[str]: ...

All events of one call share ``call_id``; inputs and outputs are redacted by the installed gate
before they are kept, so raw values never sit in the handle or the payload. Attribute names
follow the OpenTelemetry GenAI semantic conventions where one exists. Each call is a span
(``execute_tool {tool}``, ``{operation} {model}``; :mod:`logkit.spans`): its events, and the
usage event it records, carry its span id with the enclosing step's as parent.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

import orjson

from logkit import spanattrs, spans
from logkit.context import BINDABLE_FIELDS, bind, bound_fields
from logkit.emit import emit
from logkit.envelope import Event, EventType, RedactionReport, new_event_id
from logkit.redaction import get_redactor
from logkit.usage import (
    CACHED_TOKENS,
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    PROVIDER,
    REQUEST_MODEL,
    check_tokens,
    record_usage,
    split_fields,
)

P = ParamSpec("P")
R = TypeVar("R")

OPERATION = "gen_ai.operation.name"
RESPONSE_MODEL = "gen_ai.response.model"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
ERROR_TYPE = "error.type"

_EVENTS = {
    "tool": (EventType.TOOL_CALL_STARTED, EventType.TOOL_CALL_ENDED, EventType.TOOL_CALL_FAILED),
    "model": (
        EventType.MODEL_CALL_STARTED,
        EventType.MODEL_CALL_ENDED,
        EventType.MODEL_CALL_FAILED,
    ),
}

_current: contextvars.ContextVar[Call | None] = contextvars.ContextVar("logkit_call", default=None)


def current_call() -> Call | None:
    """The innermost active call: lets a decorated function attach usage to its own call."""
    return _current.get()


class Call:
    """One running call: what the caller learns (output, usage) until it ends."""

    def __init__(
        self,
        kind: str,
        identity: dict[str, Any],
        envelope: dict[str, Any],
        *,
        provider: str | None = None,
        model: str | None = None,
    ) -> None:
        self.kind = kind
        self.identity = identity  # on every event of the call: call_id and gen_ai.* names
        self.envelope = envelope
        self.provider, self.model = provider, model
        self.call_id: str = identity["call_id"]
        self.output: Any = None
        self.attributes: dict[str, Any] = {}
        self.usage: dict[str, int] | None = None
        self.redacted: dict[str, int] = {}
        self._started = 0.0

    def set_output(self, value: Any) -> None:
        """Attach the call's result; kept only in redacted form."""
        self.output = self._redact(value)

    def set_response_model(self, model: str) -> None:
        """The model that actually answered (``gen_ai.response.model``)."""
        self.attributes[RESPONSE_MODEL] = model

    def set_attribute(self, key: str, value: Any) -> None:
        """Any further payload attribute for the end event (e.g. ``gen_ai.response.id``)."""
        self.attributes[key] = self._redact(value)

    def record_usage(
        self, *, input_tokens: int = 0, output_tokens: int = 0, cached_tokens: int = 0
    ) -> None:
        """Add token usage (calls add up; pass per-request counts, not running totals).

        ``input_tokens`` includes ``cached_tokens``. On a model call a ``usage_recorded``
        event is emitted when the call ends, ended or failed: spent tokens cost either way.
        """
        # Checked now, so a bad count fails at the caller's line rather than at the call's end.
        check_tokens(input_tokens, output_tokens, cached_tokens)
        usage = self.usage or {INPUT_TOKENS: 0, OUTPUT_TOKENS: 0, CACHED_TOKENS: 0}
        usage[INPUT_TOKENS] += input_tokens
        usage[OUTPUT_TOKENS] += output_tokens
        usage[CACHED_TOKENS] += cached_tokens
        self.usage = usage

    # --- lifecycle (used by _Invocation) -------------------------------------------------

    def start(self, raw_input: Any, ts: dt.datetime) -> Event:
        payload = dict(self.identity)
        if raw_input is not None:
            payload["input"] = self._redact(raw_input)
        started = self._emit(0, payload, ts=ts)
        # Started after the event: latency is the call's, not logkit's.
        self._started = time.perf_counter()
        return started

    def finish(self, exc: BaseException | None, ts: dt.datetime) -> Event:
        latency = round((time.perf_counter() - self._started) * 1000, 3)
        payload = {**self.identity, **self.attributes, "latency_ms": latency}
        if self.usage is not None:
            payload.update(self.usage)
            usage_event_id = self._emit_usage()
            if usage_event_id is not None:
                payload["usage_event_id"] = usage_event_id
        if exc is None:
            if self.output is not None:
                payload["output"] = self.output
            return self._emit(1, payload, ts=ts)
        payload[ERROR_TYPE] = type(exc).__name__
        return self._emit(2, payload, severity="error", ts=ts)

    def _emit_usage(self) -> str | None:
        if self.usage is None or self.provider is None or self.model is None:
            return None  # a tool call has no provider/model to price: tokens stay on its event
        event = record_usage(
            self.provider,
            self.model,
            input_tokens=self.usage[INPUT_TOKENS],
            output_tokens=self.usage[OUTPUT_TOKENS],
            cached_tokens=self.usage[CACHED_TOKENS],
            call_id=self.call_id,
            **self.envelope,
        )
        return event.event_id

    def _emit(self, which: int, payload: dict[str, Any], **extra: Any) -> Event:
        if self.redacted:
            # The gate at emit sees already redacted values: the event's report carries what
            # was replaced here (the gate keeps a report of its own policy when it finds nothing).
            extra["redaction"] = RedactionReport(
                policy=get_redactor().policy, counts=dict(self.redacted)
            )
        return emit(_EVENTS[self.kind][which], payload, **{**self.envelope, **extra})

    def _redact(self, value: Any) -> Any:
        tenant = self.envelope.get("tenant_id") or bound_fields().get("tenant_id")
        redacted, report = get_redactor().redact(_jsonable(value), tenant_id=tenant)
        for kind, count in report.counts.items():
            self.redacted[kind] = self.redacted.get(kind, 0) + count
        return redacted


def _jsonable(value: Any) -> Any:
    """A JSON copy of ``value``, so any return value fits a payload instead of failing."""
    try:
        return orjson.loads(orjson.dumps(value, default=_fallback, option=orjson.OPT_NON_STR_KEYS))
    except (orjson.JSONEncodeError, TypeError):
        return repr(value)  # the gate still sees (and redacts) this text


def _fallback(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # pydantic models
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return repr(value)


class CallSpec:
    """What ``tool_call`` / ``model_call`` return: a context manager and a decorator.

    Each ``with`` or decorated invocation is a new call with its own ``call_id``.
    """

    def __init__(self, make: Callable[[], Call], raw_input: Any) -> None:
        self._make = make
        self._input = raw_input
        self._active: list[_Invocation] = []  # a stack: the same spec may be entered nested

    def __enter__(self) -> Call:
        invocation = _Invocation(self._make(), self._input)
        call = invocation.__enter__()
        self._active.append(invocation)
        return call

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._active.pop().__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> Call:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            # The call would "end" when the generator is made, before any work: refuse it.
            raise TypeError("tool_call/model_call cannot decorate generators; use `with` inside")
        if inspect.iscoroutinefunction(fn):
            return cast(Callable[P, R], self._wrap_async(fn))
        return self._wrap_sync(fn)

    def _wrap_sync(self, fn: Callable[P, R]) -> Callable[P, R]:
        signature = _signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with _Invocation(self._make(), self._input_of(signature, args, kwargs)) as call:
                result = fn(*args, **kwargs)
                call.set_output(result)
                return result

        return wrapper

    def _wrap_async(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        signature = _signature(fn)

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with _Invocation(self._make(), self._input_of(signature, args, kwargs)) as call:
                result = await fn(*args, **kwargs)
                call.set_output(result)
                return result

        return wrapper

    def _input_of(self, signature: inspect.Signature | None, args: Any, kwargs: Any) -> Any:
        """The explicit ``input``, else the arguments of this invocation by name."""
        if self._input is not None:
            return self._input
        try:
            if signature is None:
                raise TypeError
            bound = signature.bind_partial(*args, **kwargs).arguments
        except TypeError:
            return {"args": list(args), "kwargs": kwargs}
        return {k: v for k, v in bound.items() if k not in ("self", "cls")}


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    # Taken once at decoration: inspect.signature is too slow to pay on every call.
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


class _Invocation:
    """One call: like ``with spec:`` but with its own input and handle.

    The call is a span (:mod:`logkit.spans`): its ids are bound for what runs inside, its
    events carry them, and the context is restored on every way out, as a step's is.
    """

    def __init__(self, call: Call, raw_input: Any) -> None:
        self._call, self._input = call, raw_input
        self._stack: ExitStack | None = None
        self._span: spans.SpanHandle | None = None

    def __enter__(self) -> Call:
        call = self._call
        stack = ExitStack()
        what = f"{call.kind}_call"
        span = spans.start(
            spanattrs.span_name(what, call.identity),
            client=spanattrs.is_client(what),
            bound=bound_fields(),
        )
        stack.callback(span.close)  # ends it if the first event fails
        stack.enter_context(bind(**span.ids()))
        stack.callback(spans.deactivate, span.activate())
        with stack.pop_all() as undo:
            span.annotate(call.start(self._input, span.start_ts))
            self._stack = undo.pop_all()
        self._span = span
        self._token = _current.set(call)
        return call

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _current.reset(self._token)
        try:
            end = spans.now_ns()
            last = self._call.finish(exc, spans.ts_of(end))
            if self._span is not None:
                self._span.end(last, end)
        finally:
            if self._stack is not None:
                self._stack.close()
        # Returning None: the exception, if any, propagates unchanged.


def tool_call(
    name: str, *, input: Any = None, call_id: str | None = None, **fields: Any
) -> CallSpec:
    """Account for one tool call (``gen_ai.operation.name`` ``execute_tool``).

    ``call_id`` may be the model's tool-call id; by default a new one is made per call.
    ``fields`` naming scope/correlation fields (``run_id``, ``step_id``, ...) override the
    bound context; any other key joins the payload of every event of the call.
    """
    envelope, extra = split_fields(fields, BINDABLE_FIELDS)

    def make() -> Call:
        cid = call_id or new_event_id()
        identity = {
            **extra,
            OPERATION: "execute_tool",
            TOOL_NAME: name,
            TOOL_CALL_ID: cid,
            "call_id": cid,
        }
        return Call("tool", identity, envelope)

    return CallSpec(make, input)


def model_call(
    provider: str,
    model: str,
    *,
    input: Any = None,
    operation: str = "chat",
    **fields: Any,
) -> CallSpec:
    """Account for one model call; usage recorded on it is priced as ``provider``/``model``."""
    envelope, extra = split_fields(fields, BINDABLE_FIELDS)

    def make() -> Call:
        identity = {
            **extra,
            OPERATION: operation,
            PROVIDER: provider,
            REQUEST_MODEL: model,
            "call_id": new_event_id(),
        }
        return Call("model", identity, envelope, provider=provider, model=model)

    return CallSpec(make, input)
