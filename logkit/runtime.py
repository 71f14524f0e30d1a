"""The configured runtime: settings -> backends -> stores -> dispatchers -> router.

:func:`configure` builds it and installs the router as the pipeline's output; the first emit
configures from file/environment/defaults if nobody called it. :func:`flush` drains. At
interpreter exit, and on SIGTERM (a handler is installed when nothing else handles it), every
event not yet acknowledged by a backend is in the spool within ``dispatch.shutdown_spool_s``,
and draining goes on for what is left of ``dispatch.shutdown_timeout_s``.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from logkit.closing import Deadline, close_all
from logkit.config import DispatchConfig, Settings, load_settings
from logkit.context import set_service_scope
from logkit.contract import set_contract_policy
from logkit.dispatch import Dispatcher
from logkit.envelope import Env, warm_up
from logkit.errors import ConfigError, LogkitError
from logkit.feeding import FeedWriter
from logkit.pipeline import PIPELINE, Output
from logkit.redaction.gate import set_redactor
from logkit.redaction.policy import key_provider
from logkit.redaction.sealing import KeyProvider
from logkit.routing import Router
from logkit.sinks.protocols import AUDIT_NEEDS_CHAINS, Backend, EventStore, LiveFeed, Role
from logkit.sinks.registry import backend_class, offers_feed, open_backend, open_feed
from logkit.spool import Spool
from logkit.spooldir import Adopter, FileClaim, own_spool

if TYPE_CHECKING:
    from logkit.export.otlp import OtlpExporter

log = logging.getLogger("logkit.runtime")


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
    # With dispatch.spool_dir: this process's claim on its own spool file, and the thread
    # that adopts the files of processes that are gone.
    spool_claim: FileClaim | None = None
    adopter: Adopter | None = None
    # [export] otlp: a pipeline output beside the router (logkit.export).
    exporter: OtlpExporter | None = None
    # With [sinks] feed: the live feed (Redis Streams) and the writer the router feeds.
    feed: LiveFeed | None = None
    feed_writer: FeedWriter | None = None

    def outputs(self) -> list[Output]:
        """What this runtime hands the pipeline: the router, and the OTLP exporter if any."""
        return [self.router] if self.exporter is None else [self.router, self.exporter]

    def describe(self, role: Role) -> str:
        """The role's backend in one credential-free line (for reports and errors)."""
        uri = self.uris.get(role)
        backend = self.backends.get(uri) if uri is not None else None
        return backend.describe() if backend is not None else f"no {role.value} store"

    def flush(self, timeout: float | None = None) -> bool:
        """Drain every dispatcher; ``timeout`` bounds the whole flush, not each dispatcher."""
        deadline = Deadline(timeout)
        stored = all([d.flush(deadline.left()) for d in self.dispatchers.values()])
        fed = self.feed_writer is None or self.feed_writer.flush(deadline.left())
        exported = self.exporter is None or self.exporter.flush(deadline.left())
        return stored and fed and exported

    def close(self, timeout: float | None = None) -> bool:
        """Spool what is unacknowledged (within ``shutdown_spool_s``), drain for the rest of
        ``timeout``, close everything. True when every event is stored or spooled."""
        if self.adopter is not None:
            self.adopter.stop()
        deadline = Deadline(timeout)
        if self.feed_writer is not None:  # a live view: a short bound, the stores come first
            self.feed_writer.close(min(timeout or 1.0, self.settings.stream.feed_timeout_s))
        drained = close_all(list(self.dispatchers.values()), timeout)
        if self.feed is not None:
            self.feed.close()
        if self.exporter is not None:  # a copy: what it cannot send in time is counted, not kept
            self.exporter.close(deadline.left())
        for backend in self.backends.values():
            backend.close()
        close_keys = getattr(self.keys, "close", None)
        if close_keys is not None:  # a store-backed key provider holds its own connections
            close_keys()
        self._release_spool()
        return drained

    def _release_spool(self) -> None:
        """Close the spool; an own file in spool_dir is deleted when empty, else left for
        whichever process adopts it next."""
        empty = False
        if self.spool_claim is not None:
            try:
                empty = self.spool.count() == 0 and self.spool.dead_count() == 0
            except LogkitError:
                empty = False
        self.spool.close()
        if self.spool_claim is not None:
            self.spool_claim.release(delete=empty)


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
        if role not in cls.roles:
            problems.append(f"{cls.scheme} cannot hold the {role.value} role")
        elif role is Role.AUDIT and not getattr(cls, "chains", False):
            problems.append(AUDIT_NEEDS_CHAINS.format(scheme=cls.scheme))
        if settings.env is not Env.DEV and not cls.durable:
            problems.append(f"role {role.value!r} uses non-durable {uri!r} in {settings.env.value}")
        uris[role] = uri
    feed = settings.sinks.feed
    if feed is not None and not offers_feed(feed):
        problems.append(f"sinks.feed: {backend_class(feed).scheme} cannot be the live feed")
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
    spool, claim = open_spool(settings.dispatch)
    dispatchers = {
        role: Dispatcher(f"{uri}#{role.value}", stores[role], spool, settings.dispatch)
        for role, uri in uris.items()
    }
    feed = writer = None
    if settings.sinks.feed is not None:
        feed = open_feed(settings.sinks.feed, settings.stream)
        writer = FeedWriter(feed, settings.stream)
    runtime = Runtime(
        settings,
        backends,
        stores,
        dispatchers,
        Router(dispatchers, writer),
        spool,
        uris,
        key_provider(settings),
        spool_claim=claim,
        feed=feed,
        feed_writer=writer,
    )
    if settings.export.otlp is not None:
        from logkit.export.otlp import OtlpExporter

        runtime.exporter = OtlpExporter(settings.export, settings.service_scope())
    if settings.dispatch.spool_dir is not None:

        def replay_adopted() -> None:
            for dispatcher in dispatchers.values():
                dispatcher.wake_replay()

        directory = Path(settings.dispatch.spool_dir)
        interval = settings.dispatch.adopt_interval_s
        runtime.adopter = Adopter(spool, directory, interval, replay_adopted)
    return runtime


