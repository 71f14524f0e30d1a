"""The canonical event envelope and its contract.

Every event logkit handles is an :class:`Event`. Scope (tenant, env, project, surface, app) is
required and never guessed: an event missing any of it is rejected with a
:class:`~logkit.errors.ContractError` that names every missing field. Correlation fields are
optional; audit records add the chain fields.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Any, TypeGuard

import orjson
import uuid_utils
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
)
from pydantic._internal._model_construction import ModelMetaclass
from pydantic.dataclasses import dataclass

from logkit.errors import ContractError

SCHEMA_VERSION = "1.1.0"
"""Semver of the envelope; bumped on any change to its fields or their meaning."""

REQUIRED_SCOPE: tuple[str, ...] = ("tenant_id", "env", "project_id", "surface_id", "app_id")
TRACE_FIELDS: tuple[str, ...] = ("trace_id", "span_id", "parent_span_id")
"""The trace fields: OpenTelemetry carries them as a span's (or log record's) own context."""
CORRELATION_FIELDS: tuple[str, ...] = (
    "request_id",
    *TRACE_FIELDS,
    "run_id",
    "step_id",
    "parent_step_id",
    "user_id",
    "actor_type",
)
"""The optional correlation fields, in the envelope's order (they follow the scope)."""
TENANT_PATTERN = r"^t_[a-z0-9_-]+$"
MAX_TENANT_LENGTH = 128
_TENANT_ID = re.compile(TENANT_PATTERN)


def is_tenant_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a tenant id the envelope accepts: the pattern, as a whole string
    (``$`` alone would let a trailing newline through), and at most 128 characters."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_TENANT_LENGTH
        and _TENANT_ID.fullmatch(value) is not None
    )


# Tenants logkit keeps for itself. No request, principal or header can claim one (the ASGI
# middleware and the stream refuse them), so what logkit files there never mixes with a
# customer's data: check-sinks' probes, and contract violations recorded with no tenant known.
RESERVED_TENANT_PREFIX = "t__logkit"
PROBE_TENANT = "t__logkit_probe"
UNSCOPED_TENANT = "t__logkit_unscoped"


def is_reserved_tenant(tenant_id: str) -> bool:
    """Whether ``tenant_id`` is one of logkit's own (never a customer's)."""
    return tenant_id.startswith(RESERVED_TENANT_PREFIX)


class EventType(StrEnum):
    FLOW_STARTED = "flow_started"
    FLOW_ENDED = "flow_ended"
    FLOW_FAILED = "flow_failed"
    STEP_STARTED = "step_started"
    STEP_ENDED = "step_ended"
    STEP_FAILED = "step_failed"
    AGENT_DECISION = "agent_decision"
    STATE_PULSE = "state_pulse"
    TOOL_CALL_STARTED = "tool_call_started"
    TOOL_CALL_ENDED = "tool_call_ended"
    TOOL_CALL_FAILED = "tool_call_failed"
    MODEL_CALL_STARTED = "model_call_started"
    MODEL_CALL_ENDED = "model_call_ended"
    MODEL_CALL_FAILED = "model_call_failed"
    USAGE_RECORDED = "usage_recorded"
    AUDIT_ACTION = "audit_action"
    DSAR_EXPORT = "dsar_export"
    DSAR_ERASURE = "dsar_erasure"
    RETENTION_APPLIED = "retention_applied"
    MESSAGE = "message"
    ERROR = "error"
    DATASET_EVENT = "dataset_event"
    # An event that broke the contract, kept in its place when the policy is "record".
    CONTRACT_VIOLATION = "contract_violation"


EVENT_TYPES: dict[object, EventType] = {t.value: t for t in EventType}
"""Each event type by its value (a member finds itself too): a dict hit is much cheaper than
``EventType(...)`` on the emit path."""


