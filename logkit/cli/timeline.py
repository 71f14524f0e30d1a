"""``logkit timeline show|list``: the story of a run, and the recent runs of a tenant.

What is shown comes from stored events: every string is printed as text (never rich markup),
and a value of an unexpected type (a cost of "n/a", a status that is a number) is shown as it
is, never a crash.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import typer

from logkit.cli.common import (
    EXIT_OK,
    TIME_HELP,
    UNAVAILABLE,
    USAGE,
    ConfigOption,
    JsonOption,
    TenantOption,
    UntilOption,
    cell,
    cli_command,
    console,
    cost_text,
    fail,
    group_help,
    optional_tenant,
    parse_window,
    print_json,
    reading,
)

if TYPE_CHECKING:
    from rich.text import Text

app = typer.Typer(
    help=group_help(
        "Runs as stories: a tree of flows, steps, calls, decisions and pulses.",
        [
            "logkit timeline list --tenant t_acme --since 2h --status failed",
            "logkit timeline show --run run_01J9Z --tenant t_acme",
        ],
    ),
    no_args_is_help=True,
)

_STATUS_STYLE = {"ok": "green", "failed": "bold red", "running": "yellow", "unknown": "dim"}
DEFAULT_LIMIT = 50


@app.command("show")
@cli_command(
    examples=[
        "logkit timeline show --run run_01J9Z --tenant t_acme",
        "logkit timeline show --run run_01J9Z --json",
    ],
    exits={0: "the story was printed", 2: USAGE + " (an unknown run)", 3: UNAVAILABLE},
)
def show(
    run: Annotated[str, typer.Option("--run", help="The run id.")],
    tenant: Annotated[
        str | None,
        optional_tenant("Tenant id (found from the run on SQLite when omitted)."),
    ] = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the story of one run: flows, steps, tool/model calls, decisions, state pulses."""
    import logkit
    from logkit.sinks.protocols import Role
    from logkit.story import build_story

    runtime = logkit.configure(config)
    if tenant is None:
        finder = getattr(runtime.stores[Role.TIMELINE], "tenant_of_run", None)
        if finder is None:
            fail("pass --tenant: this timeline store finds runs per tenant only")
        with reading("the timeline store"):
            tenant = finder(run)
        if tenant is None:
            fail(f"run {run} not found; check the id, or pass --tenant", kind="not_found")
    with reading("the timeline store"):
        events = logkit.run_events(tenant, run)
    if not events:
        fail(f"no events for run {run} of tenant {tenant}", kind="not_found")
    story = build_story(run, events)
    if json_output:
        print_json(story)
    else:
        print_story(story)
    raise typer.Exit(EXIT_OK)


def print_story(story: dict[str, Any]) -> None:
    from rich.tree import Tree

    tree = Tree(_label(story))
    _grow(tree, story)
    console().print(tree)


def _grow(tree: Any, node: dict[str, Any]) -> None:
    for child in node.get("children", []):
        branch = tree.add(_label(child))
        _grow(branch, child)


def _label(node: dict[str, Any]) -> Text:
    from rich.text import Text

    parts = [*_what(node), *_details(node)]
    label = Text()
    for index, part in enumerate(parts):
        if index:
            label.append("  ")
        label.append_text(part)
    return label


def _what(node: dict[str, Any]) -> list[Text]:
    from rich.text import Text

    kind = node["type"]
    if kind == "run":
        return [Text.assemble("run ", (str(node["run_id"]), "bold"))]
    if kind in ("flow", "step"):
        what = Text.assemble(f"{kind} ", (str(node.get("name")), "bold"))
        if node.get("kind"):
            what.append(f" ({node['kind']})")
        if node.get("attempt"):
            what.append(f" attempt {node['attempt']}")
        return [what]
    if kind in ("tool_call", "model_call"):
        return [Text(f"{kind.replace('_', ' ')} {node.get('name')}")]
    if kind == "decision":
        reason = f": {node['reason']}" if node.get("reason") else ""
        return [Text.assemble("decision → ", (str(node.get("choice")), "bold"), reason)]
    if kind == "pulse":
        return [Text(f"pulse {node.get('key')} #{node.get('seq')} ({node['mode']})")]
    return [Text(f"{kind} {node.get('summary', '')}")]


