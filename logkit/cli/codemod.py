"""``logkit codemod list|apply``: migrate legacy logging call sites onto logkit (libcst)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from logkit.cli.common import (
    EXIT_OK,
    EXIT_PROBLEM,
    USAGE,
    JsonOption,
    cell,
    cli_command,
    console,
    fail,
    group_help,
    print_json,
)

if TYPE_CHECKING:
    from logkit.codemods.runner import Summary

app = typer.Typer(
    help=group_help(
        "Codemods that rewrite legacy logging call sites onto logkit's emitters.",
        ["logkit codemod list", "logkit codemod apply --diff engines/"],
    ),
    no_args_is_help=True,
)

PathsArgument = Annotated[
    list[Path], typer.Argument(help="Files or directories to migrate.", show_default=False)
]
OnlyOption = Annotated[
    list[str] | None,
    typer.Option("--only", help="Run only this codemod (repeatable); see `logkit codemod list`."),
]
# Not $LOGKIT_CONFIG (the runtime's file, which need not carry a codemod table): the codemod
# reads the migrated repository's own pyproject.toml / logkit.toml unless told otherwise.
CodemodConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="pyproject.toml ([tool.logkit.codemod]) or logkit.toml ([codemod]) to read the "
        "extra loggers, sinks, hooks and storage methods from (default: the repository's own).",
        show_default=False,
    ),
]
JobsOption = Annotated[
    int, typer.Option("--jobs", "-j", min=0, help="Worker processes (0: one per CPU).")
]


@app.command("list")
@cli_command(
    examples=["logkit codemod list", "logkit codemod list --json"],
    exits={0: "always"},
)
def list_codemods(json_output: JsonOption = False) -> None:
    """List the codemods (the names --only takes) and what each one does."""
    from logkit.codemods.shapes import SHAPES

    rows = [{"name": s.name, "class": s.class_name, "summary": s.summary} for s in SHAPES]
    if json_output:
        print_json(rows)
        return
    from rich.table import Table

    table = Table("codemod", "legacy class", "what it does", box=None)
    for row in rows:
        table.add_row(cell(row["name"]), cell(row["class"]), cell(row["summary"]))
    console().print(table)


@app.command("apply")
@cli_command(
    examples=[
        "logkit codemod apply --diff engines/",
        "logkit codemod apply --check engines/ --json",
        "logkit codemod apply --only dataset-event --unsafe engines/chat/",
    ],
    exits={
        0: "done, or nothing to do",
        1: "--check found changes, or a file could not be processed",
        2: USAGE + " (a path that does not exist, an unknown codemod)",
    },
)
def apply(
    paths: PathsArgument,
    *,
    diff: Annotated[
        bool, typer.Option("--diff", help="Print a unified diff; write nothing.")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if any file would change.")
    ] = False,
    unsafe: Annotated[
        bool,
        typer.Option(
            "--unsafe",
            help="Also apply the rewrites that change behaviour (each one is reported with why).",
        ),
    ] = False,
    only: OnlyOption = None,
    jobs: JobsOption = 0,
    config: CodemodConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Migrate legacy logging onto logkit in place (atomically), or show (--diff) or check.

    The legacy logger implementations and the defaults of injected hooks are migrated; call
    sites stay as they are (routed) unless they hand the object to a declared pure sink. The
    report names, for every legacy construction, how it reaches logkit (routed, adapted,
    converted) or why it does not (left). Extra loggers, sinks, hooks and storage methods come
    from [tool.logkit.codemod] in the repository's pyproject.toml (or [codemod] in logkit.toml,
    or the file --config names). Test files are never changed.
    """
    from logkit.codemods.runner import Mode, run
    from logkit.codemods.shapes import REGISTRY

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        fail(f"no such file or directory: {', '.join(missing)}", kind="not_found")
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
            unsafe=unsafe,
            config=config,
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

        terminal = Console(stderr=True)
        self._bar = Progress(console=terminal, transient=True, disable=not enabled)
        self._enabled = enabled and terminal.is_terminal
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


