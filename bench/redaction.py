"""Redaction throughput and quality: logkit's RegexRedactor vs Presidio's regex recognizers.

Figures, one per line:

* throughput on ~10 MB of mixed log/prompt text with ~1% planted PII and secrets (the labelled
  corpus generator, tests/redaction/corpus.py), one document per call;
* throughput on 1 MB dense with findings: distinct emails, IPv4s and cards back to back, one
  string (about 50,000 findings); target >= 10 MB/s;
* seconds for 50 MB of distinct emails in one string;
* the worst case found: seconds for 1 MB of each crafted input below (long runs of digits,
  dots, "@", letters, PEM headers, "://", "bearer ", zero-width and fullwidth characters,
  escapes...), the slowest three printed;
* per-finding cost on the dense MB: finding (regexes and validators), pseudonyms (HMAC), the
  rest (overlap resolution, joining), in microseconds per finding;
* precision and recall per kind on the labelled set and on the evasion set (Unicode digits and
  spaces, zero-width characters, percent-encoding, IDN, lowercase IBANs, long values), for
  logkit and for Presidio's AnalyzerEngine in regex-only mode (a no-op NLP engine: no spaCy
  model is loaded or downloaded), in the same run.

Run: .venv/bin/python bench/redaction.py [MB of mixed text] [--no-presidio]
"""

from __future__ import annotations

import functools
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: tests.*
from _timing import line, per_call_seconds

from logkit.redaction.engine import RegexRedactor
from logkit.redaction.overlap import resolve
from logkit.redaction.pseudonym import Pseudonyms
from tests.redaction import corpus

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
TARGET_MB = float(ARGS[0]) if ARGS else 10.0
PRESIDIO = "--no-presidio" not in sys.argv
# Presidio's entity names for the kinds it has a recognizer for.
PRESIDIO_KINDS = {
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "CREDIT_CARD": "card",
    "IBAN_CODE": "iban",
    "US_SSN": "us_ssn",
    "IP_ADDRESS": "ip",
}
MB = 1_000_000

Finder = Callable[[str], list[tuple[int, int, str]]]


def build(target_mb: float) -> list[corpus.Doc]:
    docs: list[corpus.Doc] = []
    size, seed = 0, 0
    while size < target_mb * 1e6:
        # plant_rate 0.015 per line gives about 1% of the bytes as planted values.
        batch = corpus.generate(2000, seed=seed, plant_rate=0.015)
        docs += batch
        size += sum(len(t) for t, _ in batch)
        seed += 1
    return docs


def dense(size: int, seed: int = 1) -> str:
    """Distinct emails, IPv4s and cards back to back, ``size`` characters."""
    r = random.Random(seed)
    parts: list[str] = []
    total = i = 0
    while total < size:
        kind = i % 3
        if kind == 0:
            value = f"{r.choice(corpus._FIRST)}.{i}@host{i % 997}.example.com"
        elif kind == 1:
            value = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        else:
            value = corpus.card(r)
        parts.append(value)
        total += len(value) + 1
        i += 1
    return " ".join(parts)[:size]


def emails(size: int) -> str:
    parts: list[str] = []
    total = i = 0
    while total < size:
        value = f"user{i}.{corpus._LAST[i % 8]}@mail{i % 1009}.example.com"
        parts.append(value)
        total += len(value) + 1
        i += 1
    return " ".join(parts)


def repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


