"""``logkit retention show|apply``: how long events are kept, and deleting what has expired."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from logkit.cli.common import EXIT_OK, EXIT_PROBLEM, ConfigOption, JsonOption, fail, print_json

app = typer.Typer(
    help="Retention per tenant, app and storage class; legal holds.", no_args_is_help=True
)


@app.command("show")
def show(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="The rules in force for this tenant only.")
    ] = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the effective retention rules (days per storage class, legal holds)."""
    from logkit.config import load_settings
    from logkit.errors import ConfigError
    from logkit.retention import effective_rules

    try:
        rules = effective_rules(load_settings(config).retention, tenant)
    except ConfigError as exc:
        fail(str(exc))
    if json_output:
        print_json({"tenant": tenant, "rules": [r.as_dict() for r in rules]})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="retention rules" + (f" of {tenant}" if tenant else ""))
    for column in ("tenant", "app", "ops days", "cost days", "audit days", "legal hold"):
        table.add_column(column)
    for r in rules:
        hold = "[bold red]HOLD[/bold red]" if r.legal_hold else "-"
        table.add_row(
            r.tenant_id or "(every tenant)",
            r.app_id or "(every app)",
            str(r.ops_days),
            str(r.cost_days),
            str(r.audit_days),
            hold,
        )
    Console().print(table)


@app.command("apply")
def apply(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; change nothing.")
    ] = False,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete expired ops and cost events, erase expired audit payloads, on every backend.

    Exit 0 when every backend did its part, 1 naming each backend that failed or each local
    SQLite file where another connection's read snapshot may keep deleted values (run again once
    it closes), 2 on a usage or config error.
    """
    import logkit
    from logkit import retention
    from logkit.errors import ConfigError, LogkitError

    try:
        logkit.configure(config)
        result = retention.apply(dry_run=dry_run)
    except ConfigError as exc:
        fail(str(exc))
    except LogkitError as exc:
        fail(f"retention could not record what it did: {exc}", EXIT_PROBLEM)
    if json_output:
        print_json(result.as_dict())
    else:
        _print(result)
    for failure in result.as_dict()["failures"]:
        typer.echo(f"logkit: retention failed on {failure}", err=True)
    for warning in result.warnings:
        typer.echo(f"logkit: warning: {warning}", err=True)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_PROBLEM)


def _print(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    verb = "would delete / erase" if result.dry_run else "deleted / erased"
    dry = "(dry run) " if result.dry_run else ""
    table = Table(title=f"retention {dry}at {result.now:%Y-%m-%d %H:%M} UTC")
    for column in ("tenant", "app", "store", "classes", "older than", verb, "problem"):
        table.add_column(column, overflow="fold")
    for s in result.sweeps:
        if s.count or s.error:
            table.add_row(
                s.tenant_id,
                s.app_id or "(others)",
                f"{s.role} ({s.backend})",
                ",".join(s.storage_classes or (s.role,)),
                s.cutoff[:10],
                str(s.count),
                f"[red]{s.error}[/red]" if s.error else "",
            )
    if table.row_count:
        console.print(table)
    totals = ", ".join(f"{role} {n}" for role, n in result.totals().items()) or "nothing"
    console.print(f"{len(result.tenants)} tenant(s) checked; {verb}: {totals}")
    for scope in result.held:
        console.print(f"[yellow]kept under legal hold:[/yellow] {scope}")
    if not result.dry_run and result.records:
        console.print(f"recorded as {len(result.records)} retention_applied audit record(s)")
