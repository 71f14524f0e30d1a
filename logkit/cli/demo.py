"""``logkit demo``: run a small agent story and show the canonical events it produced."""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from typing import Annotated

import typer

from logkit.cli.common import EXIT_PROBLEM, ConfigOption, fail
from logkit.sinks.protocols import Role


def demo(
    config: ConfigOption = None,
    json_lines: Annotated[
        bool, typer.Option("--json", help="Print each event as one JSON line instead of a table.")
    ] = False,
) -> None:
    """Emit a realistic little agent run, store it durably, read it back and print it."""
    from rich.console import Console
    from rich.table import Table

    import logkit
    from logkit.demo import run_demo
    from logkit.errors import ConfigError, LogkitError

    try:
        runtime = logkit.configure(config)
    except ConfigError as exc:
        fail(str(exc))
    log_lines = io.StringIO()
    handler = logkit.configure_logging(stream=log_lines, logger=logging.getLogger("logkit.demo"))
    try:
        emitted = run_demo()
    finally:
        logging.getLogger("logkit.demo").removeHandler(handler)
    if not logkit.flush(30):
        fail("the sinks did not drain within 30 s", EXIT_PROBLEM)
    try:
        events = logkit.run_events(emitted[0].tenant_id, emitted[0].run_id or "")
    except LogkitError as exc:
        fail(f"could not read the run back: {exc}", EXIT_PROBLEM)
    if json_lines:
        for event in events:
            typer.echo(event.model_dump_json(exclude_none=True))
        return
    console = Console()
    where = runtime.backends[runtime.uris[Role.TIMELINE]].describe()
    table = Table(title=f"run {events[0].run_id}: {len(events)} events, read back from {where}")
    for column in ("ts", "type", "class", "severity", "step", "payload"):
        table.add_column(column, overflow="fold")
    for event in events:
        table.add_row(
            event.ts.strftime("%H:%M:%S.%f")[:-3],
            event.event_type.value,
            event.storage_class.value,
            event.severity.value,
            event.step_id or "",
            _short(event.payload),
        )
    console.print(table)
    console.print("[bold]developer log line[/bold] (Cloud Logging JSON):")
    console.print_json(log_lines.getvalue().splitlines()[0])


def _short(payload: Mapping[str, object], limit: int = 70) -> str:
    text = ", ".join(f"{k}={v}" for k, v in payload.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"
