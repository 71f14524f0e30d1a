"""Matching form of text and the map back to the original: exact, and free for plain ASCII."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logkit.redaction import normalize as n
from logkit.redaction.normalize import normalize

PIECES = [
    "a", "B", "1", " ", "-", ".", "@", "%", "&", ";", "#", "x", "\u00e9", "\u4f8b",
    "\uff14", "\u0663", "\U0001d7d9", "\u00a0", "\u202f", "\u3000", "\u2013", "\u2212",
    "\u200b", "\u200d", "\ufeff", "\u00ad", "\ufe0f", "\uff20", "\uff0e", "\uff41",
    "%40", "%20", "%2B", "%2b", "%C3%B6", "%E2%80%8B", "%EF%BC%A0", "%FF", "%C3", "%4", "%zz",
    "&#64;", "&#x40;", "&commat;", "&nbsp;", "&amp;", "&nosuch;", "&#8203;", "&#65300;", "&#",
]  # fmt: skip


@settings(max_examples=800, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=14).map("".join))
def test_the_span_map_is_exact(text: str) -> None:
    norm = normalize(text)
    if norm is None:
        return
    at = norm.original
    assert at(0) >= 0 and at(len(norm.text)) == len(text)
    for s in range(len(norm.text) + 1):
        assert at(s) <= at(s + 1) if s < len(norm.text) else True
        for e in range(s, len(norm.text) + 1):
            piece = text[at(s) : at(e)]
            again = normalize(piece)
            # The original span of a normalised span normalises back to exactly it.
            assert (piece if again is None else again.text) == norm.text[s:e]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\uff14\uff11\uff11\uff11 \u0661\u0662", "4111 12"),
        ("4111\u00a01111\u202f1111\u20071111", "4111 1111 1111 1111"),
        ("a\u200bl\u200ci\u2060c\ufeffe\u00ad@x.io", "alice@x.io"),
        ("415\u2013555\u22120134 \u2010", "415-555-0134 -"),
        ("bob\uff20example\uff0ecom", "bob@example.com"),
        ("alice%40example.com %2B44%2020", "alice@example.com +44 20"),
        ("%C3%B6%E2%80%8B%EF%BC%A0%FF", "\u00f6@%FF"),
        ("a&#64;b &#x40; &commat; &nbsp;. &nosuch; &#8203;x", "a@b @ @  . &nosuch; x"),
    ],
)
def test_what_normalises_to_what(text: str, expected: str) -> None:
    norm = normalize(text)
    assert norm is not None and norm.text == expected


@pytest.mark.parametrize(
    "text", ["plain log line 2024-01-15 a@b.com", "", "50 % off & more", "caf\u00e9 na\u00efve"]
)
def test_text_with_nothing_to_normalise_takes_the_fast_path(text: str) -> None:
    assert normalize(text) is None


def test_the_presence_check_sees_every_character_the_rules_change() -> None:
    """RE2's quick "anything to do?" must say yes for every character normalize() changes
    (else a fullwidth digit in a long text would pass unmatched). Checked over the BMP."""
    misses = []
    for code in range(0x80, 0x10000):
        ch = chr(code)
        if unicodedata.category(ch) == "Cs":
            continue
        if n.fold(ch) != ch and not n.needs_normalizing(ch):
            misses.append(hex(code))
    assert misses == []


def test_dropped_characters_are_all_in_the_scan_class() -> None:
    """Every character fold() drops is found by the length-changing scan (else it would be
    neither dropped nor mapped)."""
    for code in [*range(0x80, 0x20000), *range(0xE0000, 0xE1000)]:
        ch = chr(code)
        if unicodedata.category(ch) != "Cs" and n.fold(ch) == "":
            norm = normalize(f"a{ch}b")
            assert norm is not None and norm.text == "ab", hex(code)
