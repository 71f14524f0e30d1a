"""``logkit demo``: run a small agent story and show the canonical events it produced."""

from __future__ import annotations

import io
import logging
from typing import Annotated, Any

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
    examples=[
        "logkit demo",
        "logkit demo --json",
        "logkit demo --config logkit.toml",
        "logkit demo --otlp http://127.0.0.1:6006",
    ],
    exits={0: "the run was stored and told", 2: USAGE, 3: UNAVAILABLE},
)
def demo(
    config: ConfigOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the run's story as JSON instead of a tree.")
    ] = False,
    otlp: Annotated[
        str | None,
        typer.Option(
            "--otlp",
            help="Also send the run as OTLP traces to this base URL (e.g. Phoenix's "
            "http://127.0.0.1:6006), to see it as a trace in the backend's UI.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a realistic little agent run, store it durably, read it back and tell its story."""
    import logkit
    from logkit.cli.timeline import print_story
    from logkit.demo import DEMO_SCOPE, run_demo
    from logkit.story import build_story

    runtime = logkit.configure(config, **_export_override(config, otlp))
    log_lines = io.StringIO()
    handler = logkit.configure_logging(stream=log_lines, logger=logging.getLogger("logkit.demo"))
    try:
        run_id = run_demo()
    finally:
        logging.getLogger("logkit.demo").removeHandler(handler)
    if not logkit.flush(30):
        what = "the sinks or the OTLP export" if otlp else "the sinks"
        fail(f"{what} did not drain within 30 s", kind="unavailable")
    tenant = DEMO_SCOPE["tenant_id"]
    with reading("the run back"):
        events = logkit.run_events(tenant, run_id)
        story = build_story(run_id, events)
    trace_id = next((e.trace_id for e in events if e.trace_id), None)
    if json_output:
        print_json({**story, "trace_id": trace_id} if otlp else story)
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
    if otlp:
        console.print(
            f"OTLP trace:         {trace_id} sent to {otlp} (in Phoenix: Projects -> default)",
            soft_wrap=True,
        )
    else:
        console.print(
            f"As an OTLP trace:   logkit export otlp --run {run_id} --url http://127.0.0.1:6006",
            soft_wrap=True,
        )
    user = DEMO_SCOPE["user_id"]
    console.print(
        f"A subject's data:   logkit dsar export --tenant {tenant} --user {user} "
        f"--out {user}.jsonl",
        soft_wrap=True,
    )


def _export_override(config: str | None, url: str | None) -> dict[str, Any]:
    """``--otlp URL`` over the configuration's own ``[export]`` table."""
    if url is None:
        return {}
    from logkit.config import load_settings

    export = load_settings(config).export.model_dump()
    return {"export": {**export, "otlp": url}}
