"""``logkit spool show | dead-letters | replay``: what waits for a backend, what was set aside."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from logkit.cli.common import (
    EXIT_OK,
    EXIT_PROBLEM,
    USAGE,
    ConfigOption,
    JsonOption,
    cell,
    cli_command,
    console,
    fail,
    group_help,
    print_json,
)

app = typer.Typer(
    help=group_help(
        "The local spool: events waiting for a backend, and dead letters set aside.",
        ["logkit spool show", "logkit spool replay --dead-letters"],
    ),
    no_args_is_help=True,
)

SinkOption = Annotated[
    str | None, typer.Option("--sink", help="One sink only (URI#role, as `spool show` lists).")
]


def _dispatch_config(config: str | None) -> Any:
    from logkit.config import load_settings

    return load_settings(config).dispatch


@app.command("show")
@cli_command(
    examples=["logkit spool show", "logkit spool show --config deploy/prod/logkit.toml --json"],
    exits={
        0: "nothing was set aside",
        1: "dead letters or unusable spool files need a look",
        2: USAGE,
    },
)
def show(config: ConfigOption = None, json_output: JsonOption = False) -> None:
    """Events waiting per sink, dead letters, and spool files moved aside as unusable."""
    from logkit import spooladmin

    files = spooladmin.status(_dispatch_config(config))
    problem = any(f.dead or f.broken or f.error for f in files)
    if json_output:
        print_json({"ok": not problem, "files": [f.as_dict() for f in files]})
    else:
        _print_status(files)
    raise typer.Exit(EXIT_PROBLEM if problem else EXIT_OK)


def _print_status(files: list[Any]) -> None:
    from rich.table import Table

    out = console()
    if not files:
        out.print("no spool file: nothing waits for a backend")
        return
    table = Table(title="logkit spool")
    for column in ("file", "sink", "waiting", "dead letters", "note"):
        table.add_column(column)
    for f in files:
        note = "held by a running process" if f.held else (f.error or "")
        rows = list(f.waiting.items()) or [("-", 0)]
        for index, (sink, waiting) in enumerate(rows):
            dead = str(f.dead) if index == 0 else ""
            table.add_row(cell(f.path), cell(sink), str(waiting), dead, cell(note))
        for broken in f.broken:
            table.add_row(cell(broken), "-", "-", "-", cell("unusable, moved aside", "red"))
    out.print(table)


@app.command("dead-letters")
@cli_command(
    examples=[
        "logkit spool dead-letters --limit 20",
        "logkit spool dead-letters --sink 'sqlite:///.logkit/logkit.db#timeline' --body --json",
    ],
    exits={0: "the list (also when empty)", 2: USAGE},
)
def dead_letters(  # options are keyword-only: Typer passes them by name
    *,
    sink: SinkOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
    body: Annotated[
        bool, typer.Option("--body", help="Also print each stored body (it is event data).")
    ] = False,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """List events set aside: a backend refused them, or they could not be read back.

    `logkit spool replay --dead-letters` tries them again once the cause is fixed.
    """
    from logkit import spooladmin

    letters = spooladmin.dead_letters(_dispatch_config(config), sink=sink, limit=limit)
    if json_output:
        print_json({"dead_letters": [_letter(path, d, body) for path, d in letters]})
        return
    from rich.table import Table

    table = Table(title=f"logkit dead letters ({len(letters)})")
    for column in ("id", "sink", "event id", "failed at", "reason", *(["body"] if body else [])):
        table.add_column(column)
    for _, d in letters:
        cells = [str(d.id), d.sink, d.event_id or "-", _time(d.failed_at), d.reason]
        table.add_row(*map(cell, cells + ([d.body] if body else [])))
    console().print(table)


def _letter(path: str, letter: Any, body: bool) -> dict[str, Any]:
    shown = {
        "file": path,
        "id": letter.id,
        "sink": letter.sink,
        "event_id": letter.event_id,
        "failed_at": _time(letter.failed_at),
        "reason": letter.reason,
    }
    if body:
        shown["body"] = letter.body
        shown["raw_hex"] = letter.raw.hex() if letter.raw is not None else None
    return shown


def _time(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat().replace("+00:00", "Z")


@app.command("replay")
@cli_command(
    examples=["logkit spool replay", "logkit spool replay --dead-letters --id 12 --id 13 --json"],
    exits={
        0: "nothing is left waiting",
        1: "a backend is still unreachable, or refused events again (back among the dead letters)",
        2: USAGE,
    },
)
def replay(  # options are keyword-only: Typer passes them by name
    *,
    dead: Annotated[
        bool,
        typer.Option("--dead-letters", help="First move the dead letters back to be retried."),
    ] = False,
    ids: Annotated[
        list[int] | None, typer.Option("--id", help="Only these dead letters (repeatable).")
    ] = None,
    sink: SinkOption = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds allowed per sink.")
    ] = 60.0,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Write what waits in the spool to its backends now."""
    from logkit import spooladmin

    if ids and not dead:
        fail("--id selects dead letters: use it with --dead-letters")
    outcomes = spooladmin.replay(
        _dispatch_config(config), requeue=dead, ids=ids or None, sink=sink, timeout=timeout
    )
    ok = all(not o.waiting and not o.error and not o.dead for o in outcomes)
    if json_output:
        print_json({"ok": ok, "sinks": [o.as_dict() for o in outcomes]})
    elif not outcomes:
        typer.echo("nothing waits in the spool")
    else:
        for o in outcomes:
            line = f"{o.sink}: {o.replayed} replayed, {o.dead} dead, {o.waiting} still waiting"
            typer.echo(line + (f" ({o.error})" if o.error else ""))
    raise typer.Exit(EXIT_OK if ok else EXIT_PROBLEM)
