"""Retention: how long each tenant's and app's events are kept, and applying that to the stores.

A rule sets days per storage class; the most specific rule wins field by field, in this order
(later wins): the ``[retention]`` defaults, a rule for the app in every tenant, a rule for the
tenant, a rule for the app in the tenant. A legal hold anywhere in that stack holds the scope.

:func:`apply` walks every tenant the stores know: ops events (and persisted stream events) and
cost events older than their days are deleted on every configured backend; audit records older
than the audit days keep their place in the chain and lose their payload (so the chain still
verifies), and their timeline copies are deleted. Each tenant gets a ``retention_applied`` audit
record with the counts. A backend that fails is named in the result, never skipped silently;
local SQLite files are then checkpointed, and a reader's snapshot that keeps expired values in a
write-ahead log is reported as a warning (logkit.erasure).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from logkit.config import RetentionConfig, RetentionRule
from logkit.envelope import EventType, utc_now
from logkit.erasure import Settled, settle
from logkit.errors import ConfigError, SinkError
from logkit.runtime import Runtime, current
from logkit.sinks.protocols import AuditStore, Role, Selector

# Which stored storage classes each rule field governs.
CLASSES: dict[str, tuple[str, ...]] = {
    "ops": ("ops", "stream"),
    "cost": ("cost",),
    "audit": ("audit",),
}


DAY_FIELDS = {"ops_days", "cost_days", "audit_days"}


@dataclass(frozen=True, slots=True)
class EffectiveRule:
    """The rule in force for one scope. ``None`` tenant or app: every one without its own."""

    tenant_id: str | None
    app_id: str | None
    ops_days: int
    cost_days: int
    audit_days: int
    legal_hold: bool

    def days(self, kind: str) -> int:
        return int(getattr(self, f"{kind}_days"))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rule_for(config: RetentionConfig, tenant_id: str | None, app_id: str | None) -> EffectiveRule:
    """The effective rule of (tenant, app). ConfigError if audit would be kept shorter."""
    values: dict[str, Any] = {
        "ops_days": config.ops_days,
        "cost_days": config.cost_days,
        "audit_days": config.audit_days,
        "legal_hold": False,
    }
    for rule in _layers(config.rules, tenant_id, app_id):
        values.update(rule.model_dump(include=DAY_FIELDS, exclude_none=True))
        # A hold is never lifted by a more specific rule: any hold in the stack holds.
        values["legal_hold"] = values["legal_hold"] or rule.legal_hold
    effective = EffectiveRule(tenant_id, app_id, **values)
    if effective.audit_days < max(effective.ops_days, effective.cost_days):
        raise ConfigError(
            f"retention for {_scope(tenant_id, app_id)}: audit_days ({effective.audit_days}) "
            f"must be at least ops_days and cost_days (audit has the longer rule)"
        )
    return effective


def _layers(
    rules: Iterable[RetentionRule], tenant_id: str | None, app_id: str | None
) -> list[RetentionRule]:
    """The rules that apply to (tenant, app), least specific first (each scope once)."""
    scopes = dict.fromkeys([(None, None), (None, app_id), (tenant_id, None), (tenant_id, app_id)])
    return [r for scope in scopes for r in rules if (r.tenant, r.app) == scope]


def apps_with_rules(config: RetentionConfig, tenant_id: str) -> list[str]:
    """Apps that have a rule of their own in this tenant (in every tenant, or in this one)."""
    return sorted(
        {r.app for r in config.rules if r.app is not None and r.tenant in (None, tenant_id)}
    )


def effective_rules(config: RetentionConfig, tenant_id: str | None = None) -> list[EffectiveRule]:
    """The rules in force: for one tenant (its own and its apps'), or every configured scope."""
    scopes: list[tuple[str | None, str | None]]
    if tenant_id is not None:
        scopes = [(tenant_id, None), *((tenant_id, a) for a in apps_with_rules(config, tenant_id))]
    else:
        scopes = [(None, None), *dict.fromkeys((r.tenant, r.app) for r in config.rules)]
        scopes = list(dict.fromkeys(scopes))
    return [rule_for(config, tenant, app) for tenant, app in scopes]


def held(config: RetentionConfig, tenant_id: str) -> list[str]:
    """The scopes of a tenant under legal hold: the tenant itself, or else its held apps."""
    rules = effective_rules(config, tenant_id)
    if rules[0].legal_hold:  # the tenant's own rule: its apps inherit the hold
        return [_scope(tenant_id, None)]
    return [_scope(tenant_id, r.app_id) for r in rules[1:] if r.legal_hold]


def _scope(tenant_id: str | None, app_id: str | None) -> str:
    tenant = f"tenant {tenant_id}" if tenant_id else "every tenant"
    return tenant if app_id is None else f"app {app_id} in {tenant}"


# --- applying --------------------------------------------------------------------------------


@dataclass
class Sweep:
    """One deletion (or erasure) on one store, for one scope and storage class."""

    tenant_id: str
    app_id: str | None  # None: the tenant's apps without a rule of their own
    role: str
    backend: str
    action: str  # "delete" | "erase_payloads"
    storage_classes: tuple[str, ...] | None
    cutoff: str  # RFC 3339: events strictly older were affected
    count: int = 0
    error: str | None = None


@dataclass
class RetentionResult:
    dry_run: bool
    now: dt.datetime
    tenants: list[str] = field(default_factory=list)
    sweeps: list[Sweep] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    records: list[str] = field(default_factory=list)  # event ids of retention_applied records
    disk: Settled | None = None  # what may be left in local files (None on a dry run)

    @property
    def failures(self) -> list[Sweep]:
        return [s for s in self.sweeps if s.error is not None]

    @property
    def warnings(self) -> list[str]:
        """Deleted values that may still be on disk (a reader's snapshot kept a WAL)."""
        return [] if self.disk is None else self.disk.warnings()

    @property
    def ok(self) -> bool:
        return not self.failures and not self.warnings

    def totals(self) -> dict[str, int]:
        """Events deleted (or payloads erased) per role, over every tenant."""
        totals: dict[str, int] = {}
        for sweep in self.sweeps:
            totals[sweep.role] = totals.get(sweep.role, 0) + sweep.count
        return totals

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "now": self.now.isoformat(),
            "tenants": self.tenants,
            "totals": self.totals(),
            "held": self.held,
            "sweeps": [asdict(s) for s in self.sweeps],
            "failures": [f"{s.backend} ({s.role}): {s.error}" for s in self.failures],
            "warnings": self.warnings,
            "residue": [] if self.disk is None else self.disk.as_dict(),
            "records": self.records,
        }


