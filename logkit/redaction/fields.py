"""What a dict key says about its value: a phone number, an SSN, a card, an identifier.

``{"phone": 4155550134}`` or ``{"ssn": "123456789"}`` carry no separators or words a text
detector could lean on; the key is the context. Keys are split into words (snake, camel, kebab,
dotted) and matched whole, so ``customer_phone`` and ``ccNumber`` count and ``telemetry`` or
``company`` do not. Key classification is cached: the same keys come back on every event.
"""

from __future__ import annotations

import re

from logkit.redaction.detectors import luhn_ok

PHONE, SSN, CARD, IDENT = 1, 2, 4, 8
"""Flags of a key; a key can carry several (``card_id`` is a card context and an identifier)."""

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_CONTEXT_WORDS = {
    **dict.fromkeys(("phone", "telephone", "tel", "mobile", "cell", "cellphone"), PHONE),
    **dict.fromkeys(("fax", "msisdn", "whatsapp"), PHONE),
    **dict.fromkeys(("card", "cc", "pan", "creditcard", "cardnumber", "ccnumber", "ccnum"), CARD),
    **dict.fromkeys(("ssn", "socialsecurity", "socialsecuritynumber"), SSN),
}
# Words that may follow the context word: "phone_number", "ssnValue", "cc_no".
_SUFFIXES = frozenset(
    ("number", "numbers", "no", "num", "nr", "value", "raw", "digits", "e", "164")
)
_ID_WORDS = frozenset(("id", "ids", "uuid", "guid", "identifier"))
_MAX_CACHED = 4096
KNOWN: dict[str, int] = {}
"""Keys classified so far (cleared, never replaced, when full): the engine reads it inline."""


def classify(key: str) -> int:
    """The context flags of a dict key (0 for most keys)."""
    flags = KNOWN.get(key)
    if flags is None:
        if len(KNOWN) >= _MAX_CACHED:
            KNOWN.clear()
        flags = KNOWN[key] = _classify(key)
    return flags


def _classify(key: str) -> int:
    """The context word must end the key, bar a suffix like "number": ``customer_phone`` and
    ``phoneNumbers`` are phones, ``phone_verified_at`` (a date) is not."""
    words = [w.lower() for w in _WORDS.findall(key)]
    flags = IDENT if words and words[-1] in _ID_WORDS else 0
    while len(words) > 1 and words[-1] in _SUFFIXES:
        words.pop()
    if not words:
        return flags
    last = words[-1]
    candidates = [last, last[:-1] if last.endswith("s") and len(last) > 3 else last]
    if len(words) > 1:
        candidates.append(words[-2] + last)
    for word in candidates:
        flags |= _CONTEXT_WORDS.get(word, 0)
    return flags


def numeric_kind(digits: str, flags: int) -> str | None:
    """The kind a bare run of ASCII digits has under a key with ``flags``, if any."""
    n = len(digits)
    if flags & CARD and 12 <= n <= 19 and luhn_ok(digits):
        return "card"
    if flags & SSN and 7 <= n <= 9 and ssn_digits_ok(digits.zfill(9)):
        return "us_ssn"
    if flags & PHONE and 7 <= n <= 15:
        return "phone"
    return None


def ssn_digits_ok(digits: str) -> bool:
    """The US SSN rules: no area 000, 666 or 9xx, no group 00, no serial 0000."""
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


# Strings under a context key: a value as written, separators allowed, digits counted.
# Starts only where a run starts (the lookbehinds), so a failed match is never retried from
# inside its own run: linear on "1 1 1 ... 1x".
CONTEXT_VALUE = re.compile(
    r"(?<![\w+])(?<!\d[ ().\-/])(?<!\d[ ().\-/][ ().\-/])"
    r"\+?\(?\d(?:[ ().\-/]{0,2}\d)*\)?(?!\w)",
    re.ASCII,
)
IDENT_SEPARATORS = str.maketrans("_-.:", "    ")
"""Identifier strings are scanned a second time with these as spaces: "req-4111111111111111"
hides a card behind a boundary the text detectors respect."""
