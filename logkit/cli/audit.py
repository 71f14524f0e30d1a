"""``logkit audit verify|checkpoint``: tamper evidence for compliance and deploy pipelines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from logkit.cli.audit_mirror import MirrorOption
from logkit.cli.common import (
    EXIT_OK,
    EXIT_PROBLEM,
    UNAVAILABLE,
    USAGE,
    ConfigOption,
    JsonOption,
    TenantOption,
    cell,
    cli_command,
    console,
    doing,
    fail,
    group_help,
    print_json,
    reading,
)

app = typer.Typer(
    help=group_help(
        "Audit chains: verify them, sign checkpoints of their heads, mirror them to BigQuery.",
        [
            "logkit audit verify --tenant t_acme",
            "logkit audit checkpoint --tenant t_acme --out checkpoints/t_acme.json",
        ],
    ),
    no_args_is_help=True,
)

RunOption = Annotated[
    str | None, typer.Option("--run", help="One run's chain only (default: every chain).")
]


def _open(
    config: str | None, tenant: str, run: str | None, *, allow_none: bool = False
) -> tuple[Any, Any, list[str]]:
    """Settings, the audit store, and the chains to work on; usage errors exit 2."""
    from logkit.config import load_settings
    from logkit.sinks.protocols import AuditStore, Role
    from logkit.sinks.registry import open_backend

    settings = load_settings(config)
    uri = settings.sink_uri(Role.AUDIT)
    if uri is None:
        fail("no audit sink configured ([sinks] audit = ...)", kind="config")
    store = open_backend(uri).store(Role.AUDIT)
    if not isinstance(store, AuditStore):
        fail(f"the audit sink {uri} keeps no chain of record", kind="config")
    with reading("the audit store"):
        chains = store.chain_ids(tenant, run)
    if not chains and not allow_none:
        _nothing(tenant, run)
    return settings, store, chains


def _nothing(tenant: str, run: str | None) -> None:
    scope = f"tenant {tenant}" + (f", run {run}" if run else "")
    fail(f"no audit chain found for {scope}: nothing to verify or sign", kind="not_found")


@app.command("verify")
@cli_command(
    examples=[
        "logkit audit verify --tenant t_acme",
        "logkit audit verify --tenant t_acme --run run_01J9Z --checkpoint checkpoints/t_acme.json",
        "logkit audit verify --tenant t_acme --mirror bigquery://my-project/logkit --json",
    ],
    exits={
        0: "every chain is intact",
        1: "a chain is broken (named, with its first bad seq and the kind of break) or the "
        "mirror disagrees",
        2: USAGE + " (a tenant or run without any chain)",
        3: UNAVAILABLE,
    },
)
def verify(
    *,
    tenant: TenantOption,
    run: RunOption = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="Signed checkpoint file to verify against "
            "(default: the checkpoints kept in the audit store).",
        ),
    ] = None,
    mirror: MirrorOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Verify every chain of a tenant (or one run): hashes, links, payload digests, erasures,
    checkpoints, and that no chain a checkpoint or an earlier verify vouched for is gone.

    --json prints {"ok", "chains": [{"chain_id", "records", "erased", "status",
    "first_bad_seq", "kind", "detail", "checkpoint", "head_seq", "head_hash"}]}, every key on
    every chain (null where it does not apply).
    """
    from logkit.auditing.checkpoint import load_keys, read_file
    from logkit.auditing.evidence import load_seen
    from logkit.auditing.verify import expected_chains
    from logkit.auditing.verify import verify as run_verify

    settings, store, chains = _open(config, tenant, run, allow_none=True)
    keys = load_keys(settings.audit, settings.env)
    checkpoints = read_file(checkpoint) if checkpoint is not None else None
    seen_path = settings.audit.seen_state
    if not chains and not expected_chains(checkpoints or [], load_seen(seen_path), tenant, run):
        _nothing(tenant, run)
    options: dict[str, Any] = {
        "checkpoints": checkpoints,
        "seen_path": seen_path,
        "tenant_id": tenant,
        "run_id": run,
        **_parallel(settings),
    }
    try:
        with reading("the audit store"):
            if json_output:
                report = run_verify(store, chains, keys, **options)
            else:
                report = _verify_with_progress(store, chains, keys, options)
    except OSError as exc:
        fail(f"cannot keep the verified state in {seen_path}: {exc.strerror}", kind="config")
    mirrored = None
    if mirror is not None:
        from logkit.cli.audit_mirror import check_mirror

        mirrored = check_mirror(mirror, store, chains, keys, tenant=tenant, run=run)
    if json_output:
        print_json({**report.as_dict(), **({"mirror": mirrored.as_dict()} if mirrored else {})})
    else:
        _print_report(report)
        if mirrored is not None:
            from logkit.cli.audit_mirror import print_mirror

            print_mirror(mirrored)
    ok = report.ok and (mirrored is None or mirrored.ok)
    raise typer.Exit(EXIT_OK if ok else EXIT_PROBLEM)


