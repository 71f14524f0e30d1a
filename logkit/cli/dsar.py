"""``logkit dsar export|delete``: data subject requests (access and erasure)."""

from __future__ import annotations

from pathlib import Path
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
    cli_command,
    doing,
    fail,
    group_help,
    outcome_code,
    parse_window,
    print_json,
)

app = typer.Typer(
    help=group_help(
        "Data subject requests: export a subject's events, erase them.",
        [
            "logkit dsar export --tenant t_acme --user u_1042 --out u_1042.jsonl",
            "logkit dsar delete --tenant t_acme --user u_1042 --dry-run",
        ],
    ),
    no_args_is_help=True,
)


@app.command("export")
@cli_command(
    examples=[
        "logkit dsar export --tenant t_acme --user u_1042 --out u_1042.jsonl",
        "logkit dsar export --tenant t_acme --run run_01J9Z --since 30d --out run.jsonl --json",
    ],
    exits={
        0: "written (also when nothing matched: the manifest says 0)",
        1: "the file cannot be written (no partial file is left)",
        2: USAGE + " (--out exists or names no file)",
        3: UNAVAILABLE + " (no partial file is left)",
    },
)
def export(  # options are keyword-only: Typer passes them by name
    *,
    tenant: TenantOption,
    out: Annotated[
        Path, typer.Option("--out", help="JSONL file to write (the manifest goes beside it).")
    ],
    user: Annotated[str | None, typer.Option("--user", help="The subject's user id.")] = None,
    run: Annotated[str | None, typer.Option("--run", help="One run only.")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Export every matching event of the timeline, audit and cost stores as JSONL + manifest."""
    import logkit
    from logkit import dsar

    start, end = parse_window(since, until)
    if user is not None and not user.strip():
        fail("--user must not be empty")
    _check_out(out)
    request = dsar.ExportRequest(tenant, user, run, start, end)
    logkit.configure(config)
    try:
        with doing("export failed, nothing written"):
            result = (
                dsar.export(request, out) if json_output else _export_with_progress(request, out)
            )
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or type(exc).__name__}", EXIT_PROBLEM)
    if json_output:
        print_json(result.as_dict())
        return
    counts = ", ".join(f"{role} {n}" for role, n in result.manifest["counts"].items())
    typer.echo(f"exported {result.total} event(s) ({counts}) to {out}")
    typer.echo(f"manifest: {result.manifest_path} (sha256 {result.manifest['sha256'][:16]}…)")
    if result.total == 0:
        typer.echo(f"no event matched {_subject(request)}: check the ids and the time range")
    typer.echo(f"recorded as dsar_export audit record {result.record_id}")


def _check_out(out: Path) -> None:
    """--out names a new file in an existing directory (nothing is ever overwritten)."""
    from logkit import dsar

    if not str(out).strip() or not out.name or out.is_dir():
        fail("--out must name a file to write (e.g. u_1042.jsonl), not a directory or nothing")
    for path in (out, dsar.manifest_path_for(out)):
        if path.exists():
            fail(f"{path} already exists: choose another --out (nothing is overwritten)")
    if not out.parent.is_dir():
        fail(f"{out.parent} is not a directory", kind="not_found")


def _subject(request: Any) -> str:
    parts = [f"tenant {request.tenant_id}"]
    parts += [
        f"{name} {value}"
        for name, value in (("user", request.user_id), ("run", request.run_id))
        if value
    ]
    return ", ".join(parts)


def _export_with_progress(request: Any, out: Path) -> Any:
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from logkit import dsar

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}: {task.completed} event(s)"), transient=True
    ) as bar:
        tasks = {
            role.value: bar.add_task(f"exporting {role.value}", total=None) for role in dsar.ROLES
        }
        return dsar.export(request, out, progress=lambda role, n: bar.advance(tasks[role], n))


@app.command("delete")
@cli_command(
    examples=[
        "logkit dsar delete --tenant t_acme --user u_1042 --dry-run",
        "logkit dsar delete --tenant t_acme --user u_1042 --yes --json",
    ],
    exits={
        0: "done, or nothing was left",
        1: "refused (legal hold, spooled events), not confirmed, or erased values may remain "
        "in a local SQLite write-ahead log (named: run again once the other connection closes)",
        2: USAGE,
        3: UNAVAILABLE + " (named; run again once it is back: erasure is idempotent)",
    },
)
def delete(
    *,
    tenant: TenantOption,
    user: Annotated[str, typer.Option("--user", help="The subject's user id.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be erased; change nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Erase a subject: delete their ops and cost events everywhere, erase their audit payloads
    (the chains still verify), destroy their sealed-payload key, and record the erasure."""
    import logkit
    from logkit import dsar

    if not user.strip():
        fail("--user must not be empty")
    if json_output and not (yes or dry_run):
        fail("--json needs --yes or --dry-run: a machine cannot answer the confirmation")
    logkit.configure(config)
    with doing("erasure failed"):
        plan = dsar.delete(tenant, user, dry_run=True)
        if not plan.ok:
            if not json_output:
                _report(plan, json_output)
            fail(
                "a store cannot be read: nothing was deleted",
                kind="unavailable",
                details=plan.as_dict(),
            )
        if dry_run:
            _report(plan, json_output)
            raise typer.Exit(EXIT_OK)
        if not plan.nothing_left and not yes:
            _report(plan, json_output)
            if not typer.confirm(f"Erase all of the above for user {user} of {tenant}?"):
                fail("not confirmed: nothing was deleted", kind="refused")
        result = dsar.delete(tenant, user)
    _report(result, json_output)
    for warning in result.warnings:
        typer.echo(f"logkit: warning: {warning}", err=True)
    if result.warnings:
        import shlex

        again = ["logkit", "dsar", "delete", "--tenant", tenant, "--user", user, "--yes"]
        again += ["--config", config] if config else []
        typer.echo(f"logkit: once they have closed, run: {shlex.join(again)}", err=True)
    raise typer.Exit(outcome_code(result))


def _report(result: Any, json_output: bool) -> None:
    if json_output:
        print_json(result.as_dict())
        return
    who = f"user {result.user_id} of {result.tenant_id}"
    for failure in result.as_dict()["failures"]:
        typer.echo(f"logkit: erasure failed on {failure}", err=True)
    if result.nothing_left:
        typer.echo(f"nothing left for {who}: already erased, or never stored")
    else:
        verb = "would" if result.dry_run else "did"
        typer.echo(f"{'dry run: ' if result.dry_run else ''}for {who}, logkit {verb}:")
        for outcome in result.stores:
            what = "erase the payload of" if outcome.action == "erase_payloads" else "delete"
            if not result.dry_run:
                what = "erased the payload of" if outcome.action == "erase_payloads" else "deleted"
            typer.echo(f"  {what} {outcome.count} {outcome.role} event(s) on {outcome.backend}")
        keys = "destroy" if result.dry_run else "destroyed"
        typer.echo(f"  {keys} {result.keys_destroyed} sealed-payload key(s)")
        if result.dead_letters_deleted:
            verb = "delete" if result.dry_run else "deleted"
            typer.echo(f"  {verb} {result.dead_letters_deleted} dead letter(s) of the spool")
    if result.record_id:
        typer.echo(f"recorded as dsar_erasure audit record {result.record_id}")
        typer.echo(f"check the chains: logkit audit verify --tenant {result.tenant_id}")
