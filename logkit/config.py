"""Settings: ``logkit.toml`` plus ``LOGKIT_*`` environment overrides, parsed once.

Precedence: explicit arguments to :func:`logkit.configure`, then ``LOGKIT_*`` variables
(nested with ``__``, e.g. ``LOGKIT_SINKS__AUDIT``), then the file named by ``--config`` /
``LOGKIT_CONFIG``, then defaults. With no configuration at all logkit runs in ``dev`` on SQLite
at ``./.logkit/logkit.db``.

Relative paths written in ``logkit.toml`` (files, directories, ``sqlite:///`` URIs) are read
from the file's own directory, whatever the working directory; relative paths from the
environment and the defaults stay relative to the working directory. With every store in memory
(``memory://``, dev: tests), the files logkit would keep beside them (spool, dev keys, verify
state) go to a temporary directory of the process, removed at exit: nothing is written to
``./.logkit``.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from logkit.envelope import Env
from logkit.errors import ConfigError
from logkit.sinks.protocols import Role

DEFAULT_SQLITE_URI = "sqlite:///.logkit/logkit.db"
CONFIG_ENV_VAR = "LOGKIT_CONFIG"
Signal = Literal["traces", "logs"]
_BASE_URL = re.compile(r"https?://[^\s/?#@]+(/[^\s?#]*)?")


class SinksConfig(BaseModel):
    """One URI per store role."""

    model_config = ConfigDict(extra="forbid")

    timeline: str | None = None
    audit: str | None = None
    cost: str | None = None
    # The live feed every writing process appends to and every `logkit serve` replica reads:
    # redis://HOST:PORT/DB or rediss://... (Redis Streams; docs/stream.md). Unset: the stream
    # reads the timeline store itself (SQLite), within one machine.
    feed: str | None = None

    def uri(self, role: Role) -> str | None:
        value: str | None = getattr(self, Role(role).value)
        return value


class DispatchConfig(BaseModel):
    """Batching, retry and spooling: shared by every backend (declared once)."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(2_000, ge=1, le=10_000)
    flush_interval_s: float = Field(0.25, gt=0, le=60)
    queue_size: int = Field(100_000, ge=1)
    # The longest an emit may wait for room in a full queue before it writes its event to the
    # spool itself; a full queue never drops an event.
    max_block_s: float = Field(0.05, ge=0, le=10)
    retry_attempts: int = Field(3, ge=1, le=20)
    retry_initial_s: float = Field(0.05, ge=0)
    retry_max_s: float = Field(2.0, ge=0)
    replay_interval_s: float = Field(1.0, gt=0)
    spool_path: Path = Path(".logkit/spool.db")
    # A directory several processes or instances share (a mounted volume on Cloud Run): each
    # process writes its own spool file there and adopts the files of processes that are gone,
    # one claimant per file. When set, it replaces spool_path.
    spool_dir: Path | None = None
    # How often a process looks for spool files left in spool_dir by processes that are gone.
    adopt_interval_s: float = Field(30.0, gt=0)
    # memory: emit returns once the event is queued (a kill -9 can lose the last moments).
    # spool: emit returns once the event is committed to the local spool (group commit).
    durability: Literal["memory", "spool"] = "memory"
    # At exit or SIGTERM, everything not yet acknowledged by a backend is in the spool within
    # shutdown_spool_s, whatever the backends do; draining to the backends then goes on for
    # what is left of shutdown_timeout_s (Cloud Run allows 10 s after SIGTERM).
    shutdown_spool_s: float = Field(2.0, gt=0, le=30)
    shutdown_timeout_s: float = Field(10.0, ge=0)
    # Install a SIGTERM handler that spools and drains before the process ends (main thread,
    # only when nothing else handles SIGTERM yet).
    handle_sigterm: bool = True
    # Bound on one backend operation (network timeouts), and on each check-sinks probe.
    timeout_s: float = Field(10.0, gt=0)


