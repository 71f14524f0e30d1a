"""Normalise text for matching, and map what matched back onto the original text.

The detectors are written for ASCII digits, plain spaces and hyphens. Text in the wild also
carries fullwidth or Arabic-Indic digits, no-break and thin spaces, Unicode dashes and minus
signs, zero-width characters inside values, percent-encoding (``alice%40example.com``) and
HTML character references (``&#64;``). :func:`normalize` rewrites those for matching only:

* a non-ASCII decimal digit (Unicode ``Nd``) becomes its ASCII digit;
* a non-ASCII space becomes ``" "``; a dash (``Pd``) or minus sign becomes ``"-"``;
* the fullwidth at sign, full stop, plus and brackets, and fullwidth Latin letters, become
  ASCII;
* format characters (``Cf``: zero-width space/joiners, word joiner, BOM, soft hyphen, bidi
  controls) and variation selectors are dropped;
* ``%XX`` (one level, UTF-8 sequences included) and ``&#64;``/``&#x40;``/``&commat;`` decode.

The engine matches on the normalised text and replaces the *original* span, found through
:class:`Normalized`'s position map, so nothing of the value as written survives. Cost: ASCII
text without ``%`` or ``&`` (almost every log line) takes the fast path (no copy, no map); the
one-for-one replacements are a ``str.translate``; only characters that change the length (drops
and escapes) are visited in Python, runs of them at once.
"""

from __future__ import annotations

import html
import re
import unicodedata
from bisect import bisect_right
from typing import Any

try:  # optional: RE2 answers "is there anything to normalise?" about 10x faster than re
    import re2 as _re2  # type: ignore[import-untyped,import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the environment
    _re2 = None

# Invisible characters outside Cf (variation selectors, the combining grapheme joiner,
# Mongolian free variation selectors) are dropped too.
_EXTRA_DROP = frozenset("\u034f\u180b\u180c\u180d\u180f") | frozenset(
    chr(c) for c in range(0xFE00, 0xFE10)
)
_FULLWIDTH = frozenset(
    "\uff08\uff09\uff0b\uff0e\uff20"
    + "".join(chr(c) for c in (*range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B)))
)
_SMALL = {"\ufe6b": "@", "\ufe52": ".", "\ufe62": "+", "\u2212": "-"}

# Dropped characters (Cf as of Unicode 14, and the extras) as one class for re; RE2 says
# \p{Cf} itself. tests/redaction/test_normalize.py checks the lists against unicodedata.
_DROP_CLASS = (
    "\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180b-\u180f\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufe00-\ufe0f\ufeff\ufff9-\ufffb\U000110bd"
    "\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f"
)
# One-for-one mapped characters besides Nd digits and spaces (dashes, fullwidth, small forms).
_MAPPED_CLASS = (
    "\u058a\u05be\u1400\u1806\u2010-\u2015\u2212\u2e17\u2e1a\u2e3a\u2e3b\u2e40\u2e5d\u301c"
    "\u3030\U00010ead\u30a0\ufe31\ufe32\ufe58\ufe63\ufe52\ufe62\ufe6b\uff08\uff09\uff0b\uff0d\uff0e\uff20"
    "\uff21-\uff3a\uff41-\uff5a"
)
_ESCAPE = r"(?:%[0-9A-Fa-f]{2})+|&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
# What changes the length, class first so sre skips everything else at C speed: a run of
# dropped characters, a run of %XX escapes, one character reference.
_LENGTH = re.compile(
    "[%&" + _DROP_CLASS + "](?:(?<=[" + _DROP_CLASS + "])[" + _DROP_CLASS + "]*"
    r"|(?<=%)[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2})*"
    r"|(?<=&)(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});)"
)
_ASCII_ESCAPE = re.compile(_ESCAPE)
_SPECIAL = re.compile(  # the fallback presence check when RE2 is missing
    r"[^\D\x00-\x7f]|[^\S\x00-\x7f]|[" + _DROP_CLASS + _MAPPED_CLASS + "]|" + _ESCAPE
)
_PRESENCE: Any = None
if _re2 is not None:
    try:
        _PRESENCE = _re2.compile(
            r"[^\P{Nd}0-9]|[^\P{Z} ]|[\x{85}\x{1c}-\x{1f}]|\p{Cf}|\p{Pd}|["
            + _DROP_CLASS
            + _MAPPED_CLASS
            + r"]|%[0-9A-Fa-f]{2}|&[#A-Za-z]"
        )
    except Exception:  # pragma: no cover - an RE2 that cannot take the class: use re only
        _PRESENCE = None

_MAX_CACHED = 1 << 16


