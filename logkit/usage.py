"""Usage and cost: ``usage_recorded`` events priced exactly from a price table, and their sums.

Costs are ``decimal.Decimal`` end to end and leave as decimal strings: a float cannot hold most
prices exactly, and the cost store is what invoices are checked against. A provider/model that
is not in the table is recorded as *unpriced* (``priced: false``, no ``cost``), never as 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from logkit.emit import emit
from logkit.envelope import Event, EventType
from logkit.pricing import Price, PriceMatch, PriceTable, load_table

__all__ = [
    "GROUPINGS",
    "Price",
    "PriceMatch",
    "PriceTable",
    "UsageTotals",
    "cost_of",
    "model_of",
    "price_table",
    "record_usage",
    "summarize",
]

# OpenTelemetry GenAI semantic convention attribute names.
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHED_TOKENS = "gen_ai.usage.cache_read.input_tokens"

ENVELOPE_FIELDS = frozenset(Event.model_fields)


def split_fields(
    fields: Mapping[str, Any], envelope_names: frozenset[str] = ENVELOPE_FIELDS
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(envelope fields, extra payload attributes): scope overrides vs. e.g. ``gen_ai.*``."""
    envelope = {k: v for k, v in fields.items() if k in envelope_names}
    extra = {k: v for k, v in fields.items() if k not in envelope_names}
    return envelope, extra


def decimal_text(value: Decimal) -> str:
    """A decimal as plain digits (``str`` would give ``1.2E-7`` for small costs)."""
    return format(value, "f")


def price_table() -> PriceTable:
    """The built-in table merged with ``[usage] price_table``; parsed once per configuration."""
    from logkit.runtime import current

    usage = current().settings.usage
    return load_table(usage.price_table, usage.currency)


# --- recording --------------------------------------------------------------------------------


def record_usage(
    provider: str,
    model: str,
    *,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int = 0,
    **fields: Any,
) -> Event:
    """Emit ``usage_recorded`` (storage class cost) with its exact cost; returns the event.

    ``input_tokens`` counts every input token including the ``cached_tokens`` read from a
    provider cache (the OTel GenAI convention). ``fields`` naming envelope fields (``run_id``,
    ``tenant_id``, ...) override the bound context; any other key is added to the payload.
    """
    check_tokens(input_tokens, output_tokens, cached_tokens)
    envelope, extra = split_fields(fields)
    table = price_table()
    found = table.match(provider, model)
    payload: dict[str, Any] = {
        **extra,
        PROVIDER: provider,
        REQUEST_MODEL: model,
        INPUT_TOKENS: input_tokens,
        OUTPUT_TOKENS: output_tokens,
        CACHED_TOKENS: cached_tokens,
        "priced": found is not None,
    }
    if found is not None:
        payload["cost"] = decimal_text(found.price.cost(input_tokens, output_tokens, cached_tokens))
        payload["currency"] = table.currency
        if found.rule != "exact":  # which entry priced a dated or routed name, and why
            payload["priced_as"] = found.entry
    return emit(EventType.USAGE_RECORDED, payload, **envelope)


def check_tokens(input_tokens: int, output_tokens: int, cached_tokens: int) -> None:
    """Raise ValueError unless the counts are ints >= 0 and the cached ones part of the input."""
    counts = {"input": input_tokens, "output": output_tokens, "cached": cached_tokens}
    for name, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"{name}_tokens must be an int >= 0")
    if cached_tokens > input_tokens:
        raise ValueError("cached_tokens are part of input_tokens, so cannot exceed them")


# --- summing ----------------------------------------------------------------------------------

# The group key of an event, per --by grouping (in the order the CLI lists them).
_KEYS: Mapping[str, Callable[[Event], str]] = {
    "model": lambda e: "/".join(model_of(e.payload)),
    "run": lambda e: e.run_id or "(no run)",
    "day": lambda e: e.ts.astimezone(dt.UTC).date().isoformat(),
    "app": lambda e: e.app_id,
    "project": lambda e: e.project_id,
    "user": lambda e: e.user_id or "(no user)",
}
GROUPINGS = tuple(_KEYS)


@dataclass
class UsageTotals:
    """Sums for one group. Unpriced events add tokens but never cost."""

    events: int = 0
    unpriced_events: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost: dict[str, Decimal] = field(default_factory=dict)  # by currency: never mixed

    def add(self, event: Event) -> None:
        p = event.payload
        self.events += 1
        self.input_tokens += _int(p.get(INPUT_TOKENS, p.get("tokens_input")))
        self.output_tokens += _int(p.get(OUTPUT_TOKENS, p.get("tokens_output")))
        self.cached_tokens += _int(p.get(CACHED_TOKENS))
        cost = cost_of(p)
        if cost is None:
            self.unpriced_events += 1
            return
        currency = str(p.get("currency") or "?")
        self.cost[currency] = self.cost.get(currency, Decimal(0)) + cost

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "priced_events": self.events - self.unpriced_events,
            "unpriced_events": self.unpriced_events,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "cost": {c: decimal_text(v) for c, v in sorted(self.cost.items())},
        }


def summarize(events: Iterable[Event], by: str) -> tuple[dict[str, UsageTotals], UsageTotals]:
    """Totals per group (``by`` one of :data:`GROUPINGS`) and overall, in group order."""
    if by not in GROUPINGS:
        raise ValueError(f"cannot group usage by {by!r}; use one of {', '.join(GROUPINGS)}")
    groups: dict[str, UsageTotals] = {}
    total = UsageTotals()
    key = _KEYS[by]
    for event in events:
        groups.setdefault(key(event), UsageTotals()).add(event)
        total.add(event)
    return dict(sorted(groups.items())), total


def model_of(payload: Mapping[str, Any]) -> tuple[str, str]:
    """The (provider, model) a usage payload names; legacy UsageEvent adapters and
    hand-written events use the older key names. ``?`` where one is missing."""
    provider = payload.get(PROVIDER, payload.get("provider")) or "?"
    model = payload.get(REQUEST_MODEL, payload.get("model", payload.get("model_or_plan_id")))
    return str(provider), str(model or "?")


def cost_of(payload: Mapping[str, Any]) -> Decimal | None:
    """The stored cost of a usage payload, or None when it is unpriced or unreadable (a legacy
    ``cost="n/a"``, ``NaN``, a non-number): reported as unpriced, never guessed, never 0."""
    if payload.get("priced") is False or payload.get("cost") is None:
        return None
    value = payload["cost"]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        cost = Decimal(str(value))
    except InvalidOperation:
        return None
    return cost if cost.is_finite() else None


def _int(value: Any) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else 0
