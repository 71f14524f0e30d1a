"""``logkit dsar export|delete``: data subject requests (access and erasure)."""

from __future__ import annotations

import re
from pathlib import Path
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

app = typer.Typer(
    help="Data subject requests: export a subject's events, erase them.", no_args_is_help=True
)

TenantOption = Annotated[str, typer.Option("--tenant", help="Tenant id, e.g. t_acme.")]
_TENANT = re.compile(r"^t_[a-z0-9_-]+$")


def _check_tenant(tenant: str) -> None:
    if not _TENANT.match(tenant):
        fail(f"--tenant must look like t_acme (t_ then a-z, 0-9, _ or -), got {tenant!r}")


def _configure(config: str | None) -> Any:
    import logkit
    from logkit.errors import ConfigError

    try:
        return logkit.configure(config)
    except ConfigError as exc:
        fail(str(exc))


@app.command("export")
def export(  # options are keyword-only: Typer passes them by name
    *,
    tenant: TenantOption,
    out: Annotated[
        Path, typer.Option("--out", help="JSONL file to write (the manifest goes beside it).")
    ],
    user: Annotated[str | None, typer.Option("--user", help="The subject's user id.")] = None,
    run: Annotated[str | None, typer.Option("--run", help="One run only.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO date/time, inclusive (UTC if no zone).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="ISO date/time, exclusive (UTC if no zone).")
    ] = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Export every matching event of the timeline, audit and cost stores as JSONL + manifest.

    Exit 0 when written (also when nothing matched: the manifest says 0), 1 when a store
    fails (no partial file is left), 2 on a usage or config error.
    """
    from logkit import dsar
    from logkit.errors import LogkitError

    _check_tenant(tenant)
    request = dsar.ExportRequest(
        tenant, user, run, parse_time(since, "--since"), parse_time(until, "--until")
    )
    for path in (out, dsar.manifest_path_for(out)):
        if path.exists():
            fail(f"{path} already exists: choose another --out (nothing is overwritten)")
    if not out.parent.is_dir():
        fail(f"{out.parent} is not a directory")
    _configure(config)
    try:
        result = (
            _export_with_progress(request, out) if not json_output else dsar.export(request, out)
        )
    except LogkitError as exc:
        fail(f"export failed, nothing written: {exc}", EXIT_PROBLEM)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}", EXIT_PROBLEM)
    if json_output:
        print_json(result.as_dict())
        return
    counts = ", ".join(f"{role} {n}" for role, n in result.manifest["counts"].items())
    typer.echo(f"exported {result.total} event(s) ({counts}) to {out}")
    typer.echo(f"manifest: {result.manifest_path} (sha256 {result.manifest['sha256'][:16]}…)")
    if result.total == 0:
        typer.echo(f"no event matched {_subject(request)}: check the ids and the time range")
    typer.echo(f"recorded as dsar_export audit record {result.record_id}")


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
    (the chains still verify), destroy their sealed-payload key, and record the erasure.

    Exit 0 when done (or nothing was left), 1 when refused (legal hold, spooled events), not
    confirmed, a backend failed (named), or erased values may remain in a local SQLite file's
    write-ahead log because another connection holds a read snapshot (named: run again once
    it closes), 2 on a usage or config error.
    """
    from logkit import dsar
    from logkit.errors import LogkitError, RequestRefusedError

    _check_tenant(tenant)
    if not user.strip():
        fail("--user must not be empty")
    if json_output and not (yes or dry_run):
        fail("--json needs --yes or --dry-run: a machine cannot answer the confirmation")
    _configure(config)
    try:
        plan = dsar.delete(tenant, user, dry_run=True)
        if dry_run:
            _report(plan, json_output)
            raise typer.Exit(EXIT_OK if plan.ok else EXIT_PROBLEM)
        if not plan.ok:
            _report(plan, json_output)
            fail("a backend cannot be read: nothing was deleted", EXIT_PROBLEM)
        if not plan.nothing_left and not yes:
            _report(plan, json_output)
            if not typer.confirm(f"Erase all of the above for user {user} of {tenant}?"):
                fail("not confirmed: nothing was deleted", EXIT_PROBLEM)
        result = dsar.delete(tenant, user)
    except RequestRefusedError as exc:
        fail(str(exc), EXIT_PROBLEM)
    except LogkitError as exc:
        fail(f"erasure failed: {exc}", EXIT_PROBLEM)
    _report(result, json_output)
    for warning in result.warnings:
        typer.echo(f"logkit: warning: {warning}", err=True)
    if result.warnings:
        import shlex

        again = ["logkit", "dsar", "delete", "--tenant", tenant, "--user", user, "--yes"]
        again += ["--config", config] if config else []
        typer.echo(f"logkit: once they have closed, run: {shlex.join(again)}", err=True)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_PROBLEM)


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
