"""Which chains a verification must cover: the store's, and every chain a checkpoint names.

A chain deleted whole (every record and its chain document) is no longer listed by the store.
Signed checkpoints kept outside the writers' reach still name it, so verifying against them
walks it too and reports it as truncated (its records end before the signed seq). This is what
ties a tenant's lanes together (logkit.sinks.firestore_append): a lane, like a run's chain, is
proved complete up to the last checkpoint taken.
"""

from __future__ import annotations

from collections.abc import Iterable

from logkit.auditing.checkpoint import Checkpoint
from logkit.chain import TENANT_CHAIN_RUN, chain_id_of, is_tenant_chain


def in_scope(chain_id: str, tenant_id: str, run_id: str | None) -> bool:
    """Whether ``chain_id`` belongs to the tenant (and to the run, or the tenant chain's lanes)."""
    if chain_id.partition("/")[0] != tenant_id or "/" not in chain_id:
        return False
    if run_id is None or chain_id == chain_id_of(tenant_id, run_id):
        return True
    return run_id == TENANT_CHAIN_RUN and is_tenant_chain(chain_id, tenant_id)


def chains_to_verify(
    stored: Iterable[str],
    checkpoints: Iterable[Checkpoint] | None,
    tenant_id: str,
    run_id: str | None,
) -> list[str]:
    """The store's chains plus the in-scope chains the checkpoints name, sorted."""
    named = {c.chain_id for c in checkpoints or () if in_scope(c.chain_id, tenant_id, run_id)}
    return sorted(set(stored) | named)