# Crafted inputs: runs that make a backtracking regex or a per-find loop go super-linear.
CRAFTED: dict[str, Callable[[int], str]] = {
    **{
        f"{unit!r} repeated": functools.partial(repeat, unit)
        for unit in [
            "a@b.io ", "@", "a@", "a.", "a", ".", "a@b", "a@b.c", "x.y@", "jö@", "1", "1 ", "1.",
            "1-", "(1", "+1 ", "0 ", "-1", "1.1.1.", "4111 ", "1.2.3.4.", "255.255.255.255 ",
            ":", "::", "a:", "1:2:3:4:5:6:7:8:", "-----BEGIN PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY----- x!", "-----BEGIN A A A ", "eyJ", "eyJhbGciOi.", "sk-",
            "sk-ant-", "ghp_", "AKIA", "xoxb-", "AIza", "://", "a://", "a://b:", "bearer ",
            "bearer%20", "hooks.slack.com/", "ssn ", "social security number ", "SSN: 1",
            "DE89 ", "de", "GB82WEST", "\uff14", "\u200b", "%40", "a%40", "%", "&#64;", "&",
            "\u00a0", "1\u00a0", "4111\u200b", "\u00e9", "1\u00e9", "%E2%80%8B",
        ]
    },
    "http://user:<1 MB password>": lambda n: "http://user:" + repeat("p", n),
    "Bearer <1 MB token>": lambda n: "Bearer " + repeat("a", n),
    "a@<1 MB of labels>": lambda n: "a@" + repeat("b.", n),
    "<1 MB local part>@b.com": lambda n: repeat("a", n) + "@b.com",
    "fe80::1%<1 MB zone>": lambda n: "fe80::1%" + repeat("a", n),
    "PEM header + 1 MB": lambda n: "-----BEGIN PRIVATE KEY-----" + repeat("a", n),
    "distinct IPv4s": lambda n: repeat(
        " ".join(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(80000)), n
    ),
    "distinct emails": emails,
    "dense mix": dense,
}  # fmt: skip


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def pr(docs: list[corpus.Doc], find: Finder, kind_of: Any = lambda k: k) -> dict[str, Any]:
    """kind -> (precision, recall, labels); a find must cover its label to count for recall."""
    tp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    for text, labels in docs:
        spans = find(text)
        for kind, s, e in labels:
            hit = any(k == kind_of(kind) and ps <= s and pe >= e for ps, pe, k in spans)
            (tp if hit else fn)[kind_of(kind)] += 1
        for ps, pe, k in spans:
            if not any(k == kind_of(kind) and ps < e and pe > s for kind, s, e in labels):
                fp[k] += 1
    out = {}
    for k in sorted(set(tp) | set(fn)):
        out[k] = (tp[k] / max(1, tp[k] + fp[k]), tp[k] / max(1, tp[k] + fn[k]), tp[k] + fn[k])
    return out


def quality(who: str, sets: dict[str, list[corpus.Doc]], find: Finder, **kw: Any) -> None:
    for name, docs in sets.items():
        for kind, (p, r, n) in pr(docs, find, **kw).items():
            if who == "logkit" or kind in PRESIDIO_KINDS.values():
                line(
                    f"{who} {name} {kind} precision",
                    100 * p,
                    "%",
                    f"recall {100 * r:.1f}%, {n} labels",
                )


def speed(redactor: RegexRedactor, texts: list[str]) -> None:
    size = sum(len(t.encode()) for t in texts)
    # Best of three: the machine is shared, and one slow pass says nothing about the code.
    seconds = per_call_seconds(
        lambda: [redactor.redact(t, tenant_id="t_bench") for t in texts], 1, repeat=3
    )
    line(
        "logkit RegexRedactor throughput",
        size / MB / seconds,
        "MB/s",
        f"mixed text, {size / MB:.1f} MB, {len(texts)} docs",
    )
    text = dense(MB)
    seconds = per_call_seconds(lambda: redactor.redact(text, tenant_id="t_bench"), 1, repeat=3)
    found = len(redactor.scan(text))
    line(
        "logkit dense findings throughput",
        MB / MB / seconds,
        "MB/s",
        f"1 MB, {found} distinct findings back to back; target >= 10 MB/s",
    )
    per_finding(redactor, text, found, seconds)
    big = emails(50 * MB)
    seconds = timed(lambda: redactor.redact(big, tenant_id="t_bench"))
    line("logkit 50 MB of emails", seconds, "s", f"{len(big) / MB / seconds:.1f} MB/s, one string")
    worst = []
    for name, make in CRAFTED.items():
        crafted = make(MB)
        worst.append(
            (timed(functools.partial(redactor.redact, crafted, tenant_id="t_bench")), name)
        )
    worst.sort(reverse=True)
    for seconds, name in worst[:3]:
        line("logkit worst case, 1 MB", seconds, "s", f"{name}; {len(worst)} crafted inputs tried")


