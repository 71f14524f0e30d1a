"""What a codemod run found: one :class:`Site` per legacy construction it looked at."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

# converted: rewritten to a canonical emitter call, the legacy object is gone;
# adapted: the object stays (it is used afterwards, or a field is only known at run time) and
#          the logger call becomes logkit.emit_event(logkit.from_legacy(obj));
# left: not touched, with the reason a reviewer needs.
Action = Literal["converted", "adapted", "left"]


@dataclass(frozen=True)
class Site:
    path: str
    line: int
    shape: str
    action: Action
    reason: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
