"""Linear time by construction: overlap resolution, windows, crafted inputs. No timing is
asserted here (bench/redaction.py states the figures); these check the algorithms give the
results of the simple ones they replace, and that big dense inputs run at all."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logkit.redaction.detectors import EMAIL_ANCHOR
from logkit.redaction.engine import RegexRedactor
from logkit.redaction.overlap import Find, resolve
from logkit.redaction.windows import WindowFinder
from tests.redaction import corpus

R = RegexRedactor(b"test-master-key")


def quadratic(found: list[Find]) -> list[Find]:
    """The first engine's rule, written the obvious way: higher priority, then longer, then
    earlier wins a clash."""
    chosen: list[Find] = []
    for find in sorted(found, key=lambda f: (-f[2], f[0] - f[1], f[0])):
        if all(find[1] <= c[0] or find[0] >= c[1] for c in chosen):
            chosen.append(find)
    return sorted(chosen)


_FIND = st.tuples(st.integers(0, 200), st.integers(1, 40), st.integers(0, 5)).map(
    lambda t: (t[0], t[0] + t[1], t[2] * 10, f"k{t[2]}")
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_FIND, max_size=60))
def test_resolution_equals_the_quadratic_rule(found: list[Find]) -> None:
    # Each detector's own finds never overlap; the engine's input has that shape, but the
    # rule must hold for any input.
    assert resolve(list(found)) == quadratic(found)


def test_resolution_of_many_clustered_finds() -> None:
    r = random.Random(7)
    found: list[Find] = []
    for _ in range(5000):
        start = r.randint(0, 20000)
        found.append((start, start + r.randint(1, 30), r.choice([30, 41, 44, 50]), "x"))
    assert resolve(list(found)) == quadratic(found)


def test_the_issue_repros_run() -> None:
    out, report = R.redact("a@b.io " * 20000)
    assert report.counts == {"email": 20000} and "a@b.io" not in out
    ips = " ".join(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(40000))
    out, report = R.redact(ips)
    assert report.counts == {"ipv4": 40000}


def test_a_dense_megabyte_of_distinct_values_is_redacted() -> None:
    r = random.Random(3)
    values = []
    size = 0
    while size < 1_000_000:
        value = [corpus.email, corpus.ipv4, corpus.card][len(values) % 3](r)
        values.append(value)
        size += len(value) + 1
    text = " ".join(values)
    out, report = R.redact(text, tenant_id="t_x")
    assert sum(report.counts.values()) >= len(values) * 0.95
    assert not any(v in out for v in values[::97])


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(corpus.KINDS),
    seed=st.integers(0, 2**32 - 1),
    copies=st.integers(1, 30),
    noise=st.text(max_size=20),
)
def test_output_length_is_linear_in_the_input(
    kind: str, seed: int, copies: int, noise: str
) -> None:
    before, value, after = corpus.plant(kind, random.Random(seed))
    text = f"{noise} {before}{value}{after}" * copies
    out, _ = R.redact(text)
    # A pseudonym is at most 26 characters and replaces at least 3 ("::1").
    assert len(out) <= 9 * len(text) + 26


def test_windows_reach_the_whole_token_however_long() -> None:
    finder = WindowFinder(EMAIL_ANCHOR, (0, 0), (r"[\w.%+-]", r"[\w.%+@-]*"))
    for size in (10, 5000, 20000):  # below and above the length where RE2 takes over
        text = "x " + "a" * size + "@" + "b." * size + "com y"
        assert finder(text) == [(2, len(text) - 2)]
        assert finder.widen(text, [(2 + size, 3 + size)]) == [(2, len(text) - 2)]


def test_windows_of_many_hits_in_one_token_merge() -> None:
    finder = WindowFinder(EMAIL_ANCHOR, (0, 0), (r"[\w.%+-]", r"[\w.%+@-]*"))
    text = "go " + "a@" * 50000 + " stop"
    hits = [(3 + 2 * i + 1, 3 + 2 * i + 2) for i in range(50000)]
    assert finder.widen(text, hits) == [(3, 100003)]
    assert finder(text) == [(3, 100003)]


def test_without_re2_the_finds_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """RE2 is optional: without it the anchors, windows and presence check run on ``re``."""
    from logkit.redaction import engine, normalize, windows

    monkeypatch.setattr(engine, "_re2", None)
    monkeypatch.setattr(windows, "_re2", None)
    monkeypatch.setattr(normalize, "_PRESENCE", None)
    plain = RegexRedactor(b"test-master-key")
    assert plain._trigger_set is None
    docs = corpus.generate(300, seed=11) + corpus.generate_evasion(300, seed=11)
    for text, _ in docs:
        assert plain.scan(text) == R.scan(text)
    long_text = "".join(text for text, _ in docs)  # past the length where RE2 windows start
    assert plain.scan(long_text) == R.scan(long_text)
