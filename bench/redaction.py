"""Redaction throughput and quality: logkit's RegexRedactor vs Presidio's regex recognizers.

Builds ~10 MB of mixed log/prompt text with ~1% planted PII and secrets from the labelled
corpus generator (tests/redaction/corpus.py), then prints logkit's MB/s, its precision and
recall per kind on a labelled set, and Presidio's AnalyzerEngine MB/s on the same text in
regex-only mode (a no-op NLP engine: no spaCy model is loaded or downloaded).

Run: .venv/bin/python bench/redaction.py [MB]
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: tests.*
from _timing import line

from logkit.redaction.engine import RegexRedactor
from tests.redaction import corpus

TARGET_MB = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
# Presidio's entity names for the kinds it has a recognizer for.
PRESIDIO_KINDS = {
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "CREDIT_CARD": "card",
    "IBAN_CODE": "iban",
    "US_SSN": "us_ssn",
    "IP_ADDRESS": "ip",
}


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


def pr(
    docs: list[corpus.Doc], find: Any, kind_of: Any = lambda k: k
) -> dict[str, tuple[float, float, int]]:
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


def main() -> None:
    docs = build(TARGET_MB)
    texts = [t for t, _ in docs]
    size = sum(len(t.encode()) for t in texts)
    planted = sum(e - s for _, labels in docs for _, s, e in labels)
    redactor = RegexRedactor(b"bench-master-key")

    start = time.perf_counter()
    for text in texts:
        redactor.redact(text, tenant_id="t_bench")
    logkit_s = time.perf_counter() - start
    line(
        "logkit RegexRedactor throughput",
        size / 1e6 / logkit_s,
        "MB/s",
        f"{size / 1e6:.1f} MB, {100 * planted / size:.2f}% planted, {len(texts)} docs",
    )

    labelled = corpus.generate(3000, seed=99)
    for kind, (p, r, n) in pr(labelled, redactor.scan).items():
        line(f"logkit {kind} precision", 100 * p, "%", f"recall {100 * r:.1f}%, {n} labels")

    try:
        engine = presidio_engine()
        entities = list(PRESIDIO_KINDS)
        engine.analyze("warm up a@b.com", language="en", entities=entities)
    except Exception as exc:  # the peer is optional; logkit's figures stand
        print(f"presidio: not run ({type(exc).__name__}: {exc})")
        return
    sample = texts[: max(1, len(texts) // 10)]  # Presidio is far slower: time a tenth
    sample_size = sum(len(t.encode()) for t in sample)
    start = time.perf_counter()
    for text in sample:
        engine.analyze(text, language="en", entities=entities)
    presidio_s = time.perf_counter() - start
    line(
        "presidio AnalyzerEngine (regex-only) throughput",
        sample_size / 1e6 / presidio_s,
        "MB/s",
        f"{sample_size / presidio_s / 1e3:.0f} KB/s on a {sample_size / 1e6:.1f} MB sample",
    )

    def presidio_find(text: str) -> list[tuple[int, int, str]]:
        found = engine.analyze(text, language="en", entities=entities)
        return [(r.start, r.end, PRESIDIO_KINDS[r.entity_type]) for r in found]

    def as_presidio(kind: str) -> str:
        return "ip" if kind in ("ipv4", "ipv6") else kind

    peer = pr(labelled[:1000], presidio_find, as_presidio)
    for kind, (p, r, n) in peer.items():
        if kind in PRESIDIO_KINDS.values():
            line(f"presidio {kind} precision", 100 * p, "%", f"recall {100 * r:.1f}%, {n} labels")


if __name__ == "__main__":
    main()
