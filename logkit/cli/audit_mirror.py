"""``logkit audit mirror``, and what ``logkit audit verify --mirror`` adds to its report."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from logkit.cli.common import (
    UNAVAILABLE,
    USAGE,
    ConfigOption,
    JsonOption,
    TenantOption,
    cell,
    cli_command,
    console,
    doing,
    print_json,
)

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


@cli_command(
    examples=[
        "logkit audit mirror --tenant t_acme --to bigquery://my-project/logkit",
        "logkit audit mirror --tenant t_acme --to bigquery://my-project/logkit --json",
    ],
    exits={
        0: "the mirror is up to date",
        2: USAGE + " (a tenant without any chain)",
        3: UNAVAILABLE + " (the audit store or the mirror)",
    },
)
def mirror(
    *,
    tenant: TenantOption,
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

    _, store, _ = _open(config, tenant, None)
    target = open_mirror(to)
    try:
        with doing("cannot mirror"):
            report = sync(store, target, tenant)
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

    target = open_mirror(uri)
    try:
        with doing("cannot read the audit mirror"):
            return compare(store, target, chains, keys, tenant_id=tenant, run_id=run)
    finally:
        target.backend.close()


def print_mirror(report: Any) -> None:
    from rich.table import Table

    title = "audit mirror: " + ("agrees" if report.ok else "DISAGREES")
    table = Table(title=title)
    for column in ("chain", "seq", "kind", "detail"):
        table.add_column(column)
    for chain in report.mirror.chains:
        if chain.status != "ok":
            table.add_row(
                cell(chain.chain_id),
                str(chain.first_bad_seq),
                cell(chain.kind, "red"),
                cell(chain.detail or ""),
            )
    for d in report.disagreements:
        seq = "" if d.seq is None else str(d.seq)
        table.add_row(cell(d.chain_id), seq, cell(d.kind, "red"), cell(d.detail))
    for chain_id, count in report.behind.items():
        table.add_row(cell(chain_id), "", "behind", f"{count} record(s) not mirrored yet")
    console().print(table)
