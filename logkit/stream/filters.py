"""What a subscriber asked for (the filter), and whether its principal may see an event.

:class:`~logkit.principal.Principal` (re-exported here) says who may see what.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from logkit.envelope import EventType, Severity
from logkit.errors import ContractError
from logkit.principal import Principal

__all__ = ["FILTER_PARAMS", "Principal", "StreamFilter"]

FILTER_PARAMS = ("run_id", "types", "min_severity", "step_id")
_MAX_PARAM = 256


@dataclass(frozen=True, slots=True)
class StreamFilter:
    run_id: str | None = None
    types: tuple[str, ...] | None = None
    min_severity: Severity | None = None
    step_id: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> StreamFilter:
        """Parse the query parameters; a bad value is a ContractError naming the parameter."""
        problems: dict[str, str] = {}
        for name in FILTER_PARAMS:
            if len(params.get(name) or "") > _MAX_PARAM:
                problems[name] = f"longer than {_MAX_PARAM} characters"
        types = None
        if params.get("types"):
            types = tuple(t.strip() for t in params["types"].split(",") if t.strip())
            unknown = sorted({t for t in types if t not in EventType.__members__.values()})
            if unknown:
                problems["types"] = "unknown event types: " + ", ".join(unknown)
        severity = None
        if params.get("min_severity"):
            try:
                severity = Severity(params["min_severity"].strip().lower())
            except ValueError:
                problems["min_severity"] = "one of " + ", ".join(s.value for s in Severity)
        if problems:
            raise ContractError("invalid stream filter", problems=problems)
        return cls(
            run_id=params.get("run_id") or None,
            types=types or None,
            min_severity=severity,
            step_id=params.get("step_id") or None,
        )

    @property
    def min_rank(self) -> int:
        return -1 if self.min_severity is None else self.min_severity.rank

    def needs_body(self, principal: Principal) -> bool:
        """Whether admitting an event needs fields the store does not index."""
        return (
            principal.project_id is not None
            or self.min_severity is not None
            or self.step_id is not None
        )

    def admits(self, event: Mapping[str, Any], principal: Principal) -> bool:
        """The whole rule, on the event's JSON fields (tenant included: isolation first)."""
        return (
            event.get("tenant_id") == principal.tenant_id
            and (principal.project_id is None or event.get("project_id") == principal.project_id)
            and (self.run_id is None or event.get("run_id") == self.run_id)
            and (self.types is None or event.get("event_type") in self.types)
            and (self.step_id is None or event.get("step_id") == self.step_id)
            and (self.min_severity is None or _rank(event.get("severity")) >= self.min_rank)
        )


def _rank(severity: Any) -> int:
    try:
        return Severity(severity).rank
    except ValueError:
        return -1  # not a severity: below every threshold
