"""The legacy shapes the codemods know: which class, which loggers, which rewrite.

One :class:`Shape` per legacy envelope of LEGACY.md, registered under the name ``--only``
takes. A shape is matched by the fully qualified name of its class, resolved through the
file's imports, so a lookalike class from another module is never touched.
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
    # Call names (the last segment: `log_event`, `self._log_model_call`) that consume the object
    # as their only argument and whose result the legacy code may ignore.
    loggers: frozenset[str] = frozenset()
    # Set when constructions are never rewritten: why, for the report.
    left_reason: str | None = None

    @property
    def simple_name(self) -> str:
        return self.class_name.rsplit(".", 1)[-1]


SHAPES: tuple[Shape, ...] = (
    Shape(
        name="dataset-event",
        class_name=DATASET_EVENT,
        summary="DatasetEvent handed to a logger -> logkit.emit('dataset_event', ...) "
        "(or the adapter where the object must stay)",
        loggers=frozenset(
            {
                "log_event",
                "_log_event",
                "log_dataset_event",
                "_log_dataset_event",
                "audit_logger",
                "_audit_logger",
                "write_event",
            }
        ),
    ),
    Shape(
        name="model-call-log",
        class_name=MODEL_CALL_LOG,
        summary="ModelCallLog(+PromptSnapshot) handed to a logger -> "
        "logkit.emit('model_call_ended', ...) (or the adapter)",
        loggers=frozenset(
            {"log_model_call", "_log_model_call", "model_call_logger", "_model_call_logger"}
        ),
    ),
    Shape(
        name="event-log-entry",
        class_name=EVENT_LOG_ENTRY,
        summary="EventLogEntry handed to a logger -> logkit.emit_event(logkit.from_legacy(...))",
        loggers=frozenset(
            {"log_event", "_log_event", "write_event", "log_entry", "write_entry", "append_entry"}
        ),
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