def fold(ch: str) -> str:
    """What one character becomes for matching ("" when dropped; itself when unchanged)."""
    category = "" if ch.isascii() else unicodedata.category(ch)
    if category == "Nd":
        out = str(unicodedata.decimal(ch))
    elif category and ch.isspace():
        out = " "
    elif category == "Cf" or ch in _EXTRA_DROP:
        out = ""
    elif category == "Pd":
        out = "-"
    elif ch in _FULLWIDTH:
        out = chr(ord(ch) - 0xFEE0)
    else:
        out = _SMALL.get(ch, ch)
    return out


class _Folds(dict[int, int]):
    """``str.translate`` table of the one-for-one replacements, filled on first sight of each
    character (the Unicode tables are not walked at import)."""

    def __missing__(self, code: int) -> int:
        if len(self) >= _MAX_CACHED:
            self.clear()
        out = fold(chr(code))
        value = self[code] = ord(out) if len(out) == 1 else code
        return value


_folds = _Folds()
_decoded: dict[str, str | None] = {}


class Normalized:
    """Text as the detectors see it, and the way back to positions in the original."""

    __slots__ = ("_deltas", "_marks", "text")

    def __init__(self, text: str, marks: list[int], deltas: list[int]) -> None:
        self.text = text
        # From normalised position marks[i] on, original = normalised + deltas[i].
        self._marks = marks
        self._deltas = deltas

    def original(self, pos: int) -> int:
        """The original position of normalised position ``pos`` (a span end maps past any
        dropped characters that follow it; a span start skips the dropped ones before it)."""
        return pos + self._deltas[bisect_right(self._marks, pos) - 1]


def needs_normalizing(text: str) -> bool:
    """False for text the detectors can read as it is (the fast path)."""
    if text.isascii():
        return ("%" in text or "&" in text) and _ASCII_ESCAPE.search(text) is not None
    if _PRESENCE is not None:
        return _PRESENCE.search(text) is not None
    return _SPECIAL.search(text) is not None


def normalize(text: str) -> Normalized | None:
    """The matching form of ``text`` with its position map, or None when it is unchanged."""
    if not needs_normalizing(text):
        return None
    mapped = text if text.isascii() else text.translate(_folds)
    pieces: list[str] = []
    marks, deltas = [0], [0]
    npos = opos = 0  # normalised length so far; original position consumed so far
    for m in (_ASCII_ESCAPE if text.isascii() else _LENGTH).finditer(mapped):
        start, end = m.span()
        found = m.group()
        pieces.append(mapped[opos:start])
        npos += start - opos
        opos = start
        if found[0] == "%":
            npos, opos = _percent(found, start, npos, (pieces, marks, deltas))
            continue
        if found[0] == "&" and len(found) > 1:
            char = _reference(found)
            if char is None:
                continue  # not a reference we decode: the text stays as it is
            pieces.append(char)
            npos += len(char)
        opos = end
        marks.append(npos)
        deltas.append(opos - npos)
    if len(marks) == 1:
        return None if mapped == text else Normalized(mapped, marks, deltas)
    pieces.append(mapped[opos:])
    return Normalized("".join(pieces), marks, deltas)


def _reference(found: str) -> str | None:
    """The folded character of an HTML character reference (None when it is none we decode;
    "" when it decodes to a dropped character)."""
    if found not in _decoded:
        decoded = html.unescape(found)
        if len(_decoded) >= _MAX_CACHED:
            _decoded.clear()
        _decoded[found] = fold(decoded) if len(decoded) == 1 and decoded != found else None
    return _decoded[found]


def _percent(
    run: str, at: int, npos: int, into: tuple[list[str], list[int], list[int]]
) -> tuple[int, int]:
    """Decode a run of ``%XX`` escapes into (pieces, marks, deltas); returns the new
    (normalised, original) positions. ASCII runs go whole; other bytes one by one, valid UTF-8
    sequences decoding and invalid ones staying as written."""
    pieces, marks, deltas = into
    data = bytes.fromhex(run.replace("%", ""))
    if data.isascii():
        pieces.append(data.decode("ascii"))
        count = len(data)
        # Each escape is one character, three in the original: positions step by one and three.
        marks.extend(range(npos + 1, npos + count + 1))
        deltas.extend(range(at + 2 - npos, at + 2 - npos + 2 * count, 2))
        return npos + count, at + 3 * count
    i = 0
    while i < len(data):
        b = data[i]
        size = 1 if b < 0x80 else 2 if b < 0xE0 else 3 if b < 0xF0 else 4
        try:
            char = fold(data[i : i + size].decode("utf-8"))
        except UnicodeDecodeError:
            char, size = run[3 * i : 3 * i + 3], 1  # not UTF-8: kept as written
        pieces.append(char)
        npos += len(char)
        marks.append(npos)
        deltas.append(at + 3 * (i + size) - npos)
        i += size
    return npos, at + 3 * len(data)
