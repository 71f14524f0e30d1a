"""``check-sinks``: what ``logkit.configure()`` validates for the env, one line per concern, and
a real round trip to each backend within a time bound.

Lines: one per store role (resolved, durable outside dev, able to hold the role, a probe written,
read back and deleted), the live feed when one is configured (a probe appended, read back and
removed), then the redaction key (present, and a probe value really redacted),
the audit checkpoint keys (readable and parseable), the sealed-payload key provider (reachable:
the probe subject's key fetched), the service scope and the contract policy. Configure and
check-sinks call the same validators (:func:`validate_startup`), so a config that passes here
starts, and one that would die at start-up fails here first.

Probes live under the reserved tenant :data:`~logkit.envelope.PROBE_TENANT`, which no request
or principal can claim: the timeline and cost probes are deleted again; the audit probe, which an
append-only chain cannot delete, goes to that tenant's own chain and never into a customer's.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from logkit.config import Settings
from logkit.context import SERVICE_FIELDS
from logkit.envelope import PROBE_TENANT, Env, Event, EventType
from logkit.errors import ConfigError, LogkitError
from logkit.sinks.protocols import AUDIT_NEEDS_CHAINS, Backend, LiveFeed, Query, Role, Selector
from logkit.sinks.registry import backend_class, offers_feed, open_backend, open_feed

T = TypeVar("T")

PROBE_RUN = "check-sinks"
_PROBE_TEXT = "check-sinks probe: probe@example.com"


@dataclass
class SinkCheck:
    """One line of the report. ``role`` is set on the store lines only."""

    check: str
    kind: str  # "sink" | "keys" | "scope"
    ok: bool
    backend: str = "-"
    uri: str | None = None
    latency_ms: float | None = None
    problem: str | None = None
    note: str | None = None

    @property
    def role(self) -> str | None:
        return self.check if self.kind == "sink" else None

    def as_dict(self) -> dict[str, object]:
        return {"check": self.check, "kind": self.kind, "role": self.role, **_rest(self)}


def _rest(check: SinkCheck) -> dict[str, object]:
    fields = asdict(check)
    del fields["check"], fields["kind"]
    return fields


class CheckTimeoutError(LogkitError):
    """A backend did not answer within the check's time bound."""


