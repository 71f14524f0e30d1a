"""The contract-violation policy: raise, or record the event as a ``contract_violation``.

``[contract] on_violation`` decides (default: ``raise`` in dev, ``record`` in staging and
prod). Raising shows a developer the missing field at once; recording keeps a request in
production going: the event is kept, in its place in the timeline, as a ``contract_violation``
ops event that names what was missing or invalid (never a value), with every scope and
correlation field that was valid, under the reserved tenant when no valid tenant was known,
and is counted (``logkit.counters()``). Audit-class events under ``audit.strict`` always raise:
a strict audit write is one the caller must know failed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from logkit.context import service_scope
from logkit.counting import COUNTERS
from logkit.envelope import (
    CORRELATION_FIELDS,
    DEFAULT_STORAGE_CLASS,
    EVENT_TYPES,
    REQUIRED_SCOPE,
    UNSCOPED_TENANT,
    Env,
    Event,
    EventType,
    Severity,
    StorageClass,
)
from logkit.errors import ContractError, LogkitError

log = logging.getLogger("logkit.contract")

UNSCOPED = "_unscoped"
"""The value of a required scope field (other than tenant and env) nobody gave."""

# Envelope fields a violation keeps when they were valid: scope and correlation.
_KEPT = (*REQUIRED_SCOPE, *CORRELATION_FIELDS, "redaction")


@dataclass(frozen=True, slots=True)
class ContractPolicy:
    record: bool = False  # False: raise
    strict_audit: bool = False  # audit-class events raise even when recording

    @property
    def name(self) -> str:
        return "record" if self.record else "raise"


_policy = ContractPolicy()


def set_contract_policy(on_violation: str, *, strict_audit: bool = False) -> ContractPolicy:
    """Install the policy (``configure()`` does, from settings); returns the previous one."""
    global _policy  # noqa: PLW0603 - one policy per process
    if on_violation not in ("raise", "record"):
        raise ValueError("on_violation is 'raise' or 'record'")
    previous = _policy
    _policy = ContractPolicy(on_violation == "record", strict_audit)
    return previous


def contract_policy() -> ContractPolicy:
    return _policy


def must_raise(event_type: object, data: Mapping[str, Any]) -> bool:
    """Whether the policy says this violation propagates to the caller."""
    policy = _policy
    if not policy.record:
        return True
    return policy.strict_audit and _audit_class(event_type, data)


def _audit_class(event_type: object, data: Mapping[str, Any]) -> bool:
    kind = EVENT_TYPES.get(str(event_type)) if isinstance(event_type, str) else None
    storage = data.get("storage_class") or (DEFAULT_STORAGE_CLASS.get(kind) if kind else None)
    return str(storage) == StorageClass.AUDIT.value


def violation(exc: ContractError, event_type: object, data: Mapping[str, Any]) -> Event:
    """The ``contract_violation`` event standing for an event that broke the contract."""
    COUNTERS.add("contract_violation.recorded")
    for name in exc.missing:
        COUNTERS.add(f"contract_violation.missing.{name}")
    bad = set(exc.missing) | {path.split(".", 1)[0] for path in exc.problems}
    kept = {k: data[k] for k in _KEPT if data.get(k) is not None and k not in bad}
    report: dict[str, Any] = {
        "event_type": str(event_type)
        if isinstance(event_type, str) and event_type in EVENT_TYPES
        else None,
        "missing": list(exc.missing),
        "problems": dict(exc.problems),
    }
    original = data.get("payload")
    if "payload" not in bad and isinstance(original, Mapping):
        report["payload"] = dict(original)
    try:
        return Event.from_dict(_scoped(kept, report))
    except LogkitError:  # a kept field broke the contract after all: keep names only
        report.pop("payload", None)
        return Event.from_dict(_scoped({}, report))


def _scoped(kept: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    env = kept.get("env") or service_scope().get("env") or Env.DEV
    return {
        "project_id": UNSCOPED,
        "surface_id": UNSCOPED,
        "app_id": UNSCOPED,
        **kept,
        "tenant_id": kept.get("tenant_id", UNSCOPED_TENANT),
        "env": env,
        "event_type": EventType.CONTRACT_VIOLATION,
        "severity": Severity.WARNING,
        "storage_class": StorageClass.OPS,
        "payload": report,
    }


def lost(exc: BaseException) -> None:
    """A violation that could not even be recorded: counted and logged, never raised."""
    COUNTERS.add("contract_violation.lost")
    log.warning("logkit: a contract violation could not be recorded (%s)", type(exc).__name__)
