"""``logkit usage report``: token and cost totals of a tenant's ``usage_recorded`` events."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from logkit.cli.common import (
    EXIT_OK,
    EXIT_PROBLEM,
    ConfigOption,
    JsonOption,
    fail,
    parse_time,
    print_json,
)

app = typer.Typer(help="Usage and cost: sums of usage_recorded events.", no_args_is_help=True)

TenantOption = Annotated[str, typer.Option("--tenant", help="Tenant id, e.g. t_acme.")]
SinceOption = Annotated[
    str | None,
    typer.Option("--since", help="ISO date or datetime, inclusive (naive means UTC)."),
]
UntilOption = Annotated[
    str | None,
    typer.Option("--until", help="ISO date or datetime, exclusive (naive means UTC)."),
]
ByOption = Annotated[str, typer.Option("--by", help="Group by model, run or day (UTC).")]


@app.command("report")
def report(
    *,
    tenant: TenantOption,
    since: SinceOption = None,
    until: UntilOption = None,
    by: ByOption = "model",
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Sum tokens and exact cost per group; unpriced events are counted apart, never as 0.

    Exit 0 (also when nothing matches), 1 when the cost store cannot be read, 2 on usage or
    config errors.
    """
    import logkit
    from logkit.errors import ConfigError, LogkitError
    from logkit.usage import GROUPINGS, summarize

    if by not in GROUPINGS:
        fail(f"--by must be one of {', '.join(GROUPINGS)}, not {by!r}")
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    if start is not None and end is not None and start >= end:
        fail("--since must be before --until")
    try:
        logkit.configure(config)
        events = logkit.iter_events(
            tenant, types=["usage_recorded"], role="cost", since=start, until=end
        )
        groups, total = summarize(events, by)
    except ConfigError as exc:
        fail(str(exc))
    except LogkitError as exc:
        fail(f"cannot read the cost store: {exc}", EXIT_PROBLEM)
    result: dict[str, Any] = {
        "tenant": tenant,
        "by": by,
        "since": start.isoformat() if start else None,
        "until": end.isoformat() if end else None,
        "empty": total.events == 0,
        "groups": [{by: key, **totals.as_dict()} for key, totals in groups.items()],
        "total": total.as_dict(),
    }
    if total.events == 0:
        result["message"] = _nothing_message(tenant, start, end)
    if json_output:
        print_json(result)
    elif total.events == 0:
        typer.echo(result["message"])
    else:
        _print_table(result)
    raise typer.Exit(EXIT_OK)


def _nothing_message(tenant: str, start: dt.datetime | None, end: dt.datetime | None) -> str:
    window = "".join(
        [f" since {start.isoformat()}" if start else "", f" until {end.isoformat()}" if end else ""]
    )
    return f"no usage events for tenant {tenant}{window}"


def _cost_text(cost: dict[str, str]) -> str:
    return ", ".join(f"{amount} {currency}" for currency, amount in cost.items()) or "-"


def _print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    by = result["by"]
    table = Table(title=f"usage of {result['tenant']} by {by}")
    for column in (by, "events", "unpriced", "input tok", "cached tok", "output tok", "cost"):
        table.add_column(column, justify="left" if column in (by, "cost") else "right")
    rows = [(g[by], g) for g in result["groups"]] + [("total", result["total"])]
    for index, (key, totals) in enumerate(rows):
        table.add_row(
            # Keys are data (model names, run ids): escaped so rich reads no markup in them.
            f"[bold]{key}[/bold]" if index == len(rows) - 1 else escape(str(key)),
            str(totals["events"]),
            str(totals["unpriced_events"]),
            str(totals["input_tokens"]),
            str(totals["cached_tokens"]),
            str(totals["output_tokens"]),
            _cost_text(totals["cost"]),
            end_section=index == len(rows) - 2,
        )
    Console().print(table)
    if result["total"]["unpriced_events"]:
        Console(stderr=True).print(
            "unpriced events have no entry in the price table; their cost is not included"
        )