def bounded(fn: Callable[[], T], timeout: float) -> T:
    """Run ``fn`` in a daemon thread; raise CheckTimeout if it has not returned in time."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True, name="logkit-check")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise CheckTimeoutError(f"no answer within {timeout:g}s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


# --- what configure() validates (it calls these too) -----------------------------------------


def validate_startup(settings: Settings) -> tuple[Any, Any]:
    """Everything start-up refuses, before anything is opened: the redaction gate (key and
    policies), the audit checkpoint keys, and an OTLP export without its packages. Returns the
    gate (default, per class)."""
    from logkit.redaction.policy import build_gate

    gate = build_gate(settings)
    audit_keys(settings)
    if settings.export.otlp is not None:  # [export] otlp needs the otlp extra installed
        from logkit.export.otlp import load_sdk

        load_sdk()
    return gate


def audit_keys(settings: Settings) -> Any:
    """The checkpoint keys, when any are configured (or outside dev); None in dev without any.

    Raises ConfigError for a key file that cannot be read or is not a key.
    """
    config = settings.audit
    configured = any(
        (
            config.hmac_key,
            config.hmac_key_file,
            config.ed25519_private_key_file,
            config.ed25519_public_key_file,
        )
    )
    if settings.env is Env.DEV and not configured:
        return None  # dev generates a local key on first use; nothing to read yet
    from logkit.auditing.checkpoint import load_keys

    return load_keys(config, settings.env)


# --- the lines ------------------------------------------------------------------------------


def probe_event(settings: Settings, role: Role) -> Event:
    storage = {Role.TIMELINE: "ops", Role.AUDIT: "audit", Role.COST: "cost"}[role]
    return Event(
        tenant_id=PROBE_TENANT,
        env=settings.env,
        project_id="p_logkit",
        surface_id="check-sinks",
        app_id="logkit",
        run_id=PROBE_RUN,
        event_type=EventType.MESSAGE,
        storage_class=storage,
        payload={"probe": True},
    )


def round_trip(backend: Backend, role: Role, probe: Event) -> None:
    """Write a probe, read it back, and remove it (the audit probe stays in the probe chain)."""
    store = backend.store(role)
    store.write([probe])
    page = store.query(
        Query(tenant_id=PROBE_TENANT, run_id=PROBE_RUN, limit=10_000, since=probe.ts)
    )
    if probe.event_id not in {e.event_id for e in page.events}:
        raise LogkitError("the probe event was written but could not be read back")
    if role is Role.AUDIT:
        return  # append-only: the reserved tenant's chain records the checks
    removed = store.delete(Selector(tenant_id=PROBE_TENANT, event_ids=(probe.event_id,)))
    if removed != 1:
        raise LogkitError(f"deleting the probe event removed {removed} rows, expected 1")


def static_problem(settings: Settings, role: Role, uri: str | None) -> SinkCheck | None:
    """What is wrong without touching the network: unset, unknown, non-durable, wrong role."""
    if uri is None:
        return SinkCheck(role.value, "sink", False, problem="no sink configured")
    try:
        cls = backend_class(uri)
    except ConfigError as exc:
        return SinkCheck(role.value, "sink", False, uri=uri, problem=str(exc))
    problem = None
    if not cls.durable and settings.env is not Env.DEV:
        problem = f"{cls.scheme} is not durable: refused in {settings.env.value}"
    elif role is Role.AUDIT and not getattr(cls, "chains", False):
        problem = AUDIT_NEEDS_CHAINS.format(scheme=cls.scheme)
    elif role not in cls.roles:
        problem = f"{cls.scheme} cannot hold the {role.value} role"
    if problem is None:
        return None
    return SinkCheck(role.value, "sink", False, backend=cls.scheme, uri=uri, problem=problem)


def check_role(
    settings: Settings, role: Role, *, create: bool, timeout: float, backends: dict[str, Backend]
) -> SinkCheck:
    uri = settings.sink_uri(role)
    static = static_problem(settings, role, uri)
    if static is not None or uri is None:
        return static or SinkCheck(role.value, "sink", False, problem="no sink configured")
    cls = backend_class(uri)
    started = time.perf_counter()
    try:
        if uri not in backends:
            backends[uri] = bounded(lambda: open_backend(uri), timeout)
        backend = backends[uri]
        problems = bounded(lambda: backend.check_schema(create=create), timeout)
        if problems:
            hint = "" if create else " (run with --create to create them)"
            problem = "; ".join(problems) + hint
            return SinkCheck(role.value, "sink", False, backend.describe(), uri, problem=problem)
        bounded(lambda: round_trip(backend, role, probe_event(settings, role)), timeout)
    except LogkitError as exc:
        return SinkCheck(role.value, "sink", False, cls.scheme, uri, problem=_one_line(exc))
    latency = _ms_since(started)
    note = None if cls.durable else "not durable: accepted in dev only"
    return SinkCheck(role.value, "sink", True, backend.describe(), uri, latency, note=note)


def check_feed(settings: Settings, uri: str, timeout: float) -> SinkCheck:
    """The live feed ([sinks] feed): a probe appended to the probe tenant's feed, read back
    after the feed's newest position, and removed again."""
    started = time.perf_counter()
    try:
        if not offers_feed(uri):
            problem = f"{backend_class(uri).scheme} cannot be the live feed"
            return SinkCheck("feed", "sink", False, uri=uri, problem=problem)
        feed = bounded(lambda: open_feed(uri, settings.stream), timeout)
    except LogkitError as exc:
        return SinkCheck("feed", "sink", False, uri=uri, problem=_one_line(exc))
    try:
        bounded(lambda: feed_round_trip(feed, probe_event(settings, Role.TIMELINE)), timeout)
    except LogkitError as exc:
        return SinkCheck("feed", "sink", False, feed.describe(), uri, problem=_one_line(exc))
    finally:
        with contextlib.suppress(Exception):
            feed.close()
    return SinkCheck("feed", "sink", True, feed.describe(), uri, _ms_since(started))


def feed_round_trip(feed: LiveFeed, probe: Event) -> None:
    _, newest = feed.feed_bounds(PROBE_TENANT)
    feed.append([probe])
    rows, _ = feed.feed_after(PROBE_TENANT, newest, run_id=PROBE_RUN, limit=10_000)
    if not any(probe.event_id in row.body for row in rows):
        raise LogkitError("the probe event was appended but could not be read back")
    feed.delete(Selector(tenant_id=PROBE_TENANT, event_ids=(probe.event_id,)))


