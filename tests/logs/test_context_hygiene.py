"""Context hygiene: flow, step, bind and the decorators restore the context on every way out.

Failure on entry, exceptions, generators closed early or collected from another context, and
asyncio cancellation: nothing stays bound, nothing leaks to the consumer of a generator, and no
"Token was created in a different Context" ever reaches ``sys.unraisablehook`` (which pytest
turns into an error under ``-W error``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import logkit
from logkit import ContractError, EventType
from logkit.testing import capture_events
from tests.conftest import SCOPE


@pytest.fixture
def unraisable(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What reaches sys.unraisablehook, after a full collection at the end of the test."""
    seen: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(repr(u.exc_value)))
    yield seen
    gc.collect()
    assert seen == []


def kinds(events: list[logkit.Event]) -> list[str]:
    return [e.event_type.value for e in events]


# --- failure on entry -----------------------------------------------------------------------


@pytest.mark.parametrize("span", [logkit.flow, logkit.step])
def test_a_span_failing_on_entry_unbinds_before_the_error_propagates(
    span: Any, unraisable: list[str]
) -> None:
    """Was: the run/step stayed bound after flow()/step() failed on entry (missing scope)."""
    with logkit.bind(request_id="req-1"):
        try:
            with span("x"):
                pytest.fail("entered")
        except ContractError as exc:
            kept = exc  # a kept error keeps the failed span alive: the scope must not be
        assert logkit.current_scope() == {"request_id": "req-1"}
    assert "tenant_id" in str(kept)


def test_a_span_failing_on_entry_in_a_task_leaves_nothing_for_the_collector(
    unraisable: list[str],
) -> None:
    """Was: the bind's token was reset by the garbage collector in another context."""

    async def handler() -> ContractError:
        try:
            with logkit.flow("x"):
                pass
        except ContractError as exc:
            return exc
        raise AssertionError("entered")

    error = asyncio.run(handler())
    del error
    gc.collect()  # unraisable asserts at teardown


def test_a_decorated_function_failing_on_entry_leaves_nothing(unraisable: list[str]) -> None:
    @logkit.step("s")
    async def work() -> None:
        raise AssertionError("never runs")

    with pytest.raises(ContractError):
        asyncio.run(work())
    assert logkit.current_scope() == {}


# --- generators -----------------------------------------------------------------------------


def test_a_decorated_generator_spans_its_iteration_and_binds_nothing_outside(
    unraisable: list[str],
) -> None:
    seen_inside: list[str | None] = []

    @logkit.flow("pages")
    def pages() -> Iterator[int]:
        for page in range(3):
            seen_inside.append(logkit.current_scope().get("run_id"))
            yield page

    with logkit.bind(**SCOPE), capture_events() as events:
        pager = pages()
        assert events == []  # nothing starts before the first page is asked for
        for _ in pager:
            assert "run_id" not in logkit.current_scope()  # the consumer's context is its own
    assert kinds(events) == ["flow_started", "flow_ended"]
    assert events[1].payload["status"] == "ok"
    assert set(seen_inside) == {events[0].run_id} and None not in seen_inside


def test_a_generator_closed_early_ends_as_closed(unraisable: list[str]) -> None:
    @logkit.step("rows")
    def rows() -> Iterator[int]:
        yield from range(10)

    with logkit.bind(**SCOPE), capture_events() as events:
        for row in rows():
            if row == 2:
                break
    assert kinds(events) == ["step_started", "step_ended"]
    assert events[1].payload["status"] == "closed"
    assert logkit.current_scope() == {}


def test_send_and_throw_reach_a_decorated_generator(unraisable: list[str]) -> None:
    @logkit.bind(run_id="run_echo")
    def echo() -> Iterator[Any]:
        received = None
        while True:
            try:
                received = yield (received, logkit.current_scope().get("run_id"))
            except KeyError:
                received = "thrown"

    gen = echo()
    assert next(gen) == (None, "run_echo")
    assert gen.send("a") == ("a", "run_echo")
    assert gen.throw(KeyError()) == ("thrown", "run_echo")
    gen.close()
    assert logkit.current_scope() == {}


def test_a_generator_holding_a_flow_collected_in_another_context(unraisable: list[str]) -> None:
    """Was: ValueError "Token was created in a different Context" in the generator's finally."""

    def stream() -> Iterator[int]:
        with logkit.bind(**SCOPE), logkit.flow("stream"):
            yield 1
            yield 2

    holder: list[Iterator[int]] = []

    def start() -> None:
        gen = stream()
        next(gen)
        holder.append(gen)

    with capture_events() as events:
        thread = threading.Thread(target=start)
        thread.start()
        thread.join()
        holder.clear()  # collected here, in the main thread's context
        gc.collect()
    assert kinds(events) == ["flow_started", "flow_ended"]
    ended = events[1]
    assert ended.payload["status"] == "closed" and ended.tenant_id == "t_acme"
    assert ended.run_id == events[0].run_id
    assert logkit.current_scope() == {}