def _details(node: dict[str, Any]) -> list[Text]:
    from rich.text import Text

    from logkit.story import number

    parts: list[Text] = []
    status = node.get("status")
    if status:
        parts.append(cell(status, _STATUS_STYLE.get(str(status), "")))
    for key in ("duration_ms", "latency_ms"):
        if key in node:
            value = number(node[key])
            parts.append(Text(f"{value:.0f} ms" if value is not None else f"{node[key]} ms"))
    tokens = node.get("total_tokens") or node.get("tokens")
    if tokens and any(tokens.values()):
        parts.append(Text(f"{tokens['input']}→{tokens['output']} tok"))
    cost = node.get("total_cost") or node.get("cost")
    if cost:
        parts.append(Text(cost_text(cost)))
    unpriced = node.get("total_unpriced") or node.get("unpriced")
    if unpriced:
        parts.append(Text(f"{unpriced} unpriced", style="yellow"))
    error = node.get("error")
    if error:
        message = f": {error['message']}" if error.get("message") else ""
        parts.append(Text.assemble((str(error.get("type")), "bold red"), message))
    return parts


@app.command("list")
@cli_command(
    examples=[
        "logkit timeline list --tenant t_acme",
        "logkit timeline list --tenant t_acme --since yesterday --until today --status failed",
        "logkit timeline list --tenant t_acme --since 2h --limit 10 --json",
    ],
    exits={0: "the list (also when no run matches)", 2: USAGE, 3: UNAVAILABLE},
)
def list_runs(
    *,
    tenant: TenantOption,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help=f"From (inclusive; default the day before --until): {TIME_HELP}."
        ),
    ] = None,
    until: UntilOption = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status", help="Only runs with this status: ok, failed, running (repeatable)."
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="At most this many runs, the newest first.")
    ] = DEFAULT_LIMIT,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """List a tenant's recent runs with status, duration and cost, the newest first."""
    import logkit

    start, end = parse_window(since, until)
    if start is None:  # the day before --until (or now)
        start = (end or dt.datetime.now(dt.UTC)) - dt.timedelta(days=1)
    logkit.configure(config)
    types = ["flow_started", "flow_ended", "flow_failed", "usage_recorded"]
    with reading("the timeline store"):
        events = list(logkit.iter_events(tenant, types=types, since=start, until=end))
    runs = [r for r in summarise_runs(events) if not status or r["status"] in status]
    shown = runs[:limit]
    if json_output:
        print_json(
            {
                "tenant": tenant,
                "since": start.isoformat() if start else None,
                "until": end.isoformat() if end else None,
                "status": status or None,
                "limit": limit,
                "more": len(runs) > limit,
                "runs": shown,
            }
        )
        return
    _print_runs(tenant, shown, len(runs) - len(shown))


def summarise_runs(events: list[Any]) -> list[dict[str, Any]]:
    """One row per run: first flow name, status, start, duration, summed cost, unpriced."""
    from decimal import Decimal

    from logkit.story import status_text
    from logkit.usage import cost_of

    runs: dict[str, dict[str, Any]] = {}
    for event in events:
        if not event.run_id:
            continue
        row = runs.setdefault(
            event.run_id,
            {
                "run_id": event.run_id,
                "name": None,
                "status": "running",
                "started": None,
                "duration_ms": None,
                "cost": {},
                "unpriced": 0,
            },
        )
        p = event.payload
        if event.event_type.value == "flow_started" and row["started"] is None:
            row["name"], row["started"] = p.get("name"), event.ts.isoformat()
        elif event.event_type.value in ("flow_ended", "flow_failed"):
            row["status"] = status_text(p.get("status"), "ok")
            row["duration_ms"] = p.get("duration_ms")
        elif event.event_type.value == "usage_recorded":
            cost = cost_of(p)
            if cost is None:
                row["unpriced"] += 1
                continue
            currency = str(p.get("currency") or "USD")
            row["cost"][currency] = str(Decimal(row["cost"].get(currency, "0")) + cost)
    return sorted(runs.values(), key=lambda r: r["started"] or "", reverse=True)


def _print_runs(tenant: str, runs: list[dict[str, Any]], more: int) -> None:
    from rich.table import Table

    from logkit.story import number

    if not runs:
        typer.echo(f"no runs for tenant {tenant} in this period")
        return
    table = Table(title=f"runs of {tenant}")
    for column in ("run", "flow", "status", "started", "duration", "cost"):
        table.add_column(column)
    for r in runs:
        duration = number(r["duration_ms"])
        cost = cost_text(r["cost"])
        if r["unpriced"]:
            cost += f" (+{r['unpriced']} unpriced)"
        table.add_row(
            cell(r["run_id"]),
            cell(r["name"]),
            cell(r["status"], _STATUS_STYLE.get(str(r["status"]), "")),
            cell(r["started"]),
            cell(f"{duration:.0f} ms" if duration is not None else r["duration_ms"]),
            cell(cost),
        )
    console().print(table)
    if more:
        typer.echo(f"{more} more run(s): raise --limit or narrow --since/--until", err=True)
