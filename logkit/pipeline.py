"""The processing pipeline an event passes after the contract check.

``processors`` are plain ``Callable[[Event], Event]`` steps applied in order (the redaction gate
is always first); ``outputs`` receive the processed event. Outputs are where events leave the
pipeline: the router to the stores, and the capture lists of :mod:`logkit.testing`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from logkit.envelope import Event
from logkit.redaction import redact_event

Processor = Callable[[Event], Event]
Output = Callable[[Event], None]


class Pipeline:
    """Processors then outputs. Thread-safe to reconfigure while other threads emit."""

    def __init__(self, processors: Sequence[Processor] = (), outputs: Sequence[Output] = ()):
        self._lock = threading.Lock()
        self._processors: tuple[Processor, ...] = (redact_event, *processors)
        self._outputs: tuple[Output, ...] = tuple(outputs)
        # False until logkit.configure() (or the first emit) has installed the router.
        self.configured = False

    def process(self, event: Event) -> Event:
        # Read the tuples once: a concurrent reconfigure swaps them atomically.
        for step in self._processors:
            event = step(event)
        for output in self._outputs:
            output(event)
        return event

    def redact(self, event: Event) -> Event:
        """Run the processors only (the redaction gate first)."""
        for step in self._processors:
            event = step(event)
        return event

    def observe(self, event: Event, *, skip: Output | None = None) -> None:
        """Hand an event to every output but ``skip`` (a path that already stored it)."""
        for output in self._outputs:
            if output is not skip:
                output(event)

    def add_output(self, output: Output) -> None:
        with self._lock:
            self._outputs = (*self._outputs, output)

    def remove_output(self, output: Output) -> None:
        with self._lock:
            self._outputs = tuple(o for o in self._outputs if o is not output)

    @property
    def outputs(self) -> tuple[Output, ...]:
        return self._outputs


PIPELINE = Pipeline()
"""The process-wide pipeline that :func:`logkit.emit` hands events to."""
