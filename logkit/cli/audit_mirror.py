"""``logkit audit mirror``, and what ``logkit audit verify --mirror`` adds to its report."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from logkit.cli.common import EXIT_PROBLEM, ConfigOption, JsonOption, fail, print_json

MirrorOption = Annotated[
    str | None,
    typer.Option(
        "--mirror",
        envvar="LOGKIT_AUDIT_MIRROR",
        help="The BigQuery audit mirror, bigquery://PROJECT/DATASET: also verify it and report "
        "every disagreement with the audit store.",
        show_default=False,
    ),
]


def mirror(
    *,
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id, e.g. t_acme.")],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            envvar="LOGKIT_AUDIT_MIRROR",
            help="The mirror: bigquery://PROJECT/DATASET (table audit_chain, created if absent).",
        ),
    ],
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Copy a tenant's audit chains to the BigQuery mirror and erase there what was erased.

    Incremental: only records past the mirror's head of each chain are copied (Storage Write
    API); payloads erased in the audit store since the last run are erased in the mirror.
    """
    from logkit.auditing.mirror import open_mirror, sync
    from logkit.cli.audit import _open
    from logkit.errors import ConfigError, LogkitError

    _, store, _ = _open(config, tenant, None)
    try:
        target = open_mirror(to)
    except ConfigError as exc:
        fail(str(exc))
    try:
        report = sync(store, target, tenant)
    except LogkitError as exc:
        fail(f"cannot mirror: {exc}", EXIT_PROBLEM)
    finally:
        target.backend.close()
    if json_output:
        print_json({"copied": report.copied, "erased": report.erased, "chains": report.chains})
        return
    typer.echo(
        f"{tenant}: {report.copied} record(s) copied, {report.erased} erased, "
        f"{report.chains} chain(s) -> {target.describe()}"
    )


def check_mirror(
    uri: str, store: Any, chains: list[str], keys: Any, *, tenant: str, run: str | None
) -> Any:
    """The MirrorReport of ``uri`` against the audit store (exits 2 on a bad URI)."""
    from logkit.auditing.mirror import compare, open_mirror
    from logkit.errors import ConfigError, LogkitError

    try:
        target = open_mirror(uri)
    except ConfigError as exc:
        fail(str(exc))
    try:
        return compare(store, target, chains, keys, tenant_id=tenant, run_id=run)
    except LogkitError as exc:
        fail(f"cannot read the audit mirror: {exc}", EXIT_PROBLEM)
    finally:
        target.backend.close()


def print_mirror(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    title = "audit mirror: " + ("agrees" if report.ok else "DISAGREES")
    table = Table(title=title)
    for column in ("chain", "seq", "kind", "detail"):
        table.add_column(column, overflow="fold")
    for chain in report.mirror.chains:
        if chain.status != "ok":
            table.add_row(
                chain.chain_id,
                str(chain.first_bad_seq),
                f"[red]{chain.kind}[/red]",
                chain.detail or "",
            )
    for d in report.disagreements:
        seq = "" if d.seq is None else str(d.seq)
        table.add_row(d.chain_id, seq, f"[red]{d.kind}[/red]", d.detail)
    for chain_id, count in report.behind.items():
        table.add_row(chain_id, "", "behind", f"{count} record(s) not mirrored yet")
    console.print(table)
