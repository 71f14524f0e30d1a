"""Typed detectors: what the redaction engine looks for, and how each find is confirmed.

Each :class:`Detector` is a regex plus an optional validator (a checksum or a parse that turns a
shape into a fact: Luhn, mod-97, ``ipaddress``, a JWT header that decodes) and an optional
prefilter (substrings one of which must occur for the regex to be worth running at all). The
engine reads :func:`detectors`: the built-ins in :data:`DETECTORS` plus any registered ones.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

DIGITS: tuple[str, ...] = tuple("0123456789")
"""Prefilter for detectors that need a digit; the engine tests it with one scan, not ten."""


@dataclass(frozen=True, slots=True)
class Detector:
    kind: str
    pattern: re.Pattern[str]
    validator: Callable[[str], bool] | None = None
    prefilter: tuple[str, ...] | None = None
    secret: bool = False
    """Secrets can never be allowed through (``RegexRedactor(allow=...)`` refuses them)."""
    priority: int = 0
    """On overlapping finds the higher priority wins, then the longer span, then the earlier."""
    group: int = 0
    """The regex group that is redacted (bearer and URL credentials keep their context)."""
    anchor: str | None = None
    """Optional cheap regex (RE2 syntax) whose hits mark where finds can be; the pattern then
    runs only in ``window`` (chars before, after) around each hit instead of over the text."""
    window: tuple[int, int] = (0, 0)
    reach: tuple[str | None, str | None] = (None, None)
    """Token extension of each window, so no length of value escapes it: a character class
    (e.g. ``[\\w.]``) whose run before the anchor hit is added, and a regex matched right after
    the hit (e.g. ``[\\w.]*``) whose match is added. Both run at C speed and each character is
    looked at once (windows merge), which keeps the scan linear. Write ``\\w`` and ``\\s`` only
    inside classes (the RE2 form of the window widens them to Unicode there)."""
    trigger: str | None = None
    """Optional regex (RE2 syntax) that occurs in every text the pattern matches: a shape the
    engine's one RE2 pass over the text checks before running the detector at all (the digit
    anchor alone is too coarse: every card would run the SSN pattern). Without one the anchor,
    then the prefilter, serve."""


# --- validators -------------------------------------------------------------------------------


_DOUBLED = str.maketrans("0123456789", "0246813579")  # 2d, minus 9 above 9: one digit each


def luhn_ok(digits: str) -> bool:
    """Luhn over ASCII digits: byte sums at C speed instead of a loop per digit."""
    odd, even = digits[-1::-2], digits[-2::-2].translate(_DOUBLED)
    return (sum(odd.encode()) + sum(even.encode()) - 48 * len(digits)) % 10 == 0


def _card_brand_ok(d: str) -> bool:
    n = len(d)
    p6 = int(d[:6])
    p2, p3, p4 = p6 // 10000, p6 // 1000, p6 // 100
    return (
        (d[0] == "4" and n in (13, 16, 19))  # Visa
        or ((51 <= p2 <= 55 or 2221 <= p4 <= 2720) and n == 16)  # Mastercard incl. 2-series
        or (p2 in (34, 37) and n == 15)  # Amex
        or ((p4 == 6011 or 644 <= p3 <= 649 or p2 == 65 or 622126 <= p6 <= 622925) and n >= 16)
        or (3528 <= p4 <= 3589 and n >= 16)  # JCB
        or ((300 <= p3 <= 305 or p2 in (36, 38, 39)) and n >= 14)  # Diners
        or (p2 in (62, 81) and n >= 16)  # UnionPay
    )


def card_ok(text: str) -> bool:
    digits = text.translate(_NOT_DIGITS)
    return 13 <= len(digits) <= 19 and _card_brand_ok(digits) and luhn_ok(digits)


_NOT_DIGITS = str.maketrans("", "", " -.")


def iban_ok(text: str) -> bool:
    s = text.replace(" ", "").upper()
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def ipv6_ok(text: str) -> bool:
    # Times (12:30:45), MACs and C++ paths have the shape; only a real address parses.
    if not any(c in "0123456789abcdefABCDEF" for c in text):
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def jwt_ok(text: str) -> bool:
    header = text.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


def bearer_ok(token: str) -> bool:
    # "uses a Bearer authentication scheme" is prose; a credential has digits or mixed case.
    return any(c.isdigit() for c in token) or (token.lower() != token and token.upper() != token)


def phone_ok(text: str) -> bool:
    if text.startswith("+"):
        text = text.replace("(0)", "")  # the UK/DE trunk zero written after the country code
        return 8 <= sum(c.isdigit() for c in text) <= 15
    return 9 <= sum(c.isdigit() for c in text) <= 12


# --- anchors ----------------------------------------------------------------------------------

# Nine digits with at most two separators between each (cards, IBANs, SSNs, phones), or an
# IPv4-shaped run. Timestamps and short ids do not hit, so most log text never reaches the
# numeric regexes at all.
DIGIT_ANCHOR = r"\d(?:[ \-./()]{0,2}\d){8,}|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d"
# Numeric values lie within their anchor hit (the hit is the whole digit run), give or take a
# sign, a bracket or an octet; the margins cover the lookarounds. An IBAN's letters can sit
# around its long digit runs (MT84 MALT 0110 0001 2345 MTLC AST0 01S: 40 chars at most), and
# the SSN context words ("social security number #") before the digits.
_DIGIT_WINDOW = (40, 40)
_IBAN_WINDOW = _CONTEXT_WINDOW = _DIGIT_WINDOW
IPV6_ANCHOR = r"::|:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:"  # times (12:30:45) have two colons
EMAIL_ANCHOR = "@"


# --- patterns ---------------------------------------------------------------------------------

# Secret patterns start with their literal prefix and check the character before it with a
# lookbehind placed after the prefix: a leading lookbehind would stop sre's fast literal search.
# The numeric patterns do the same with their first character class: a pattern that starts
# with a class lets sre skip, at C speed, every position that cannot start a match, which is
# what keeps dense text (one value every twenty characters) fast. Each is written as
#   <first char class><lookbehind over that char and the one before it><the rest>
# and branches that need the first character look back at it ("(?<=3)[47]" for Amex). The
# readable forms they are equal to are in tests/redaction/test_patterns.py, which checks it.

# Numeric finds must not start or end inside a longer token (hashes, UUIDs, decimals).
_NB1 = r"\d(?<![\w.+-]\d)"  # a digit with no word char, dot, sign or hyphen before it
_NA = r"(?![\w]|[.-]\d)"

_CARD = re.compile(
    _NB1 + r"(?:\d{3}([ .-]?)\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?"  # 4-4-4-4 and 4-4-4-4-3
    r"|(?<=3)[47]\d{2}([ .-]?)\d{6}\2\d{5}"  # Amex 4-6-5
    r"|(?<=3)[0689]\d{2}([ .-]?)\d{6}\3\d{4}"  # Diners 4-6-4
    r"|\d{12,18})" + _NA,
    re.ASCII,
)

# Area not 000, 666 or 9xx (the first digit is already read), group not 00, serial not 0000.
_SSN_AREA = r"(?:(?<=0)(?!00)|(?<=6)(?!66)|(?<=[1-578]))\d{2}"
_SSN = re.compile(_NB1 + _SSN_AREA + r"([- ])(?!00)\d{2}\1(?!0000)\d{4}" + _NA, re.ASCII)
# A bare nine-digit run is an SSN only when the text says so: anything else is an id.
_SSN_CONTEXT = re.compile(
    # "ssn" as a word; "social security" anywhere ("customer_social_security_number=...").
    r"[sS](?:(?<!\w[sS])(?i:sn)|(?i:ocial[ _-]security(?:[ _-]number)?))\W{0,4}(?:#|no\.?|number)?"
    r"\W{0,3}((?!000|666|9\d\d)\d{3}(?!00)\d{2}(?!0000)\d{4})(?![\w])",
    re.ASCII,
)

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_OCTET_REST = r"(?:(?<=2)5[0-5]|(?<=2)[0-4]\d|(?<=1)\d\d|(?<=[1-9])\d|)"  # first digit read
_IPV4 = re.compile(
    r"\d(?<![\w.]\d)(?<!version \d)(?<!Version \d)(?<!release \d)(?<!build \d)(?<!ver \d)"
    rf"{_OCTET_REST}\.(?:{_OCTET}\.){{2}}{_OCTET}(?!\d|\.\d)",
    re.ASCII,
)
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4})"
    r"(?:%[\w.]+)?(?![\w:])",
    re.ASCII,
)

# A phone never starts right after "digit + separator": that is the middle of a card, a date
# or a dotted id ("8174.0351.6661.4942" is no phone at "0351").
_NANP_REST = r"[2-9]\d{2}[-. ]\d{4}"
_PHONE = re.compile(
    r"[+(\d](?<![\w+][+(\d])(?<!\d[ .-][+(\d])(?:"
    # International: +CC then groups, a "(0)" trunk and parenthesised area codes allowed.
    r"(?<=\+)[1-9]\d{0,2}(?:[ .-]?\(0\))?(?:[ .-]?(?:\(\d{1,4}\)|\d{1,5})){1,6}"
    # North American: (415) 555-0134, 415-555-0134, 415.555.0134, 1-800-555-0199.
    rf"|(?<=1)[-. ](?:\([2-9]\d{{2}}\) ?|[2-9]\d{{2}}[-. ]){_NANP_REST}"
    rf"|(?<=\()[2-9]\d{{2}}\) ?{_NANP_REST}"
    rf"|(?<=[2-9])\d{{2}}[-. ]{_NANP_REST}"
    # Trunk-zero national (UK, DE, FR...): one separator kind throughout, so dates fail.
    r"|(?<=0)[1-9]\d{0,3}([ /.-])\d{2,8}(?:\1\d{2,8}){0,3}"
    r")(?![\w]|[.-]?\d)",
    re.ASCII,
)

# IBAN lengths by country: the regex only takes as many characters as the country's IBAN has,
# so a trailing word ("... 7034 EUR") is never swallowed, and unknown countries never match.
_IBAN_LENGTHS = {
    15: "NO", 16: "BE", 18: "DK FI FO GL NL", 19: "MK SI", 20: "AT BA EE KZ LT LU XK",
    21: "CH HR LI LV", 22: "BG BH CR DE GB GE IE ME RS VA", 23: "AE GI IL IQ TL",
    24: "AD CZ ES MD PK RO SA SE SK TN VG", 25: "PT ST", 26: "IS TR",
    27: "FR GR IT MC MR SM", 28: "AL AZ BY CY DO GT HU LB PL SV", 29: "BR EG PS QA UA",
    30: "JO KW MU", 31: "MT SC", 32: "LC",
}  # fmt: skip


def _iban_pattern() -> re.Pattern[str]:
    # Class first (see above): two letters and two digits, then one branch per length, chosen
    # by looking back at the country code just read.
    branches = []
    for length, countries in _IBAN_LENGTHS.items():
        rest = length - 4
        q, r = divmod(rest, 4)
        spaced = rf"(?: [A-Z0-9]{{4}}){{{q}}}" + (rf" [A-Z0-9]{{{r}}}" if r else "")
        country = "|".join(countries.split())
        branches.append(rf"(?<=(?:{country})\d\d)(?:[A-Z0-9]{{{rest}}}|{spaced})")
    # Case-insensitive: "de89 3704 ..." is as much an IBAN; mod-97 keeps the precision.
    return re.compile(
        r"[A-Za-z](?<![A-Za-z0-9][A-Za-z])[A-Za-z]\d\d(?:"
        + "|".join(branches)
        + r")(?![A-Za-z0-9])",
        re.ASCII | re.I,
    )


# Unicode \\w: internationalised local parts and domains ("jöhn.doe@exämple.com") are
# addresses too; the TLD is letters of any script or an A-label (xn--...).
_EMAIL_CHARS = r"[\w.%+-]"
_EMAIL = re.compile(
    r"[\w%+-](?<![\w.%+-][\w%+-])[\w%+-]*(?:\.[\w%+-]+)*"
    r"@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:[^\W\d_]{2,24}|xn--[a-z0-9-]{1,59})(?![\w-])",
)

_B64U = r"[A-Za-z0-9_-]"
_PEM_LABEL = r"-----(?:BEGIN|END) (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"


def _c(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


SECRET_DETECTORS: tuple[Detector, ...] = (
    Detector(
        "private_key",
        # The whole block; a truncated one (no END line) is taken to the end of its base64.
        _c(
            _PEM_LABEL.replace("(?:BEGIN|END)", "BEGIN")
            # The body is PEM's alphabet (base64, headers, JSON-escaped newlines); bounding the
            # lazy search by it keeps a BEGIN without END from scanning to the end of the text.
            + r"(?:[A-Za-z0-9+/=\s\\:,-]*?"
            + _PEM_LABEL.replace("(?:BEGIN|END)", "END")
            + r"|[A-Za-z0-9+/=\s\\:,-]*)"
        ),
        prefilter=("PRIVATE KEY-----",),
        secret=True,
        priority=100,
    ),
    Detector(
        "url_credentials",
        # The password runs to the last "@" before the host: "p@ss" and "p%40ss" are passwords.
        _c(r"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://([^\s:/?#@'\"<>]*:[^\s/?#'\"<>]+)@"),
        prefilter=("://",),
        secret=True,
        priority=90,
        group=1,
        anchor="://",
        window=(24, 0),
        reach=(None, r"[^\s/?#'\"<>]*"),
    ),
    Detector(
        "bearer_token",
        _c(r"(?i:\bbearer)(?:\s+|%20)([A-Za-z0-9._~+/-]{16,}=*)"),
        validator=bearer_ok,
        prefilter=("Bearer", "bearer", "BEARER"),
        secret=True,
        priority=85,
        group=1,
        anchor="(?i)bearer",
        window=(1, 0),
        reach=(None, r"(?:[\s]|%20)*[A-Za-z0-9._~+/=-]*"),
    ),
    Detector(
        "slack_webhook",
        _c(r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]+"),
        prefilter=("hooks.slack.com",),
        secret=True,
        priority=80,
        anchor=r"hooks\.slack\.com",
        window=(8, 0),
        reach=(None, r"[A-Za-z0-9_/-]*"),
    ),
    Detector(
        "jwt",
        _c(rf"eyJ(?<![\w-]...){_B64U}{{8,}}\.{_B64U}{{8,}}\.{_B64U}*(?![\w-])", re.DOTALL),
        validator=jwt_ok,
        prefilter=("eyJ",),
        secret=True,
        priority=75,
    ),
    Detector(
        "anthropic_key",
        _c(r"sk-ant-(?<![\w-]sk-ant-)[A-Za-z0-9_-]{20,}"),
        prefilter=("sk-ant-",),
        secret=True,
        priority=72,
    ),
    Detector(
        "openai_key",
        # Not sk-ant-: those are Anthropic's, and the priority above settles any tie anyway.
        _c(r"sk-(?<![\w-]sk-)(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
        prefilter=("sk-",),
        secret=True,
        priority=70,
    ),
    Detector(
        "github_token",
        _c(
            r"gh[pousr]_(?<![A-Za-z0-9_]....)[A-Za-z0-9]{36,}"
            r"|github_pat_(?<![A-Za-z0-9_]...........)[A-Za-z0-9_]{22,}",
            re.DOTALL,
        ),
        prefilter=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        secret=True,
        priority=70,
    ),
    Detector(
        "aws_access_key",
        _c(r"(?:AKIA|ASIA|ABIA|ACCA)(?<![A-Za-z0-9]....)[A-Z0-9]{16}(?![A-Za-z0-9])", re.DOTALL),
        prefilter=("AKIA", "ASIA", "ABIA", "ACCA"),
        secret=True,
        priority=70,
    ),
    Detector(
        "slack_token",
        _c(r"xox[abprs]-(?<![\w-].....)[A-Za-z0-9][A-Za-z0-9-]{8,}[A-Za-z0-9]", re.DOTALL),
        prefilter=("xox",),
        secret=True,
        priority=70,
    ),
    Detector(
        "google_api_key",
        _c(r"AIza(?<![\w-]....)[0-9A-Za-z_-]{35}(?![\w-])", re.DOTALL),
        prefilter=("AIza",),
        secret=True,
        priority=70,
    ),
)

PII_DETECTORS: tuple[Detector, ...] = (
    # The email window is the whole token around the "@", however long its parts are.
    Detector(
        "email", _EMAIL, None, ("@",), False, 50, 0, EMAIL_ANCHOR, (0, 0),
        (_EMAIL_CHARS, _EMAIL_CHARS[:-1] + "@]*"),
    ),
    Detector(
        "iban", _iban_pattern(), iban_ok, DIGITS, False, 45, 0, DIGIT_ANCHOR, _IBAN_WINDOW,
        trigger=r"[A-Za-z]{2}\d\d",
    ),
    Detector(
        "card", _CARD, card_ok, DIGITS, False, 44, 0, DIGIT_ANCHOR, _DIGIT_WINDOW,
        trigger=r"\d{4}[ .-]?\d{4}",
    ),
    Detector(
        "us_ssn", _SSN, None, DIGITS, False, 43, 0, DIGIT_ANCHOR, _DIGIT_WINDOW,
        trigger=r"\d{3}[- ]\d\d[- ]\d{4}",
    ),
    Detector(
        "us_ssn", _SSN_CONTEXT, None, DIGITS, False, 43, 1, DIGIT_ANCHOR, _CONTEXT_WINDOW,
        trigger=r"(?i)ssn|social[ _-]security",
    ),
    Detector(
        "ipv6", _IPV6, ipv6_ok, (":",), False, 42, 0, IPV6_ANCHOR, (0, 0),
        (r"[0-9A-Fa-f:.]", r"[\w.:%]*"),
    ),
    Detector(
        "ipv4", _IPV4, None, (".",), False, 41, 0, DIGIT_ANCHOR, _DIGIT_WINDOW,
        trigger=r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d",
    ),
    Detector(
        "phone", _PHONE, phone_ok, DIGITS, False, 30, 0, DIGIT_ANCHOR, _DIGIT_WINDOW,
        trigger=r"\+[1-9]|\d{3}[-. ]\d{4}|0[1-9]\d{0,3}[ /.-]\d\d",
    ),
)  # fmt: skip

DETECTORS: tuple[Detector, ...] = SECRET_DETECTORS + PII_DETECTORS
"""The built-in detectors, most specific first."""

SECRET_KINDS: frozenset[str] = frozenset(d.kind for d in SECRET_DETECTORS)

_registry: list[Detector] = []
_lock = threading.Lock()
_generation = [0]
"""Bumped on every registration so engines built on :func:`detectors` know to rebuild."""


def register_detector(detector: Detector) -> None:
    """Add a custom detector to every engine that uses the default set."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", detector.kind):
        raise ValueError("detector kind must be a lowercase identifier")
    with _lock:
        _registry.append(detector)
        _generation[0] += 1


def detectors() -> tuple[Detector, ...]:
    """The built-ins followed by the registered custom detectors."""
    return DETECTORS + tuple(_registry)


def registry_generation() -> int:
    return _generation[0]


def is_secret(kind: str) -> bool:
    return kind in SECRET_KINDS or any(d.secret and d.kind == kind for d in _registry)
