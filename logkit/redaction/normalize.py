"""Normalise text for matching, and map what matched back onto the original text.

The detectors are written for ASCII digits, plain spaces and hyphens. Text in the wild also
carries fullwidth or Arabic-Indic digits, no-break and thin spaces, Unicode dashes and minus
signs, zero-width characters inside values, percent-encoding (``alice%40example.com``) and
HTML character references (``&#64;``). :func:`normalize` rewrites those for matching only:

* a non-ASCII decimal digit (Unicode ``Nd``) becomes its ASCII digit;
* a non-ASCII space becomes ``" "``; a dash (``Pd``) or minus sign becomes ``"-"``;
* format characters (``Cf``: zero-width space/joiners, word joiner, BOM, soft hyphen, bidi
  controls) and variation selectors are dropped;
* the fullwidth at sign, full stop, plus and brackets, and fullwidth Latin letters, become
  ASCII;
* ``%XX`` (one level, UTF-8 sequences included) and ``&#64;``/``&#x40;``/``&commat;`` decode.

The engine matches on the normalised text and replaces the *original* span, found through
:class:`Normalized`'s position map, so nothing of the value as written survives. ASCII text
without ``%`` or ``&`` (almost every log line) takes the fast path: no copy, no map.
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

# Characters kept out of the general rules: invisible ones outside Cf (variation selectors,
# the combining grapheme joiner, Mongolian free variation selectors) are dropped too.
_EXTRA_DROP = frozenset("\u034f\u180b\u180c\u180d\u180f") | frozenset(
    chr(c) for c in range(0xFE00, 0xFE10)
)
_FULLWIDTH = "\uff08\uff09\uff0b\uff0e\uff20" + "".join(
    chr(c) for c in (*range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B))
)
_DASHES = "\u2212\ufe63\ufe58\u2010\u2011\u2012\u2013\u2014\u2015"
_SMALL = {"\ufe6b": "@", "\ufe52": ".", "\ufe62": "+"}

# One source for both engines: non-ASCII digits and spaces, format characters and the other
# mapped characters, percent-escapes and character references.
_CLASS = (
    "\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u08e2\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\ufe00-\ufe0f\ufeff\ufff9-\ufffb\u058a\u05be\u1400\u1806\u2010-\u2015\u2212\u2e17\u2e1a"
    "\u2e3a\u2e3b\u2e40\u301c\u3030\u30a0\ufe31\ufe32\ufe58\ufe63\ufe52\ufe62\ufe6b"
    "\uff08\uff09\uff0b\uff0d\uff0e\uff20\uff21-\uff3a\uff41-\uff5a"
)
_ESCAPES = r"(?:%[0-9A-Fa-f]{2})+|&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
_SPECIAL = re.compile(
    r"[^\D\x00-\x7f]|[^\S\x00-\x7f]|["
    + _CLASS
    + r"]|\U000e0001|[\U000e0020-\U000e007f]|"
    + _ESCAPES
)
_ASCII_SPECIAL = re.compile(_ESCAPES)
_PRESENCE: Any = None
if _re2 is not None:
    try:
        _PRESENCE = _re2.compile(
            r"[^\P{Nd}0-9]|[^\P{Z} ]|[\x{85}\x{1c}-\x{1f}]|\p{Cf}|["
            + _CLASS
            + r"]|%[0-9A-Fa-f]{2}|&[#A-Za-z]"
        )
    except Exception:  # pragma: no cover - an RE2 that cannot take the class: use re only
        _PRESENCE = None

_table: dict[str, str] = {}


def fold(ch: str) -> str:
    """What one character becomes for matching ("" when dropped; itself when unchanged)."""
    out = _table.get(ch)
    if out is None:
        out = _table[ch] = _fold(ch)
    return out


def _fold(ch: str) -> str:
    category = "" if ch.isascii() else unicodedata.category(ch)
    if category == "Nd":
        out = str(unicodedata.decimal(ch))
    elif category and ch.isspace():
        out = " "
    elif category == "Cf" or ch in _EXTRA_DROP:
        out = ""
    elif category == "Pd" or ch in _DASHES:
        out = "-"
    elif ch in _FULLWIDTH:
        out = chr(ord(ch) - 0xFEE0)
    else:
        out = _SMALL.get(ch, ch)
    return out


class Normalized:
    """Text as the detectors see it, and the way back to positions in the original."""

    __slots__ = ("_deltas", "_marks", "text")

    def __init__(self, text: str, marks: list[int], deltas: list[int]) -> None:
        self.text = text
        # After normalised position marks[i], original = normalised + deltas[i].
        self._marks = marks
        self._deltas = deltas

    def original(self, pos: int) -> int:
        """The original position of normalised position ``pos`` (a span end maps past any
        dropped characters that follow it; a span start skips the dropped ones before it)."""
        return pos + self._deltas[bisect_right(self._marks, pos) - 1]


def needs_normalizing(text: str) -> bool:
    """False for text the detectors can read as it is (the fast path)."""
    if text.isascii():
        return ("%" in text or "&" in text) and _ASCII_SPECIAL.search(text) is not None
    if _PRESENCE is not None:
        return _PRESENCE.search(text) is not None
    return _SPECIAL.search(text) is not None


def normalize(text: str) -> Normalized | None:
    """The matching form of ``text`` with its position map, or None when it is unchanged."""
    if not needs_normalizing(text):
        return None
    special = _ASCII_SPECIAL if text.isascii() else _SPECIAL
    pieces: list[str] = []
    marks, deltas = [0], [0]
    npos = opos = 0  # normalised length so far; original position consumed so far
    for m in special.finditer(text):
        for ostart, oend, repl in _replacements(m.group(), m.start()):
            if repl == text[ostart:oend]:
                continue
            pieces.append(text[opos:ostart])
            npos += ostart - opos
            pieces.append(repl)
            npos += len(repl)
            opos = oend
            marks.append(npos)
            deltas.append(oend - npos)
    if len(marks) == 1:
        return None
    pieces.append(text[opos:])
    return Normalized("".join(pieces), marks, deltas)


def _replacements(found: str, at: int) -> list[tuple[int, int, str]]:
    """``(start, end, replacement)`` for one hit of the special pattern at ``at``."""
    first = found[0]
    if first == "%":
        return _percent(found, at)
    if first == "&" and len(found) > 1:
        decoded = html.unescape(found)
        if len(decoded) != 1:
            return []
        return [(at, at + len(found), fold(decoded))]
    return [(at, at + len(found), fold(found))]


def _percent(run: str, at: int) -> list[tuple[int, int, str]]:
    """A run of ``%XX`` escapes: ASCII bytes and valid UTF-8 sequences decode, others stay."""
    data = bytes.fromhex(run.replace("%", ""))
    out: list[tuple[int, int, str]] = []
    i = 0
    while i < len(data):
        b = data[i]
        size = 1 if b < 0x80 else 2 if 0xC2 <= b <= 0xDF else 3 if 0xE0 <= b <= 0xEF else 4
        if b >= 0x80 and not 0xC2 <= b <= 0xF4:
            i += 1
            continue
        try:
            char = data[i : i + size].decode("utf-8")
        except UnicodeDecodeError:
            i += 1
            continue
        out.append((at + 3 * i, at + 3 * (i + size), fold(char)))
        i += size
    return out
