"""What an operator does with the spool (``logkit spool show | dead-letters | replay``).

The spool is ``dispatch.spool_path``, or every spool file in ``dispatch.spool_dir``. Files in a
spool directory are claimed before a replay (see :mod:`logkit.spooldir`): a file a running
process holds is left to that process, which replays it itself.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logkit.config import DispatchConfig
from logkit.errors import ConfigError, LogkitError, SinkUnavailable
from logkit.sinks.protocols import Backend, Role
from logkit.spool import BROKEN_MARK, DeadLetter, Spool, broken_files
from logkit.spooldir import FileClaim, spool_files


@dataclass
class SpoolFile:
    path: str
    waiting: dict[str, int] = field(default_factory=dict)  # rows per sink
    dead: int = 0
    held: bool = False  # claimed by a running process (spool_dir only)
    broken: list[str] = field(default_factory=list)  # files moved aside as unusable
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "waiting": self.waiting,
            "dead": self.dead,
            "held": self.held,
            "broken": self.broken,
            "error": self.error,
        }


@dataclass
class ReplayOutcome:
    path: str
    sink: str
    requeued: int = 0
    replayed: int = 0
    dead: int = 0
    waiting: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def paths(config: DispatchConfig) -> list[Path]:
    if config.spool_dir is not None:
        return spool_files(Path(config.spool_dir))
    path = Path(config.spool_path)
    return [path] if path.exists() else []


def status(config: DispatchConfig) -> list[SpoolFile]:
    """Every spool file: rows waiting per sink, dead letters, files set aside as unusable."""
    found = []
    for path in paths(config):
        report = SpoolFile(str(path))
        if config.spool_dir is not None:
            claim = FileClaim.take(path)
            report.held = claim is None
            if claim is not None:
                claim.release()
        try:
            with closing(Spool(path)) as spool:
                report.waiting, report.dead = spool.sinks(), spool.dead_count()
                report.broken = [str(p) for p in spool.broken_files()]
        except SinkUnavailable as exc:
            report.error = str(exc)
        found.append(report)
    if config.spool_dir is not None:  # files set aside when adopted, whoever did it
        directory = Path(config.spool_dir)
        listed = {b for f in found for b in f.broken}
        aside = [str(p) for p in directory.glob(f"*{BROKEN_MARK}*") if p.is_file()]
        unlisted = sorted(p for p in aside if p not in listed)
        if unlisted:
            found.append(SpoolFile(str(directory), broken=unlisted))
    elif not found:  # no spool yet, but maybe broken ones
        broken = [str(p) for p in broken_files(Path(config.spool_path))]
        if broken:
            found.append(SpoolFile(str(config.spool_path), broken=broken))
    return found


def dead_letters(
    config: DispatchConfig, *, sink: str | None = None, limit: int = 100
) -> list[tuple[str, DeadLetter]]:
    letters: list[tuple[str, DeadLetter]] = []
    for path in paths(config):
        with closing(Spool(path)) as spool:
            letters += [(str(path), d) for d in spool.dead_letters(sink=sink, limit=limit)]
    return letters[:limit]


def replay(
    config: DispatchConfig,
    *,
    requeue: bool = False,
    ids: list[int] | None = None,
    sink: str | None = None,
    timeout: float = 60.0,
) -> list[ReplayOutcome]:
    """Write what waits in the spool to its backends now (dead letters first moved back with
    ``requeue``). What a backend refuses again returns to the dead letters, with the reason."""
    from logkit.closing import close_all
    from logkit.dispatch import Dispatcher

    replay_config = config.model_copy(update={"durability": "memory"})
    outcomes: list[ReplayOutcome] = []
    backends: dict[str, Backend] = {}
    try:
        for path in paths(config):
            claim = FileClaim.take(path) if config.spool_dir is not None else None
            if config.spool_dir is not None and claim is None:
                outcomes.append(ReplayOutcome(str(path), "*", error="held by a running process"))
                continue
            try:
                with closing(Spool(path)) as spool:
                    requeued = spool.requeue(ids, sink=sink) if requeue else 0
                    for name in spool.sinks():
                        if sink is not None and name != sink:
                            continue
                        outcome = ReplayOutcome(str(path), name, requeued=requeued)
                        requeued = 0
                        outcomes.append(outcome)
                        try:
                            store = _store(backends, name)
                        except (ConfigError, LogkitError) as exc:
                            outcome.error = str(exc)
                            outcome.waiting = spool.count(name)
                            continue
                        dispatcher = Dispatcher(name, store, spool, replay_config)
                        dispatcher.flush(timeout)
                        close_all([dispatcher], 1.0)
                        outcome.replayed = dispatcher.stats.replayed
                        outcome.dead = dispatcher.stats.dead
                        outcome.waiting = spool.count(name)
                        outcome.error = None if not outcome.waiting else dispatcher.stats.last_error
            finally:
                if claim is not None:
                    claim.release()
    finally:
        for backend in backends.values():
            backend.close()
    return outcomes


def _store(backends: dict[str, Backend], sink: str) -> Any:
    """The store a sink name (``URI#role``) stands for."""
    from logkit.sinks.registry import open_backend

    uri, _, role = sink.rpartition("#")
    try:
        parsed = Role(role)
    except ValueError:
        raise ConfigError(f"spool rows name an unknown sink {sink!r}") from None
    if uri not in backends:
        backends[uri] = open_backend(uri)
    return backends[uri].store(parsed)
