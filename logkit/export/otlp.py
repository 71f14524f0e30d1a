"""The OTLP exporter: a pipeline output beside the router, never a store.

It receives every event after the redaction gate (``PIPELINE`` outputs run on the emitting
thread), and only appends it to a bounded queue: ``emit`` never waits on the network. A worker
thread takes batches, turns them into spans and log records (:mod:`logkit.export.convert`) and
sends them with OpenTelemetry's own OTLP/HTTP exporters (``opentelemetry-exporter-otlp-proto-http``:
endpoint, ``OTEL_EXPORTER_OTLP_*HEADERS``, compression, TLS and the retry backoff are theirs).

Outage behaviour (docs/otel.md): the queue is bounded (``[export] queue_size``); an event that
finds it full is **dropped and counted**, never spooled and never waited for. A batch the
backend refuses is retried with backoff (1 s doubling to 30 s) up to ``[export] attempts``
times, then dropped and counted; events queue behind it meanwhile. Export is a copy: the stores
keep every event durably, and ``logkit export otlp --run R`` re-sends a run from them.
Counters (``logkit.counters()``): ``export.otlp.spans``, ``export.otlp.logs`` (sent),
``export.otlp.dropped`` (events), ``export.otlp.failed`` (attempts that failed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from logkit.config import ExportConfig
from logkit.counting import COUNTERS
from logkit.envelope import Event, StorageClass
from logkit.errors import ConfigError

if TYPE_CHECKING:
    from logkit.export.convert import Converter

log = logging.getLogger("logkit.export")

INSTALL_HINT = (
    "pip install 'logkit[otlp]' (opentelemetry-sdk, opentelemetry-exporter-otlp-proto-http)"
)
_MAX_BACKOFF_S = 30.0


@dataclass
class ExportStats:
    """What a flush compares: events dropped so far (the rest is in ``logkit.counters()``)."""

    dropped: int = 0


class _Signal:
    """One OTLP signal (traces or logs): its exporter and the converted batch it still owes."""

    def __init__(self, name: str, exporter: Any, counter: str) -> None:
        self.name, self.exporter, self.counter = name, exporter, counter
        self.pending: list[Any] = []
        self.events = 0  # events the pending items stand for (counted as dropped if abandoned)
        self.attempts = 0

    def send(self) -> bool:
        """Try the pending batch once; True when nothing is owed any more."""
        if not self.pending:
            return True
        try:
            result = self.exporter.export(self.pending)
            ok = getattr(result, "name", "") == "SUCCESS"
        except Exception as exc:  # the exporter maps most failures itself; never the worker
            log.warning("logkit: OTLP %s export raised %s", self.name, type(exc).__name__)
            ok = False
        if ok:
            COUNTERS.add(self.counter, len(self.pending))
            self.pending, self.events, self.attempts = [], 0, 0
            return True
        self.attempts += 1
        COUNTERS.add("export.otlp.failed")
        return False


def load_sdk() -> None:
    """Import the optional SDK and OTLP exporter packages, or say how to install them."""
    try:
        import opentelemetry.exporter.otlp.proto.http
        import opentelemetry.sdk  # noqa: F401
    except ImportError:
        raise ConfigError(f"OTLP export needs the otlp extra: {INSTALL_HINT}") from None


def make_resource(config: ExportConfig, service: Mapping[str, Any]) -> Any:
    """The resource every span and record carries: ``[export] resource`` over the OTEL_*
    environment; ``service.name`` falls back to ``[service].app_id``, then ``logkit``."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    resource = Resource.create(dict(config.resource))
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        name = str(service.get("app_id") or "logkit")
        resource = resource.merge(Resource({SERVICE_NAME: name}))
    return resource


def make_signals(base_url: str, signals: Sequence[str], timeout_s: float) -> list[_Signal]:
    load_sdk()
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    out = []
    if "traces" in signals:
        spans = OTLPSpanExporter(endpoint=f"{base_url}/v1/traces", timeout=timeout_s)
        out.append(_Signal("traces", spans, "export.otlp.spans"))
    if "logs" in signals:
        logs = OTLPLogExporter(endpoint=f"{base_url}/v1/logs", timeout=timeout_s)
        out.append(_Signal("logs", logs, "export.otlp.logs"))
    return out


