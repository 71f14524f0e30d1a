"""The regex redaction engine: finds typed values in every value and swaps in pseudonyms.

Speed comes from not running what cannot match, in two steps:

* prefilters: C-speed substring tests (``"@"``, ``"://"``, each secret's literal prefix, "any
  digit") decide whether a detector can match the string at all;
* anchors: the numeric, email, IPv6, bearer and URL detectors share a few cheap anchor regexes
  (nine digits with separators, ``@``, ``::``...). One anchor scan per string finds the few
  places worth looking at, and the detectors' full regexes (lookarounds, backreferences,
  validators) run only in windows around those hits (:mod:`~logkit.redaction.windows`: merged,
  and widened to the token around the hit, so a value of any length is seen whole).

Measured on mixed log text: running every detector over the whole text managed ~3 MB/s (sre
steps through every digit for each numeric pattern); the anchored form is several times
faster. The digit anchor, the one scan over every string, runs on google-re2's DFA when it is
installed (about 3x Python's ``re`` on it) and on ``re`` otherwise; the detectors themselves
need lookarounds RE2 lacks, so they stay on ``re``.

Everything is linear in the input: windows merge, overlap resolution is a sort plus a coverage
check (:mod:`~logkit.redaction.overlap`), and the detector regexes have no nested unbounded
repetition that could backtrack on a crafted string (``bench/redaction.py`` states the worst
case it found). Text is matched in its normalised form (:mod:`~logkit.redaction.normalize`:
Unicode digits, spaces and dashes, zero-width characters, percent-encoding) and the original
span is replaced. Numbers are inspected too, and dict keys give their values context
(:mod:`~logkit.redaction.fields`).
"""

from __future__ import annotations

import functools
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

from logkit.envelope import RedactionReport
from logkit.errors import RedactionError
from logkit.redaction import fields
from logkit.redaction.detectors import (
    DETECTORS,
    DIGITS,
    Detector,
    detectors,
    is_secret,
    registry_generation,
)
from logkit.redaction.normalize import normalize
from logkit.redaction.overlap import Find, Span, resolve
from logkit.redaction.pseudonym import Pseudonyms, tenant_key
from logkit.redaction.windows import Window, WindowFinder

__all__ = ["MAX_DEPTH", "RegexRedactor", "Span"]

try:  # optional: the same results either way, RE2 only scans the anchors faster
    import re2 as _re2  # type: ignore[import-untyped,import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the environment
    _re2 = None

MAX_DEPTH = 256
"""Containers nested deeper than this are refused (a RedactionError, never a RecursionError)."""

_HAS_DIGIT = re.compile(r"\d", re.ASCII).search
_MAX_TENANT_KEYS = 4096
_MIN_CANDIDATE = 6  # the shortest value but an IPv6 ("a@b.io") has six characters
_MIN_IPV6 = 3  # "::1"
_MAX_PLAIN_IDENTIFIER = 16  # the shortest secret (an AWS access key id) has twenty
# The built-in detectors find nothing in a bare digit run shorter than a card (13 digits);
# with custom detectors, numbers as short as any detectable string are scanned.
_BUILTIN_MIN_NUMBER = 10**12
_CUSTOM_MIN_NUMBER = 10 ** (_MIN_CANDIDATE - 1)
_CONTEXT_PRIORITY = 20  # below every text detector: the kind a detector gives wins
_NOT_DIGIT = str.maketrans("", "", " ().-/+")
_SPAN = re.Match.span
_ADD: Callable[[tuple[int, int], tuple[int, str]], Find] = tuple.__add__  # type: ignore[assignment]
_BUILTIN_IDS = frozenset(id(det) for det in DETECTORS)

KeySource = bytes | Callable[[], bytes]


