"""``logkit codemod list|apply``: migrate legacy logging call sites onto logkit (libcst)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from logkit.cli.common import EXIT_OK, EXIT_PROBLEM, JsonOption, fail, print_json

if TYPE_CHECKING:
    from codemods.runner import Summary

app = typer.Typer(
    help="Codemods that rewrite legacy logging call sites onto logkit's emitters.",
    no_args_is_help=True,
)

PathsArgument = Annotated[
    list[Path], typer.Argument(help="Files or directories to migrate.", show_default=False)
]
OnlyOption = Annotated[
    list[str] | None,
    typer.Option("--only", help="Run only this codemod (repeatable); see `logkit codemod list`."),
]
JobsOption = Annotated[
    int, typer.Option("--jobs", "-j", min=0, help="Worker processes (0: one per CPU).")
]


@app.command("list")
def list_codemods(json_output: JsonOption = False) -> None:
    """List the codemods (the names --only takes) and what each one does."""
    from codemods.shapes import SHAPES

    rows = [{"name": s.name, "class": s.class_name, "summary": s.summary} for s in SHAPES]
    if json_output:
        print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("codemod", "legacy class", "what it does", box=None)
    for row in rows:
        table.add_row(row["name"], row["class"], row["summary"])
    Console().print(table)


@app.command("apply")
def apply(
    paths: PathsArgument,
    *,
    diff: Annotated[
        bool, typer.Option("--diff", help="Print a unified diff; write nothing.")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if any file would change.")
    ] = False,
    only: OnlyOption = None,
    jobs: JobsOption = 0,
    json_output: JsonOption = False,
) -> None:
    """Rewrite legacy call sites in place (atomically), or show (--diff) or check (--check).

    Files whose text names no legacy class are not parsed; a file is written only if its new
    text parses. The report lists every site converted, adapted or left alone, with the reason.
    Exit 0 done (or nothing to do), 1 --check found changes or a file could not be processed,
    2 usage error.
    """
    from codemods.runner import Mode, run
    from codemods.shapes import REGISTRY

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        fail(f"no such file or directory: {', '.join(missing)}")
    unknown = [name for name in only or [] if name not in REGISTRY]
    if unknown:
        fail(f"unknown codemod {', '.join(unknown)}; `logkit codemod list` shows the names")
    mode: Mode = "diff" if diff else "check" if check else "write"
    with _Progress(enabled=not json_output) as progress:
        summary = run(
            paths,
            only=tuple(only) if only else None,
            mode=mode,
            jobs=jobs,
            on_start=progress.start,
            on_file=lambda _outcome: progress.advance(),
        )
    if json_output:
        print_json(_as_json(summary, mode))
    else:
        for outcome in summary.outcomes:
            if outcome.diff:
                typer.echo(outcome.diff, nl=False)
        _print_report(summary, mode, to_stderr=diff)
    failed = bool(summary.errors) or (check and bool(summary.changed))
    raise typer.Exit(EXIT_PROBLEM if failed else EXIT_OK)


class _Progress:
    """A rich progress bar on stderr while files are parsed (only on a terminal)."""

    def __init__(self, *, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import Progress

        console = Console(stderr=True)
        self._bar = Progress(console=console, transient=True, disable=not enabled)
        self._enabled = enabled and console.is_terminal
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self._enabled:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._enabled:
            self._bar.stop()

    def start(self, total: int) -> None:
        if self._enabled:
            self._task = self._bar.add_task("migrating", total=total)

    def advance(self) -> None:
        if self._task is not None:
            self._bar.advance(self._task)


def _as_json(summary: Summary, mode: str) -> dict[str, Any]:
    sites = summary.sites
    result: dict[str, Any] = {
        "mode": mode,
        "files_scanned": summary.files_scanned,
        "files_parsed": summary.files_parsed,
        "files_changed": summary.changed,
        "counts": {a: sum(s.action == a for s in sites) for a in ("converted", "adapted", "left")},
        "sites": [s.as_dict() for s in sites],
        "errors": [{"path": o.path, "error": o.error} for o in summary.errors],
    }
    if mode == "diff":
        result["diffs"] = {o.path: o.diff for o in summary.outcomes if o.diff}
    return result


def _print_report(summary: Summary, mode: str, *, to_stderr: bool) -> None:
    """One line per site, ``path:line: codemod action: reason`` (greppable, like ruff)."""
    colour = {"converted": "green", "adapted": "cyan", "left": "yellow"}
    sites = summary.sites
    for s in sites:
        action = typer.style(s.action, fg=colour[s.action])
        typer.echo(f"{s.where}: {s.shape} {action}: {s.reason}", err=to_stderr)
    for outcome in summary.errors:
        typer.echo(f"{outcome.path}: {typer.style('error', fg='red')}: {outcome.error}", err=True)
    counts = {a: sum(s.action == a for s in sites) for a in ("converted", "adapted", "left")}
    verb = {"write": "changed", "diff": "would change", "check": "would change"}[mode]
    typer.echo(
        f"{summary.files_scanned} files scanned, {summary.files_parsed} parsed, "
        f"{len(summary.changed)} {verb}; {counts['converted']} sites converted, "
        f"{counts['adapted']} adapted, {counts['left']} left alone"
        + (f"; {len(summary.errors)} files with errors" if summary.errors else ""),
        err=to_stderr,
    )
