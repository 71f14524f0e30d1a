"""Options and helpers every command shares: --config, --json, exit codes, error printing."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Annotated, Any, NoReturn

import typer

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2

ConfigOption = Annotated[
    str | None,
    typer.Option(
        "--config",
        envvar="LOGKIT_CONFIG",
        help="Path to logkit.toml (default: $LOGKIT_CONFIG, else built-in defaults).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one actionable line to stderr and exit (2: usage/config, 1: a problem found)."""
    typer.echo(f"logkit: {message}", err=True)
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def parse_time(value: str | None, option: str) -> dt.datetime | None:
    """An ISO date or date-time option; a bare date or naive time is taken as UTC (stored
    timestamps are UTC). A bad value exits 2 naming the option."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not an ISO date or datetime (e.g. 2025-06-01T00:00Z)")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
