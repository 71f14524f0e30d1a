"""Refuse at emit what no store could ever write: text that is not valid Unicode.

``json.loads('"bob\\ud800"')`` gives a str holding an unpaired surrogate; any client can send
one. Python keeps it, but it has no UTF-8 form, so every store and the spool would fail on the
event forever. The envelope validates its own string fields; payloads are JSON values, checked
here. The common case costs one orjson encoding of the payload; only a failure walks it to name
the field. Non-finite floats are refused by the envelope itself (JSON has no NaN).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from logkit.errors import ContractError

_MAX_PATH = 120


def refuse_unencodable(payload: Mapping[str, Any]) -> None:
    """Raise ContractError naming the first key or string of ``payload`` that is not valid
    Unicode (an unpaired surrogate). Values are never echoed, only where they are."""
    try:
        orjson.dumps(payload)
    except orjson.JSONEncodeError:
        pass  # a surrogate, or an integer wider than 64 bits (which stores handle): look
    else:
        return
    for path in _bad_strings(payload, "payload"):
        shown = path if len(path) <= _MAX_PATH else path[:_MAX_PATH] + "…"
        raise ContractError(
            f"event contract violated: {shown}: not valid Unicode (an unpaired surrogate)",
            problems={shown: "not valid Unicode (an unpaired surrogate); it cannot be stored"},
        )


def _bad_strings(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, str):
        if not _encodable(value):
            yield path
    elif isinstance(value, Mapping):
        for key, item in value.items():
            label = _label(key)
            if isinstance(key, str) and not _encodable(key):
                yield f"{path}.<key {label}>"
            yield from _bad_strings(item, f"{path}.{label}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _bad_strings(item, f"{path}[{index}]")


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _label(key: object) -> str:
    """A key as it may appear in an error: its valid part, with surrogates escaped."""
    text = str(key)
    return text.encode("utf-8", "backslashreplace").decode("ascii", "replace")[:40]