class AuditConfig(BaseModel):
    """The audit chain: strictness of the write path and the checkpoint keys."""

    model_config = ConfigDict(extra="forbid")

    # strict: logkit.audit() raises when the chain store cannot append; otherwise the event
    # is spooled and chained when the store is back.
    strict: bool = False
    # HMAC-SHA256 checkpoint key (LOGKIT_AUDIT__HMAC_KEY), or a file holding it.
    hmac_key: SecretStr | None = None
    hmac_key_file: Path | None = None
    # Ed25519: the signer holds the private key; verifiers need only the public one.
    ed25519_private_key_file: Path | None = None
    ed25519_public_key_file: Path | None = None
    # Retired keys, kept to verify the checkpoints they signed (key rotation): HMAC secrets
    # (LOGKIT_AUDIT__VERIFY_HMAC_KEYS='["old-secret"]') and Ed25519 public key files.
    verify_hmac_keys: list[SecretStr] = Field(default_factory=list)
    verify_hmac_key_files: list[Path] = Field(default_factory=list)
    verify_ed25519_public_key_files: list[Path] = Field(default_factory=list)
    # The longest logkit.audit() retries an audit store that does not answer (e.g. a locked
    # SQLite file) before it spools the record, or with strict raises AuditUnavailable.
    append_timeout_s: float = Field(2.0, gt=0, le=60)
    # Where `audit verify` remembers the newest checkpoint it accepted per chain (rollback).
    seen_state: Path = Path(".logkit/audit-seen.json")
    # dev only, when no key is configured: generated on first use, kept out of git.
    dev_hmac_key_file: Path = Path(".logkit/audit-hmac.key")


class RedactionConfig(BaseModel):
    """The redaction gate: pseudonym key, policies per storage class, payload encryption."""

    model_config = ConfigDict(extra="forbid")

    # Master key for the per-tenant pseudonym HMAC (LOGKIT_REDACTION__KEY), or a file with it.
    key: SecretStr | None = None
    key_file: Path | None = None
    # dev only, when no key is configured: generated on first use, kept out of git.
    dev_key_file: Path = Path(".logkit/redaction.key")
    # Policy id per storage class; "default" redacts every kind, "none" is refused outside dev.
    policies: dict[str, str] = Field(default_factory=dict)
    # Kinds left in place by a policy (e.g. {"ops-internal": ["ipv4"]}); never secrets.
    allow: dict[str, list[str]] = Field(default_factory=dict)
    # Keys of sealed raw payloads (docs/retention-dsar.md): "local" (a key directory), "store"
    # (keys wrapped under key_encryption_key in key_store, default the audit sink) or
    # "package.module:factory" (e.g. KMS). Unset: .logkit/keys in dev; elsewhere sealing fails.
    key_provider: str | None = None
    encryption_key_dir: Path | None = None  # "local"; setting it alone also means "local"
    key_store: str | None = None  # "store": sqlite:///... or firestore://...
    key_encryption_key: SecretStr | None = None  # "store": 32+ random bytes, or a file
    key_encryption_key_file: Path | None = None


class UsageConfig(BaseModel):
    """Cost of usage events: the built-in price table plus overrides."""

    model_config = ConfigDict(extra="forbid")

    # A TOML price table merged over the built-in one (same shape), e.g. negotiated prices.
    price_table: Path | None = None
    currency: str = "USD"