class RegexRedactor:
    """A :class:`~logkit.redaction.gate.Redactor` over typed regex detectors.

    ``master_key`` is the pseudonym master key, or a zero-argument callable returning it: the
    callable is called on the first use that needs a key (the first pseudonym), and what it
    raises reaches that caller; a later use calls it again. Scanning never needs the key.

    ``allow`` names kinds left in place (they are still found, so they keep other detectors off
    their span); secret kinds cannot be allowed. ``detectors=None`` uses the built-ins plus any
    registered with :func:`~logkit.redaction.detectors.register_detector`, picked up live.
    """

    def __init__(
        self,
        master_key: KeySource,
        *,
        policy: str = "default",
        allow: frozenset[str] = frozenset(),
        detectors: Sequence[Detector] | None = None,
    ) -> None:
        if not callable(master_key) and not master_key:
            raise RedactionError("a redaction master key is required")
        secret = sorted(k for k in allow if is_secret(k))
        if secret:
            raise RedactionError(f"secret kinds can never be allowed: {', '.join(secret)}")
        self.policy = policy
        self.allow = frozenset(allow)
        self._source = master_key if callable(master_key) else None
        self._master = None if callable(master_key) else bytes(master_key)
        self._master_lock = threading.Lock()
        self._fixed = tuple(detectors) if detectors is not None else None
        self._generation = -1
        self._active: tuple[Detector, ...] = ()
        self._tenant_keys: dict[str | None, Pseudonyms] = {}
        self._finders: list[WindowFinder | None] = []
        self._plain: list[bool] = []
        self._min_number = _BUILTIN_MIN_NUMBER
        self._refresh()

    @functools.cached_property
    def clean(self) -> RedactionReport:
        return RedactionReport(policy=self.policy)

    def _refresh(self) -> None:
        if self._fixed is not None:
            self._active = self._fixed
        elif self._generation != registry_generation():
            self._generation = registry_generation()
            self._active = detectors()
        built: dict[tuple[Any, ...], WindowFinder] = {}
        finders: list[WindowFinder | None] = []
        for det in self._active:
            if det.anchor is None:
                finders.append(None)
                continue
            key = (det.anchor, det.window, det.reach)
            if key not in built:
                built[key] = WindowFinder(det.anchor, det.window, det.reach)
            finders.append(built[key])
        self._finders = finders
        # Finds of these need no per-match Python: no validator, the whole match, never empty.
        self._plain = [
            det.validator is None and det.group == 0 and id(det) in _BUILTIN_IDS
            for det in self._active
        ]
        self._trigger_set = _trigger_set(self._active)
        builtin = len(self._active) == len(DETECTORS) and all(
            a is b for a, b in zip(self._active, DETECTORS, strict=True)
        )
        self._min_number = _BUILTIN_MIN_NUMBER if builtin else _CUSTOM_MIN_NUMBER

    # --- finding --------------------------------------------------------------------------

    def scan(self, text: str) -> list[Span]:
        """Every find in ``text`` after overlap resolution, in order; allowed kinds included.

        Spans are positions in ``text`` as given, also when the match was made on its
        normalised form (a fullwidth card, ``alice%40example.com``).
        """
        found, _ = self._finds(text, 0)
        return [(s, e, kind) for s, e, _, kind in resolve(found)]

    def _finds(self, text: str, flags: int) -> tuple[list[Find], bool]:
        """Finds in ``text`` and in its normalised form (mapped back), before resolution;
        and whether there was a normalised form. Both forms are scanned: normalising can only
        add finds (a fullwidth card), never lose one the text as written has (a password
        with ``%0A`` in a URL stays one token)."""
        found = self._find(text)
        if flags:
            found += self._context_finds(text, flags)
        norm = normalize(text)
        if norm is None:
            return found, False
        more = self._find(norm.text)
        if flags:
            more += self._context_finds(norm.text, flags)
        at = norm.original
        found += [(at(s), at(e), priority, kind) for s, e, priority, kind in more]
        return found, True

    def _find(self, text: str) -> list[Find]:  # noqa: PLR0912 - one inlined hot loop
        """Every detector's finds in ``text`` (already normalised), before resolution."""
        if self._fixed is None and self._generation != registry_generation():
            self._refresh()
        found: list[Find] = []
        has_digit: bool | None = None
        regions_by_finder: dict[int, list[Window]] = {}
        whole = [(0, len(text))]
        triggered: set[int] | None = None
        if self._trigger_set is not None:
            # One RE2 DFA pass says which detectors' triggers occur at all.
            hits = self._trigger_set.Match(text)
            if hits is None:
                return found
            triggered = set(hits)
        append = found.append
        for i, det in enumerate(self._active):
            pf = det.prefilter
            if triggered is not None:
                if i not in triggered:
                    continue
            elif pf is DIGITS:
                if has_digit is None:
                    has_digit = _HAS_DIGIT(text) is not None
                if not has_digit:
                    continue
            elif pf is not None:
                for p in pf:  # a plain loop: a generator in any() costs more than the tests
                    if p in text:
                        break
                else:
                    continue
            finder = self._finders[i]
            if finder is None:
                regions = whole
            else:
                regions = regions_by_finder.get(id(finder))  # type: ignore[assignment]
                if regions is None:
                    regions = regions_by_finder[id(finder)] = finder(text)
            finditer = det.pattern.finditer
            if self._plain[i]:
                tail = (det.priority, det.kind)
                for ws, we in regions:
                    found += map(_ADD, map(_SPAN, finditer(text, ws, we)), repeat(tail))
                continue
            group, validator, priority, kind = det.group, det.validator, det.priority, det.kind
            for ws, we in regions:
                for m in finditer(text, ws, we):
                    start, end = m.span(group)
                    if start == end or (validator is not None and not validator(text[start:end])):
                        continue
                    append((start, end, priority, kind))
        return found

    def _context_finds(self, text: str, flags: int) -> list[Find]:
        """Finds that only the dict key makes: bare numbers under phone/SSN/card keys, and
        values hidden behind identifier separators ("order_4111111111111111")."""
        out: list[Find] = []
        if flags & (fields.PHONE | fields.SSN | fields.CARD):
            for m in fields.CONTEXT_VALUE.finditer(text):
                kind = fields.numeric_kind(m.group().translate(_NOT_DIGIT), flags)
                if kind is not None:
                    out.append((m.start(), m.end(), _CONTEXT_PRIORITY, kind))
        if flags & fields.IDENT:
            out += self._find(text.translate(fields.IDENT_SEPARATORS))
        return out

    # --- keys -----------------------------------------------------------------------------

    def _master_key(self) -> bytes:
        master = self._master
        if master is None:
            with self._master_lock:
                if self._master is None:
                    assert self._source is not None
                    value = self._source()  # what it raises reaches the caller; retried later
                    if not value:
                        raise RedactionError("the redaction master key is empty")
                    self._master = bytes(value)
                master = self._master
        return master

    def _pseudonyms(self, tenant_id: str | None) -> Pseudonyms:
        names = self._tenant_keys.get(tenant_id)
        if names is None:
            if len(self._tenant_keys) >= _MAX_TENANT_KEYS:
                self._tenant_keys.clear()  # bounded: derivation is cheap, memory is not
            key = tenant_key(self._master_key(), tenant_id)
            names = self._tenant_keys[tenant_id] = Pseudonyms(key)
        return names

    def tenant_key(self, tenant_id: str | None) -> bytes:
        """The per-tenant pseudonym key (derived from the master key, cached)."""
        return self._pseudonyms(tenant_id).key

    # --- redacting ------------------------------------------------------------------------

    def _text(self, text: str, counts: dict[str, int], tenant_id: str | None, flags: int) -> str:
        size = len(text)
        if (
            size < _MIN_IPV6
            or (size < _MIN_CANDIDATE and ":" not in text)
            or (size < _MAX_PLAIN_IDENTIFIER and text.isidentifier())
        ):
            # Payload keys and short words ("name", "status", "compute"): no detector can match
            # a bare identifier this short (every kind needs @, separators, or 16+ characters),
            # and skipping them spares the per-call cost of the RE2 trigger pass.
            return text
        found, normalized = self._finds(text, flags)
        if not found:
            return text
        spans = resolve(found)
        if self.allow:
            spans = [f for f in spans if f[3] not in self.allow]
            if not spans:
                return text
        # Column-wise, so the per-find work runs in C (maps and slices) except the token.
        starts, ends, _, kinds = zip(*spans, strict=True)
        values = map(text.__getitem__, map(slice, starts, ends))
        if normalized:
            # The pseudonym is of the value's matching form, so "alice%40example.com" and
            # "alice@example.com" correlate; the span replaced is the one as written.
            values = map(_matching_form, values)
        tokens = list(map(self._pseudonyms(tenant_id).token, kinds, values))
        pieces: list[str] = [""] * (2 * len(tokens) + 1)
        pieces[::2] = map(text.__getitem__, map(slice, (0, *ends), (*starts, len(text))))
        pieces[1::2] = tokens
        for kind, n in Counter(kinds).items():
            counts[kind] = counts.get(kind, 0) + n
        return "".join(pieces)

    def _number(  # noqa: PLR0911 - each early return is a number left as it is
        self, value: int | float, counts: dict[str, int], tenant_id: str | None, flags: int
    ) -> Any:
        """A number whose decimal form is a find becomes the find's pseudonym (a string)."""
        if isinstance(value, float):
            if not value.is_integer():
                return value
            number = int(value)
        else:
            number = value
        number = -number if number < 0 else number
        if number < self._min_number and not flags:
            return value
        try:
            digits = str(number)
        except ValueError:  # beyond int's str() digit limit: no detector reads that far
            return value
        kind = fields.numeric_kind(digits, flags) if flags else None
        if kind is None:
            if number < self._min_number:
                return value
            spans = [s for s in resolve(self._find(digits)) if s[3] not in self.allow]
            if not spans:
                return value
            kind = spans[0][3]
        if kind in self.allow:
            return value
        counts[kind] = counts.get(kind, 0) + 1
        return self._pseudonyms(tenant_id).token(kind, digits)

    def _walk(
        self, value: Any, counts: dict[str, int], tenant_id: str | None, flags: int, depth: int
    ) -> Any:
        # Returns ``value`` itself when nothing inside changed, so clean payloads are not copied.
        if isinstance(value, str):
            return self._text(value, counts, tenant_id, flags)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return self._number(value, counts, tenant_id, flags)
        if depth >= MAX_DEPTH:
            raise RedactionError(f"value nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            return self._walk_dict(value, counts, tenant_id, depth)
        if isinstance(value, list | tuple):
            # Context reaches list items: {"phones": [4155550134, "4155550135"]}.
            items = [self._walk(v, counts, tenant_id, flags, depth + 1) for v in value]
            if all(n is o for n, o in zip(items, value, strict=True)):
                return value
            return items
        raise RedactionError(f"cannot redact a value of type {type(value).__name__}")

    def _walk_dict(
        self, value: dict[Any, Any], counts: dict[str, int], tenant_id: str | None, depth: int
    ) -> Any:
        out: dict[Any, Any] | None = None
        low = self._min_number
        for i, (k, v) in enumerate(value.items()):
            if type(k) is str:
                # Inlined for the common case, a short plain key with a short word or a
                # small number (the emit hot path): the same tests _text and _number make.
                nk = (
                    k
                    if len(k) < _MAX_PLAIN_IDENTIFIER and k.isidentifier()
                    else self._text(k, counts, tenant_id, 0)
                )
                kind = type(v)
                context = fields.KNOWN.get(k)
                if context is None:
                    context = fields.classify(k)
                if context:
                    nv = self._walk(v, counts, tenant_id, context, depth + 1)
                elif kind is str:
                    nv = (
                        v
                        if len(v) < _MAX_PLAIN_IDENTIFIER and v.isidentifier()
                        else self._text(v, counts, tenant_id, 0)
                    )
                elif ((kind is int or kind is float) and -low < v < low) or v is None:
                    nv = v  # too few digits for any detector, and no key context
                else:
                    nv = self._walk(v, counts, tenant_id, 0, depth + 1)
            else:
                # A number key is inspected like a number value; other keys (None, bools,
                # tuples) stay as they are: a tuple would come back as an unhashable list.
                number = isinstance(k, int | float) and not isinstance(k, bool)
                nk = self._number(k, counts, tenant_id, 0) if number else k
                nv = self._walk(v, counts, tenant_id, 0, depth + 1)
            if out is None and (nk is not k or nv is not v):
                out = dict(list(value.items())[:i])
            if out is not None:
                out[nk] = nv
        return value if out is None else out

    def redact(self, value: Any, *, tenant_id: str | None = None) -> tuple[Any, RedactionReport]:
        counts: dict[str, int] = {}
        try:
            redacted = self._walk(value, counts, tenant_id, 0, 0)
        except RecursionError:  # the caller's own stack was already deep
            raise RedactionError("value nested too deeply to redact") from None
        if not counts:
            return value, self.clean
        return _untuple(redacted), RedactionReport(policy=self.policy, counts=counts)


def _matching_form(value: str) -> str:
    norm = normalize(value)
    return value if norm is None else norm.text


def _trigger_set(active: Sequence[Detector]) -> Any:
    """An RE2 set with one trigger per detector (its trigger, else its anchor, else its
    prefilter literals), or None (no RE2, or a detector with none, which must always run)."""
    if _re2 is None:
        return None
    triggers = []
    for det in active:
        if det.trigger is not None:
            triggers.append(det.trigger)
        elif det.anchor is not None:
            triggers.append(det.anchor)
        elif det.prefilter is not None:
            triggers.append("|".join(_re2.escape(p) for p in det.prefilter))
        else:
            return None
    try:
        rset = _re2.Set.SearchSet()
        for index, trigger in enumerate(triggers):
            if rset.Add(trigger) != index:
                return None
        rset.Compile()
    except Exception:  # an anchor RE2 cannot take: fall back to prefilters
        return None
    return rset


def _untuple(value: Any) -> Any:
    """Tuples come back as lists (JSON has no tuple), also those that needed no change."""
    if isinstance(value, tuple | list):
        return [_untuple(v) for v in value]
    if isinstance(value, dict):
        return {k: _untuple(v) for k, v in value.items()}
    return value
