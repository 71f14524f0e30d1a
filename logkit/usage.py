"""Usage and cost: ``usage_recorded`` events priced exactly from a price table, and their sums.

Costs are ``decimal.Decimal`` end to end and leave as decimal strings: a float cannot hold most
prices exactly, and the cost store is what invoices are checked against. A provider/model that
is not in the table is recorded as *unpriced* (``priced: false``, no ``cost``), never as 0.
"""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, Inexact, InvalidOperation, localcontext
from importlib import resources
from pathlib import Path
from typing import Any

from logkit.emit import emit
from logkit.envelope import Event, EventType
from logkit.errors import ConfigError

# OpenTelemetry GenAI semantic convention attribute names.
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHED_TOKENS = "gen_ai.usage.cache_read.input_tokens"

_PER = Decimal(1_000_000)  # table prices are per million tokens
_PRICE_KEYS = ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok")
ENVELOPE_FIELDS = frozenset(Event.model_fields)


@dataclass(frozen=True, slots=True)
class Price:
    """Prices per million tokens in the table's currency."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int) -> Decimal:
        """Exact cost. ``input_tokens`` includes the cached ones (as in OTel GenAI)."""
        with localcontext() as ctx:
            # Trap Inexact: a rounded cost must fail loudly, never be stored as exact.
            ctx.prec = 80
            ctx.traps[Inexact] = True
            total = (
                Decimal(input_tokens - cached_tokens) * self.input_per_mtok
                + Decimal(cached_tokens) * self.cached_input_per_mtok
                + Decimal(output_tokens) * self.output_per_mtok
            )
            return (total / _PER).normalize()


@dataclass(frozen=True)
class PriceTable:
    currency: str
    prices: Mapping[tuple[str, str], Price]

    def lookup(self, provider: str, model: str) -> Price | None:
        return self.prices.get((provider, model))


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


# --- the price table --------------------------------------------------------------------------


def price_table() -> PriceTable:
    """The built-in table merged with ``[usage] price_table``; parsed once per configuration."""
    from logkit.runtime import current

    usage = current().settings.usage
    return _load_table(usage.price_table, usage.currency)


@functools.lru_cache(maxsize=8)
def _load_table(override: Path | None, currency: str) -> PriceTable:
    builtin = resources.files("logkit").joinpath("prices.toml").read_text(encoding="utf-8")
    prices: dict[tuple[str, str], Price] = {}
    base = _parse(tomllib.loads(builtin), "built-in price table")
    # The built-in prices are USD list prices: never relabel them as another currency.
    if base[0] == currency:
        prices.update(base[1])
    if override is not None:
        table_currency, entries = _parse(_read(override), str(override))
        if table_currency not in (None, currency):
            raise ConfigError(
                f"price table {override} is in {table_currency}, but [usage] currency is {currency}"
            )
        prices.update(entries)  # per model: an override entry replaces the built-in one
    return PriceTable(currency, prices)


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"price table not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read price table {path}: {exc}") from None


def _parse(data: dict[str, Any], source: str) -> tuple[str | None, dict[tuple[str, str], Price]]:
    currency = data.pop("currency", None)
    prices: dict[tuple[str, str], Price] = {}
    for provider, models in data.items():
        if not isinstance(models, dict):
            raise ConfigError(f"{source}: [{provider}] must be a table of models")
        for model, entry in models.items():
            prices[(provider, model)] = _price(entry, f"{source}: [{provider}.{model!r}]")
    return (str(currency) if currency is not None else None), prices


def _price(entry: Any, where: str) -> Price:
    if not isinstance(entry, dict) or not {"input_per_mtok", "output_per_mtok"} <= set(entry):
        raise ConfigError(f"{where} needs input_per_mtok and output_per_mtok")
    unknown = set(entry) - set(_PRICE_KEYS)
    if unknown:
        raise ConfigError(f"{where} has unknown key(s): {', '.join(sorted(unknown))}")
    values = {k: _decimal(entry[k], f"{where} {k}") for k in _PRICE_KEYS if k in entry}
    # No cached price listed: charge cached tokens as input (never under-report a cost).
    values.setdefault("cached_input_per_mtok", values["input_per_mtok"])
    return Price(**values)


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"{where} must be a decimal string")
    try:
        # str() first: a TOML float becomes its shortest repr ("0.075"), not its binary value.
        result = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{where} is not a number: {value!r}") from None
    if not result.is_finite() or result < 0:
        raise ConfigError(f"{where} must be a finite price >= 0")
    return result


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
    price = table.lookup(provider, model)
    payload: dict[str, Any] = {
        **extra,
        PROVIDER: provider,
        REQUEST_MODEL: model,
        INPUT_TOKENS: input_tokens,
        OUTPUT_TOKENS: output_tokens,
        CACHED_TOKENS: cached_tokens,
        "priced": price is not None,
    }
    if price is not None:
        payload["cost"] = decimal_text(price.cost(input_tokens, output_tokens, cached_tokens))
        payload["currency"] = table.currency
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

GROUPINGS = ("model", "run", "day")


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
        cost = _cost(p)
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
    for event in events:
        groups.setdefault(_group_key(event, by), UsageTotals()).add(event)
        total.add(event)
    return dict(sorted(groups.items())), total


def _group_key(event: Event, by: str) -> str:
    if by == "run":
        return event.run_id or "(no run)"
    if by == "day":
        return event.ts.astimezone(dt.UTC).date().isoformat()
    p = event.payload
    # Legacy UsageEvent adapters and hand-written events use the older key names.
    provider = p.get(PROVIDER, p.get("provider")) or "?"
    model = p.get(REQUEST_MODEL, p.get("model", p.get("model_or_plan_id"))) or "?"
    return f"{provider}/{model}"


def _cost(payload: Mapping[str, Any]) -> Decimal | None:
    if payload.get("priced") is False or payload.get("cost") is None:
        return None
    try:
        cost = Decimal(str(payload["cost"]))
    except InvalidOperation:
        return None  # an unreadable cost is reported as unpriced, not guessed
    return cost if cost.is_finite() else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
