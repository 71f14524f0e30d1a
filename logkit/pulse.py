"""State pulses: an agent's state as a snapshot, then as RFC 6902 JSON Patches.

``state_pulse(key, state)`` emits a ``state_pulse`` event whose payload is::

    {"key": str, "seq": int, "hash": "<sha256 hex of JCS(state)>", "snapshot": state}
    {"key": str, "seq": int, "hash": "...", "patch": [<RFC 6902 operations>]}

The state is redacted by the gate, then summarised to a size bound, and only then hashed and
diffed, so no raw value reaches the stored snapshot, patch or hash, and the hash covers exactly
what a reader can rebuild. :func:`reconstruct` rebuilds every state from the events and checks
each hash: the proof that the patches are enough.

The previous state per (tenant, run, key) lives in a bounded in-process LRU, so a new process
(or an evicted key) starts again with a snapshot at seq 0: readers treat a snapshot as a reset.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import jsonpatch
import orjson

from logkit.chain import TENANT_CHAIN_RUN, canonical, sha256_hex
from logkit.context import bound_fields
from logkit.emit import emit
from logkit.envelope import Event, EventType
from logkit.redaction.gate import get_redactor

# Size bounds, read at each call so an application (or a test) may change them.
MAX_STRING_CHARS = 1_000  # longer strings keep this prefix plus "…[+N chars]"
MAX_ITEMS = 100  # longer lists (and objects with more keys) are cut, with a marker
MAX_DEPTH = 20  # containers nested deeper are replaced by a marker
MAX_STATE_BYTES = 64 * 1024  # JCS size cap of the whole state: summarised harder until it fits
MAX_TRACKED = 4_096  # (tenant, run, key) entries remembered; the least recently used go first

_MAX_SAFE_INT = 2**53 - 1  # JCS (I-JSON) cannot carry larger integers exactly
_SUMMARY_PASSES = 4

# The clock behind heartbeats; a module attribute so tests can swap in a fake one.
_monotonic = time.monotonic


@dataclass(frozen=True, slots=True)
class _Last:
    state: Any  # the state as emitted (redacted, summarised): the base of the next patch
    hash: str
    seq: int
    at: float  # _monotonic() of the last emitted pulse, for heartbeats


_store: OrderedDict[tuple[str | None, str, str], _Last] = OrderedDict()
_lock = threading.Lock()


def reset() -> None:
    """Forget every remembered state, so each key's next pulse is a snapshot."""
    with _lock:
        _store.clear()


def state_pulse(
    key: str, state: Any, *, heartbeat_s: float | None = None, **fields: Any
) -> Event | None:
    """Emit ``state`` under ``key`` as a snapshot or a patch; None when nothing changed.

    An unchanged state emits nothing unless ``heartbeat_s`` seconds have passed since the
    key's last pulse: then an empty patch with the same hash says it is still the same.
    ``fields`` go to :func:`logkit.emit` (scope, step_id, severity, ...).
    """
    if not isinstance(key, str) or not key:
        raise ValueError("state_pulse key must be a non-empty string")
    bound = bound_fields()
    tenant = fields.get("tenant_id", bound.get("tenant_id"))
    run = fields.get("run_id", bound.get("run_id")) or TENANT_CHAIN_RUN
    redacted, report = get_redactor().redact(_jsonable(state), tenant_id=tenant)
    emitted, state_bytes = summarise(redacted)
    digest = sha256_hex(state_bytes)
    slot = (tenant, str(run), key)
    now = _monotonic()

    with _lock:
        last = _store.get(slot)
        if last is not None and last.hash == digest:
            if heartbeat_s is None or now - last.at < heartbeat_s:
                _store.move_to_end(slot)
                return None
            payload: dict[str, Any] = {"patch": []}
        elif last is None:
            payload = {"snapshot": emitted}
        else:
            payload = _patch_or_snapshot(last.state, emitted, state_bytes)
        seq = 0 if last is None else last.seq + 1
        entry = _Last(emitted, digest, seq, now)
        _store[slot] = entry
        _store.move_to_end(slot)
        while len(_store) > MAX_TRACKED:
            _store.popitem(last=False)

    payload = {"key": key, "seq": seq, "hash": digest, **payload}
    if report is not get_redactor().clean:
        fields.setdefault("redaction", report)  # the event says what the gate found in the state
    try:
        # Emitted outside the lock: a slow pipeline must not serialise every pulse.
        return emit(EventType.STATE_PULSE, payload, **fields)
    except BaseException:
        # Not emitted (e.g. missing scope): the next pulse must not patch from this state.
        with _lock:
            if _store.get(slot) is entry:
                if last is None:
                    del _store[slot]
                else:
                    _store[slot] = last
        raise


def _patch_or_snapshot(prev: Any, new: Any, new_bytes: bytes) -> dict[str, Any]:
    ops = jsonpatch.make_patch(prev, new).patch
    # Checked, not trusted: a patch that does not rebuild the state byte for byte (a diff
    # quirk, e.g. 1 vs true) would break every later reconstruction, so it becomes a snapshot.
    patch_bytes = canonical(ops)
    if len(patch_bytes) > len(new_bytes):
        return {"snapshot": new}
    if canonical(jsonpatch.apply_patch(prev, ops)) != new_bytes:
        return {"snapshot": new}
    return {"patch": ops}


