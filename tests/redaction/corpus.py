"""A labelled evaluation corpus for the redaction detectors, generated from templates.

``generate(n_docs, seed)`` returns ``[(text, [(kind, start, end), ...])]``: log lines and prompt
text with planted values of every kind (many formats each) and hard negatives that look like
them (dates, times, versions, order ids, UUIDs, hashes, digit runs failing Luhn or mod-97). The
span is what must disappear: the token of a bearer header, the userinfo of a URL.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import json
import random
import string
import uuid
from collections.abc import Callable

Label = tuple[str, int, int]
Doc = tuple[str, list[Label]]
Plant = tuple[str, str, str]  # text before, the value, text after (within one snippet)

_ALNUM = string.ascii_letters + string.digits
_UPPER_NUM = string.ascii_uppercase + string.digits
_B64 = string.ascii_letters + string.digits + "+/"
_B64U = string.ascii_letters + string.digits + "-_"


def _s(r: random.Random, alphabet: str, n: int) -> str:
    return "".join(r.choice(alphabet) for _ in range(n))


def _d(r: random.Random, n: int) -> str:
    return _s(r, string.digits, n)


# --- positives --------------------------------------------------------------------------------

_FIRST = ["alice", "bob", "chloe", "dmitri", "emma", "farid", "giulia", "hiro", "ines", "jonas"]
_LAST = ["martin", "smith", "nguyen", "muller", "rossi", "garcia", "kowalski", "tanaka"]
_DOMAINS = ["example.com", "acme.io", "mail.example.co.uk", "corp-net.de", "uni.edu", "x.org"]


def email(r: random.Random) -> str:
    f, la, d = r.choice(_FIRST), r.choice(_LAST), r.choice(_DOMAINS)
    forms = [
        f"{f}.{la}@{d}",
        f"{f}_{la}{r.randint(1, 99)}@{d}",
        f"{f}+{r.choice(['news', 'tag', 'x'])}@{d}",
        f"{f[0]}{la}@{d}".upper(),
        f"{f}-{la}@sub.{d}",
    ]
    return r.choice(forms)


def phone(r: random.Random) -> str:
    a, x, n = f"{r.randint(2, 9)}{_d(r, 2)}", f"{r.randint(2, 9)}{_d(r, 2)}", _d(r, 4)
    uk, de, fr = _d(r, 4), _d(r, 8), [_d(r, 2) for _ in range(4)]
    forms = [
        f"+1 {a} {x} {n}", f"+1 ({a}) {x}-{n}", f"+1-{a}-{x}-{n}", f"+1.{a}.{x}.{n}",
        f"+1{a}{x}{n}", f"+44 20 {uk} {_d(r, 4)}", f"+44 (0)20 {uk} {_d(r, 4)}",
        f"+44 7700 {_d(r, 6)}", f"+33 {r.randint(1, 9)} {' '.join(fr)}",
        f"+33{r.randint(1, 9)}{''.join(fr)}", f"+49 30 {de}", f"+49 (0)30 {de[:4]} {de[4:]}",
        f"+49 176 {de}", f"+91 98{_d(r, 3)} {_d(r, 5)}", f"+61 2 {_d(r, 4)} {_d(r, 4)}",
        f"+81 3-{_d(r, 4)}-{_d(r, 4)}", f"({a}) {x}-{n}", f"{a}-{x}-{n}", f"{a}.{x}.{n}",
        f"{a} {x} {n}", f"1-800-{x}-{n}", f"020 {uk} {_d(r, 4)}", f"07700 {_d(r, 6)}",
        f"0161 {_d(r, 3)} {_d(r, 4)}", f"0{r.randint(1, 9)} {' '.join(fr)}",
        f"0{r.randint(1, 9)}.{'.'.join(fr)}", f"030 {de}", f"0176 {de}", f"089/{_d(r, 7)}",
    ]  # fmt: skip
    return r.choice(forms)


def luhn_complete(prefix: str, length: int, r: random.Random) -> str:
    body = prefix + _d(r, length - len(prefix) - 1)
    for check in string.digits:
        if _luhn_ok(body + check):
            return body + check
    raise AssertionError("unreachable")


_BRANDS = [
    ("4", 16), ("4", 13), ("4", 19), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16),
    ("2500", 16), ("34", 15), ("37", 15), ("6011", 16), ("65", 16), ("644", 16), ("3530", 16),
    ("3589", 16), ("36", 14), ("300", 14), ("38", 16), ("62", 16), ("62", 19), ("81", 16),
]  # fmt: skip


def card(r: random.Random) -> str:
    prefix, length = r.choice(_BRANDS)
    num = luhn_complete(prefix, length, r)
    sep = r.choice(["", " ", "-"])
    if length == 15:
        return sep.join([num[:4], num[4:10], num[10:]])
    if length == 14:
        return sep.join([num[:4], num[4:10], num[10:]]) if sep else num
    if length in (16, 19) and sep:
        return sep.join(num[i : i + 4] for i in range(0, length, 4))
    return num


_IBAN_BBAN: list[tuple[str, Callable[[random.Random], str]]] = [
    ("DE", lambda r: _d(r, 18)),
    ("GB", lambda r: _s(r, string.ascii_uppercase, 4) + _d(r, 14)),
    ("FR", lambda r: _d(r, 23)),
    ("NL", lambda r: _s(r, string.ascii_uppercase, 4) + _d(r, 10)),
    ("BE", lambda r: _d(r, 12)),
    ("ES", lambda r: _d(r, 20)),
    ("IT", lambda r: r.choice(string.ascii_uppercase) + _d(r, 22)),
    ("CH", lambda r: _d(r, 17)),
    ("NO", lambda r: _d(r, 11)),
    ("PL", lambda r: _d(r, 24)),
]


def iban_compact(country: str, bban: str) -> str:
    n = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    return f"{country}{98 - n % 97:02d}{bban}"


def iban(r: random.Random) -> str:
    country, bban = r.choice(_IBAN_BBAN)
    s = iban_compact(country, bban(r))
    return " ".join(s[i : i + 4] for i in range(0, len(s), 4)) if r.random() < 0.5 else s


def ssn(r: random.Random) -> str:
    area = r.choice([n for n in range(1, 900) if n != 666])
    a, g, s = f"{area:03d}", f"{r.randint(1, 99):02d}", f"{r.randint(1, 9999):04d}"
    return r.choice([f"{a}-{g}-{s}", f"{a} {g} {s}"])


def ipv4(r: random.Random) -> str:
    return ".".join(str(r.choice([r.randint(0, 255), r.randint(1, 99), 10, 192])) for _ in "1234")


def ipv6(r: random.Random) -> str:
    addr = ipaddress.IPv6Address(r.getrandbits(128))
    forms = [
        addr.exploded, addr.compressed,
        f"2001:db8::{r.randint(1, 0xFFFF):x}:{r.randint(1, 0xFFFF):x}",
        f"fe80::{r.randint(1, 0xFFFF):x}:{r.randint(1, 0xFFFF):x}%eth0", "::1",
        f"::ffff:192.0.2.{r.randint(1, 254)}", f"2001:db8:{r.randint(1, 0xFFFF):x}::",
    ]  # fmt: skip
    return r.choice(forms)


def jwt(r: random.Random) -> str:
    def seg(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    header = seg({"alg": r.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"})
    payload = seg({"sub": _d(r, 8), "iat": 1700000000 + r.randint(0, 10**7)})
    return f"{header}.{payload}.{_s(r, _B64U, r.choice([43, 86]))}"


def private_key(r: random.Random) -> str:
    label = r.choice(["RSA ", "EC ", "OPENSSH ", "ENCRYPTED ", ""])
    nl = r.choice(["\n", "\\n"])  # JSON-escaped in many log lines
    body = nl.join(_s(r, _B64, 64) for _ in range(r.randint(3, 8)))
    return f"-----BEGIN {label}PRIVATE KEY-----{nl}{body}{nl}-----END {label}PRIVATE KEY-----"


_SECRETS: dict[str, Callable[[random.Random], str]] = {
    "aws_access_key": lambda r: r.choice(["AKIA", "ASIA"]) + _s(r, _UPPER_NUM, 16),
    "github_token": lambda r: r.choice(
        [
            r.choice(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]) + _s(r, _ALNUM, 36),
            "github_pat_" + _s(r, _ALNUM, 22) + "_" + _s(r, _ALNUM, 59),
        ]
    ),
    "slack_token": lambda r: f"xox{r.choice('bpars')}-{_d(r, 12)}-{_d(r, 13)}-{_s(r, _ALNUM, 24)}",
    "slack_webhook": lambda r: (
        f"https://hooks.slack.com/services/T{_s(r, _UPPER_NUM, 8)}/B{_s(r, _UPPER_NUM, 8)}/"
        + _s(r, _ALNUM, 24)
    ),
    "google_api_key": lambda r: "AIza" + _s(r, _B64U, 35),
    "openai_key": lambda r: r.choice(
        [
            "sk-" + _s(r, _ALNUM, 20) + "T3BlbkFJ" + _s(r, _ALNUM, 20),
            "sk-proj-" + _s(r, _B64U, 120),
            "sk-svcacct-" + _s(r, _B64U, 60),
        ]
    ),
    "anthropic_key": lambda r: f"sk-ant-api03-{_s(r, _B64U, 93)}AA",
    "jwt": jwt,
    "private_key": private_key,
}

_SIMPLE: dict[str, Callable[[random.Random], str]] = {
    "email": email, "phone": phone, "card": card, "iban": iban, "us_ssn": ssn,
    "ipv4": ipv4, "ipv6": ipv6, **_SECRETS,
}  # fmt: skip

_CONTEXT = {
    "email": ["contact {} for details", "from={} to=ops", "user email: {}", "<{}>"],
    "phone": ["call me at {} tomorrow", "phone={};", "Tel: {}", "mobile {}, thanks"],
    "card": ["card number {} declined", "pan={} ", "paid with {}."],
    "iban": ["IBAN: {}", "wire to {} today", "iban={}"],
    "us_ssn": ["SSN {} on file", "ssn={}", "social security number: {}"],
    "ipv4": ["client {} connected", "src_ip={} dst=host", "from {}:443"],
    "ipv6": ["client [{}]:8080", "addr={} ", "peer {} closed"],
}
_SECRET_CONTEXT = ["key={}", "using {} for auth", '"token": "{}"', "export SECRET={}"]


def plant(kind: str, r: random.Random) -> Plant:
    """One snippet carrying a value of ``kind``: (before, value, after)."""
    if kind == "bearer_token":
        tok = r.choice([_s(r, _ALNUM + "-._", r.randint(24, 64)), jwt(r)])
        head = r.choice(["Authorization: Bearer ", "authorization: bearer ", "header Bearer "])
        return head, tok, r.choice(["", " sent", "\n"])
    if kind == "url_credentials":
        scheme = r.choice(["postgres", "mysql", "redis", "https", "amqp", "mongodb+srv"])
        user = r.choice(["admin", "svc_app", "", r.choice(_FIRST)])
        pw = _s(r, _ALNUM + "!$%*", r.randint(8, 24))
        host = r.choice(["db.internal:5432/app", "cache:6379", "mq.example.com", "pg-primary"])
        return f"dsn {scheme}://", f"{user}:{pw}", f"@{host} ok"
    if kind == "us_ssn" and r.random() < 0.2:
        area = r.choice([n for n in range(1, 900) if n != 666])
        return "SSN: ", f"{area:03d}{r.randint(1, 99):02d}{r.randint(1, 9999):04d}", " verified"
    value = _SIMPLE[kind](r)
    template = r.choice(_CONTEXT.get(kind, _SECRET_CONTEXT))
    before, after = template.split("{}")
    return before, value, after


KINDS: tuple[str, ...] = (*_SIMPLE, "bearer_token", "url_credentials")


# --- filler and hard negatives ----------------------------------------------------------------

_SERVICES = ["api", "worker-3", "billing", "search", "gateway", "scheduler"]
_WORDS = [
    "the", "agent", "retried", "tool", "call", "after", "a", "timeout", "and", "summarised",
    "answer", "for", "user", "please", "check", "whether", "invoice", "was", "sent", "update",
    "ticket", "with", "latest", "status",
]  # fmt: skip


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        dd = int(ch)
        if i % 2:
            dd = dd * 2 - 9 if dd > 4 else dd * 2
        total += dd
    return total % 10 == 0


def _digit_run(r: random.Random) -> str:
    """A bare run of 9-19 digits that fails Luhn (one that passes may well be a card)."""
    run = f"{r.randint(2, 9)}{_d(r, r.randint(8, 18))}"
    return run if not _luhn_ok(run) else run[:-1] + str((int(run[-1]) + 1) % 10)


def hard_negative(r: random.Random) -> str:
    bad_luhn = luhn_complete("4", 16, r)
    bad_luhn = bad_luhn[:-1] + str((int(bad_luhn[-1]) + r.randint(1, 9)) % 10)
    good = iban_compact("DE", _d(r, 18))
    bad_iban = good[:2] + f"{(int(good[2:4]) + r.randint(1, 50)) % 97 + 2:02d}" + good[4:]
    forms = [
        f"{r.randint(2019, 2026)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
        f"{r.randint(1, 28):02d}/{r.randint(1, 12):02d}/{r.randint(2019, 2026)}",
        f"{r.randint(1, 28):02d}.{r.randint(1, 12):02d}.{r.randint(2019, 2026)}",
        f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}",
        f"v{r.randint(0, 9)}.{r.randint(0, 30)}.{r.randint(0, 99)}",
        f"version {r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 99)}.{r.randint(0, 999)}",
        f"ORD-{r.randint(2019, 2026)}-{_d(r, 6)}", f"order #{_d(r, 8)}",
        str(uuid.UUID(int=r.getrandbits(128))), _s(r, "0123456789abcdef", 40),
        _s(r, "0123456789abcdef", 64), bad_luhn, _digit_run(r),
        bad_iban, f"{r.choice(['000', '666', '912'])}-{_d(r, 2)}-{_d(r, 4)}",
        ":".join(_s(r, "0123456789abcdef", 2) for _ in range(6)), f"1.3.6.1.4.1.{_d(r, 5)}",
        f"localhost:{r.randint(1024, 65535)}", f"${r.randint(1, 999)},{_d(r, 3)}.{_d(r, 2)}",
        f"{int(1.7e12) + r.randint(0, 10**10)}", "sk-learn", "std::vector", "task-runner-pool",
        f"{r.randint(1, 999)}ms", f"build {r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}",
    ]  # fmt: skip
    return r.choice(forms)


def filler(r: random.Random) -> str:
    ts = f"2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:"
    ts += f"{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{_d(r, 3)}Z"
    words = " ".join(r.choice(_WORDS) for _ in range(r.randint(4, 14)))
    forms = [
        f"{ts} INFO {r.choice(_SERVICES)} {words} in {r.randint(1, 999)}ms",
        f"{ts} WARN {r.choice(_SERVICES)} GET /v1/items/{_d(r, 5)} status=200 {words}",
        f"User: {words.capitalize()}? Assistant: sure, {words}.",
        f"{ts} DEBUG step={r.randint(1, 40)} tokens={r.randint(10, 9000)} {words}",
    ]
    return r.choice(forms)


def generate(
    n_docs: int, seed: int, *, plant_rate: float = 0.35, negative_rate: float = 0.3
) -> list[Doc]:
    """``n_docs`` documents of 4-12 lines; each line may carry a planted value and a negative."""
    return _documents(
        random.Random(seed),
        n_docs,
        lines=(4, 12),
        negative=hard_negative,
        negative_rate=negative_rate,
        kinds=KINDS,
        plant=plant,
        plant_rate=plant_rate,
    )


def _documents(
    r: random.Random,
    n_docs: int,
    *,
    lines: tuple[int, int],
    negative: Callable[[random.Random], str],
    negative_rate: float,
    kinds: tuple[str, ...],
    plant: Callable[[str, random.Random], Plant],
    plant_rate: float,
) -> list[Doc]:
    """Filler lines, each with a negative and a planted value of one of ``kinds`` at the rates."""
    docs: list[Doc] = []
    for _ in range(n_docs):
        parts: list[str] = []
        labels: list[Label] = []
        pos = 0
        for _ in range(r.randint(*lines)):
            line = filler(r)
            if r.random() < negative_rate:
                line += f" ref {negative(r)} ok"
            if r.random() < plant_rate:
                kind = r.choice(kinds)
                before, value, after = plant(kind, r)
                line += " " + before
                start = pos + len(line)
                labels.append((kind, start, start + len(value)))
                line += value + after
            line += "\n"
            parts.append(line)
            pos += len(line)
        docs.append(("".join(parts), labels))
    return docs


# --- the evasion set: the same kinds written the way filters miss them --------------------------
#
# Unicode digits (fullwidth, Arabic-Indic, Devanagari, mathematical bold...), no-break and thin
# spaces, zero-width characters and soft hyphens inside values, Unicode dashes and minus signs,
# dots between card groups, lowercase IBANs, percent-encoding and HTML character references,
# fullwidth "@", internationalised local parts and domains, and lengths past any fixed window.
# Labels are spans of the text as written: that is what must disappear.

_DIGIT_ZEROS = [0xFF10, 0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0x1D7CE, 0x0AE6, 0x1040]
_SPACES = ["\u00a0", "\u202f", "\u2007", "\u2009", "\u2002", "\u3000", "\u205f"]
_ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
_DASHES = ["\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212", "\ufe63", "\uff0d"]
_IDN_LOCAL = ["jöhn.doe", "zoë", "josé.garcía", "øyvind", "łukasz", "用户", "пользователь"]
_IDN_DOMAINS = ["example.com", "exämple.de", "bücher.example", "例子.中国", "пример.рф"]


def unicode_digits(text: str, r: random.Random) -> str:
    zero = r.choice(_DIGIT_ZEROS)
    return "".join(chr(zero + int(c)) if c.isdigit() and c.isascii() else c for c in text)


def _respace(text: str, r: random.Random, pool: list[str]) -> str:
    """Each ASCII space or hyphen between digit groups replaced by one from ``pool``."""
    return "".join(r.choice(pool) if c in " -" else c for c in text)


def _percent(text: str, chars: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in chars else c for c in text)


def _sprinkle(text: str, r: random.Random, n: int) -> str:
    """``n`` zero-width characters at random inner positions."""
    chars = list(text)
    for _ in range(n):
        chars.insert(r.randint(1, len(chars) - 1), r.choice(_ZERO_WIDTH))
    return "".join(chars)


def _spaced_card(r: random.Random) -> str:
    prefix, length = r.choice([b for b in _BRANDS if b[1] == 16])
    num = luhn_complete(prefix, length, r)
    return " ".join(num[i : i + 4] for i in range(0, 16, 4))


def evasive(kind: str, r: random.Random) -> str:
    """A value of ``kind`` written in one of the evasive shapes."""
    if kind == "card":
        card_text = _spaced_card(r)
        forms = [
            lambda: unicode_digits(card_text, r),
            lambda: _respace(card_text, r, _SPACES),
            lambda: card_text.replace(" ", r.choice(_ZERO_WIDTH)),
            lambda: card_text.replace(" ", "."),
            lambda: card_text.replace(" ", r.choice(_DASHES)),
            lambda: _percent(card_text, " "),
            lambda: unicode_digits(_respace(card_text, r, _SPACES), r),
            lambda: _sprinkle(card_text.replace(" ", ""), r, 2),
        ]
    elif kind == "email":
        local, domain = r.choice(_FIRST) + "." + r.choice(_LAST), r.choice(_DOMAINS)
        forms = [
            lambda: _sprinkle(f"{local}@{domain}", r, 2),
            lambda: f"{local}\uff20{domain}",
            lambda: f"{local}%40{domain}",
            lambda: f"{local}&#64;{domain}",
            lambda: f"{local}&commat;{domain}",
            lambda: f"{r.choice(_IDN_LOCAL)}@{r.choice(_IDN_DOMAINS)}",
            lambda: f"{local}.{_s(r, string.ascii_lowercase, r.randint(300, 600))}@{domain}",
            lambda: f"{local}@" + ".".join(_s(r, "abcdefgh", 40) for _ in range(12)) + ".com",
            lambda: f"{local}@{domain}".upper().replace("@", "\u200b@\u200b"),
        ]
    elif kind == "iban":
        country, bban = r.choice(_IBAN_BBAN)
        compact = iban_compact(country, bban(r))
        grouped = " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
        forms = [
            grouped.lower,
            compact.lower,
            lambda: _respace(grouped, r, _SPACES),
            lambda: unicode_digits(grouped, r),
        ]
    elif kind == "phone":
        area, mid, last = f"{r.randint(2, 9)}{_d(r, 2)}", f"{r.randint(2, 9)}{_d(r, 2)}", _d(r, 4)
        forms = [
            lambda: f"{area}{r.choice(_DASHES)}{mid}{r.choice(_DASHES)}{last}",
            lambda: f"+1{r.choice(_SPACES)}{area}{r.choice(_SPACES)}{mid}{r.choice(_SPACES)}{last}",
            lambda: unicode_digits(f"+44 20 {_d(r, 4)} {_d(r, 4)}", r),
            lambda: _percent(f"+44 20 {_d(r, 4)} {_d(r, 4)}", "+ "),
            lambda: unicode_digits(f"({area}) {mid}-{last}", r),
        ]
    elif kind == "us_ssn":
        area = r.choice([n for n in range(1, 900) if n != 666])
        ssn_text = f"{area:03d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"
        forms = [
            lambda: ssn_text.replace("-", r.choice(_DASHES)),
            lambda: unicode_digits(ssn_text, r),
            lambda: _respace(ssn_text.replace("-", " "), r, _SPACES),
        ]
    elif kind == "ipv4":
        ip = ipv4(r)
        forms = [
            functools.partial(unicode_digits, ip, r),
            lambda: unicode_digits(ip, r).replace(".", "\uff0e"),
        ]
    else:
        raise ValueError(kind)
    return r.choice(forms)()


EVASION_KINDS: tuple[str, ...] = ("email", "phone", "card", "iban", "us_ssn", "ipv4")


def evasive_negative(r: random.Random) -> str:
    """Shapes that look like the evasive values and are not PII."""
    bad_card = _spaced_card(r)
    bad_card = bad_card[:-1] + str((int(bad_card[-1]) + r.randint(1, 9)) % 10)
    good = iban_compact("DE", _d(r, 18))
    bad_iban = good[:2] + f"{(int(good[2:4]) + r.randint(1, 50)) % 97 + 2:02d}" + good[4:]
    date = f"{r.randint(2019, 2026)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"
    forms = [
        unicode_digits(date, r), date.replace("-", r.choice(_DASHES)),
        unicode_digits(f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}", r),
        unicode_digits(f"v{r.randint(0, 9)}.{r.randint(0, 30)}.{r.randint(0, 99)}", r),
        f"%2Fv1%2Fitems%2F{_d(r, 5)}", _sprinkle("invoice_total", r, 1),
        bad_card.replace(" ", "."), _respace(bad_card, r, _SPACES), bad_iban.lower(),
        unicode_digits(f"ORD-{r.randint(2019, 2026)}-{_d(r, 6)}", r), "a&amp;b &#x2F; c",
        f"{r.randint(1, 99)}\u00a0%", f"{_d(r, 3)}\u202f{_d(r, 3)}", "50%25 off",
    ]  # fmt: skip
    return r.choice(forms)


def _plant_evasive(kind: str, r: random.Random) -> Plant:
    value = evasive(kind, r)
    before, after = r.choice(_CONTEXT[kind]).split("{}")
    return before, value, after


def generate_evasion(n_docs: int, seed: int, *, negative_rate: float = 0.4) -> list[Doc]:
    """Like :func:`generate`, with one evasive value on most lines and evasive negatives."""
    return _documents(
        random.Random(seed),
        n_docs,
        lines=(3, 8),
        negative=evasive_negative,
        negative_rate=negative_rate,
        kinds=EVASION_KINDS,
        plant=_plant_evasive,
        plant_rate=0.7,
    )
