"""Options and helpers every command shares: --config, --json, exit codes, error printing."""

from __future__ import annotations

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