class Severity(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    NOTICE = "notice"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Position in the order debug < info < ... < critical, for threshold filters."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}


class StorageClass(StrEnum):
    OPS = "ops"
    AUDIT = "audit"
    COST = "cost"
    STREAM = "stream"


class Env(StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"

    @classmethod
    def _missing_(cls, value: object) -> Env | None:
        # The legacy realtime contracts spell staging "stage". Pydantic calls this only for
        # values that are not already members, so the common path stays in its Rust core.
        return cls.STAGING if value == "stage" else None


class ActorType(StrEnum):
    HUMAN = "human"
    AGENT = "agent"
    SYSTEM = "system"


# Storage class implied by an event type when the caller does not say.
DEFAULT_STORAGE_CLASS: dict[EventType, StorageClass] = {
    EventType.USAGE_RECORDED: StorageClass.COST,
    EventType.AUDIT_ACTION: StorageClass.AUDIT,
    EventType.DSAR_EXPORT: StorageClass.AUDIT,
    EventType.DSAR_ERASURE: StorageClass.AUDIT,
    EventType.RETENTION_APPLIED: StorageClass.AUDIT,
}


def new_event_id() -> str:
    """A fresh, time-ordered, unique event id (UUIDv7, RFC 9562)."""
    return str(uuid_utils.uuid7())


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is dt.UTC else value.astimezone(dt.UTC)


NonEmpty = Annotated[str, Field(min_length=1, max_length=256)]
# Naive datetimes are refused rather than guessed; adapters of legacy naive UTC values say so.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]
HexDigest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


@dataclass(frozen=True, config=ConfigDict(extra="forbid", defer_build=True))
class RedactionReport:
    """What the redaction gate did to an event: counts by kind and the policy, never values.

    A (pydantic) dataclass rather than a model: orjson serialises dataclasses natively, so
    event bodies need no Python callback.
    """

    policy: str
    counts: dict[str, int] = Field(default_factory=dict)


class _ContractMeta(ModelMetaclass):
    """``Event(...)`` raises ContractError instead of pydantic's ValidationError.

    Done in the metaclass rather than by overriding ``__init__``: pydantic-core routes every
    validation through a custom ``__init__``, which would validate each event twice.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - a metaclass method
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as exc:
            # `from None`: pydantic's message echoes input values, which may be raw data.
            raise contract_error(exc) from None


class Event(BaseModel, metaclass=_ContractMeta):
    """One canonical event. Construct it with keywords; invalid input raises ContractError."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        use_enum_values=False,
        ser_json_timedelta="iso8601",
        # JSON has no NaN or Infinity: stores would write null instead, silently.
        allow_inf_nan=False,
        # The validator is built on first use (or by warm_up()), so `import logkit` and CLI
        # commands that never build an event do not pay for it.
        defer_build=True,
    )

    # Required scope: never defaulted, never guessed.
    tenant_id: Annotated[str, Field(pattern=TENANT_PATTERN, max_length=MAX_TENANT_LENGTH)]
    env: Env
    project_id: NonEmpty
    surface_id: NonEmpty
    app_id: NonEmpty

    # Correlation.
    request_id: NonEmpty | None = None
    trace_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] | None = None
    span_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")] | None = None
    # The span this event's span nests under (1.1.0): with span_id, the trace's tree.
    parent_span_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")] | None = None
    run_id: NonEmpty | None = None
    step_id: NonEmpty | None = None
    parent_step_id: NonEmpty | None = None
    user_id: NonEmpty | None = None
    actor_type: ActorType | None = None

    # The event itself.
    event_id: Annotated[str, Field(min_length=1, max_length=128)] = Field(
        default_factory=new_event_id
    )
    ts: UtcDatetime = Field(default_factory=utc_now)
    event_type: EventType
    severity: Severity = Severity.INFO
    storage_class: StorageClass = StorageClass.OPS
    schema_version: str = SCHEMA_VERSION
    payload: dict[str, JsonValue] = Field(default_factory=dict)
    redaction: RedactionReport | None = None

    # Audit records only.
    chain_id: NonEmpty | None = None
    seq: Annotated[int, Field(ge=0)] | None = None
    prev_hash: HexDigest | None = None
    hash: HexDigest | None = None
    payload_digest: HexDigest | None = None
    payload_salt: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """Validate a field dict (the emit hot path: no keyword-argument repacking)."""
        try:
            return cls.__pydantic_validator__.validate_python(data)  # type: ignore[no-any-return]
        except ValidationError as exc:
            raise contract_error(exc) from None

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Event:
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            raise contract_error(exc) from None

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Event:
        try:
            return super().model_validate_json(json_data, **kwargs)
        except ValidationError as exc:
            raise contract_error(exc) from None

    def replace(self, **changes: Any) -> Event:
        """A copy with ``changes`` applied, for pipeline processors.

        Like ``model_copy(update=...)`` (the changes are not re-validated: processors hand
        over values they built to the contract, such as a redacted JSON payload), at about
        half its cost on the emit hot path.
        """
        clone = Event.__new__(Event)
        state = dict(self.__dict__)
        state.update(changes)
        object.__setattr__(clone, "__dict__", state)
        object.__setattr__(
            clone, "__pydantic_fields_set__", self.__pydantic_fields_set__ | set(changes)
        )
        object.__setattr__(clone, "__pydantic_extra__", None)
        object.__setattr__(clone, "__pydantic_private__", None)
        return clone

    def to_json(self) -> str:
        """The event as compact JSON, for stores and spools (parses back to an equal Event).

        orjson on the field dict is several times faster than pydantic's serializer here and
        every field is already a JSON type, an enum (a str) or a UTC datetime.
        """
        try:
            return orjson.dumps(self.__dict__, option=orjson.OPT_UTC_Z).decode()
        except orjson.JSONEncodeError:  # e.g. an integer wider than 64 bits: pydantic copes
            return self.model_dump_json()


