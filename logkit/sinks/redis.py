"""The live feed on Redis Streams: ``redis://HOST:PORT/DB`` or ``rediss://`` (TLS).

Every writing process appends (:mod:`logkit.feeding`), every ``logkit serve`` replica reads
(XREAD BLOCK for live, XRANGE for replay). Keys, per tenant (the ``{tenant}`` hash tag keeps a
tenant's keys in one slot)::

    <prefix>:{t_acme}:s      the stream: one entry per event (fields b=body h=hint r=run_id
                             y=event_type k=kind), trimmed by length and age
    <prefix>:{t_acme}:ids    sorted set event_id -> position of the entries in the window:
                             a re-emitted event_id is appended once; the store fallback asks it
    <prefix>:{t_acme}:head   the newest id ever given (never lowered by trimming or deletes)
    <prefix>:feed-id         the feed's identity (cursors carry it; new after a data loss)

Entry ids are ``<ms>-<seq>`` from the Redis server's clock with ``seq < 1024``, given by the
append script (so every writer shares one clock), and a position is ``ms * 1024 + seq``: an
integer that grows with time, exact in a double (a sorted-set score), with gaps. ``?prefix=``
in the URI changes ``logkit:feed``. The password comes from the URI or from
``stream.feed_password`` / ``feed_password_file``.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, ParamSpec, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import redis
import redis.exceptions

from logkit.config import StreamConfig
from logkit.envelope import Event, StorageClass
from logkit.errors import ConfigError, SinkUnavailable, SinkWriteError
from logkit.sinks import cursor
from logkit.sinks.protocols import (
    ROW_EPHEMERAL,
    ROW_EVENT,
    ROW_GAP,
    EventStore,
    FeedRow,
    Role,
    Selector,
    clamp_limit,
    selected,
)

P = ParamSpec("P")
T = TypeVar("T")

_SEQ = 1024  # ids per millisecond per tenant; more take the next millisecond
DEFAULT_PREFIX = "logkit:feed"

# One tenant's batch: ids from the server clock after the tenant's head, a gap marker first
# when events were dropped, then the events whose event_id the window does not hold; trimming
# by length and age; the id index trimmed with the stream. Numbers are passed to redis.call as
# numbers (Redis converts them exactly), never through Lua's 14-digit tostring.
_APPEND = """
local s, ids, head = KEYS[1], KEYS[2], KEYS[3]
local maxlen, max_age, gap = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms, seq = 0, -1
local last = redis.call('GET', head)
if last then
  local d = string.find(last, '-')
  ms, seq = tonumber(string.sub(last, 1, d - 1)), tonumber(string.sub(last, d + 1))
end
local function next_id()
  if now > ms then ms, seq = now, 0 else seq = seq + 1 end
  if seq >= 1024 then ms, seq = ms + 1, 0 end
  return string.format('%d-%d', ms, seq)
end
local added = 0
if gap ~= '' then
  redis.call('XADD', s, next_id(), 'k', 'gap', 'b', gap)
  added = added + 1
end
for i = 4, #ARGV, 6 do
  if not redis.call('ZSCORE', ids, ARGV[i]) then
    redis.call('XADD', s, next_id(), 'b', ARGV[i + 1], 'h', ARGV[i + 2], 'r', ARGV[i + 3],
      'y', ARGV[i + 4], 'k', ARGV[i + 5])
    redis.call('ZADD', ids, ms * 1024 + seq, ARGV[i])
    added = added + 1
  end
end
if added > 0 then
  redis.call('SET', head, string.format('%d-%d', ms, seq))
  if maxlen > 0 then redis.call('XTRIM', s, 'MAXLEN', '~', maxlen) end
  if max_age > 0 then
    redis.call('XTRIM', s, 'MINID', '~', string.format('%d-0', now - max_age))
  end
  local first = redis.call('XRANGE', s, '-', '+', 'COUNT', 1)[1]
  local floor = ms * 1024 + seq + 1
  if first then
    local d = string.find(first[1], '-')
    floor = tonumber(string.sub(first[1], 1, d - 1)) * 1024 + tonumber(string.sub(first[1], d + 1))
  end
  redis.call('ZREMRANGEBYSCORE', ids, '-inf', floor - 1)