def check_redaction(settings: Settings) -> SinkCheck:
    """The gate configure() builds, and a probe value through it: the key is there and works."""
    from logkit.redaction.policy import build_gate

    started = time.perf_counter()
    try:
        default, per_class = build_gate(settings)
        redacted, _ = default.redact({"probe": _PROBE_TEXT}, tenant_id=PROBE_TENANT)
    except LogkitError as exc:
        return SinkCheck("redaction key", "keys", False, problem=_one_line(exc))
    policies = sorted({default.policy, *(r.policy for r in per_class.values())})
    detail = "policies: " + ", ".join(policies)
    if "probe@example.com" in str(redacted) and default.policy != "none":
        problem = "the gate left a probe email in place"
        return SinkCheck("redaction key", "keys", False, detail, problem=problem)
    return SinkCheck("redaction key", "keys", True, detail, latency_ms=_ms_since(started))


def check_audit_keys(settings: Settings) -> SinkCheck:
    started = time.perf_counter()
    try:
        keys = audit_keys(settings)
    except LogkitError as exc:
        return SinkCheck("audit keys", "keys", False, problem=_one_line(exc))
    if keys is None:
        generated = "dev: a local HMAC key is generated on first use"
        return SinkCheck("audit keys", "keys", True, "-", note=generated)
    signer = keys.signer[0] if keys.signer else "none"
    detail = f"signing: {signer}; verifying keys: {len(keys.verifiers)}"
    unsigned = None if keys.signer else "no signing key: `audit checkpoint` cannot sign here"
    return SinkCheck(
        "audit keys", "keys", True, detail, latency_ms=_ms_since(started), note=unsigned
    )


def check_sealing(settings: Settings, timeout: float) -> SinkCheck:
    """The sealed-payload key provider answers for the probe subject (kept for the next run)."""
    from logkit.redaction.policy import key_provider
    from logkit.redaction.sealing import subject_of

    started = time.perf_counter()
    try:
        provider = key_provider(settings)
        key = bounded(lambda: provider.key(subject_of(PROBE_TENANT, None), create=True), timeout)
    except (LogkitError, OSError, ValueError) as exc:
        return SinkCheck("sealed-payload keys", "keys", False, problem=_one_line(exc))
    name = type(provider).__name__
    if not key:
        problem = "the provider gave no key for the probe subject"
        return SinkCheck("sealed-payload keys", "keys", False, name, problem=problem)
    return SinkCheck("sealed-payload keys", "keys", True, name, latency_ms=_ms_since(started))


def check_scope(settings: Settings) -> list[SinkCheck]:
    """The service scope and the contract policy the process will run with (informational)."""
    fixed = settings.service_scope()
    detail = " ".join(f"{k}={fixed.get(k, '-')}" for k in SERVICE_FIELDS)
    unset = [k for k in ("project_id", "app_id") if k not in fixed]
    note = (
        f"{', '.join(unset)} not fixed by [service]: the code, a principal or trusted headers "
        "must give them"
        if unset
        else None
    )
    policy = settings.contract.policy(settings.env)
    source = "set" if settings.contract.on_violation else f"default for {settings.env.value}"
    return [
        SinkCheck("service scope", "scope", True, detail, note=note),
        SinkCheck("contract policy", "scope", True, f"on_violation={policy} ({source})"),
    ]


def check_sinks(
    settings: Settings, *, create: bool = False, timeout: float = 10.0
) -> list[SinkCheck]:
    """Every line, stores first (role order); never raises for a backend or key problem."""
    backends: dict[str, Backend] = {}
    try:
        lines = [
            check_role(settings, role, create=create, timeout=timeout, backends=backends)
            for role in Role
        ]
    finally:
        for backend in backends.values():
            with contextlib.suppress(Exception):  # a broken client must not hide the report
                backend.close()
    if settings.sinks.feed is not None:
        lines.append(check_feed(settings, settings.sinks.feed, timeout))
    lines.append(check_redaction(settings))
    lines.append(check_audit_keys(settings))
    lines.append(check_sealing(settings, timeout))
    lines.extend(check_scope(settings))
    return lines


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