class StreamConfig(BaseModel):
    """The live stream (``logkit serve``, ``logkit.stream.create_app``)."""

    model_config = ConfigDict(extra="forbid")

    # A comment line at least this often keeps proxies from closing an idle stream (the
    # WHATWG spec suggests about every 15 seconds).
    heartbeat_s: float = Field(15.0, gt=0, le=15)
    # The reconnection delay EventSource clients are told (the SSE ``retry:`` field).
    retry_ms: int = Field(2_000, ge=0)
    # Live events held per subscriber; beyond it the subscriber reads from the store instead.
    buffer_events: int = Field(2_000, ge=1)
    # A client that takes longer than this to accept one write is disconnected; it resumes
    # from its last event id (Last-Event-ID / the cursor).
    send_timeout_s: float = Field(30.0, gt=0)
    # Polling of the store for what other processes stored (this process's own writes wake
    # the stream at once); the interval doubles while idle, up to the maximum.
    poll_min_s: float = Field(0.05, gt=0)
    poll_max_s: float = Field(0.5, gt=0, le=5)
    # Rows per store read, when catching up and when tailing.
    page_size: int = Field(2_000, ge=1, le=10_000)
    # --- the Redis feed ([sinks] feed) --------------------------------------------------------
    # Each tenant's stream keeps about this many entries (XADD's approximate MAXLEN) ...
    feed_maxlen: int = Field(100_000, ge=0)  # 0: no length limit
    # ... and entries younger than this (approximate MINID trimming); older cursors resume
    # from the timeline store.
    feed_max_age_s: float = Field(3_600.0, ge=0)  # 0: no age limit
    # The password when the URI has none (LOGKIT_STREAM__FEED_PASSWORD), or a file with it.
    feed_password: SecretStr | None = None
    feed_password_file: Path | None = None
    # Events waiting for the feed in a writing process; beyond it they are dropped from the
    # feed (counted, marked as a gap), never from the stores, and emit never waits.
    feed_queue: int = Field(50_000, ge=1)
    # Bound on one Redis command (connect, append, read) so an unreachable Redis costs the
    # feed's own thread this much, never the caller.
    feed_timeout_s: float = Field(1.0, gt=0, le=30)
    # A blocking read returns at least this often (XREAD BLOCK), to notice a dead connection.
    feed_block_s: float = Field(5.0, gt=0, le=60)


class ServiceConfig(BaseModel):
    """The service's own scope, fixed for the process (``[service]``, ``LOGKIT_SERVICE__*``).

    With ``env`` (the top-level setting) these are the base layer of every event; request
    headers never change them (docs/correlation.md). Unset ones are left to the code (``bind``)
    or, for a service that serves several, to a verified principal or trusted headers.
    """

    model_config = ConfigDict(extra="forbid")

    project_id: str | None = Field(None, min_length=1, max_length=256)
    app_id: str | None = Field(None, min_length=1, max_length=256)
    surface_id: str | None = Field(None, min_length=1, max_length=256)


class ContractConfig(BaseModel):
    """What an emit that breaks the event contract does (``[contract]``).

    ``raise``: a ContractError naming the fields (developers see it at once). ``record``: the
    event is kept as a ``contract_violation`` ops event naming what was missing, counted, and
    the caller goes on. Unset: ``raise`` in dev, ``record`` in staging and prod.
    """

    model_config = ConfigDict(extra="forbid")

    on_violation: Literal["raise", "record"] | None = None

    def policy(self, env: Env) -> Literal["raise", "record"]:
        if self.on_violation is not None:
            return self.on_violation
        return "raise" if env is Env.DEV else "record"


class RetentionRule(BaseModel):
    """Days to keep, for one tenant, one app, or one app of one tenant; unset fields inherit.

    ``legal_hold`` blocks every deletion in its scope: retention skips it and DSAR deletion is
    refused while it holds.
    """

    model_config = ConfigDict(extra="forbid")

    tenant: str | None = Field(None, pattern=r"^t_[a-z0-9_-]+$")
    app: str | None = Field(None, min_length=1, max_length=256)
    ops_days: int | None = Field(None, ge=1)
    cost_days: int | None = Field(None, ge=1)
    audit_days: int | None = Field(None, ge=1)
    legal_hold: bool = False


class RetentionConfig(BaseModel):
    """Retention: default days per storage class, and rules per tenant / app that override them.

    Ops events (and persisted stream events) and cost events are deleted once older than their
    days; audit records, which have their own longer rule, keep their place in the chain and
    lose their payload (erasure), and their timeline copies are deleted.
    """

    model_config = ConfigDict(extra="forbid")

    ops_days: int = Field(30, ge=1)
    cost_days: int = Field(400, ge=1)  # a year of invoices plus a reconciliation quarter
    audit_days: int = Field(2557, ge=1)  # seven years
    rules: list[RetentionRule] = Field(default_factory=list)