def _parallel(settings: Any) -> dict[str, Any]:
    """Long chains are verified on every core (workers reopen the store from its URI)."""
    import os

    from logkit.sinks.protocols import Role

    return {"uri": settings.sink_uri(Role.AUDIT), "workers": os.cpu_count() or 1}


def _verify_with_progress(store: Any, chains: list[str], keys: Any, options: dict[str, Any]) -> Any:
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from logkit.auditing.verify import verify as run_verify

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), transient=True
    ) as bar:
        tasks: dict[str, Any] = {}

        def advance(chain_id: str, n: int) -> None:
            if chain_id not in tasks:
                tasks[chain_id] = bar.add_task(escape(chain_id), total=_length(store, chain_id))
            bar.advance(tasks[chain_id], n)

        return run_verify(store, chains, keys, progress=advance, **options)


def _length(store: Any, chain_id: str) -> int | None:
    """The chain's length from its head, for the progress bar (None when it is unreadable)."""
    try:
        head = store.head(chain_id)
    except Exception:  # a tampered head: the verification names it, the bar just goes on
        return None
    return head[0] + 1 if head and type(head[0]) is int else 0


def _print_report(report: Any) -> None:
    from rich.table import Table

    table = Table(title="audit chains: " + ("intact" if report.ok else "BROKEN"))
    for column in ("chain", "records", "erased", "status", "first bad seq", "checkpoint", "detail"):
        table.add_column(column)
    for chain in report.chains:
        status = cell("ok", "green") if chain.status == "ok" else cell(chain.kind, "red")
        bad = "" if chain.first_bad_seq is None else str(chain.first_bad_seq)
        table.add_row(
            cell(chain.chain_id),
            str(chain.records),
            str(chain.erased),
            status,
            bad,
            cell(chain.checkpoint),
            cell(chain.detail or ""),
        )
    console().print(table)


@app.command("checkpoint")
@cli_command(
    examples=[
        "logkit audit checkpoint --tenant t_acme",
        "logkit audit checkpoint --tenant t_acme --out checkpoints/t_acme.json --json",
    ],
    exits={
        0: "every chain head was signed",
        1: "a chain head cannot be read back, or the file cannot be written",
        2: USAGE + " (a tenant or run without any chain)",
        3: UNAVAILABLE,
    },
)
def checkpoint(
    *,
    tenant: TenantOption,
    run: RunOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Also write the checkpoints to this file (keep it where "
            "the writers cannot reach it).",
        ),
    ] = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Sign the head of each chain of a tenant (or one run) and keep the checkpoints."""
    from logkit.auditing.checkpoint import checkpoint_chains, load_keys, write_file

    settings, store, chains = _open(config, tenant, run)
    keys = load_keys(settings.audit, settings.env)
    try:
        with doing("cannot checkpoint"):
            made = checkpoint_chains(store, chains, keys)
    except (TypeError, ValueError) as exc:  # a head the store cannot read back
        fail(
            f"cannot checkpoint: a chain head cannot be read ({type(exc).__name__}); "
            "run `logkit audit verify` to see which",
            EXIT_PROBLEM,
        )
    if out is not None:
        try:
            write_file(out, made)
        except OSError as exc:
            fail(f"cannot write {out}: {exc.strerror}", EXIT_PROBLEM)
    if json_output:
        print_json({"checkpoints": [c.as_dict() for c in made], "file": str(out) if out else None})
        return
    for c in made:
        typer.echo(f"{c.chain_id}: seq {c.seq} {c.hash[:16]}… signed {c.alg} ({c.key_id})")
    if out is not None:
        typer.echo(f"wrote {len(made)} checkpoint(s) to {out}")
