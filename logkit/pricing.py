"""The price table, and how an observed (provider, model) finds its entry.

Models are reported under many names: provider-prefixed routes (``vertex_ai/gemini-2.5-flash``,
``publishers/google/models/gemini-2.5-flash``, ``openai/gpt-4o``), dated snapshots
(``gpt-4o-mini-2024-07-18``, ``claude-sonnet-4-5-20250929``, ``claude-sonnet-4-5@20250929``) and
versions (``gemini-2.0-flash-001``). The table lists each model once, under its provider (the
OpenTelemetry ``gen_ai.provider.name``); :meth:`PriceTable.match` tries the name as given, then
the forms the rules below derive from it, and says which rule matched. A name that no rule
brings to an entry stays unpriced: never 0, never a neighbour's price (a ``-preview`` or
``-audio`` model is not priced as its base model).
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, Inexact, InvalidOperation, localcontext
from importlib import resources
from pathlib import Path
from typing import Any

from logkit.errors import ConfigError

_PER = Decimal(1_000_000)  # table prices are per million tokens
_PRICE_KEYS = ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok")
BUILT_IN = "built-in"

# Other names of the providers the table lists (routing libraries, SDKs, gateways).
PROVIDER_ALIASES: Mapping[str, str] = {
    "vertex_ai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "vertex": "gcp.vertex_ai",
    "google.vertex_ai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "google": "gcp.gemini",
    "google_genai": "gcp.gemini",
    "google.gemini": "gcp.gemini",
    "claude": "anthropic",
}

# Suffixes naming a snapshot or a version of a model whose price is the model's own.
_SUFFIXES = (
    (re.compile(r"[-@]\d{4}-\d{2}-\d{2}$"), "date suffix"),  # gpt-4o-mini-2024-07-18
    (re.compile(r"[-@]\d{8}$"), "date suffix"),  # claude-sonnet-4-5-20250929, @20250929
    (re.compile(r"[-@]0\d{2}$"), "version suffix"),  # gemini-2.0-flash-001, @001
    (re.compile(r"[-@]latest$"), "version suffix"),  # claude-3-5-haiku-latest
)
_DIGIT_DOT = re.compile(r"(?<=\d)\.(?=\d)")  # claude-sonnet-4.5 (a gateway's spelling)


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

    def as_dict(self) -> dict[str, str]:
        return {k: format(getattr(self, k), "f") for k in _PRICE_KEYS}


@dataclass(frozen=True, slots=True)
class PriceMatch:
    """The entry that priced an observed (provider, model), and the rule that found it."""

    provider: str
    model: str
    price: Price
    rule: str  # "exact", or the steps that led to the entry

    @property
    def entry(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True)
class PriceTable:
    currency: str
    prices: Mapping[tuple[str, str], Price]
    sources: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def lookup(self, provider: str, model: str) -> Price | None:
        found = self.match(provider, model)
        return found.price if found is not None else None

    def match(self, provider: str, model: str) -> PriceMatch | None:
        """The entry for ``(provider, model)`` by the first rule that finds one, or None."""
        if not isinstance(provider, str) or not isinstance(model, str):
            return None
        for rule, entry_provider, entry_model in candidates(provider, model):
            price = self.prices.get((entry_provider, entry_model))
            if price is not None:
                return PriceMatch(entry_provider, entry_model, price, rule)
        return None


def candidates(provider: str, model: str) -> Iterator[tuple[str, str, str]]:
    """``(rule, provider, model)`` forms of an observed name, most literal first."""
    yield "exact", provider, model
    p, m = provider.strip().lower(), model.strip().lower()
    providers = [(PROVIDER_ALIASES.get(p, p), _alias_step(p))]
    route_steps: list[str] = []
    if "/" in m:
        route, m = m.rsplit("/", 1)
        route_steps.append(f"route prefix {route}/ dropped")
        head = route.split("/", 1)[0]
        routed = PROVIDER_ALIASES.get(head, head)
        if routed != providers[0][0]:
            providers.append((routed, [f"provider {routed} from the route"]))
    for entry_provider, provider_steps in providers:
        for entry_model, model_steps in _model_forms(m):
            steps = provider_steps + route_steps + model_steps
            yield (", ".join(steps) if steps else "case and spaces"), entry_provider, entry_model


def _alias_step(provider: str) -> list[str]:
    alias = PROVIDER_ALIASES.get(provider)
    return [f"provider alias {provider} -> {alias}"] if alias else []


def _model_forms(model: str) -> Iterator[tuple[str, list[str]]]:
    """The model, then without each snapshot/version suffix, then in the table's spelling."""
    steps: list[str] = []
    yield model, []
    stripped = True
    while stripped:
        stripped = False
        for pattern, what in _SUFFIXES:
            found = pattern.search(model)
            if found:
                steps = [*steps, f"{what} {found.group(0)} dropped"]
                model = model[: found.start()]
                stripped = True
                yield model, steps
                break
    respelled = _DIGIT_DOT.sub("-", model)
    if respelled != model:
        yield respelled, [*steps, "dots between digits read as hyphens"]


# --- loading ------------------------------------------------------------------------------------


def load_table(override: Path | None, currency: str) -> PriceTable:
    """The built-in table merged with an override file (entries there win, per model)."""
    return _load_table(override, currency)


@functools.lru_cache(maxsize=8)
def _load_table(override: Path | None, currency: str) -> PriceTable:
    builtin = resources.files("logkit").joinpath("prices.toml").read_text(encoding="utf-8")
    prices: dict[tuple[str, str], Price] = {}
    sources: dict[tuple[str, str], str] = {}
    base = _parse(tomllib.loads(builtin), "built-in price table")
    # The built-in prices are USD list prices: never relabel them as another currency.
    if base[0] == currency:
        prices.update(base[1])
        sources.update(dict.fromkeys(base[1], BUILT_IN))
    if override is not None:
        table_currency, entries = _parse(_read(override), str(override))
        if table_currency not in (None, currency):
            raise ConfigError(
                f"price table {override} is in {table_currency}, but [usage] currency is {currency}"
            )
        prices.update(entries)  # per model: an override entry replaces the built-in one
        sources.update(dict.fromkeys(entries, str(override)))
    return PriceTable(currency, prices, sources)


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"price table not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"price table {path} is not UTF-8 text") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
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