end
return added
"""

_BOUNDS = """
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
return {first and first[1] or '', redis.call('GET', KEYS[2]) or ''}
"""


def position_of(entry_id: str) -> int:
    ms, _, seq = entry_id.partition("-")
    return int(ms) * _SEQ + int(seq or 0)


def entry_id(position: int) -> str:
    ms, seq = divmod(max(position, 0), _SEQ)
    return f"{ms}-{seq}"


def mapped(fn: Callable[P, T]) -> Callable[P, T]:
    """Redis errors become logkit's: unreachable -> SinkUnavailable, refused -> SinkWriteError."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except redis.exceptions.AuthenticationError as exc:
            raise SinkUnavailable(f"redis refused the credentials ({type(exc).__name__})") from exc
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise SinkUnavailable(f"redis is unreachable: {exc}") from exc
        except redis.exceptions.RedisError as exc:
            raise SinkWriteError(f"redis refused the command: {exc}") from exc

    return wrapper


def split_uri(uri: str) -> tuple[str, str]:
    """(the URI redis-py reads, the key prefix); ConfigError for what is not a Redis URI."""
    parts = urlsplit(uri)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ConfigError(f"a feed URI looks like redis://HOST:PORT/DB, got {_safe(uri)!r}")
    options = dict(parse_qsl(parts.query))
    prefix = options.pop("prefix", DEFAULT_PREFIX)
    if not prefix or any(c in prefix for c in "{} "):
        raise ConfigError("prefix: letters, digits, ':' and '-' only (in the feed URI)")
    return urlunsplit(parts._replace(query=urlencode(options))), prefix


