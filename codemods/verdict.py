"""What the codemod decided for one site: the action, why, and through what."""

from __future__ import annotations

from dataclasses import dataclass, replace

import libcst as cst

from .report import REACHING, Action


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str
    via: str | None = None  # the logger, hook or sink the object reaches logkit through
    unsafe: str | None = None  # why the --unsafe rewrite of this site changes behaviour
    logs: bool = True  # False: the legacy code logs nothing here today (a reader, a constant...)

    @property
    def reaches(self) -> bool:
        """Does the object reach logkit (once this run's rewrites are applied)?"""
        return self.action in REACHING

    def with_reason(self, prefix: str) -> Verdict:
        return replace(self, reason=prefix + self.reason)


def short(name: str) -> str:
    """``engines.logging.events.engine.run`` -> ``run()``; ``logkit`` stays ``logkit``."""
    return name if "." not in name else name.rsplit(".", 1)[-1] + "()"


def describe(parent: cst.CSTNode | None) -> str:
    """How a value is used, in a few words, for a report line."""
    if isinstance(parent, cst.Return):
        return "(returned to the caller)"
    if isinstance(parent, cst.Arg):
        return "(an argument)"
    if isinstance(parent, cst.AnnAssign):
        return "(an annotated assignment, which the codemod does not follow)"
    if isinstance(parent, cst.Attribute):
        return f"(read as .{parent.attr.value})"
    if parent is None:
        return "(an expression)"
    return f"({type(parent).__name__.lower()} value)"
