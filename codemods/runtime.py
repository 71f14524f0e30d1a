"""What migrated code calls at run time: the default of an injected logging hook.

``logkit codemod`` rewrites ``self._hook = model_call_logger`` (default ``None``) into
``self._hook = model_call_logger if model_call_logger is not None else legacy_hook(...)``:
an injected hook is still called as before; without one, the object now reaches logkit.
The default must behave like "nothing injected" in every way a caller can see:

- it never raises (a logging failure is logged as a warning with the exception's type, never
  its text, which may hold the values being logged), so a caller's own exception, or the lack
  of one, is unchanged;
- a legacy object with a route (``{"DatasetEvent": "engines.logging.events.engine.run"}``) is
  handed to that logger, which computes PII flags and the training opt-out, as a deep copy: the
  caller's object is never mutated by it; anything else goes to logkit through the adapter;
- it returns None, as a hook does.

This module imports nothing heavy: migrated production code imports it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

_log = logging.getLogger(__name__)


def legacy_hook(routes: Mapping[str, str] | None = None) -> Callable[[Any], None]:
    """A hook that hands each legacy object to its routed logger, or to logkit."""
    table = dict(routes or {})

    def hook(obj: Any) -> None:
        target = _route(type(obj), table)
        try:
            if target is None:
                import logkit

                logkit.emit_event(logkit.from_legacy(obj))
            else:
                _resolve(target)(_copy(obj))
        except Exception as exc:  # a logging hook never fails its caller
            _log.warning("legacy %s not logged: %s", type(obj).__name__, type(exc).__name__)

    hook.__qualname__ = hook.__name__ = "legacy_hook"
    return hook


def _route(cls: type, table: Mapping[str, str]) -> str | None:
    for klass in cls.__mro__:
        for key in (f"{klass.__module__}.{klass.__qualname__}", klass.__qualname__):
            if key in table:
                return table[key]
    return None


def _resolve(dotted: str) -> Callable[[Any], Any]:
    module, _, name = dotted.rpartition(".")
    found: Callable[[Any], Any] = getattr(importlib.import_module(module), name)
    return found


def _copy(obj: Any) -> Any:
    copy = getattr(obj, "model_copy", None)
    if callable(copy):
        return copy(deep=True)
    import copy as copying

    return copying.deepcopy(obj)
