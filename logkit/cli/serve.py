"""``logkit serve``: the live stream (SSE at /events, WebSocket at /ws) under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from logkit.cli.common import (
    EXIT_PROBLEM,
    USAGE,
    ConfigOption,
    JsonOption,
    cli_command,
    fail,
    print_json,
)


@cli_command(
    examples=[
        "logkit serve",
        "logkit serve --host 0.0.0.0 --port 8080 --authorizer myapp.auth:principal_of",
        "logkit serve --config deploy/prod/logkit.toml --trust-headers --json",
    ],
    exits={
        0: "stopped (Ctrl-C or SIGTERM)",
        1: "the port cannot be listened on, or the server failed",
        2: USAGE + " (the stream extra is not installed, no authorizer outside dev)",
        3: "the timeline store cannot be reached",
    },
)
def serve(  # noqa: PLR0917 - Typer reads options from the signature
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=0, max=65535)] = 8765,
    authorizer: Annotated[
        str | None,
        typer.Option(
            help="package.module:callable mapping a connection to the Principal it may read "
            "(default: trust the X-Tenant-Id / X-Project-Id headers).",
            show_default=False,
        ),
    ] = None,
    trust_headers: Annotated[
        bool,
        typer.Option(
            "--trust-headers",
            help="Outside dev, accept the tenant/project headers as they come (behind a "
            "gateway that sets them); without it an --authorizer is required.",
        ),
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
    json_output: JsonOption = False,
) -> None:
    """Stream stored and live events over SSE and WebSocket, resumable by cursor."""
    try:
        import uvicorn

        from logkit.stream import create_app, load_authorizer
        from logkit.stream.app import stream_sources
    except ImportError as exc:
        fail(f"the stream needs its extra: pip install 'logkit[stream]' ({exc.name} is missing)")
    import logkit
    from logkit.envelope import Env
    from logkit.errors import ConfigError
    from logkit.sinks.protocols import Role

    try:
        runtime = logkit.configure(config)
        check = load_authorizer(authorizer) if authorizer else None
        stream_sources(runtime)
    except ConfigError as exc:
        fail(str(exc), kind="config")
    if check is None and runtime.settings.env is not Env.DEV and not trust_headers:
        fail(
            f"env is {runtime.settings.env.value}: pass --authorizer package.module:callable, "
            "or --trust-headers if a gateway in front sets X-Tenant-Id"
        )
    app = create_app(authorizer=check, config=runtime.settings.stream)
    source = runtime.uris[Role.TIMELINE]
    if runtime.feed is not None:
        source = f"the live feed ({runtime.feed.describe()}) over {runtime.describe(Role.TIMELINE)}"
    if json_output:  # where to connect, for a script that starts the server
        print_json(
            {
                "timeline": runtime.describe(Role.TIMELINE),
                "feed": runtime.feed.describe() if runtime.feed is not None else None,
                "sse": f"http://{host}:{port}/events",
                "ws": f"ws://{host}:{port}/ws",
            }
        )
    else:
        typer.echo(
            f"logkit: streaming {source} on http://{host}:{port}/events "
            f"(SSE) and ws://{host}:{port}/ws",
            err=True,
        )
    # uvicorn's own lines (access log included) as JSON through the gate, like the app's.
    from logkit.logrouting import uvicorn_log_config

    logkit.configure_logging(log_level.upper())
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level,
            log_config=uvicorn_log_config(),
            ws="websockets-sansio",
        )
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}", EXIT_PROBLEM)
