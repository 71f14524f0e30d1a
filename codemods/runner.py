"""Run the codemod over a tree: the project once, then prefilter, parse in parallel, verify,
write atomically.

The project (:mod:`.project`: root, config, first-party names, the names tests patch, the
loggers read from their modules) is computed once here and handed to the workers. Files are
read as bytes and written back in their own encoding. Test files are never changed. A file
whose text names no legacy class or hook type is never parsed (a substring test, which every
reference must pass, aliases and ``module.Class`` included), except the logger implementations
being migrated. A rewritten file is parsed again before anything is written, and is written
through a temporary file and ``os.replace``, so a crash or a bad rewrite never leaves a
half-written or unparsable file behind.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import libcst as cst
from libcst.codemod import CodemodContext

from .project import Project, discover
from .report import Site
from .shapes import select
from .transform import MigrateLegacyCallSites

Mode = Literal["write", "diff", "check"]
_SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})


@dataclass
class FileOutcome:
    path: str
    changed: bool = False
    sites: list[Site] = field(default_factory=list)
    error: str | None = None
    diff: str = ""


@dataclass
class Summary:
    files_scanned: int = 0
    files_parsed: int = 0
    files_tests: int = 0  # test files: never changed
    outcomes: list[FileOutcome] = field(default_factory=list)
    project: Project | None = None

    @property
    def changed(self) -> list[str]:
        return [o.path for o in self.outcomes if o.changed]

    @property
    def sites(self) -> list[Site]:
        return [site for o in self.outcomes for site in o.sites]

    @property
    def errors(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.error is not None]


def python_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every ``.py`` file under ``paths``, skipping hidden and tool directories, sorted."""
    for path in paths:
        if path.is_file():
            yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
            yield from (Path(root, f) for f in sorted(files) if f.endswith(".py"))


def mentions_legacy(source: bytes, names: tuple[bytes, ...]) -> bool:
    """The cheap prefilter: does the text name any legacy class at all?"""
    return any(name in source for name in names)


def migrate_source(
    source: bytes,
    path: Path,
    only: tuple[str, ...] | None = None,
    *,
    project: Project | None = None,
    unsafe: bool = False,
) -> tuple[bytes, list[Site]]:
    """Run the codemod over one file's bytes; raises libcst.ParserSyntaxError if unparsable.

    Without ``project``, the one of ``path``'s tree (found from the file, as libcst's CLI does).
    """
    module = cst.parse_module(source)
    project = project or discover([path], in_run=[path])
    context = CodemodContext(
        filename=str(path),
        full_module_name=project.module_of(path),
        full_package_name=project.package_of(path),
    )
    command = _command(context, only, unsafe, project)
    new = command.transform_module(module)
    return new.bytes, command.sites


_COMMANDS: dict[tuple[tuple[str, ...] | None, bool], MigrateLegacyCallSites] = {}


def _command(
    context: CodemodContext, only: tuple[str, ...] | None, unsafe: bool, project: Project
) -> MigrateLegacyCallSites:
    """One command per worker and options, given each file's context: building a libcst
    command inspects all its methods, which costs more than transforming a small file."""
    command = _COMMANDS.get((only, unsafe))
    if command is None:
        command = _COMMANDS[(only, unsafe)] = MigrateLegacyCallSites(
            context, only, unsafe=unsafe, project=project
        )
    command.context = context
    command.use(project)
    return command


@dataclass(frozen=True)
class Job:
    """What every worker needs besides the file: picklable."""

    project: Project
    only: tuple[str, ...] | None = None
    mode: Mode = "write"
    unsafe: bool = False


def process_file(path: str, job: Job) -> FileOutcome:
    """One file, start to end: transform, verify, then write (mode "write") or diff."""
    outcome = FileOutcome(path)
    mode = job.mode
    try:
        source = Path(path).read_bytes()
        new, outcome.sites = migrate_source(
            source, Path(path), job.only, project=job.project, unsafe=job.unsafe
        )
        if new == source:
            return outcome
        cst.parse_module(new)  # never write (or propose) a file that does not parse
    except cst.ParserSyntaxError as exc:
        outcome.error = "cannot parse: " + _one_line(exc)
        return outcome
    except (OSError, UnicodeError, ValueError) as exc:
        outcome.error = _one_line(exc)
        return outcome
    except Exception as exc:  # a bug on one odd file must not stop the run: report it
        outcome.error = f"codemod failed, file left unchanged: {type(exc).__name__}: " + _one_line(
            exc
        )
        return outcome
    outcome.changed = True
    if mode == "diff":
        outcome.diff = unified_diff(path, source, new)
    elif mode == "write":
        write_atomically(Path(path), new)
    return outcome


def unified_diff(path: str, old: bytes, new: bytes) -> str:
    lines = difflib.unified_diff(
        old.decode("utf-8", "replace").splitlines(keepends=True),
        new.decode("utf-8", "replace").splitlines(keepends=True),
        fromfile=f"a/{path}",
        tofile=f"b/{path}",
    )
    return "".join(lines)


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a mix; the mode bits are kept."""
    mode = path.stat().st_mode
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode & 0o7777)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def run(
    paths: Iterable[Path],
    *,
    only: tuple[str, ...] | None = None,
    mode: Mode = "write",
    jobs: int = 0,
    unsafe: bool = False,
    config: Path | None = None,
    on_start: Callable[[int], None] | None = None,
    on_file: Callable[[FileOutcome], None] | None = None,
) -> Summary:
    """Migrate every candidate file; ``jobs`` 0 means one worker per CPU.

    Raises logkit.ConfigError when the codemod table is invalid.
    """
    paths = list(paths)
    files = list(python_files(paths))
    project = discover(paths, config, in_run=files)
    summary = Summary(files_scanned=len(files), project=project)
    names = _prefilter_names(project, only)
    implementations = {Path(lg.path).resolve() for lg in project.loggers.values() if lg.path}
    candidates: list[str] = []
    for path in files:
        if project.is_test(path):
            summary.files_tests += 1
            continue
        try:
            if mentions_legacy(path.read_bytes(), names) or path.resolve() in implementations:
                candidates.append(str(path))
        except OSError as exc:
            summary.outcomes.append(FileOutcome(str(path), error=_one_line(exc)))
    summary.files_parsed = len(candidates)
    if on_start is not None:
        on_start(len(candidates))
    job = Job(project, only, mode, unsafe)
    for outcome in _process_all(candidates, job, jobs or os.cpu_count() or 1):
        summary.outcomes.append(outcome)
        if on_file is not None:
            on_file(outcome)
    summary.outcomes.sort(key=lambda o: o.path)
    return summary


def _prefilter_names(project: Project, only: tuple[str, ...] | None) -> tuple[bytes, ...]:
    """The legacy class names, and the hook types' (a hook is typed, maybe not yet used)."""
    names = [shape.simple_name for shape in select(only)]
    names += [hook.rsplit(".", 1)[-1] for hook in project.config.hook_types]
    return tuple(dict.fromkeys(name.encode() for name in names))


def _process_all(candidates: list[str], job: Job, jobs: int) -> Iterator[FileOutcome]:
    workers = min(jobs, len(candidates))
    if workers <= 1:
        # One worker is this process: no start-up cost for the common handful of files.
        yield from (process_file(path, job) for path in candidates)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(process_file, path, job) for path in candidates]
        for future in as_completed(futures):
            yield future.result()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
