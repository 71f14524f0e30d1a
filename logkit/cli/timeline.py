"""``logkit timeline show|list``: the story of a run, and the recent runs of a tenant."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from logkit.cli.common import EXIT_OK, EXIT_PROBLEM, ConfigOption, JsonOption, fail, print_json

app = typer.Typer(
    help="Runs as stories: a tree of flows, steps, calls, decisions and pulses.",
    no_args_is_help=True,
)

_STATUS_STYLE = {"ok": "green", "failed": "bold red", "running": "yellow", "unknown": "dim"}


def _configure(config: str | None) -> Any:
    import logkit
    from logkit.errors import ConfigError

    try:
        return logkit.configure(config)
    except ConfigError as exc:
        fail(str(exc))


@app.command("show")
def show(
    run: Annotated[str, typer.Option("--run", help="The run id.")],
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Tenant id (found from the run on SQLite when omitted)."),
    ] = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the story of one run: flows, steps, tool/model calls, decisions, state pulses."""
    import logkit
    from logkit.errors import LogkitError
    from logkit.sinks.protocols import Role
    from logkit.story import build_story

    runtime = _configure(config)
    store = runtime.stores[Role.TIMELINE]
    if tenant is None:
        finder = getattr(store, "tenant_of_run", None)
        tenant = finder(run) if finder is not None else None
        if tenant is None:
            fail(
                f"run {run} not found; pass --tenant (events are stored per tenant)",
                EXIT_PROBLEM if finder is not None else 2,
            )
    try:
        events = logkit.run_events(tenant, run)
    except LogkitError as exc:
        fail(f"cannot read the timeline: {exc}", EXIT_PROBLEM)
    if not events:
        fail(f"no events for run {run} of tenant {tenant}", EXIT_PROBLEM)
    story = build_story(run, events)
    if json_output:
        print_json(story)
    else:
        print_story(story)
    raise typer.Exit(EXIT_OK)


def print_story(story: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.tree import Tree

    tree = Tree(_label(story))
    _grow(tree, story)
    Console().print(tree)


def _grow(tree: Any, node: dict[str, Any]) -> None:
    for child in node.get("children", []):
        branch = tree.add(_label(child))
        _grow(branch, child)


def _label(node: dict[str, Any]) -> str:
    return "  ".join([_what(node), *_details(node)])


def _what(node: dict[str, Any]) -> str:
    from rich.markup import escape

    kind = node["type"]
    if kind == "run":
        return f"[bold]run {escape(node['run_id'])}[/bold]"
    if kind in ("flow", "step"):
        what = f"{kind} [bold]{escape(str(node.get('name')))}[/bold]"
        if node.get("kind"):
            what += f" ({escape(str(node['kind']))})"
        if node.get("attempt"):
            what += f" attempt {node['attempt']}"
        return what
    if kind in ("tool_call", "model_call"):
        return f"{kind.replace('_', ' ')} {escape(str(node.get('name')))}"
    if kind == "decision":
        reason = f": {escape(str(node['reason']))}" if node.get("reason") else ""
        return f"decision → [bold]{escape(str(node.get('choice')))}[/bold]{reason}"
    if kind == "pulse":
        return f"pulse {escape(str(node.get('key')))} #{node.get('seq')} ({node['mode']})"
    return f"{escape(kind)} {escape(str(node.get('summary', '')))}"


def _details(node: dict[str, Any]) -> list[str]:
    from rich.markup import escape

    parts: list[str] = []
    status = node.get("status")
    if status:
        style = _STATUS_STYLE.get(status, "")
        parts.append(f"[{style}]{status}[/{style}]" if style else status)
    parts += [f"{node[key]:.0f} ms" for key in ("duration_ms", "latency_ms") if key in node]
    tokens = node.get("total_tokens") or node.get("tokens")
    if tokens:
        parts.append(f"{tokens['input']}→{tokens['output']} tok")
    cost = node.get("total_cost") or node.get("cost")
    if cost:
        parts.append(", ".join(f"{amount} {currency}" for currency, amount in cost.items()))
    if node.get("error"):
        error = node["error"]
        message = f": {escape(str(error['message']))}" if error.get("message") else ""
        parts.append(f"[bold red]{escape(str(error.get('type')))}[/bold red]{message}")
    return parts


@app.command("list")
def list_runs(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id, e.g. t_acme.")],
    since: Annotated[
        str | None, typer.Option("--since", help="ISO date/time (UTC if no zone); default 24 h.")
    ] = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """List a tenant's recent runs with status, duration and cost."""
    import logkit
    from logkit.errors import LogkitError

    try:
        start = _parse_since(since)
    except ValueError:
        fail(f"--since must be an ISO date or date-time, not {since!r}")
    _configure(config)
    types = ["flow_started", "flow_ended", "flow_failed", "usage_recorded"]
    try:
        events = list(logkit.iter_events(tenant, types=types, since=start))
    except LogkitError as exc:
        fail(f"cannot read the timeline: {exc}", EXIT_PROBLEM)
    runs = summarise_runs(events)
    if json_output:
        print_json({"tenant": tenant, "since": start.isoformat(), "runs": runs})
        return
    _print_runs(tenant, runs)


def _parse_since(since: str | None) -> dt.datetime:
    if since is None:
        return dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    value = dt.datetime.fromisoformat(since)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def summarise_runs(events: list[Any]) -> list[dict[str, Any]]:
    """One row per run: first flow name, status, start, duration and summed cost."""
    from decimal import Decimal

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
            },
        )
        p = event.payload
        if event.event_type.value == "flow_started" and row["started"] is None:
            row["name"], row["started"] = p.get("name"), event.ts.isoformat()
        elif event.event_type.value in ("flow_ended", "flow_failed"):
            row["status"] = p.get("status", "ok")
            row["duration_ms"] = p.get("duration_ms")
        elif event.event_type.value == "usage_recorded" and p.get("cost") is not None:
            currency = str(p.get("currency") or "USD")
            row["cost"][currency] = str(
                Decimal(row["cost"].get(currency, "0")) + Decimal(str(p["cost"]))
            )
    return sorted(runs.values(), key=lambda r: r["started"] or "", reverse=True)


def _print_runs(tenant: str, runs: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    if not runs:
        typer.echo(f"no runs for tenant {tenant} in this period")
        return
    table = Table(title=f"runs of {tenant}")
    for column in ("run", "flow", "status", "started", "duration", "cost"):
        table.add_column(column, overflow="fold")
    for r in runs:
        style = _STATUS_STYLE.get(r["status"], "")
        duration = f"{r['duration_ms']:.0f} ms" if r["duration_ms"] is not None else "-"
        cost = ", ".join(f"{a} {c}" for c, a in r["cost"].items()) or "-"
        table.add_row(
            r["run_id"],
            str(r["name"] or "-"),
            f"[{style}]{r['status']}[/{style}]",
            r["started"] or "-",
            duration,
            cost,
        )
    Console().print(table)