def _without_input(message: str) -> str:
    # Pydantic puts the offending value into a few messages ("... [input_value=...]"); cut it.
    return message.split(" [input_value=", 1)[0]


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
_JSON_TAGS = frozenset({"list", "dict", "str", "bool", "int", "float"})


def _field_path(loc: tuple[int | str, ...]) -> str:
    """``payload.items.3.name``: the envelope field, then keys only where they are plain names.

    Payload keys are data, not field names: one that is not a short identifier (an email used
    as a key, a card number) is shown as ``<key>``; LogkitError masks what is left.
    """
    if not loc:
        return "<event>"
    parts = [str(loc[0])]
    for i, part in enumerate(loc[1:]):
        if i % 2 and part in _JSON_TAGS:
            continue  # pydantic names the JSON union member it tried after each key or index
        if isinstance(part, int) or _PLAIN_KEY.fullmatch(part):
            parts.append(str(part))
        else:
            parts.append("<key>")
    return ".".join(parts)


def warm_up() -> None:
    """Build the envelope's validator and serializer now rather than on the first event."""
    Event.model_rebuild()


def contract_error(exc: ValidationError) -> ContractError:
    """Turn a pydantic ValidationError into a ContractError that names fields, never values."""
    missing: list[str] = []
    problems: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        field = _field_path(err["loc"])
        top = str(err["loc"][0]) if err["loc"] else ""
        # An absent, None or empty scope field is "missing": the contract never fills it in.
        absent = err["type"] == "missing" or (top in REQUIRED_SCOPE and err["input"] in (None, ""))
        if absent:
            if top not in missing:
                missing.append(top)
        else:
            # err["msg"] describes the rule broken; err["input"] is never put in the message.
            problems.setdefault(field, _without_input(err["msg"]))
    parts = []
    if missing:
        parts.append("missing required field(s): " + ", ".join(missing))
    if problems:
        parts.append("; ".join(f"{name}: {why}" for name, why in problems.items()))
    return ContractError(
        "event contract violated: " + "; ".join(parts), missing=missing, problems=problems
    )