def per_finding(redactor: RegexRedactor, text: str, found: int, total: float) -> None:
    """Microseconds per finding on the dense MB (redacted in ``total`` seconds), by stage."""
    finds = redactor._find(text)
    key = redactor.tenant_key("t_bench")
    values = [(kind, text[s:e]) for s, e, _, kind in resolve(list(finds))]

    def tokens() -> list[str]:
        fresh = Pseudonyms(key)  # an empty cache: every value is new, as in the dense MB
        return [fresh.token(kind, value) for kind, value in values]

    stages = {
        "find (anchors, regexes, validators)": lambda: redactor._find(text),
        "pseudonyms (HMAC-SHA256)": tokens,
        "resolve overlaps": lambda: resolve(list(finds)),
    }
    spent = 0.0
    for stage, fn in stages.items():
        seconds = per_call_seconds(fn, 1, repeat=3)
        spent += seconds
        line(f"logkit per finding: {stage}", 1e6 * seconds / found, "us")
    rest = max(0.0, total - spent)  # stages are timed apart: on a noisy machine this can dip
    line("logkit per finding: the rest (normalise, join, counts)", 1e6 * rest / found, "us")


def presidio_engine() -> Any:
    import tldextract

    # Presidio's email recognizer asks tldextract, which would fetch the public suffix list
    # from the network; the snapshot bundled in the package is what we use (no downloads).
    tldextract.extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine

    class NoOpNlpEngine(NlpEngine):  # type: ignore[misc]
        """Regex-only mode: no tokens, no NER; pattern recognizers still run (no spaCy model)."""

        def load(self) -> None:
            pass

        def is_loaded(self) -> bool:
            return True

        def process_text(self, text: str, language: str) -> NlpArtifacts:
            return NlpArtifacts([], [], [], [], self, language)  # type: ignore[arg-type]

        def process_batch(self, texts: Any, language: str, **kwargs: Any) -> Any:
            for text in texts:
                yield text, self.process_text(text, language)

        def is_stopword(self, word: str, language: str) -> bool:
            return False

        def is_punct(self, word: str, language: str) -> bool:
            return False

        def get_supported_entities(self) -> list[str]:
            return []

        def get_supported_languages(self) -> list[str]:
            return ["en"]

    registry = RecognizerRegistry()
    registry.load_predefined_recognizers(languages=["en"])
    return AnalyzerEngine(nlp_engine=NoOpNlpEngine(), registry=registry)


def presidio(texts: list[str], sets: dict[str, list[corpus.Doc]]) -> None:
    try:
        engine = presidio_engine()
        entities = list(PRESIDIO_KINDS)
        engine.analyze("warm up a@b.com", language="en", entities=entities)
    except Exception as exc:  # the peer is optional; logkit's figures stand
        print(f"presidio: not run ({type(exc).__name__}: {exc})")
        return
    sample = texts[: max(1, len(texts) // 10)]  # Presidio is far slower: time a tenth
    sample_size = sum(len(t.encode()) for t in sample)
    seconds = timed(lambda: [engine.analyze(t, language="en", entities=entities) for t in sample])
    line(
        "presidio AnalyzerEngine (regex-only) throughput",
        sample_size / MB / seconds,
        "MB/s",
        f"{sample_size / seconds / 1e3:.0f} KB/s on a {sample_size / MB:.1f} MB sample",
    )

    def find(text: str) -> list[tuple[int, int, str]]:
        found = engine.analyze(text, language="en", entities=entities)
        return [(r.start, r.end, PRESIDIO_KINDS[r.entity_type]) for r in found]

    def as_presidio(kind: str) -> str:
        return "ip" if kind in ("ipv4", "ipv6") else kind

    quality(
        "presidio", {name: docs[:1000] for name, docs in sets.items()}, find, kind_of=as_presidio
    )


def main() -> None:
    texts = [t for t, _ in build(TARGET_MB)]
    redactor = RegexRedactor(b"bench-master-key")
    speed(redactor, texts)
    sets = {
        "labelled": corpus.generate(3000, seed=99),
        "evasion": corpus.generate_evasion(2000, seed=99),
    }
    quality("logkit", sets, redactor.scan)
    if PRESIDIO:
        presidio(texts, sets)


if __name__ == "__main__":
    main()