class ExportConfig(BaseModel):
    """OTLP export of logkit's own data (``[export]``, docs/otel.md).

    ``otlp`` is a base URL like ``OTEL_EXPORTER_OTLP_ENDPOINT``: ``/v1/traces`` and
    ``/v1/logs`` are appended. Headers (an API key, a tenant header) come from the environment
    as OpenTelemetry reads them: ``OTEL_EXPORTER_OTLP_HEADERS``, or per signal
    ``OTEL_EXPORTER_OTLP_TRACES_HEADERS`` / ``OTEL_EXPORTER_OTLP_LOGS_HEADERS``; never from this
    file. Export is a copy of what the stores keep: a bounded queue whose overflow is dropped
    and counted, never a wait in ``emit``; ``logkit export otlp --run`` re-sends history.
    """

    model_config = ConfigDict(extra="forbid")

    otlp: str | None = None
    # traces: flows, steps, tool and model calls as spans; logs: every event as a log record.
    signals: list[Signal] = Field(default_factory=lambda: list[Signal](["traces"]))
    # Resource attributes (service.name defaults to [service].app_id; OTEL_RESOURCE_ATTRIBUTES
    # and OTEL_SERVICE_NAME are read too), e.g. {"openinference.project.name" = "support"}.
    resource: dict[str, str] = Field(default_factory=dict)
    batch_size: int = Field(512, ge=1, le=10_000)
    queue_size: int = Field(20_000, ge=1)
    flush_interval_s: float = Field(1.0, gt=0, le=60)
    # One export request, retries included (the OTLP exporter's own backoff).
    timeout_s: float = Field(5.0, gt=0, le=60)
    # A batch the backend keeps refusing is dropped (and counted) after this many attempts.
    attempts: int = Field(4, ge=1, le=20)

    @field_validator("otlp")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is not None and not _BASE_URL.fullmatch(value):
            raise ValueError("a base URL like http://HOST:4318 (signal paths are appended)")
        return value.rstrip("/") if value is not None else None


class Settings(BaseSettings):
    """All of logkit's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="LOGKIT_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    env: Env = Env.DEV
    sinks: SinksConfig = SinksConfig()
    dispatch: DispatchConfig = DispatchConfig()
    audit: AuditConfig = AuditConfig()
    redaction: RedactionConfig = RedactionConfig()
    usage: UsageConfig = UsageConfig()
    stream: StreamConfig = StreamConfig()
    retention: RetentionConfig = RetentionConfig()
    service: ServiceConfig = ServiceConfig()
    contract: ContractConfig = ContractConfig()
    export: ExportConfig = ExportConfig()
    gcp_project: str | None = None
    # `logkit codemod`'s own [codemod] table (loggers, sinks, hooks, storage: codemods/config.py
    # validates it); declared so that a logkit.toml carrying it still loads here.
    codemod: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    @model_validator(mode="after")
    def _nothing_on_disk_for_memory(self) -> Settings:
        """Every store in memory (dev): keep the spool and dev keys in a temporary directory."""
        if self.env is not Env.DEV or not all(
            (self.sink_uri(role) or "").startswith("memory://") for role in Role
        ):
            return self
        scratch = _scratch_dir()
        dispatch, audit, redaction = self.dispatch, self.audit, self.redaction
        if not {"spool_path", "spool_dir"} & dispatch.model_fields_set:
            self.dispatch = dispatch.model_copy(update={"spool_path": scratch / "spool.db"})
        self.audit = audit.model_copy(
            update=_unset(
                audit,
                {
                    "dev_hmac_key_file": scratch / "audit-hmac.key",
                    "seen_state": scratch / "audit-seen.json",
                },
            )
        )
        update = _unset(redaction, {"dev_key_file": scratch / "redaction.key"})
        if not {"key_provider", "encryption_key_dir"} & redaction.model_fields_set:
            update["encryption_key_dir"] = scratch / "keys"
        self.redaction = redaction.model_copy(update=update)
        return self

    def service_scope(self) -> dict[str, Any]:
        """The scope this process fixes: ``env`` and whatever ``[service]`` sets."""
        return {"env": self.env, **self.service.model_dump(exclude_none=True)}

    def sink_uri(self, role: Role) -> str | None:
        """The role's URI.

        With no sinks configured at all, dev uses the SQLite default for every role. An unset
        cost role shares the timeline's backend (usage is timeline-shaped data; a durable
        default, never an in-memory one). Anything else unset stays None: an error outside dev.
        """
        uri = self.sinks.uri(role)
        if uri is None and self.env is Env.DEV and not any(self.sinks.uri(r) for r in Role):
            return DEFAULT_SQLITE_URI
        if uri is None and Role(role) is Role.COST:
            return self.sinks.timeline
        return uri


_scratch: Path | None = None


def _scratch_dir() -> Path:
    """This process's temporary directory for a memory-only configuration (removed at exit)."""
    global _scratch  # noqa: PLW0603 - one per process
    if _scratch is None or not _scratch.is_dir():
        _scratch = Path(tempfile.mkdtemp(prefix="logkit-memory-"))
        atexit.register(shutil.rmtree, _scratch, ignore_errors=True)
    return _scratch


