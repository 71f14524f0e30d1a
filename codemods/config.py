"""What a target repository tells the codemods: its loggers, sinks, hooks and storage methods.

Read from ``[tool.logkit.codemod]`` in the repository's pyproject.toml, or ``[codemod]`` in its
logkit.toml (``--config`` names either file). Every list *adds* to the defaults below, which
are the legacy engines' own (LEGACY.md), so a team names its extra loggers without editing
the installed package::

    [tool.logkit.codemod]
    loggers = ["engines.chat.history.log_turn"]        # routed: call sites stay as they are
    sinks = ["engines.analytics.export.publish_export"]  # pure sinks: call sites are rewritten
    hooks = ["on_event"]                                 # injected hook parameters (or types)
    storage = ["save_event"]                             # storage methods, never loggers

    [tool.logkit.codemod.routes]   # what a migrated hook default hands each legacy class to
    "engines.dataset.events.schemas.DatasetEvent" = "engines.logging.events.engine.run"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from logkit.errors import ConfigError

# The legacy loggers (LEGACY.md): the implementation that persists (run), and what forwards
# to it. Their call sites are routed: they reach logkit once run() is migrated.
LOGGERS = (
    "engines.logging.events.engine.run",
    "engines.logging.audit._audit_logger",
    "engines.logging.audit.emit_audit_event",
    "engines.logging.event_log.default_event_logger",
)
# Injected hooks: constructor parameters by name, or by their type alias (dotted).
HOOKS = (
    "model_call_logger",
    "usage_logger",
    "event_logger",
    "engines.nexus.logging.ModelCallLogger",
    "engines.nexus.logging.UsageLogger",
)
# Storage methods (by method name): what a logger implementation persists with.
STORAGE = ("write_event", "record_usage")
# A migrated hook default hands these classes to their logger (which computes PII flags and
# the training opt-out); any other legacy object goes to logkit through the adapter.
ROUTES = {
    "engines.dataset.events.schemas.DatasetEvent": "engines.logging.events.engine.run",
    "engines.logging.event_log.EventLogEntry": "engines.logging.event_log.default_event_logger",
}
# The hook types' legacy classes, for a hook no construction is seen handed to.
HOOK_TYPES = {
    "engines.nexus.logging.ModelCallLogger": "engines.nexus.logging.ModelCallLog",
    "engines.nexus.logging.UsageLogger": "engines.nexus.logging.NexusUsage",
}


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    loggers: tuple[str, ...] = ()
    sinks: tuple[str, ...] = ()
    hooks: tuple[str, ...] = ()
    storage: tuple[str, ...] = ()
    routes: dict[str, str] = {}


@dataclass(frozen=True)
class CodemodConfig:
    """The defaults plus what the repository adds."""

    loggers: tuple[str, ...] = LOGGERS
    sinks: tuple[str, ...] = ()
    hooks: tuple[str, ...] = HOOKS
    storage: tuple[str, ...] = STORAGE
    routes: dict[str, str] = field(default_factory=lambda: dict(ROUTES))
    source: str | None = None  # the file it was read from

    @property
    def hook_names(self) -> frozenset[str]:
        return frozenset(h for h in self.hooks if "." not in h)

    @property
    def hook_types(self) -> frozenset[str]:
        return frozenset(h for h in self.hooks if "." in h)


def load_config(root: Path, explicit: Path | None = None) -> CodemodConfig:
    """The codemod table of ``explicit``, else of ``root``'s pyproject.toml or logkit.toml.

    Raises logkit.ConfigError when the file or the table is unreadable or invalid.
    """
    if explicit is not None:
        table = _table_of(explicit, required=True)
        return _merge(table or {}, str(explicit))
    for name in ("pyproject.toml", "logkit.toml"):
        path = root / name
        table = _table_of(path, required=False) if path.is_file() else None
        if table is not None:
            return _merge(table, str(path))
    return CodemodConfig()


def _table_of(path: Path, *, required: bool) -> dict[str, Any] | None:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    if path.name == "logkit.toml":
        table = data.get("codemod")
    else:
        table = data.get("tool", {}).get("logkit", {}).get("codemod")
    if table is None and required:
        where = "[codemod]" if path.name == "logkit.toml" else "[tool.logkit.codemod]"
        raise ConfigError(f"{path} has no {where} table")
    if table is not None and not isinstance(table, dict):
        raise ConfigError(f"{path}: the codemod table must be a table")
    return table


def _merge(table: dict[str, Any], source: str) -> CodemodConfig:
    try:
        extra = _Table.model_validate(table)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        )
        raise ConfigError(f"{source}: invalid codemod table: {problems}") from None
    defaults = CodemodConfig()
    return CodemodConfig(
        loggers=_union(defaults.loggers, extra.loggers),
        sinks=_union(defaults.sinks, extra.sinks),
        hooks=_union(defaults.hooks, extra.hooks),
        storage=_union(defaults.storage, extra.storage),
        routes={**defaults.routes, **extra.routes},
        source=source,
    )


def _union(first: tuple[str, ...], more: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*first, *more]))