def _jsonable(value: Any) -> Any:
    """A fresh JSON copy of ``value``: later changes by the caller cannot reach the store.

    orjson copies fast and turns tuples, datetimes, UUIDs, enums and dataclasses into JSON;
    what it cannot encode (very large integers, odd types) goes through a plain walk.
    """
    try:
        return orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))
    except (orjson.JSONEncodeError, TypeError):
        return _walk_jsonable(value)


def _walk_jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _walk_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk_jsonable(v) for v in value]
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return str(value)


def summarise(state: Any) -> tuple[Any, bytes]:
    """``state`` cut to the size bounds, and its JCS bytes. Deterministic.

    Each pass starts again from ``state`` with tighter bounds until the JCS fits in
    MAX_STATE_BYTES; a state that never fits becomes one marker string.
    """
    data = b""
    for level in range(_SUMMARY_PASSES):
        chars = max(16, MAX_STRING_CHARS // 4**level)
        items = max(1, MAX_ITEMS // 4**level)
        depth = max(1, MAX_DEPTH // 2**level)
        summary = _cut(state, chars, items, depth, 0)
        data = canonical(summary)
        if len(data) <= MAX_STATE_BYTES:
            return summary, data
    marker = f"…[state of {len(data)} bytes]"
    return marker, canonical(marker)


def _cut(value: Any, chars: int, items: int, depth: int, level: int) -> Any:
    if isinstance(value, Mapping):
        if level >= depth:
            return f"…[object of {len(value)} keys]"
        names = list(value)
        if len(names) > items:
            # Sorted, so the kept keys depend on the content only, not on insertion order.
            names = sorted(names, key=str)[:items]
        out = {str(k): _cut(value[k], chars, items, depth, level + 1) for k in names}
        if len(value) > items:
            out["…"] = f"[+{len(value) - items} keys]"
        return out
    if isinstance(value, list | tuple):
        if level >= depth:
            return f"…[list of {len(value)} items]"
        kept = [_cut(v, chars, items, depth, level + 1) for v in value[:items]]
        if len(value) > items:
            kept.append(f"…[+{len(value) - items} items]")
        return kept
    return _cut_scalar(value, chars)


def _cut_scalar(value: Any, chars: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # as JSON encoders write NaN/inf
    text = value if isinstance(value, str) else str(value)  # a redactor returned a non-JSON type
    return text if len(text) <= chars else f"{text[:chars]}…[+{len(text) - chars} chars]"


def reconstruct(events: Iterable[Event]) -> dict[str, list[Any]]:
    """Rebuild every pulsed state per key from one run's ``state_pulse`` events, in order.

    Each rebuilt state's JCS SHA-256 is checked against the event's ``hash``; a mismatch, or a
    patch with no snapshot before it, raises ValueError naming the key and seq. Events of other
    types are skipped.
    """
    states: dict[str, list[Any]] = {}
    current: dict[str, Any] = {}
    for event in events:
        if event.event_type != EventType.STATE_PULSE:
            continue
        payload = event.payload
        key, seq = str(payload.get("key")), payload.get("seq")
        if "snapshot" in payload:
            state = copy.deepcopy(payload["snapshot"])
        elif key not in current:
            raise ValueError(f"state pulse {key!r} seq {seq}: a patch with no snapshot before it")
        else:
            ops = payload.get("patch")
            try:
                if not isinstance(ops, list):
                    raise TypeError("patch is not a list of operations")
                state = jsonpatch.apply_patch(current[key], cast("list[dict[str, Any]]", ops))
            except Exception as exc:  # jsonpatch/jsonpointer errors, or a malformed operation
                raise ValueError(f"state pulse {key!r} seq {seq}: patch does not apply") from exc
        if sha256_hex(canonical(state)) != payload.get("hash"):
            raise ValueError(f"state pulse {key!r} seq {seq}: rebuilt state does not match hash")
        current[key] = state
        states.setdefault(key, []).append(state)
    return states


class StatePulseHook:
    """An orchestrator hook: call it with the state after every transition.

    ``hook = StatePulseHook(key="agent_state", heartbeat_s=30)``; ``hook(state)`` (or
    ``hook.pulse(state)``) emits through :func:`state_pulse`. ``fields`` given here are sent
    with every pulse; those given to a call win.
    """

    def __init__(self, key: str, *, heartbeat_s: float | None = None, **fields: Any) -> None:
        self.key = key
        self.heartbeat_s = heartbeat_s
        self.fields = fields

    def pulse(self, state: Any, **fields: Any) -> Event | None:
        return state_pulse(
            self.key, state, heartbeat_s=self.heartbeat_s, **{**self.fields, **fields}
        )

    __call__ = pulse

    def __repr__(self) -> str:
        return f"StatePulseHook(key={self.key!r}, heartbeat_s={self.heartbeat_s!r})"
