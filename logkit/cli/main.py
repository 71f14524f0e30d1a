"""Assembles the command groups into the ``logkit`` Typer app (under the CLI contract's root
group, :class:`logkit.cli.common.ContractGroup`, which maps every error to its exit code)."""

from __future__ import annotations

from typing import Annotated

import typer

from logkit.cli import (
    audit,
    audit_mirror,
    codemod,
    demo,
    dsar,
    export,
    retention,
    serve,
    sinks,
    spool,
    timeline,
    usage,
)
from logkit.cli.common import (
    EXIT_OK,
    UNAVAILABLE,
    USAGE,
    ContractGroup,
    JsonOption,
    cli_command,
    print_json,
)

app = typer.Typer(
    name="logkit",
    cls=ContractGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("demo")(demo.demo)
app.command("check-sinks")(sinks.check_sinks)
app.command("serve")(serve.serve)
audit.app.command("mirror")(audit_mirror.mirror)
app.add_typer(audit.app, name="audit")
app.add_typer(usage.app, name="usage")
app.add_typer(timeline.app, name="timeline")
app.add_typer(dsar.app, name="dsar")
app.add_typer(retention.app, name="retention")
app.add_typer(codemod.app, name="codemod")
app.add_typer(spool.app, name="spool")
app.add_typer(export.app, name="export")


def _versions() -> dict[str, str]:
    from logkit import SCHEMA_VERSION, __version__

    return {"logkit": __version__, "schema": SCHEMA_VERSION}


def _print_version(value: bool) -> None:
    if value:
        versions = _versions()
        typer.echo(f"logkit {versions['logkit']} (schema {versions['schema']})")
        raise typer.Exit(EXIT_OK)


@app.callback()
@cli_command(
    examples=[
        "logkit demo",
        "logkit timeline list --tenant t_acme --since 2h",
        "logkit audit verify --tenant t_acme --json",
        "logkit --version",
    ],
    exits={
        0: "ok",
        1: "a check failed or a problem was found",
        2: USAGE,
        3: UNAVAILABLE,
    },
)
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print logkit's version and the envelope schema version, then exit.",
        ),
    ] = False,
) -> None:
    """logkit: canonical events, audit chain, sinks and privacy tooling.

    Every command takes --config and --json (errors too, as {"error": {"kind", "message"}} on
    stdout); docs/cli.md lists the commands, the exit codes and the error kinds.
    """


@app.command("version")
@cli_command(
    examples=["logkit version", "logkit version --json"],
    exits={0: "always"},
)
def version(json_output: JsonOption = False) -> None:
    """Print logkit's version and the envelope schema version."""
    if json_output:
        print_json(_versions())
        return
    _print_version(True)


def main() -> None:
    app()
