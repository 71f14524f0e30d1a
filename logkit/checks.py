"""``check-sinks``: resolve every role, refuse non-durable backends outside dev, and prove each
backend with a real round trip (write, read back, delete a probe event) within a time bound.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

from logkit.config import Settings
from logkit.envelope import Env, Event, EventType
from logkit.errors import ConfigError, LogkitError
from logkit.sinks.protocols import AUDIT_NEEDS_CHAINS, Backend, Query, Role, Selector
from logkit.sinks.registry import backend_class, open_backend

T = TypeVar("T")

PROBE_TENANT = "t_logkit_probe"


@dataclass
class SinkCheck:
    role: str
    uri: str | None
    backend: str
    ok: bool
    latency_ms: float | None = None
    problem: str | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


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


def probe_event(settings: Settings, role: Role) -> Event:
    storage = {Role.TIMELINE: "ops", Role.AUDIT: "audit", Role.COST: "cost"}[role]
    return Event(
        tenant_id=PROBE_TENANT,
        env=settings.env,
        project_id="p_logkit",
        surface_id="check-sinks",
        app_id="logkit",
        run_id="check-sinks",
        event_type=EventType.MESSAGE,
        storage_class=storage,
        payload={"probe": True},
    )


def round_trip(backend: Backend, role: Role, probe: Event) -> None:
    """Write a probe, read it back, and remove it (the audit chain keeps it: append-only)."""
    store = backend.store(role)
    store.write([probe])
    page = store.query(
        Query(tenant_id=PROBE_TENANT, run_id="check-sinks", limit=10_000, since=probe.ts)
    )
    if probe.event_id not in {e.event_id for e in page.events}:
        raise LogkitError("the probe event was written but could not be read back")
    if role is Role.AUDIT:
        return  # an audit chain is never deleted from; the probe chain records the checks
    removed = store.delete(Selector(tenant_id=PROBE_TENANT, event_ids=(probe.event_id,)))
    if removed != 1:
        raise LogkitError(f"deleting the probe event removed {removed} rows, expected 1")


def static_problem(settings: Settings, role: Role, uri: str | None) -> SinkCheck | None:
    """What is wrong without touching the network: unset, unknown, non-durable, wrong role."""
    if uri is None:
        return SinkCheck(role.value, None, "-", False, problem="no sink configured")
    try:
        cls = backend_class(uri)
    except ConfigError as exc:
        return SinkCheck(role.value, uri, "-", False, problem=str(exc))
    problem = None
    if not cls.durable and settings.env is not Env.DEV:
        problem = f"{cls.scheme} is not durable: refused in {settings.env.value}"
    elif role is Role.AUDIT and not getattr(cls, "chains", False):
        problem = AUDIT_NEEDS_CHAINS.format(scheme=cls.scheme)
    elif role not in cls.roles:
        problem = f"{cls.scheme} cannot hold the {role.value} role"
    return SinkCheck(role.value, uri, cls.scheme, False, problem=problem) if problem else None


def check_role(
    settings: Settings, role: Role, *, create: bool, timeout: float, backends: dict[str, Backend]
) -> SinkCheck:
    uri = settings.sink_uri(role)
    static = static_problem(settings, role, uri)
    if static is not None or uri is None:
        return static or SinkCheck(role.value, None, "-", False, problem="no sink configured")
    cls = backend_class(uri)
    started = time.perf_counter()
    try:
        if uri not in backends:
            backends[uri] = bounded(lambda: open_backend(uri), timeout)
        backend = backends[uri]
        problems = bounded(lambda: backend.check_schema(create=create), timeout)
        if problems:
            hint = "" if create else " (run with --create to create them)"
            return SinkCheck(
                role.value, uri, backend.describe(), False, problem="; ".join(problems) + hint
            )
        bounded(lambda: round_trip(backend, role, probe_event(settings, role)), timeout)
    except LogkitError as exc:
        return SinkCheck(role.value, uri, cls.scheme, False, problem=_one_line(exc))
    latency = (time.perf_counter() - started) * 1000
    note = None if cls.durable else "not durable: accepted in dev only"
    return SinkCheck(role.value, uri, backend.describe(), True, latency_ms=latency, note=note)


def check_sinks(
    settings: Settings, *, create: bool = False, timeout: float = 10.0
) -> list[SinkCheck]:
    """One SinkCheck per role, in role order; never raises for a backend problem."""
    backends: dict[str, Backend] = {}
    try:
        return [
            check_role(settings, role, create=create, timeout=timeout, backends=backends)
            for role in Role
        ]
    finally:
        for backend in backends.values():
            with contextlib.suppress(Exception):  # a broken client must not hide the report
                backend.close()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
