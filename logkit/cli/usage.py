"""``logkit usage report|prices``: token and cost totals of a tenant's ``usage_recorded`` events,
and the price table with the rule that prices each model name."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from logkit.cli.common import (
    EXIT_OK,
    EXIT_PROBLEM,
    UNAVAILABLE,
    USAGE,
    ConfigOption,
    JsonOption,
    SinceOption,
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

app = typer.Typer(
    help=group_help(
        "Usage and cost: sums of usage_recorded events, and the price table.",
        [
            "logkit usage report --tenant t_acme --since 7d --by model",
            "logkit usage prices openai/gpt-4o-mini-2024-07-18",
        ],
    ),
    no_args_is_help=True,
)

ByOption = Annotated[
    str,
    typer.Option("--by", help="Group by model, run, day (UTC), app, project or user."),
]


@app.command("report")
@cli_command(
    examples=[
        "logkit usage report --tenant t_acme --since 7d",
        "logkit usage report --tenant t_acme --since yesterday --until today --by app --json",
        "logkit usage report --tenant t_acme --by user --since 2025-06-01",
    ],
    exits={0: "the report (also when nothing matches)", 2: USAGE, 3: UNAVAILABLE},
)
def report(
    *,
    tenant: TenantOption,
    since: SinceOption = None,
    until: UntilOption = None,
    by: ByOption = "model",
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Sum tokens and exact cost per group; unpriced events are counted apart, never as 0."""
    import logkit
    from logkit.usage import GROUPINGS, summarize

    if by not in GROUPINGS:
        fail(f"--by must be one of {', '.join(GROUPINGS)}, not {by!r}")
    start, end = parse_window(since, until)
    logkit.configure(config)
    with reading("the cost store"):
        events = logkit.iter_events(
            tenant, types=["usage_recorded"], role="cost", since=start, until=end
        )
        groups, total = summarize(events, by)
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


def _print_table(result: dict[str, Any]) -> None:
    from rich.table import Table

    by = result["by"]
    table = Table(title=f"usage of {result['tenant']} by {by}")
    for column in (by, "events", "unpriced", "input tok", "cached tok", "output tok", "cost"):
        table.add_column(column, justify="left" if column in (by, "cost") else "right")
    rows = [(g[by], g) for g in result["groups"]] + [("total", result["total"])]
    for index, (key, totals) in enumerate(rows):
        last = index == len(rows) - 1
        table.add_row(
            cell(key, "bold" if last else ""),  # keys are data: never read as markup
            str(totals["events"]),
            str(totals["unpriced_events"]),
            str(totals["input_tokens"]),
            str(totals["cached_tokens"]),
            str(totals["output_tokens"]),
            cell(cost_text(totals["cost"])),
            end_section=index == len(rows) - 2,
        )
    console().print(table)
    if result["total"]["unpriced_events"]:
        console(stderr=True).print(
            "unpriced events have no entry in the price table; their cost is not included "
            "(`logkit usage prices --tenant T` shows which)"
        )


# --- logkit usage prices -------------------------------------------------------------------------


@app.command("prices")
@cli_command(
    examples=[
        "logkit usage prices",
        "logkit usage prices gcp.vertex_ai/gemini-2.5-flash anthropic/claude-sonnet-4-5-20250929",
        "logkit usage prices --tenant t_acme --since 30d --json",
    ],
    exits={
        0: "the table (and every model asked about is priced)",
        1: "a model asked about, or seen in the tenant's usage, is unpriced",
        2: USAGE,
        3: UNAVAILABLE,
    },
)
def prices(
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="PROVIDER/MODEL names to price, as usage events name them.", show_default=False
        ),
    ] = None,
    *,
    tenant: Annotated[
        str | None,
        optional_tenant("Also price every model seen in this tenant's usage events."),
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show the price table (per million tokens, where each entry comes from), and for model
    names (given, or seen in a tenant's usage) which entry prices them and by which rule:
    exact, a provider alias, a route prefix dropped (vertex_ai/, publishers/google/models/), a
    date or version suffix dropped (-2024-07-18, -20250929, @20250929, -001). Unpriced names
    stay unpriced: never 0."""
    import logkit
    from logkit.usage import price_table

    asked = [_split(name) for name in models or []]
    start, end = parse_window(since, until)
    logkit.configure(config)
    table = price_table()
    if tenant is not None:
        with reading("the cost store"):
            asked += _seen(tenant, start, end, set(asked))
    matches = [_matched(table, provider, model) for provider, model in asked]
    result = {
        "currency": table.currency,
        "entries": [
            {"provider": p, "model": m, **price.as_dict(), "source": table.sources.get((p, m))}
            for (p, m), price in sorted(table.prices.items())
        ],
        "matches": matches,
    }
    if json_output:
        print_json(result)
    else:
        _print_prices(result)
    unpriced = any(not m["priced"] for m in matches)
    raise typer.Exit(EXIT_PROBLEM if unpriced else EXIT_OK)


def _split(name: str) -> tuple[str, str]:
    provider, _, model = name.partition("/")
    if not provider or not model:
        fail(f"{name!r}: name a model as PROVIDER/MODEL (e.g. openai/gpt-4o-mini)")
    return provider, model


def _seen(
    tenant: str, start: dt.datetime | None, end: dt.datetime | None, known: set[tuple[str, str]]
) -> list[tuple[str, str]]:
    import logkit
    from logkit.usage import model_of

    found: list[tuple[str, str]] = []
    for event in logkit.iter_events(
        tenant, types=["usage_recorded"], role="cost", since=start, until=end
    ):
        pair = model_of(event.payload)
        if pair not in known:
            known.add(pair)
            found.append(pair)
    return sorted(found)


def _matched(table: Any, provider: str, model: str) -> dict[str, Any]:
    found = table.match(provider, model)
    if found is None:
        return {"provider": provider, "model": model, "priced": False, "entry": None, "rule": None}
    return {
        "provider": provider,
        "model": model,
        "priced": True,
        "entry": found.entry,
        "rule": found.rule,
    }


def _print_prices(result: dict[str, Any]) -> None:
    from rich.table import Table

    out = console()
    table = Table(title=f"price table ({result['currency']} per million tokens)")
    for column in ("provider", "model", "input", "cached input", "output", "source"):
        table.add_column(column, justify="right" if column in ("input", "output") else "left")
    for e in result["entries"]:
        table.add_row(
            *map(cell, (e["provider"], e["model"], e["input_per_mtok"])),
            *map(cell, (e["cached_input_per_mtok"], e["output_per_mtok"], e["source"])),
        )
    out.print(table)
    if not result["matches"]:
        return
    matched = Table(title="which entry prices each name")
    for column in ("provider", "model", "priced as", "rule"):
        matched.add_column(column)
    for m in result["matches"]:
        entry = cell(m["entry"]) if m["priced"] else cell("UNPRICED", "bold red")
        matched.add_row(cell(m["provider"]), cell(m["model"]), entry, cell(m["rule"]))
    out.print(matched)
