"""After an erasure (dsar delete, retention apply): make it reach the disk.

Every local SQLite file the runtime writes (the SQLite backend, the spool, a SQLite key table)
gets its WAL checkpointed into the database and truncated, waiting up to :data:`WAIT_S` for
readers on an older snapshot to finish. What could not be cleared comes back as a
:class:`~logkit._sqlite.Residue` naming the processes holding the file open: the operation then
reports a warning, never plain success.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from logkit._sqlite import Residue
from logkit.errors import LogkitError
from logkit.runtime import Runtime

# How long an erasure waits for readers on an older snapshot before it reports them.
WAIT_S = 5.0


@runtime_checkable
class Scrubs(Protocol):
    def scrub(self, wait_s: float) -> list[Residue]: ...


@dataclass
class Settled:
    """What an erasure may have left on disk: files a reader kept, files not checkpointed."""

    rerun: str  # what to run again once the readers are gone
    residue: list[Residue] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.residue and not self.errors

    def warnings(self) -> list[str]:
        return [r.message(self.rerun) for r in self.residue] + [
            f"{error}: erased values may remain in its WAL; {self.rerun}" for error in self.errors
        ]

    def as_dict(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.residue]


def settle(runtime: Runtime, rerun: str) -> Settled:
    """Checkpoint every local SQLite file of ``runtime``; what may still hold erased values."""
    sources: list[object] = [*runtime.backends.values(), runtime.spool, runtime.keys]
    settled = Settled(rerun)
    for source in sources:
        if isinstance(source, Scrubs):
            try:
                residue = source.scrub(WAIT_S)
            except LogkitError as exc:
                settled.errors.append(f"could not checkpoint ({exc})")
                continue
            seen = {r.path for r in settled.residue}  # one file may serve two sources
            settled.residue += [r for r in residue if r.path not in seen]
    return settled
