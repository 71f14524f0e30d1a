"""``logkit check-sinks``: the deploy-pipeline gate for the configured stores."""

from __future__ import annotations

from typing import Annotated

import typer

from logkit.cli.common import EXIT_OK, EXIT_PROBLEM, ConfigOption, JsonOption, fail, print_json


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
    contract policy. Exit 0 when every line passes, 1 when one fails, 2 on a usage or config
    error.
    """
    from logkit.checks import check_sinks as run_checks
    from logkit.config import load_settings
    from logkit.errors import ConfigError

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        fail(str(exc))
    results = run_checks(settings, create=create, timeout=timeout)
    ok = all(r.ok for r in results)
    if json_output:
        print_json({"ok": ok, "env": settings.env.value, "checks": [r.as_dict() for r in results]})
    else:
        _print_table(settings.env.value, results)
    raise typer.Exit(EXIT_OK if ok else EXIT_PROBLEM)


def _print_table(env: str, results: list) -> None:  # type: ignore[type-arg]
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"logkit start-up checks ({env})")
    for column in ("check", "backend", "status", "latency", "problem"):
        table.add_column(column, overflow="fold")
    for r in results:
        status = "[green]ok[/green]" if r.ok else "[red]FAIL[/red]"
        latency = f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "-"
        detail = escape(r.problem or r.note or "")
        table.add_row(escape(r.check), escape(r.backend), status, latency, detail)
    Console().print(table)
