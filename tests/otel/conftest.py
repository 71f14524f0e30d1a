"""Fixtures for the OpenTelemetry tests: an SDK recording logkit's spans, and Phoenix."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from logkit.redaction import set_redactor
from logkit.redaction.engine import RegexRedactor
from logkit.spans import use_tracer_provider
from tests import services
from tests.conftest import TEST_REDACTION_KEY


class Recorded:
    """The spans an SDK tracer provider recorded (logkit's, and the test's own)."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def by_name(self) -> dict[str, ReadableSpan]:
        return {s.name: s for s in self.spans()}


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    """logkit's spans recorded by an SDK tracer provider for the test (then no SDK again)."""
    rec = Recorded()
    use_tracer_provider(rec.provider)
    try:
        yield rec
    finally:
        use_tracer_provider(None)
        rec.provider.shutdown()


@pytest.fixture
def gate() -> Iterator[None]:
    """The real redaction gate (the suite's default is pass-through)."""
    previous = set_redactor(RegexRedactor(TEST_REDACTION_KEY.encode()))
    yield
    set_redactor(previous)


def span_hex(value: int) -> str:
    return format(value, "016x")


def trace_hex(value: int) -> str:
    return format(value, "032x")


@pytest.fixture
def phoenix() -> Phoenix:
    return Phoenix(services.require("PHOENIX_URL"))


class Phoenix:
    """Phoenix's REST API: spans of a project read back (each test uses its own project)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    @staticmethod
    def new_project() -> str:
        return f"logkit-test-{uuid.uuid4().hex[:12]}"

    def spans(self, project: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            response = httpx.get(
                f"{self.url}/v1/projects/{project}/spans", params=params, timeout=10
            )
            if response.status_code == 404:  # the project exists once a span arrived
                return out
            response.raise_for_status()
            body = response.json()
            out.extend(body["data"])
            cursor = body.get("next_cursor")
            if not cursor:
                return out

    def wait_for(
        self, project: str, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Phoenix stores what it received asynchronously: read until ``done`` (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans(project)
            if done(spans) or time.monotonic() > deadline:
                return spans
            time.sleep(0.2)  # polling a remote server's state, not waiting for our own work
