"""Route libraries' own log output through logkit's JSON formatter (and so through the gate).

Servers and SDKs install console handlers of their own (uvicorn's access log prints
``GET /x?email=...`` as plain text). After ``configure_logging()`` on the root logger, their
console handlers are removed and their records propagate to the root's JSON handler; uvicorn's
default logging config, which ``uvicorn.run`` applies when a server starts later, is pointed at
the root logger too.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from typing import Any

_CONSOLE_STREAMS = ("stdout", "stderr", "__stdout__", "__stderr__")
# uvicorn's loggers: with no handlers of their own they propagate to the root's JSON handler.
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def _is_console(handler: logging.Handler) -> bool:
    if getattr(handler, "_logkit", False) or not isinstance(handler, logging.StreamHandler):
        return False
    if isinstance(handler, logging.FileHandler):
        return False  # a file the application chose to write is its own business
    stream = getattr(handler, "stream", None)
    return any(stream is getattr(sys, name, None) for name in _CONSOLE_STREAMS)


def route_library_loggers() -> list[str]:
    """Remove non-logkit console handlers from every existing logger below the root and let
    their records propagate to it; returns the names of the loggers changed."""
    changed: list[str] = []
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue
        console = [h for h in logger.handlers if _is_console(h)]
        for handler in console:
            logger.removeHandler(handler)
        if console:
            logger.propagate = True
            changed.append(name)
    _point_uvicorn_here()
    return changed


def uvicorn_log_config() -> dict[str, Any]:
    """A uvicorn ``log_config`` whose loggers write through the root logger's handlers."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {
            name: {"handlers": [], "propagate": True, "level": "INFO"} for name in _UVICORN_LOGGERS
        },
    }


def _point_uvicorn_here() -> None:
    # uvicorn.run(log_config=LOGGING_CONFIG) reads that module-level dict when the server
    # starts: replacing its content in place routes servers started later as well.
    if "uvicorn.config" not in sys.modules and importlib.util.find_spec("uvicorn") is None:
        return
    import uvicorn.config

    config = uvicorn.config.LOGGING_CONFIG
    config.clear()
    config.update(uvicorn_log_config())
