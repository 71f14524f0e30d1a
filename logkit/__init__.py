"""logkit: canonical events, correlation, redaction and durable sinks for an AI-agent platform.

``import logkit`` stays cheap: no cloud SDK, no CLI framework, no OpenTelemetry import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from logkit.context import bind, current_scope, propagate
from logkit.emit import build_event, emit, emit_event
from logkit.envelope import (
    SCHEMA_VERSION,
    ActorType,
    Env,
    Event,
    EventType,
    RedactionReport,
    Severity,
    StorageClass,
)
from logkit.errors import (
    AuditChainError,
    AuditUnavailable,
    ConfigError,
    ContractError,
    LogkitError,
    RedactionError,
    SinkError,
    SinkUnavailable,
    SinkWriteError,
)

if TYPE_CHECKING:
    from logkit.adapters import from_legacy
    from logkit.asgi import CorrelationMiddleware
    from logkit.auditing.write import audit
    from logkit.calls import model_call, tool_call
    from logkit.counting import counters
    from logkit.devlog import JsonFormatter, configure_logging
    from logkit.principal import Principal, Unauthorized
    from logkit.pulse import StatePulseHook, state_pulse
    from logkit.read import iter_events, query_events, run_events
    from logkit.redaction.gate import redact, redact_for_call
    from logkit.runtime import configure, flush, shutdown
    from logkit.spans import inject_trace, inject_trace_async, trace_headers, use_tracer_provider
    from logkit.timeline import decision, flow, step
    from logkit.usage import record_usage

__version__ = "0.1.0"

# Names loaded on first use, so `import logkit` pays only for the emit path.
_LAZY = {
    "state_pulse": "logkit.pulse",
    "StatePulseHook": "logkit.pulse",
    "flow": "logkit.timeline",
    "step": "logkit.timeline",
    "decision": "logkit.timeline",
    "tool_call": "logkit.calls",
    "model_call": "logkit.calls",
    "record_usage": "logkit.usage",
    "redact": "logkit.redaction.gate",
    "redact_for_call": "logkit.redaction.gate",
    "audit": "logkit.auditing.write",
    "CorrelationMiddleware": "logkit.asgi",
    "configure": "logkit.runtime",
    "flush": "logkit.runtime",
    "shutdown": "logkit.runtime",
    "iter_events": "logkit.read",
    "query_events": "logkit.read",
    "run_events": "logkit.read",
    "JsonFormatter": "logkit.devlog",
    "configure_logging": "logkit.devlog",
    "from_legacy": "logkit.adapters",
    "counters": "logkit.counting",
    "Principal": "logkit.principal",
    "trace_headers": "logkit.spans",
    "inject_trace": "logkit.spans",
    "inject_trace_async": "logkit.spans",
    "use_tracer_provider": "logkit.spans",
    "Unauthorized": "logkit.principal",
}


if not TYPE_CHECKING:  # type checkers see the real names above; a typo stays an error there

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'logkit' has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ActorType",
    "AuditChainError",
    "AuditUnavailable",
    "ConfigError",
    "ContractError",
    "CorrelationMiddleware",
    "Env",
    "Event",
    "EventType",
    "JsonFormatter",
    "LogkitError",
    "Principal",
    "RedactionError",
    "RedactionReport",
    "SCHEMA_VERSION",
    "Severity",
    "SinkError",
    "SinkUnavailable",
    "SinkWriteError",
    "StatePulseHook",
    "StorageClass",
    "Unauthorized",
    "__version__",
    "audit",
    "bind",
    "build_event",
    "configure",
    "configure_logging",
    "counters",
    "current_scope",
    "decision",
    "emit",
    "emit_event",
    "flow",
    "flush",
    "from_legacy",
    "inject_trace",
    "inject_trace_async",
    "iter_events",
    "model_call",
    "propagate",
    "query_events",
    "record_usage",
    "redact",
    "redact_for_call",
    "run_events",
    "shutdown",
    "state_pulse",
    "step",
    "tool_call",
    "trace_headers",
    "use_tracer_provider",
]
