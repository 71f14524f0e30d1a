"""What a codemod run found: one :class:`Site` per legacy construction it looked at, and per
logger implementation or hook default it migrated."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

# Sites (legacy constructions):
#   routed: handed to a logger (or hook, or a parameter defaulting to one) that reaches logkit;
#           the site itself is unchanged;
#   adapted: handed to a pure sink whose call became logkit.emit_event(logkit.from_legacy(obj));
#   converted: (--unsafe) construction and sink call became one logkit.emit(...);
#   left: does not reach logkit through anything the codemod knows; the reason says why.
# Implementations (shape "logger" / "hook"):
#   migrated: a logger implementation now persists through logkit, or a hook's default does.
Action = Literal["routed", "converted", "adapted", "left", "migrated"]
SITE_ACTIONS: tuple[Action, ...] = ("routed", "converted", "adapted", "left")
REACHING: frozenset[str] = frozenset({"routed", "converted", "adapted"})
# The envelopes the coverage figure counts (LEGACY.md: the logged ones).
LOGGED_SHAPES = frozenset({"dataset-event", "model-call-log", "event-log-entry"})


@dataclass(frozen=True)
class Site:
    path: str
    line: int
    shape: str  # a codemod name, or "logger" / "hook" for an implementation
    action: Action
    reason: str
    via: str | None = None
    unsafe: str | None = None
    logs: bool = True  # False: the legacy code logs nothing there (not counted in coverage)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def is_site(self) -> bool:
        return self.shape not in ("logger", "hook")

    def line_text(self) -> str:
        """``path:line: shape action [via X]: reason`` (greppable, like ruff)."""
        via = f" via {self.via}" if self.via else ""
        unsafe = ""
        if self.unsafe:
            label = "unsafe" if self.action == "converted" else "--unsafe would convert it"
            unsafe = f" [{label}: {self.unsafe}]"
        return f"{self.where}: {self.shape} {self.action}{via}: {self.reason}{unsafe}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


LOOKALIKE = "is not the legacy class"


def coverage(sites: list[Site]) -> tuple[int, int]:
    """(sites reaching logkit, logging sites) over the logged envelopes' constructions: not
    counted are lookalikes (another module's class of the same name) and constructions the
    legacy code logs nothing with (readers, storage writes, constants, calls that fail)."""
    counted = [
        s for s in sites if s.shape in LOGGED_SHAPES and s.logs and LOOKALIKE not in s.reason
    ]
    return sum(s.action in REACHING for s in counted), len(counted)
