"""The legacy envelopes the codemods know, one :class:`Shape` each, under the name ``--only``
takes. A construction is matched by the fully qualified name of its class, resolved through
the file's imports, so a lookalike class from another module is never touched. Which loggers,
hooks, sinks and storage methods there are is the repository's business: :mod:`.config`.
"""

from __future__ import annotations

from dataclasses import dataclass

DATASET_EVENT = "engines.dataset.events.schemas.DatasetEvent"
MODEL_CALL_LOG = "engines.nexus.logging.ModelCallLog"
PROMPT_SNAPSHOT = "engines.nexus.logging.PromptSnapshot"
EVENT_LOG_ENTRY = "engines.logging.event_log.EventLogEntry"
STREAM_EVENT = "engines.realtime.contracts.StreamEvent"
USAGE_EVENT = "engines.budget.models.UsageEvent"


@dataclass(frozen=True)
class Shape:
    """One legacy envelope and how its call sites migrate."""

    name: str  # the registry name, e.g. "dataset-event"
    class_name: str  # fully qualified
    summary: str  # one line for `logkit codemod list`
    # Set when constructions are never rewritten: why, for the report.
    left_reason: str | None = None

    @property
    def simple_name(self) -> str:
        return self.class_name.rsplit(".", 1)[-1]


SHAPES: tuple[Shape, ...] = (
    Shape(
        name="dataset-event",
        class_name=DATASET_EVENT,
        summary="DatasetEvent: routed through run() (migrated), hooks and sinks -> logkit",
    ),
    Shape(
        name="model-call-log",
        class_name=MODEL_CALL_LOG,
        summary="ModelCallLog(+PromptSnapshot): injected hooks default to logkit; sinks",
    ),
    Shape(
        name="event-log-entry",
        class_name=EVENT_LOG_ENTRY,
        summary="EventLogEntry: routed through default_event_logger() -> run() -> logkit",
    ),
    Shape(
        name="stream-event",
        class_name=STREAM_EVENT,
        summary="StreamEvent constructions: reported, not rewritten",
        left_reason="StreamEvent is sent on the live transport, which needs the object; "
        "emit it with logkit.emit_event(logkit.from_legacy(evt)) where it is also logged",
    ),
    Shape(
        name="usage-event",
        class_name=USAGE_EVENT,
        summary="UsageEvent constructions: reported, not rewritten",
        left_reason="UsageEvent goes to the usage repository, which list_usage/get_totals read "
        "back; record it with logkit.record_usage(...) once those readers use the cost store",
    ),
)

REGISTRY: dict[str, Shape] = {shape.name: shape for shape in SHAPES}
BY_CLASS: dict[str, Shape] = {shape.class_name: shape for shape in SHAPES}


def select(only: tuple[str, ...] | None) -> tuple[Shape, ...]:
    """The shapes named by ``--only`` (all when None); unknown names raise KeyError."""
    if not only:
        return SHAPES
    unknown = [name for name in only if name not in REGISTRY]
    if unknown:
        raise KeyError(", ".join(unknown))
    return tuple(REGISTRY[name] for name in only)
