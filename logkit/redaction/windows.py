"""Where an anchored detector runs: merged windows around its anchor's hits.

A window is a hit plus fixed margins, widened to the token around it when the detector says
which characters its values are made of (``Detector.reach``): an email window runs from the
start of the local part to the end of the domain however long they are, a bearer window to the
end of the token. So no value is cut by a window edge (no length cliff).

With RE2 installed, one DFA pass finds whole windows: the anchor with its reach, chained while
the next hit is within the margins, so dense text (a value every twenty characters) yields a
handful of windows instead of one Python iteration per hit. Without RE2 the hits come from
``re`` and are widened and merged here. Both are linear: windows merge, a forward run already
measured is not measured again for a later hit inside it, and a backward run stops at the
previous window's end.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

try:  # optional: the same windows either way (or wider), RE2 finds them faster
    import re2 as _re2  # type: ignore[import-untyped,import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the environment
    _re2 = None

_FIRST_CHUNK = 64
_CLUSTER_FROM = 8192
"""Texts this long use the RE2 window regex; shorter ones the anchor alone (a call of RE2's
wrapper costs microseconds, which only pays back on long text)."""
_CLUSTER_GAP = 64
"""Hits closer than this share a window on long text: a regex call per window costs more than
scanning a few dozen characters, and dense text would otherwise make one call per value."""
_SPAN = re.Match.span
# In RE2 \w and \s are ASCII; widen them to the Unicode sets re uses (windows may only grow).
_RE2_CLASSES = {r"\w": r"\pL\pN\pM_", r"\s": r"\s\x0b\x1c-\x1f\x{85}\pZ"}

Window = tuple[int, int]


class WindowFinder:
    """Windows of one (anchor, margins, reach) group of detectors in a text."""

    def __init__(
        self, anchor: str, window: tuple[int, int], reach: tuple[str | None, str | None]
    ) -> None:
        self.before, self.after = window
        back, forward = reach
        self._anchor = _compile_anchor(anchor)
        # (?s:.*)[^C]: the last character outside the backward class C, found by a greedy
        # match that backtracks from the hit (sre has no reverse search).
        self._back = re.compile(r"(?s:.*)[^" + back[1:-1] + "]") if back else None
        self._forward = re.compile(forward) if forward else None
        self._re2 = _cluster(anchor, max(self.before + self.after, _CLUSTER_GAP), back, forward)

    def __call__(self, text: str) -> list[Window]:
        if self._re2 is not None and len(text) >= _CLUSTER_FROM:
            spans = [m.span() for m in self._re2.finditer(_subject(text))]
            return _merge(spans, self.before, self.after, len(text))
        if isinstance(self._anchor, re.Pattern):
            return self.widen(text, map(_SPAN, self._anchor.finditer(text)))
        return self.widen(text, [m.span() for m in self._anchor.finditer(_subject(text))])

    def widen(self, text: str, hits: Iterable[Window]) -> list[Window]:
        """Merged, disjoint windows around ``hits`` (anchor spans, in order), reach included."""
        size = len(text)
        before, after, back, forward = self.before, self.after, self._back, self._forward
        out: list[Window] = []
        last_end = 0  # end of the last window: backward runs stop there
        run_end = -1  # end of the last forward run measured
        for hs, he in hits:
            ws = hs - before
            if back is not None and hs > last_end:
                ws = min(ws, _run_start(text, back, hs, last_end))
            we = he + after
            if forward is not None:
                if he > run_end:
                    match = forward.match(text, he)
                    run_end = he if match is None else match.end()
                we = max(we, run_end)
            ws, we = max(ws, 0), min(we, size)
            if out and ws <= out[-1][1]:
                if we > out[-1][1]:
                    out[-1] = (out[-1][0], we)
            else:
                out.append((ws, we))
            last_end = out[-1][1]
        return out


def _subject(text: str) -> str | bytes:
    # For ASCII text byte offsets are character offsets, and RE2's wrapper skips its per-hit
    # offset conversion.
    return text.encode("ascii") if text.isascii() else text


def _compile_anchor(source: str) -> Any:
    # RE2 for anchors that start with a class (the digit anchor): its Python wrapper costs a
    # few microseconds per call and per hit, which only pays where sre would step through every
    # character. Literal-led anchors ("@", "::", "bearer") are fast in sre already.
    if _re2 is not None and source.startswith("\\d"):
        try:
            return _re2.compile(source)
        except Exception:  # a custom anchor RE2 cannot take runs on re instead
            pass
    return re.compile(source)


def _merge(spans: list[Window], before: int, after: int, size: int) -> list[Window]:
    out: list[Window] = []
    for hs, he in spans:
        ws, we = max(hs - before, 0), min(he + after, size)
        if out and ws <= out[-1][1]:
            if we > out[-1][1]:
                out[-1] = (out[-1][0], we)
        else:
            out.append((ws, we))
    return out


def _run_start(text: str, back: re.Pattern[str], pos: int, limit: int) -> int:
    """Start of the run of class characters ending at ``pos``, not before ``limit``: chunks
    doubling backwards, so the cost is the length of the run, not of the text."""
    chunk = _FIRST_CHUNK
    end = pos
    while True:
        start = max(limit, end - chunk)
        m = back.match(text, start, end)
        if m is not None:
            return m.end()
        if start == limit:
            return limit
        end, chunk = start, chunk * 2


def _cluster(anchor: str, gap: int, back: str | None, forward: str | None) -> Any:
    """One RE2 regex whose matches are whole merged windows (before the margins): the anchor
    with its reach, repeated while the next one starts within ``gap``. None without RE2."""
    if _re2 is None:
        return None
    hit = (_re2_syntax(back) + "*" if back else "") + f"(?:{anchor})" + _re2_syntax(forward or "")
    source = f"(?:{hit})(?:(?s:.){{0,{gap}}}(?:{hit}))*" if gap else hit
    try:
        return _re2.compile(source)
    except Exception:  # a custom anchor RE2 cannot take: re and Python widening instead
        return None


def _re2_syntax(source: str) -> str:
    for python, unicode in _RE2_CLASSES.items():
        source = source.replace(python, unicode)
    return source