def _unset(model: BaseModel, values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in model.model_fields_set}


class _TomlSource(PydanticBaseSettingsSource):
    """The TOML file named by ``LOGKIT_CONFIG`` (set from ``--config`` by the CLI)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get(CONFIG_ENV_VAR)
        if not path:
            return {}
        data = read_toml(Path(path))
        return resolve_paths(data, Path(path).absolute().parent)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.start} cannot be decoded)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None


# --- relative paths in the file: from the file's directory ---------------------------------------

_URI_FIELDS = {"sinks": ("timeline", "audit", "cost"), "redaction": ("key_store",)}


def resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """``data`` (a parsed logkit.toml) with its relative paths and ``sqlite:///`` URIs made
    absolute against ``base``, the file's directory. Values of the wrong type are left for
    validation to report."""
    resolved = dict(data)
    for name, field in Settings.model_fields.items():
        section = resolved.get(name)
        model = field.annotation
        if not isinstance(section, dict) or not (
            isinstance(model, type) and issubclass(model, BaseModel)
        ):
            continue
        section = dict(section)
        for key, sub in model.model_fields.items():
            if key in section and _is_path(sub.annotation):
                section[key] = _resolved(section[key], base)
        for key in _URI_FIELDS.get(name, ()):
            if isinstance(section.get(key), str):
                section[key] = _resolved_uri(section[key], base)
        resolved[name] = section
    return resolved


def _is_path(annotation: Any) -> bool:
    if annotation is Path:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list):
        return any(_is_path(arg) for arg in typing.get_args(annotation))
    return False


def _resolved(value: Any, base: Path) -> Any:
    if isinstance(value, list):
        return [_resolved(v, base) for v in value]
    if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
        return str(base / value)
    if isinstance(value, str):
        return str(Path(value).expanduser())
    return value


def _resolved_uri(uri: str, base: Path) -> str:
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri.startswith(prefix + "/") or uri == prefix:
        return uri  # absolute (sqlite:////abs), another scheme, or malformed: as it is
    return f"{prefix}{base / uri[len(prefix) :]}"


def load_settings(config_path: str | Path | None = None, **overrides: Any) -> Settings:
    """Parse settings once from the file, the environment and ``overrides``."""
    previous = os.environ.get(CONFIG_ENV_VAR)
    if config_path is not None:
        os.environ[CONFIG_ENV_VAR] = str(config_path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        )
        raise ConfigError(f"invalid logkit configuration: {problems}") from None
    finally:
        if config_path is not None:
            if previous is None:
                os.environ.pop(CONFIG_ENV_VAR, None)
            else:
                os.environ[CONFIG_ENV_VAR] = previous