def _safe(uri: str) -> str:
    """The URI without its password (for messages)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class RedisBackend:
    """The ``redis``/``rediss`` entry of the ``logkit.sinks`` group: a feed, not a store role."""

    scheme: ClassVar[str] = "redis"
    durable: ClassVar[bool] = True  # with AOF on; docs/stream.md says what a Redis without it loses
    roles: ClassVar[frozenset[Role]] = frozenset()
    chains: ClassVar[bool] = False

    def __init__(self, feed: RedisFeed) -> None:
        self.feed = feed

    @classmethod
    def from_uri(cls, uri: str) -> RedisBackend:
        return cls(RedisFeed.from_uri(uri))

    @classmethod
    def open_feed(cls, uri: str, config: StreamConfig) -> RedisFeed:
        return RedisFeed.from_uri(uri, config)

    def store(self, role: Role) -> EventStore:
        raise ConfigError(f"redis is the live feed ([sinks] feed), not a {Role(role).value} store")

    def check_schema(self, *, create: bool = False) -> list[str]:
        return []

    def describe(self) -> str:
        return self.feed.describe()

    def close(self) -> None:
        self.feed.close()


class RedisFeed:
    """:class:`~logkit.sinks.protocols.LiveFeed` on Redis Streams."""

    def __init__(
        self, url: str, prefix: str, config: StreamConfig, password: str | None = None
    ) -> None:
        self.url, self.prefix, self.config = url, prefix, config
        self._password = password
        self.client = self._connect(config.feed_timeout_s)
        self._append = self.client.register_script(_APPEND)
        self._bounds = self.client.register_script(_BOUNDS)

    @classmethod
    def from_uri(cls, uri: str, config: StreamConfig | None = None) -> RedisFeed:
        config = config or StreamConfig()
        url, prefix = split_uri(uri)
        return cls(url, prefix, config, _password(uri, config))

    def _connect(self, socket_timeout: float | None) -> redis.Redis:
        try:
            return redis.Redis.from_url(
                self.url,
                password=self._password,
                decode_responses=True,
                socket_timeout=socket_timeout,
                socket_connect_timeout=self.config.feed_timeout_s,
                health_check_interval=30,
            )
        except ValueError as exc:  # redis-py's message names the URI part, not its value
            raise ConfigError(f"invalid feed URI: {exc}") from None

    def describe(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme} {parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"

    def close(self) -> None:
        self.client.close()

    # --- keys -------------------------------------------------------------------------------

    def keys(self, tenant_id: str) -> tuple[str, str, str]:
        base = f"{self.prefix}:{{{tenant_id}}}"
        return f"{base}:s", f"{base}:ids", f"{base}:head"

    # --- Feed -------------------------------------------------------------------------------

    @mapped
    def feed_id(self) -> str:
        key = f"{self.prefix}:feed-id"
        self.client.set(key, secrets.token_hex(6), nx=True)
        value = self.client.get(key)
        return str(value)

    @mapped
    def feed_bounds(self, tenant_id: str) -> tuple[int, int]:
        stream, _, head = self.keys(tenant_id)
        first, last = self._bounds(keys=[stream, head])
        newest = position_of(last) if last else 0
        return (position_of(first) if first else newest + 1), newest

    @mapped
    def feed_after(
        self,
        tenant_id: str,
        position: int,
        *,
        run_id: str | None = None,
        event_types: tuple[str, ...] | None = None,
        limit: int = 1000,
    ) -> tuple[list[FeedRow], int]:
        stream, _, head = self.keys(tenant_id)
        limit = clamp_limit(limit)
        rows: list[FeedRow] = []
        scanned = position
        while len(rows) < limit:
            # One MULTI/EXEC: the rows and the head at one instant, without a script's
            # conversion of every entry to Lua and back.
            pipe = self.client.pipeline(transaction=True)
            pipe.xrange(stream, min=f"({entry_id(scanned)}", max="+", count=limit)
            pipe.get(head)
            entries, last = pipe.execute()
            for key, fields in entries:
                row = _row(tenant_id, key, fields)
                scanned = row.position
                if row.kind == ROW_EPHEMERAL or not _admits(row, fields, run_id, event_types):
                    continue
                rows.append(row)
                if len(rows) == limit:
                    return rows, scanned
            if len(entries) < limit:  # the end of the stream, read with the head
                return rows, max(scanned, position_of(last) if last else 0)
        return rows, scanned

    # --- LiveFeed ---------------------------------------------------------------------------

    @mapped
    def append(
        self, events: Sequence[Event], gaps: Mapping[str, tuple[int, int]] | None = None
    ) -> None:
        by_tenant: dict[str, list[str | int]] = {}
        for event in events:
            args = by_tenant.setdefault(event.tenant_id, [])
            ephemeral = event.storage_class is StorageClass.STREAM
            args += (
                event.event_id,
                event.to_json(),
                cursor.encode(event),
                event.run_id or "",
                event.event_type.value,
                ROW_EPHEMERAL if ephemeral else "",
            )
        for tenant in gaps or {}:
            by_tenant.setdefault(tenant, [])
        c = self.config
        age_ms = int(c.feed_max_age_s * 1000)
        pipe = self.client.pipeline(transaction=False)
        for tenant, args in by_tenant.items():
            gap = (gaps or {}).get(tenant)
            marker = "" if gap is None else _marker(*gap)
            self._append(
                keys=self.keys(tenant), args=[c.feed_maxlen, age_ms, marker, *args], client=pipe
            )
        pipe.execute()

    def write(self, events: Sequence[Event]) -> None:
        """``append`` under the store's name (the Feed contract tests write through it)."""
        self.append(events)

    @mapped
    def feed_positions(self, tenant_id: str, event_ids: Sequence[str]) -> dict[str, int]:
        if not event_ids:
            return {}
        _, ids, _ = self.keys(tenant_id)
        scores = self.client.zmscore(ids, list(event_ids))
        return {e: int(s) for e, s in zip(event_ids, scores, strict=True) if s is not None}

    @mapped
    def delete(self, selector: Selector) -> int:
        """Remove the selected events from the tenant's window (DSAR erasure; the check-sinks
        probe). The stores are erased on their own."""
        stream, ids, _ = self.keys(selector.tenant_id)
        doomed = self._selected(stream, selector)
        for start in range(0, len(doomed), 1000):
            part = doomed[start : start + 1000]
            pipe = self.client.pipeline(transaction=True)
            pipe.xdel(stream, *[key for key, _ in part])
            pipe.zrem(ids, *[event_id for _, event_id in part])
            pipe.execute()
        return len(doomed)

    @mapped
    def count(self, selector: Selector) -> int:
        """How many events ``delete`` would remove (a dry run)."""
        return len(self._selected(self.keys(selector.tenant_id)[0], selector))

    def _selected(self, stream: str, selector: Selector) -> list[tuple[str, str]]:
        """(entry id, event_id) of the window's events the selector selects (a scan)."""
        chosen: list[tuple[str, str]] = []
        for entry_key, fields in self._entries(stream):
            if fields.get("k") not in ("", None):
                continue
            event = Event.model_validate_json(fields["b"])
            if selected(event, selector):
                chosen.append((entry_key, event.event_id))
        return chosen

    def _entries(self, stream: str) -> Iterator[tuple[str, dict[str, str]]]:
        after = "-"
        while True:
            page: Any = self.client.xrange(stream, min=after, max="+", count=1000)
            yield from page
            if len(page) < 1000:
                return
            after = f"({page[-1][0]}"

    def tail(self) -> RedisTail:
        return RedisTail(self)


