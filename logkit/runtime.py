"""The configured runtime: settings -> backends -> stores -> dispatchers -> router.

:func:`configure` builds it and installs the router as the pipeline's output; the first emit
configures from file/environment/defaults if nobody called it. :func:`flush` drains, and
interpreter shutdown flushes within ``dispatch.shutdown_timeout_s``.
"""

from __future__ import annotations

import atexit
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logkit.config import Settings, load_settings
from logkit.context import set_service_scope
from logkit.contract import set_contract_policy
from logkit.dispatch import Dispatcher
from logkit.envelope import Env, warm_up
from logkit.errors import ConfigError
from logkit.pipeline import PIPELINE
from logkit.redaction.gate import set_redactor
from logkit.redaction.policy import key_provider
from logkit.redaction.sealing import KeyProvider
from logkit.routing import Router
from logkit.sinks.protocols import AUDIT_NEEDS_CHAINS, Backend, EventStore, Role
from logkit.sinks.registry import backend_class, open_backend
from logkit.spool import Spool


@dataclass
class Runtime:
    settings: Settings
    backends: dict[str, Backend]
    stores: dict[Role, EventStore]
    dispatchers: dict[Role, Dispatcher]
    router: Router
    spool: Spool
    uris: dict[Role, str] = field(default_factory=dict)
    keys: KeyProvider | None = None  # keys of sealed raw payloads

    def describe(self, role: Role) -> str:
        """The role's backend in one credential-free line (for reports and errors)."""
        uri = self.uris.get(role)
        backend = self.backends.get(uri) if uri is not None else None
        return backend.describe() if backend is not None else f"no {role.value} store"

    def flush(self, timeout: float | None = None) -> bool:
        """Drain every dispatcher; ``timeout`` bounds the whole flush, not each dispatcher."""
        deadline = _Deadline(timeout)
        return all([d.flush(deadline.left()) for d in self.dispatchers.values()])

    def close(self, timeout: float | None = None) -> bool:
        deadline = _Deadline(timeout)
        drained = all([d.close(deadline.left()) for d in self.dispatchers.values()])
        for backend in self.backends.values():
            backend.close()
        self.spool.close()
        return drained


class _Deadline:
    """What is left of one time budget shared by several waits (None: no bound)."""

    def __init__(self, timeout: float | None) -> None:
        self._end = None if timeout is None else time.monotonic() + timeout

    def left(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - time.monotonic())


_lock = threading.RLock()
_runtime: Runtime | None = None
_atexit_registered = False


def validate_sinks(settings: Settings) -> dict[Role, str]:
    """Every role's URI; outside dev each must be set and durable (no in-memory fallback)."""
    uris: dict[Role, str] = {}
    problems: list[str] = []
    for role in Role:
        uri = settings.sink_uri(role)
        if uri is None:
            problems.append(f"no sink configured for role {role.value!r}")
            continue
        cls = backend_class(uri)
        if role is Role.AUDIT and not getattr(cls, "chains", False):
            problems.append(AUDIT_NEEDS_CHAINS.format(scheme=cls.scheme))
        if settings.env is not Env.DEV and not cls.durable:
            problems.append(f"role {role.value!r} uses non-durable {uri!r} in {settings.env.value}")
        uris[role] = uri
    if problems:
        raise ConfigError("; ".join(problems))
    return uris


def build(settings: Settings) -> Runtime:
    uris = validate_sinks(settings)
    backends: dict[str, Backend] = {}
    for uri in uris.values():
        if uri not in backends:
            backends[uri] = open_backend(uri)
    stores = {role: backends[uri].store(role) for role, uri in uris.items()}
    spool = Spool(Path(settings.dispatch.spool_path))
    dispatchers = {
        role: Dispatcher(f"{uri}#{role.value}", stores[role], spool, settings.dispatch)
        for role, uri in uris.items()
    }
    return Runtime(
        settings,
        backends,
        stores,
        dispatchers,
        Router(dispatchers),
        spool,
        uris,
        key_provider(settings),
    )


def configure(config_path: str | Path | None = None, **overrides: Any) -> Runtime:
    """Set logkit up explicitly (file, ``LOGKIT_*`` env, then ``overrides``); returns the runtime.

    Outside ``dev`` every role must resolve to a durable backend, or this raises ConfigError;
    so do a missing redaction key and unreadable audit keys (``logkit check-sinks`` runs the
    same validators). Installs the service scope (``env`` and ``[service]``) under every event
    and the contract policy. A previous runtime is flushed and closed first.
    """
    global _runtime, _atexit_registered  # noqa: PLW0603 - one runtime per process
    from logkit.checks import validate_startup

    settings = load_settings(config_path, **overrides)
    validate_sinks(settings)  # fail fast, sinks first, before anything is opened
    default_redactor, per_class = validate_startup(settings)
    runtime = build(settings)
    set_redactor(default_redactor, per_class=per_class)
    set_service_scope(settings.service_scope())
    set_contract_policy(settings.contract.policy(settings.env), strict_audit=settings.audit.strict)
    warm_up()  # configure() runs at start-up: pay for the envelope's validator there
    with _lock:
        previous, _runtime = _runtime, runtime
        if previous is not None:
            PIPELINE.remove_output(previous.router)
        PIPELINE.add_output(runtime.router)
        PIPELINE.configured = True
        if not _atexit_registered:
            atexit.register(_shutdown)
            _atexit_registered = True
    if previous is not None:
        previous.close(previous.settings.dispatch.shutdown_timeout_s)
    return runtime


def ensure_configured() -> Runtime:
    with _lock:
        if _runtime is not None:
            return _runtime
        return configure()


def current() -> Runtime:
    return ensure_configured()


def flush(timeout: float | None = None) -> bool:
    """Drain every dispatcher to its store (or the spool); False if ``timeout`` passed first."""
    with _lock:
        runtime = _runtime
    return True if runtime is None else runtime.flush(timeout)


def shutdown(timeout: float | None = None) -> bool:
    """Flush and close the runtime; the next emit configures a new one."""
    global _runtime
    with _lock:
        runtime, _runtime = _runtime, None
        if runtime is not None:
            PIPELINE.remove_output(runtime.router)
        PIPELINE.configured = False
    if runtime is None:
        return True
    return runtime.close(
        runtime.settings.dispatch.shutdown_timeout_s if timeout is None else timeout
    )


def _shutdown() -> None:
    shutdown()
