"""Keyless masking: typed markers (``[EMAIL]``) for text that must leave without a key.

The gate proper replaces finds with keyed pseudonyms, which needs the pseudonym key. Two
places must never wait for one, nor fail: the messages of logkit's own exceptions, and the log
formatter's fallback line when formatting itself failed. They scan with the built-in detectors
(scanning needs no key) and replace each find with its kind alone. If even scanning fails the
whole text is withheld: the answer to "cannot check it" is never "let it through".
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from logkit.errors import RedactionError

if TYPE_CHECKING:
    from logkit.redaction.engine import RegexRedactor

WITHHELD = "[WITHHELD]"
"""What replaces a text that could not be scanned at all."""

MAX_MASKED_CHARS = 100_000
"""Longer texts are cut *after* masking (a cut never splits a raw value into a leak)."""

_finder: RegexRedactor | None = None
_lock = threading.Lock()


def _no_key() -> bytes:  # pragma: no cover - scanning never asks for the key
    raise RedactionError("masking uses no key")


def finder() -> RegexRedactor:
    """A detector engine used only to find (the built-ins plus registered detectors)."""
    global _finder  # noqa: PLW0603 - one shared, lazily built scanner
    if _finder is None:
        from logkit.redaction.engine import RegexRedactor

        with _lock:
            if _finder is None:
                _finder = RegexRedactor(_no_key, policy="mask")
    return _finder


def mask_text(text: str, *, keep: frozenset[str] = frozenset()) -> str:
    """``text`` with every find replaced by ``[KIND]`` (kinds in ``keep`` stay)."""
    try:
        spans = finder().scan(text)
    except Exception:  # a scanner failure must never let the text through
        return WITHHELD
    if spans:
        pieces: list[str] = []
        pos = 0
        for start, end, kind in spans:
            if kind in keep:
                continue
            pieces.append(text[pos:start])
            pieces.append(f"[{kind.upper()}]")
            pos = end
        pieces.append(text[pos:])
        text = "".join(pieces)
    if len(text) > MAX_MASKED_CHARS:
        text = f"{text[:MAX_MASKED_CHARS]}…[+{len(text) - MAX_MASKED_CHARS} chars]"
    return text