class RedisTail:
    """XREAD BLOCK over the followed tenants' streams and a wake stream of its own, so an
    :meth:`interrupt` (a new tenant to follow, shutting down) is never lost."""

    def __init__(self, feed: RedisFeed) -> None:
        self.feed = feed
        block = feed.config.feed_block_s
        self._client = feed._connect(block + feed.config.feed_timeout_s)
        self._wake = f"{feed.prefix}:wake:{uuid.uuid4().hex}"
        self._wake_seen = "0-0"

    @mapped
    def wait(
        self, heads: Mapping[str, int], *, limit: int, timeout_s: float
    ) -> dict[str, list[FeedRow]]:
        tenants = {self.feed.keys(t)[0]: t for t in heads}
        streams: dict[Any, Any] = {key: entry_id(heads[t]) for key, t in tenants.items()}
        streams[self._wake] = self._wake_seen
        block = max(1, int(min(timeout_s, self.feed.config.feed_block_s) * 1000))
        answer: Any = self._client.xread(streams, count=limit, block=block) or []
        pages: dict[str, list[FeedRow]] = {}
        for key, entries in answer:
            if key == self._wake:
                self._wake_seen = entries[-1][0]
                continue
            tenant = tenants[key]
            pages[tenant] = [_row(tenant, e, f) for e, f in entries]
        return pages

    @mapped
    def interrupt(self) -> None:
        pipe = self.feed.client.pipeline(transaction=False)
        pipe.xadd(self._wake, {"w": "1"}, maxlen=1, approximate=False)
        pipe.expire(self._wake, 3600)
        pipe.execute()

    def close(self) -> None:
        with contextlib.suppress(redis.exceptions.RedisError):  # else it expires on its own
            self.feed.client.delete(self._wake)
        self._client.close()


def _marker(dropped: int, since_us: int) -> str:
    return orjson.dumps({"dropped": dropped, "since_us": since_us}).decode()


def _row(tenant_id: str, key: str, fields: Mapping[str, str]) -> FeedRow:
    kind = fields.get("k") or ROW_EVENT
    return FeedRow(position_of(key), tenant_id, fields.get("b", ""), fields.get("h"), kind)


def _admits(
    row: FeedRow,
    fields: Mapping[str, str],
    run_id: str | None,
    event_types: tuple[str, ...] | None,
) -> bool:
    if row.kind == ROW_GAP:
        return True  # a gap concerns every filter
    return (run_id is None or fields.get("r") == run_id) and (
        event_types is None or fields.get("y") in event_types
    )


def _password(uri: str, config: StreamConfig) -> str | None:
    if urlsplit(uri).password:
        return None  # the URI's own
    if config.feed_password is not None:
        return config.feed_password.get_secret_value()
    if config.feed_password_file is not None:
        try:
            return config.feed_password_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"stream.feed_password_file {config.feed_password_file}: {exc.strerror}"
            ) from None
    return None
