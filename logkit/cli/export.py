"""``logkit export otlp``: re-send a stored run to an OpenTelemetry backend (backfill)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from logkit.cli.common import (
    USAGE,
    ConfigOption,
    JsonOption,
    cli_command,
    fail,
    group_help,
    optional_tenant,
    print_json,
    reading,
)

_EXAMPLE = "logkit export otlp --run run_0192 --url http://127.0.0.1:6006"
app = typer.Typer(
    help=group_help(
        "Send stored runs to other systems (OTLP: any OpenTelemetry collector or backend).",
        [_EXAMPLE],
    ),
    no_args_is_help=True,
)

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="OTEL_EXPORTER_OTLP_ENDPOINT",
        help="OTLP/HTTP base URL (/v1/traces, /v1/logs appended); default: \\[export] otlp.",
        show_default=False,
    ),
]


@app.command("otlp")
@cli_command(
    examples=[
        _EXAMPLE,
        "logkit export otlp --run run_0192 --tenant t_acme --logs --json",
    ],
    exits={
        0: "the run was sent",
        1: "the backend did not take the run",
        2: USAGE,
        3: "the timeline store or the OTLP backend cannot be reached",
    },
)
def otlp(  # noqa: PLR0917 - Typer reads options from the signature
    run: Annotated[str, typer.Option("--run", help="The run id to send.")],
    tenant: Annotated[
        str | None,
        optional_tenant("Tenant id (found from the run on SQLite when omitted)."),
    ] = None,
    url: UrlOption = None,
    logs: Annotated[
        bool, typer.Option("--logs", help="Also send every event as an OTLP log record.")
    ] = False,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Send a stored run as OTLP traces (its flows, steps and calls as spans, with the ids
    the events carry: sending twice gives the same trace), read back from the timeline store.

    Headers (API keys) come from OTEL_EXPORTER_OTLP_HEADERS.
    """
    import logkit
    from logkit.export.otlp import send_events

    runtime = logkit.configure(config)
    settings = runtime.settings
    export = _export_config(settings.export, url, logs)
    tenant = tenant or _tenant_of(runtime, run)
    with reading("the run from the timeline"):
        events = logkit.run_events(tenant, run)
    if not events:
        fail(f"no events for run {run} of tenant {tenant}", kind="not_found")
    report = send_events(events, export, settings.service_scope())
    summary = {
        "run": run,
        "url": report.url,
        "events": report.events,
        "spans": report.spans,
        "logs": report.logs,
        "unfinished": report.unfinished,
    }
    if json_output:
        print_json(summary)
        return
    unfinished = f" ({report.unfinished} never ended: sent as open)" if report.unfinished else ""
    typer.echo(
        f"run {run}: {report.spans} spans{unfinished}"
        + (f" and {report.logs} log records" if "logs" in export.signals else "")
        + f" from {report.events} events sent to {report.url}"
    )


def _tenant_of(runtime: Any, run: str) -> str:
    from logkit.sinks.protocols import Role

    finder = getattr(runtime.stores[Role.TIMELINE], "tenant_of_run", None)
    tenant = finder(run) if finder is not None else None
    if tenant is None:
        fail(f"run {run} not found; pass --tenant (events are stored per tenant)", kind="not_found")
    return str(tenant)


def _export_config(configured: Any, url: str | None, logs: bool) -> Any:
    """``[export]`` with ``--url`` and ``--logs`` over it, validated (exit 2 if bad)."""
    from pydantic import ValidationError

    from logkit.config import ExportConfig

    data = configured.model_dump()
    if url:
        data["otlp"] = url
    if logs and "logs" not in data["signals"]:
        data["signals"] = [*data["signals"], "logs"]
    try:
        return ExportConfig.model_validate(data)
    except ValidationError as exc:
        problem = exc.errors(include_url=False, include_input=False)[0]
        fail(f"--url: {problem['msg'].removeprefix('Value error, ')}")