def open_spool(config: DispatchConfig) -> tuple[Spool, FileClaim | None]:
    """``spool_path``, or with ``spool_dir`` a new file of this process claimed there."""
    if config.spool_dir is None:
        return Spool(Path(config.spool_path)), None
    try:
        return own_spool(Path(config.spool_dir))
    except OSError as exc:
        raise ConfigError(f"dispatch.spool_dir {config.spool_dir} is unusable: {exc}") from None


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
            for output in previous.outputs():
                PIPELINE.remove_output(output)
        for output in runtime.outputs():
            PIPELINE.add_output(output)
        PIPELINE.configured = True
        if not _atexit_registered:
            atexit.register(_shutdown)
            _atexit_registered = True
    if settings.dispatch.handle_sigterm:
        _install_sigterm_handler()
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
            for output in runtime.outputs():
                PIPELINE.remove_output(output)
        PIPELINE.configured = False
    if runtime is None:
        return True
    return runtime.close(
        runtime.settings.dispatch.shutdown_timeout_s if timeout is None else timeout
    )


def _shutdown() -> None:
    shutdown()


def _install_sigterm_handler() -> None:
    """Make SIGTERM keep what is queued (main thread only; a handler already there is kept
    and called after ours, so a server's graceful shutdown still happens)."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        current = signal.getsignal(signal.SIGTERM)
        if isinstance(current, _SigtermHandler) or current in (signal.SIG_IGN, None):
            return
        signal.signal(signal.SIGTERM, _SigtermHandler(current))
    except (ValueError, OSError):  # no signals here (an embedded interpreter)
        return


class _SigtermHandler:
    """Over the default action: shut down (spool within ``shutdown_spool_s``, drain), then
    end as SIGTERM would have. Ahead of another handler (uvicorn's graceful shutdown, which
    later ends the process with the default action, no exit hooks): spool what is queued now
    and make every later emit synchronous (``durability = "spool"``), then let it go on."""

    def __init__(self, previous: Any) -> None:
        self.previous = previous

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if callable(self.previous):
            _secure()
            self.previous(signum, frame)
            return
        try:
            shutdown()
        except Exception as exc:  # ending the process matters more than a clean report
            log.error("logkit: shutdown on SIGTERM failed: %s", type(exc).__name__)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _secure() -> None:
    with _lock:
        runtime = _runtime
    if runtime is None:
        return
    try:
        for dispatcher in runtime.dispatchers.values():
            dispatcher.secure(runtime.settings.dispatch.shutdown_spool_s)
    except Exception as exc:  # the other handler must run whatever happens here
        log.error("logkit: spooling on SIGTERM failed: %s", type(exc).__name__)