class OtlpExporter:
    """Queue events (a pipeline output), send them as OTLP from a worker thread."""

    def __init__(self, config: ExportConfig, service: Mapping[str, Any] | None = None) -> None:
        if config.otlp is None:
            raise ConfigError("[export] otlp is not set: no OTLP endpoint to export to")
        from logkit.export.convert import Converter

        self.config = config
        self.url = config.otlp
        self._signals = make_signals(config.otlp, config.signals, config.timeout_s)
        self._converter: Converter = Converter(make_resource(config, service or {}))
        self._queue: deque[Event] = deque()
        self._queue_size = config.queue_size
        self._batch_size = config.batch_size
        self._cond = threading.Condition()
        self._busy = False  # the worker holds a batch
        self._flushes = 0
        self._closing = False
        self._retry_at = 0.0
        self._backoff = 1.0
        self.stats = ExportStats()
        self._thread = threading.Thread(target=self._run, name="logkit-export-otlp", daemon=True)
        self._thread.start()

    # --- caller side (the emitting thread) ---------------------------------------------------

    def __call__(self, event: Event) -> None:
        """The pipeline output: queue ``event``, or drop and count it; never blocks or raises."""
        if event.storage_class is StorageClass.STREAM:
            return  # live-only gestures: not part of the stored story
        queue = self._queue
        if len(queue) >= self._queue_size or self._closing:
            self._dropped(1)
            return
        queue.append(event)  # atomic under the GIL: the common path takes no lock
        if len(queue) == self._batch_size:
            with self._cond:
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued; True when all of it was taken by the backend in time
        (False if anything is still queued or owed, or was dropped meanwhile)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        dropped = self.stats.dropped
        with self._cond:
            self._flushes += 1
            self._retry_at = 0.0  # a flush tries an owed batch now, not after its backoff
            self._cond.notify_all()
            while not self._idle():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left if left is None else min(left, 0.5))
            return self.stats.dropped == dropped

    def close(self, timeout: float | None = None) -> bool:
        """Flush within ``timeout``, then stop; what is still unsent is dropped and counted."""
        flushed = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for signal in self._signals:
            shutdown = getattr(signal.exporter, "shutdown", None)
            if shutdown is not None:
                shutdown()  # aborts a retry still waiting
        self._thread.join(timeout=max(timeout or 0.0, 1.0))
        with self._cond:
            left = len(self._queue) + sum(s.events for s in self._signals)
            self._queue.clear()
            for signal in self._signals:
                signal.pending, signal.events = [], 0
        if left:
            self._dropped(left)
        return flushed and not left

    # --- worker ------------------------------------------------------------------------------

    def _idle(self) -> bool:
        return not self._queue and not self._busy and not any(s.pending for s in self._signals)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(self._ready, timeout=self.config.flush_interval_s)
                if self._closing:
                    return
                owed = any(s.pending for s in self._signals)
                if owed and time.monotonic() < self._retry_at:
                    continue
                batch: list[Event] = [] if owed else self._take()
                self._busy = True
            try:
                self._send(batch)
            except Exception as exc:  # the worker never dies
                log.error("logkit: OTLP export failed: %s", type(exc).__name__)
                self._dropped(len(batch))
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _ready(self) -> bool:
        if self._closing:
            return True
        if any(s.pending for s in self._signals):  # a batch is owed: only its retry is due
            return time.monotonic() >= self._retry_at
        return len(self._queue) >= self._batch_size or self._flushes > 0

    def _take(self) -> list[Event]:
        queue = self._queue
        batch: list[Event] = []
        while queue and len(batch) < self._batch_size:
            batch.append(queue.popleft())
        if not queue:
            self._flushes = 0
        return batch

    def _send(self, batch: list[Event]) -> None:
        """Convert a new batch (spans and log records owed), then try what is owed."""
        for signal in self._signals:
            if batch:
                if signal.name == "traces":
                    signal.pending = self._converter.spans(batch)
                else:
                    signal.pending = [self._converter.log(e) for e in batch]
                signal.events = len(batch)
        failed = [s for s in self._signals if not s.send()]
        if not failed:
            self._backoff = 1.0
            return
        for signal in failed:
            if signal.attempts >= self.config.attempts:
                log.warning(
                    "logkit: OTLP %s batch dropped after %d attempts (%d events)",
                    signal.name,
                    signal.attempts,
                    signal.events,
                )
                self._dropped(signal.events)
                signal.pending, signal.events, signal.attempts = [], 0, 0
        with self._cond:
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, _MAX_BACKOFF_S)
            self._flushes = 0  # a flush waits for the backend no longer than its timeout

    def _dropped(self, count: int) -> None:
        self.stats.dropped += count
        COUNTERS.add("export.otlp.dropped", count)


@dataclass
class SendReport:
    """What :func:`send_events` sent."""

    url: str
    events: int
    spans: int
    logs: int
    unfinished: int


def send_events(
    events: Iterable[Event],
    config: ExportConfig,
    service: Mapping[str, Any] | None = None,
    *,
    batch_size: int = 512,
) -> SendReport:
    """Send stored events now, on this thread (``logkit export otlp``): spans whose end was
    never stored are sent as ``open`` spans. Raises SinkUnavailable if the backend refuses."""
    from logkit.errors import SinkUnavailable
    from logkit.export.convert import Converter

    if config.otlp is None:
        raise ConfigError("no OTLP endpoint: pass --url or set [export] otlp")
    signals = make_signals(config.otlp, config.signals, config.timeout_s)
    converter = Converter(make_resource(config, service or {}))
    report = SendReport(config.otlp, 0, 0, 0, 0)
    spans: list[Any] = []
    logs: list[Any] = []

    def ship(signal: _Signal, items: list[Any]) -> None:
        for start in range(0, len(items), batch_size):
            signal.pending = items[start : start + batch_size]
            if not signal.send():
                raise SinkUnavailable(
                    f"the OTLP endpoint {config.otlp} did not take the {signal.name} "
                    f"(after {config.timeout_s:g} s of retries)"
                )

    for event in events:
        report.events += 1
        span = converter.add(event)
        if span is not None:
            spans.append(span)
        logs.append(converter.log(event))
    unfinished = converter.unfinished()
    report.unfinished = len(unfinished)
    spans.extend(unfinished)
    try:
        for signal in signals:
            items = spans if signal.name == "traces" else logs
            ship(signal, items)
            if signal.name == "traces":
                report.spans = len(items)
            else:
                report.logs = len(items)
    finally:
        for signal in signals:
            signal.exporter.shutdown()
    return report