def apply(
    *,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    clock: Callable[[], dt.datetime] = utc_now,
    runtime: Runtime | None = None,
) -> RetentionResult:
    """Apply the configured retention to every tenant of every configured store.

    ``dry_run`` counts what would go and changes nothing (no audit record either). ``now`` (or
    ``clock``) is the moment cutoffs are measured from. A failing backend does not stop the
    others; it is named in ``result.failures`` and makes ``result.ok`` false. So does a
    reader's snapshot that keeps deleted values in a local SQLite WAL (``result.warnings``).
    """
    runtime = runtime or current()
    config = runtime.settings.retention
    moment = now or clock()
    effective_rules(config)  # a contradictory rule is a ConfigError before any store is read
    result = RetentionResult(dry_run, moment)
    result.tenants = _tenants(runtime, config, result)
    for tenant_id in result.tenants:  # every tenant's rules must hold up, before any change
        effective_rules(config, tenant_id)
    sweeper = _Pass(runtime, config, result)
    for tenant_id in result.tenants:
        sweeps = sweeper.tenant(tenant_id)
        if not dry_run:
            _record(runtime, tenant_id, sweeps, result)
    if not dry_run:
        result.disk = settle(runtime, "run `logkit retention apply` again")
    return result


def _tenants(runtime: Runtime, config: RetentionConfig, result: RetentionResult) -> list[str]:
    tenants = {r.tenant for r in config.rules if r.tenant is not None}
    for role, store in runtime.stores.items():
        try:
            tenants.update(store.tenant_ids())
        except SinkError as exc:  # that store's tenants go unswept: a failure, by name
            failed = Sweep("*", None, role.value, runtime.describe(role), "list_tenants", None, "")
            failed.error = str(exc)
            result.sweeps.append(failed)
    return sorted(tenants)