# --- async generators and cancellation ------------------------------------------------------


def test_a_decorated_async_generator_and_cancellation(unraisable: list[str]) -> None:
    @logkit.step("ticks")
    async def ticks() -> AsyncIterator[int]:
        n = 0
        while True:
            assert logkit.current_scope().get("step_id")
            yield n
            n += 1
            await asyncio.sleep(0)

    async def consume(got: list[int], started: asyncio.Event) -> None:
        async for tick in ticks():
            assert "step_id" not in logkit.current_scope()
            got.append(tick)
            if tick == 3:
                started.set()
                await asyncio.sleep(3600)  # cancelled here

    async def main() -> list[int]:
        got: list[int] = []
        started = asyncio.Event()
        with logkit.bind(**SCOPE):
            task = asyncio.create_task(consume(got, started))
            waiting = asyncio.create_task(started.wait())
            await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
            assert started.is_set(), task.exception()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        return got

    with capture_events() as events:
        assert asyncio.run(main()) == [0, 1, 2, 3]
    assert kinds(events) == ["step_started", "step_ended"]
    assert events[1].payload["status"] == "closed"  # the consumer went away
    assert logkit.current_scope() == {}


def test_cancellation_inside_a_decorated_async_generator_fails_the_step(
    unraisable: list[str],
) -> None:
    @logkit.step("slow")
    async def slow() -> AsyncIterator[int]:
        yield 1
        await asyncio.sleep(3600)  # cancelled here, inside the body
        yield 2

    async def main() -> None:
        with logkit.bind(**SCOPE):
            gen = slow()
            assert await gen.__anext__() == 1
            pending = asyncio.ensure_future(gen.__anext__())
            await asyncio.sleep(0)
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
            assert logkit.current_scope() == SCOPE

    with capture_events() as events:
        asyncio.run(main())
    assert kinds(events) == ["step_started", "step_failed"]
    assert events[1].payload["error.type"] == "CancelledError"


def test_a_cancelled_coroutine_in_a_flow_restores_the_task_context(
    unraisable: list[str],
) -> None:
    async def main() -> dict[str, Any]:
        async def work() -> None:
            async with logkit.flow("work"):
                await asyncio.sleep(3600)

        with logkit.bind(**SCOPE):
            task = asyncio.create_task(work())
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return logkit.current_scope()

    with capture_events() as events:
        assert asyncio.run(main()) == SCOPE
    assert kinds(events) == [EventType.FLOW_STARTED.value, EventType.FLOW_FAILED.value]


@pytest.mark.parametrize("kind", ["function", "coroutine", "generator", "async generator"])
def test_bind_decorates_every_kind_of_function(kind: str, unraisable: list[str]) -> None:
    sources = {
        "function": "def f():\n    return current_scope()",
        "coroutine": "async def f():\n    return current_scope()",
        "generator": "def f():\n    yield current_scope()",
        "async generator": "async def f():\n    yield current_scope()",
    }
    namespace: dict[str, Any] = {"current_scope": logkit.current_scope}
    exec(sources[kind], namespace)
    fn = logkit.bind(run_id="run_d")(namespace["f"])

    async def first(agen: Any) -> Any:
        async for item in agen:
            return item
        return None

    result = {
        "function": fn,
        "coroutine": lambda: asyncio.run(fn()),
        "generator": lambda: next(fn()),
        "async generator": lambda: asyncio.run(first(fn())),
    }[kind]()
    assert result == {"run_id": "run_d"}
    gc.collect()
    assert logkit.current_scope() == {}


# --- a user's suite under -W error ------------------------------------------------------------

USER_SUITE = """
import asyncio
import gc
import threading

import pytest

import logkit


def test_flow_fails_on_entry():
    with pytest.raises(logkit.ContractError) as caught:
        with logkit.flow("x"):
            pass
    assert logkit.current_scope() == {}


def test_step_fails_on_entry_in_a_task():
    async def main():
        try:
            with logkit.step("y"):
                pass
        except logkit.ContractError as exc:
            return exc

    kept = asyncio.run(main())
    del kept
    gc.collect()


def test_a_generator_abandoned_in_a_thread():
    def gen():
        with logkit.bind(tenant_id="t_a"):
            yield 1
            yield 2

    holder = []

    def start():
        g = gen()
        next(g)
        holder.append(g)

    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    holder.clear()
    gc.collect()


def test_a_decorated_async_generator_left_unfinished():
    @logkit.bind(run_id="r")
    async def ticks():
        yield 1
        yield 2

    async def main():
        async for _ in ticks():
            break

    asyncio.run(main())
    gc.collect()
"""


def test_a_users_suite_passes_under_w_error(tmp_path: Path) -> None:
    """Was: "4 passed" printed and exit status 1 (an unraisable ValueError became an error)."""
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_SUITE))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-W", "error", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),  # this run's logkit
            "LOGKIT_REDACTION__KEY": "k",
        },
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "4 passed" in output and "nraisable" not in output and "different Context" not in output
