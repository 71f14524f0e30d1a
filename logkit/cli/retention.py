"""``logkit retention show|apply``: how long events are kept, and deleting what has expired."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from logkit.cli.common import (
    UNAVAILABLE,
    USAGE,
    ConfigOption,
    JsonOption,
    cell,
    cli_command,
    console,
    doing,
    group_help,
    optional_tenant,
    outcome_code,
    print_json,
)

app = typer.Typer(
    help=group_help(
        "Retention per tenant, app and storage class; legal holds.",
        ["logkit retention show --tenant t_acme", "logkit retention apply --dry-run"],
    ),
    no_args_is_help=True,
)


@app.command("show")
@cli_command(
    examples=["logkit retention show", "logkit retention show --tenant t_acme --json"],
    exits={0: "the rules were printed", 2: USAGE},
)
def show(
    tenant: Annotated[
        str | None, optional_tenant("The rules in force for this tenant only.")
    ] = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the effective retention rules (days per storage class, legal holds)."""
    from logkit.config import load_settings
    from logkit.retention import effective_rules

    rules = effective_rules(load_settings(config).retention, tenant)
    if json_output:
        print_json({"tenant": tenant, "rules": [r.as_dict() for r in rules]})
        return
    from rich.table import Table

    table = Table(title="retention rules" + (f" of {tenant}" if tenant else ""))
    for column in ("tenant", "app", "ops days", "cost days", "audit days", "legal hold"):
        table.add_column(column)
    for r in rules:
        table.add_row(
            cell(r.tenant_id or "(every tenant)"),
            cell(r.app_id or "(every app)"),
            str(r.ops_days),
            str(r.cost_days),
            str(r.audit_days),
            cell("HOLD", "bold red") if r.legal_hold else "-",
        )
    console().print(table)


@app.command("apply")
@cli_command(
    examples=["logkit retention apply --dry-run", "logkit retention apply --json"],
    exits={
        0: "every store did its part",
        1: "a local SQLite file's read snapshot may keep deleted values (named: run again once "
        "it closes)",
        2: USAGE,
        3: UNAVAILABLE + " (each one named; the others did their part)",
    },
)
def apply(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; change nothing.")
    ] = False,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete expired ops and cost events, erase expired audit payloads, on every backend."""
    import logkit
    from logkit import retention

    logkit.configure(config)
    with doing("retention could not record what it did"):
        result = retention.apply(dry_run=dry_run)
    if json_output:
        print_json(result.as_dict())
    else:
        _print(result)
    for failure in result.as_dict()["failures"]:
        typer.echo(f"logkit: retention failed on {failure}", err=True)
    for warning in result.warnings:
        typer.echo(f"logkit: warning: {warning}", err=True)
    raise typer.Exit(outcome_code(result))


def _print(result: Any) -> None:
    from rich.table import Table

    out = console()
    verb = "would delete / erase" if result.dry_run else "deleted / erased"
    dry = "(dry run) " if result.dry_run else ""
    table = Table(title=f"retention {dry}at {result.now:%Y-%m-%d %H:%M} UTC")
    for column in ("tenant", "app", "store", "classes", "older than", verb, "problem"):
        table.add_column(column)
    for s in result.sweeps:
        if s.count or s.error:
            table.add_row(
                cell(s.tenant_id),
                cell(s.app_id or "(others)"),
                cell(f"{s.role} ({s.backend})"),
                cell(",".join(s.storage_classes or (s.role,))),
                cell(s.cutoff[:10]),
                str(s.count),
                cell(s.error or "", "red"),
            )
    if table.row_count:
        out.print(table)
    totals = ", ".join(f"{role} {n}" for role, n in result.totals().items()) or "nothing"
    out.print(cell(f"{len(result.tenants)} tenant(s) checked; {verb}: {totals}"))
    for scope in result.held:
        out.print(cell("kept under legal hold: ", "yellow") + cell(scope))
    if not result.dry_run and result.records:
        out.print(f"recorded as {len(result.records)} retention_applied audit record(s)")
