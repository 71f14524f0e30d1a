"""``logkit demo``: run a small agent story and show the canonical events it produced."""

from __future__ import annotations

import io
import logging
from typing import Annotated

import typer

from logkit.cli.common import (
    UNAVAILABLE,
    USAGE,
    ConfigOption,
    cli_command,
    fail,
    print_json,
    reading,
)
from logkit.sinks.protocols import Role


@cli_command(
    examples=["logkit demo", "logkit demo --json", "logkit demo --config logkit.toml"],
    exits={0: "the run was stored and told", 2: USAGE, 3: UNAVAILABLE},
)
def demo(
    config: ConfigOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the run's story as JSON instead of a tree.")
    ] = False,
) -> None:
    """Run a realistic little agent run, store it durably, read it back and tell its story."""
    import logkit
    from logkit.cli.timeline import print_story
    from logkit.demo import DEMO_SCOPE, run_demo
    from logkit.story import build_story

    runtime = logkit.configure(config)
    log_lines = io.StringIO()
    handler = logkit.configure_logging(stream=log_lines, logger=logging.getLogger("logkit.demo"))
    try:
        run_id = run_demo()
    finally:
        logging.getLogger("logkit.demo").removeHandler(handler)
    if not logkit.flush(30):
        fail("the sinks did not drain within 30 s", kind="unavailable")
    tenant = DEMO_SCOPE["tenant_id"]
    with reading("the run back"):
        story = build_story(run_id, logkit.run_events(tenant, run_id))
    if json_output:
        print_json(story)
        return
    from rich.console import Console

    console = Console()
    where = runtime.backends[runtime.uris[Role.TIMELINE]].describe()
    console.print(f"[bold]The story of run {run_id}[/bold], read back from {where}:")
    print_story(story)
    console.print("\n[bold]A developer log line[/bold] (Cloud Logging JSON, PII redacted):")
    console.print_json(log_lines.getvalue().splitlines()[0])
    console.print(
        f"\nSame tree as JSON:  logkit timeline show --run {run_id} --json", soft_wrap=True
    )
    console.print(f"Audit chains:       logkit audit verify --tenant {tenant}")
    console.print(
        f"Live stream:        logkit serve, then curl -N -H 'X-Tenant-Id: {tenant}' "
        f"'http://127.0.0.1:8765/events?run_id={run_id}'",
        soft_wrap=True,
    )
    user = DEMO_SCOPE["user_id"]
    console.print(
        f"A subject's data:   logkit dsar export --tenant {tenant} --user {user} "
        f"--out {user}.jsonl",
        soft_wrap=True,
    )