@dataclass
class _Pass:
    """One retention pass: the runtime it works on and the result it fills."""

    runtime: Runtime
    config: RetentionConfig
    result: RetentionResult

    def tenant(self, tenant_id: str) -> list[Sweep]:
        """Sweep one tenant: each app with a rule of its own, then the tenant's other apps."""
        if rule_for(self.config, tenant_id, None).legal_hold:  # its apps inherit the hold
            self.result.held.append(_scope(tenant_id, None))
            return []
        apps = apps_with_rules(self.config, tenant_id)
        scopes: list[tuple[str | None, Selector]]
        scopes = [(app, Selector(tenant_id, app_id=app)) for app in apps]
        scopes.append((None, Selector(tenant_id, other_apps=tuple(apps))))
        sweeps: list[Sweep] = []
        for app, scope in scopes:
            rule = rule_for(self.config, tenant_id, app)
            if rule.legal_hold:
                self.result.held.append(_scope(tenant_id, app))
                continue
            for role, store in self.runtime.stores.items():
                for sweep, selector in self.plan(role, scope, rule):
                    _run(store, sweep, selector, self.result.dry_run)
                    sweeps.append(sweep)
        self.result.sweeps.extend(sweeps)
        return sweeps

    def plan(
        self, role: Role, scope: Selector, rule: EffectiveRule
    ) -> list[tuple[Sweep, Selector]]:
        """What one store gets for one scope: the timeline holds copies of every class."""
        if role is Role.TIMELINE:
            kinds, action = ["ops", "cost", "audit"], "delete"
        elif role is Role.COST:
            kinds, action = ["cost"], "delete"
        else:
            kinds, action = ["audit"], "erase_payloads"
        planned = []
        for kind in kinds:
            cutoff = self.result.now - dt.timedelta(days=rule.days(kind))
            # The cost store and the audit chain hold one class only: no need to read bodies.
            classes = CLASSES[kind] if role is Role.TIMELINE else None
            selector = replace(scope, storage_classes=classes, before=cutoff)
            backend = self.runtime.describe(role)
            sweep = Sweep(
                scope.tenant_id,
                rule.app_id,
                role.value,
                backend,
                action,
                classes,
                cutoff.isoformat(),
            )
            planned.append((sweep, selector))
        return planned


def _run(store: Any, sweep: Sweep, selector: Selector, dry_run: bool) -> None:
    try:
        if sweep.action == "erase_payloads":
            if not isinstance(store, AuditStore):
                raise SinkError("the audit role's store keeps no chain: cannot erase payloads")
            sweep.count = store.erase_payloads(selector, dry_run=dry_run)
        else:
            sweep.count = store.count(selector) if dry_run else store.delete(selector)
    except SinkError as exc:
        sweep.error = str(exc)


def _record(runtime: Runtime, tenant_id: str, sweeps: list[Sweep], result: RetentionResult) -> None:
    """Chain what retention did to this tenant: counts per role and class, failures by name."""
    from logkit.auditing.write import record_operation

    counts: dict[str, int] = {}
    for sweep in sweeps:
        key = f"{sweep.role}:{'+'.join(sweep.storage_classes or ()) or sweep.role}"
        counts[key] = counts.get(key, 0) + sweep.count
    payload = {
        "counts": counts,
        # What `audit verify` needs to tell these erasures from tampering (see
        # logkit/auditing/erasures.py): per app, the time before which payloads were erased.
        "erased_before": _erased_before(runtime.settings.retention, tenant_id, sweeps),
        "cutoff_now": result.now.isoformat(),
        "held": [h for h in result.held if h.endswith(f"tenant {tenant_id}")],
        "failed": sorted({f"{s.backend} ({s.role})" for s in sweeps if s.error}),
    }
    event = record_operation(runtime, EventType.RETENTION_APPLIED, tenant_id, payload)
    result.records.append(event.event_id)


def _erased_before(
    config: RetentionConfig, tenant_id: str, sweeps: list[Sweep]
) -> list[dict[str, Any]]:
    others = apps_with_rules(config, tenant_id)
    return [
        {"app": s.app_id, "except_apps": [] if s.app_id else others, "before": s.cutoff}
        for s in sweeps
        if s.action == "erase_payloads"  # a failed sweep may have erased some: still named
    ]
