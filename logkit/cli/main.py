"""Assembles the command groups into the ``logkit`` Typer app."""

from __future__ import annotations

import typer

from logkit.cli import (
    audit,
    audit_mirror,
    codemod,
    demo,
    dsar,
    retention,
    serve,
    sinks,
    spool,
    timeline,
    usage,
)

app = typer.Typer(
    name="logkit",
    help="logkit: canonical events, audit chain, sinks and privacy tooling.",
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


@app.command("version")
def version() -> None:
    """Print logkit's version and the envelope schema version."""
    from logkit import SCHEMA_VERSION, __version__

    typer.echo(f"logkit {__version__} (schema {SCHEMA_VERSION})")


def main() -> None:
    app()