def _counts(summary: Summary) -> dict[str, Any]:
    from logkit.codemods.report import SITE_ACTIONS, coverage

    sites = [s for s in summary.sites if s.is_site]
    reaching, counted = coverage(sites)
    return {
        "sites": {a: sum(s.action == a for s in sites) for a in SITE_ACTIONS},
        "migrated": {
            kind: sum(s.shape == kind and s.action == "migrated" for s in summary.sites)
            for kind in ("logger", "hook")
        },
        "unsafe_available": sum(s.action == "adapted" and s.unsafe is not None for s in sites),
        "reach_logkit": {"sites": reaching, "of": counted},
    }


def _as_json(summary: Summary, mode: str) -> dict[str, Any]:
    counts = _counts(summary)
    result: dict[str, Any] = {
        "mode": mode,
        "files_scanned": summary.files_scanned,
        "files_parsed": summary.files_parsed,
        "files_changed": summary.changed,
        "counts": counts["sites"],
        "migrated": counts["migrated"],
        "unsafe_available": counts["unsafe_available"],
        "reach_logkit": counts["reach_logkit"],
        "config": summary.project.config.source if summary.project else None,
        "sites": [s.as_dict() for s in summary.sites],
        "errors": [{"path": o.path, "error": o.error} for o in summary.errors],
    }
    if mode == "diff":
        result["diffs"] = {o.path: o.diff for o in summary.outcomes if o.diff}
    return result


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


_COLOUR = {
    "routed": "green",
    "converted": "green",
    "adapted": "cyan",
    "migrated": "magenta",
    "left": "yellow",
}


def _print_report(summary: Summary, mode: str, *, to_stderr: bool) -> None:
    """One line per site, ``path:line: codemod action [via X]: reason`` (greppable, like ruff),
    then the totals."""
    from logkit.codemods.report import LOGGED_SHAPES

    for site in summary.sites:
        line = site.line_text()
        styled = typer.style(site.action, fg=_COLOUR[site.action])
        typer.echo(line.replace(f" {site.action}", f" {styled}", 1), err=to_stderr)
    for outcome in summary.errors:
        typer.echo(f"{outcome.path}: {typer.style('error', fg='red')}: {outcome.error}", err=True)
    counts = _counts(summary)
    sites, migrated, reach = counts["sites"], counts["migrated"], counts["reach_logkit"]
    verb = {"write": "changed", "diff": "would change", "check": "would change"}[mode]
    share = f" ({100 * reach['sites'] / reach['of']:.0f}%)" if reach["of"] else ""
    not_logging = sum(
        not site.logs for site in summary.sites if site.is_site and site.shape in LOGGED_SHAPES
    )
    lines = [
        f"{summary.files_scanned} files scanned, {summary.files_parsed} parsed, "
        f"{len(summary.changed)} {verb}"
        + (f", {summary.files_tests} test files left as they are" if summary.files_tests else "")
        + (f"; {len(summary.errors)} files with errors" if summary.errors else ""),
        f"migrated: {_plural(migrated['logger'], 'logger implementation')}, "
        f"{_plural(migrated['hook'], 'hook default')}; sites: {sites['routed']} routed, "
        f"{sites['converted']} converted, {sites['adapted']} adapted, {sites['left']} left alone",
        f"{reach['sites']} of {reach['of']} DatasetEvent/ModelCallLog/EventLogEntry logging "
        f"sites reach logkit{share}"
        + (
            f" ({not_logging} constructions that log nothing today not counted)"
            if not_logging
            else ""
        ),
    ]
    if counts["unsafe_available"]:
        lines.append(
            f"{_plural(counts['unsafe_available'], 'more rewrite')} with --unsafe "
            "(marked [--unsafe would convert it: ...])"
        )
    for text in lines:
        typer.echo(text, err=to_stderr)
