"""``logkit check-sinks``: the deploy-pipeline gate for the configured stores."""

from __future__ import annotations

from typing import Annotated

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
    print_json,
)


@cli_command(
    examples=[
        "logkit check-sinks --config deploy/prod/logkit.toml",
        "logkit check-sinks --config deploy/prod/logkit.toml --create --json",
    ],
    exits={
        0: "every line passes",
        1: "a line fails (an unreachable store is a failing line)",
        2: USAGE,
    },
)
def check_sinks(
    config: ConfigOption = None,
    json_output: JsonOption = False,
    create: Annotated[
        bool, typer.Option("--create", help="Create missing datasets and tables first.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds allowed per backend check.")
    ] = 10.0,
) -> None:
    """Check what start-up checks for the env, line by line, and round-trip a probe per store.

    Lines: each store role (durable outside dev, a probe written, read back, deleted), the
    live feed when [sinks] feed is set (a probe appended, read back, removed), the redaction
    key, the audit checkpoint keys, the sealed-payload key provider, the service scope and the
    contract policy.
    """
    from logkit.checks import check_sinks as run_checks
    from logkit.config import load_settings

    settings = load_settings(config)
    results = run_checks(settings, create=create, timeout=timeout)
    ok = all(r.ok for r in results)
    if json_output:
        print_json({"ok": ok, "env": settings.env.value, "checks": [r.as_dict() for r in results]})
    else:
        _print_table(settings.env.value, results)
    raise typer.Exit(EXIT_OK if ok else EXIT_PROBLEM)


def _print_table(env: str, results: list) -> None:  # type: ignore[type-arg]
    from rich.table import Table

    table = Table(title=f"logkit start-up checks ({env})")
    for column in ("check", "backend", "status", "latency", "problem"):
        table.add_column(column)
    for r in results:
        status = cell("ok", "green") if r.ok else cell("FAIL", "red")
        latency = f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "-"
        detail = cell(r.problem or r.note or "")
        table.add_row(cell(r.check), cell(r.backend), status, latency, detail)
    console().print(table)
