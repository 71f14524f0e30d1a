"""The detectors' class-first patterns find exactly what their readable forms find.

detectors.py writes the numeric, IBAN and email patterns with their first character class in
front (so sre can skip impossible positions at C speed) and the leading lookbehinds moved after
it. Those forms are hard to read; the readable forms are here, and a property checks both find
the same spans on text built from the pieces these values are made of.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logkit.redaction import detectors as d

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_NB, _NA = r"(?<![\w.+-])", r"(?![\w]|[.-]\d)"


def _iban_readable() -> re.Pattern[str]:
    branches = []
    for length, countries in d._IBAN_LENGTHS.items():
        rest = length - 4
        q, r = divmod(rest, 4)
        spaced = rf"(?: [A-Z0-9]{{4}}){{{q}}}" + (rf" [A-Z0-9]{{{r}}}" if r else "")
        alternatives = "|".join(countries.split())
        branches.append(rf"(?:{alternatives})\d\d(?:[A-Z0-9]{{{rest}}}|{spaced})")
    source = r"(?<![A-Za-z0-9])(?:" + "|".join(branches) + r")(?![A-Za-z0-9])"
    return re.compile(source, re.ASCII | re.I)


READABLE: dict[str, tuple[re.Pattern[str], re.Pattern[str], int]] = {
    "card": (
        re.compile(
            _NB + r"(?:\d{4}([ .-]?)\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?"
            r"|3[47]\d{2}([ .-]?)\d{6}\2\d{5}|3[0689]\d{2}([ .-]?)\d{6}\3\d{4}|\d{13,19})" + _NA,
            re.ASCII,
        ),
        d._CARD,
        0,
    ),
    "us_ssn": (
        re.compile(_NB + r"(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}" + _NA, re.A),
        d._SSN,
        0,
    ),
    "us_ssn context": (
        re.compile(
            r"(?i:\bssn|social[ _-]security(?:[ _-]number)?)\W{0,4}(?:#|no\.?|number)?\W{0,3}"
            r"((?!000|666|9\d\d)\d{3}(?!00)\d{2}(?!0000)\d{4})(?![\w])",
            re.ASCII,
        ),
        d._SSN_CONTEXT,
        1,
    ),
    "ipv4": (
        re.compile(
            r"(?<![\w.])(?<!version )(?<!Version )(?<!release )(?<!build )(?<!ver )"
            rf"(?:{_OCTET}\.){{3}}{_OCTET}(?!\d|\.\d)",
            re.ASCII,
        ),
        d._IPV4,
        0,
    ),
    "phone": (
        re.compile(
            r"(?<![\w+])(?<!\d[ .-])(?:"
            r"\+[1-9]\d{0,2}(?:[ .-]?\(0\))?(?:[ .-]?(?:\(\d{1,4}\)|\d{1,5})){1,6}"
            r"|(?:1[-. ])?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[-. ])[2-9]\d{2}[-. ]\d{4}"
            r"|0[1-9]\d{0,3}([ /.-])\d{2,8}(?:\1\d{2,8}){0,3}"
            r")(?![\w]|[.-]?\d)",
            re.ASCII,
        ),
        d._PHONE,
        0,
    ),
    "iban": (_iban_readable(), d._iban_pattern(), 0),
    "email": (
        re.compile(
            r"(?<![\w.%+-])[\w%+-]+(?:\.[\w%+-]+)*"
            r"@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:[^\W\d_]{2,24}|xn--[a-z0-9-]{1,59})(?![\w-])"
        ),
        d._EMAIL,
        0,
    ),
}

PIECES = [
    *"0123456789", " ", "-", ".", "/", "(", ")", "+", "#", ":", "_", "@", "a", "x", "\u00e9",
    "4111", "1111", "3782", "822463", "10005", "3056", "930902", "5904", "123", "45", "6789",
    "000", "666", "900", "00", "0000", "ssn", "SSN ", "Ssn: ", "social security number",
    "Social_Security", "no.", "number", "+1", "+44", "(0)", "(415)", "415", "555", "0134",
    "020", "7946", "0958", "0161", "1-800", "version ", "ver ", "build ", "192", "168", "255",
    "256", "10", "DE89", "de89", "3704", "0044", "0532", "0130", "GB82", "WEST", "gb82west",
    "MT84", "MALT", "NO93", "8601", "1117", "947", "alice", "b.com", "ex.co.uk", "x--", "xn--p1ai",
    "j\u00f6hn", "\u4f8b", "%", "-1", ".1",
]  # fmt: skip


def spans(pattern: re.Pattern[str], group: int, text: str) -> list[tuple[int, int]]:
    return [m.span(group) for m in pattern.finditer(text)]


@pytest.mark.parametrize("name", list(READABLE))
@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.sampled_from(PIECES), max_size=16))
def test_class_first_pattern_equals_its_readable_form(name: str, parts: list[str]) -> None:
    readable, fast, group = READABLE[name]
    text = "".join(parts)
    assert spans(fast, group, text) == spans(readable, group, text)
    # Windows: finditer with pos/endpos, as the engine calls it.
    if len(text) > 4:
        assert spans_in(fast, group, text, 2, len(text) - 1) == spans_in(
            readable, group, text, 2, len(text) - 1
        )


def spans_in(
    pattern: re.Pattern[str], group: int, text: str, pos: int, end: int
) -> list[tuple[int, int]]:
    return [m.span(group) for m in pattern.finditer(text, pos, end)]


TRIGGERED = [det for det in d.DETECTORS if det.trigger is not None]


@pytest.mark.parametrize("det", TRIGGERED, ids=lambda det: f"{det.kind}-{det.group}")
@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.sampled_from(PIECES), max_size=16))
def test_a_trigger_occurs_wherever_its_detector_matches(det: d.Detector, parts: list[str]) -> None:
    """A trigger decides whether the detector runs at all: it must never miss a match."""
    assert det.trigger is not None
    text = "".join(parts)
    if det.pattern.search(text):
        assert re.search(det.trigger, text), (det.kind, text)


def test_triggers_on_the_corpus() -> None:
    import random

    from tests.redaction import corpus

    r = random.Random(5)
    for det in TRIGGERED:
        for _ in range(300):
            _, value, _ = corpus.plant(det.kind, r)
            if det.pattern.search(value):
                assert re.search(det.trigger or "", value), (det.kind, value)
