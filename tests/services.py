"""Where the test emulators listen: `.logkit/services.env`, written by `make services`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SERVICES_ENV = Path(__file__).resolve().parent.parent / ".logkit" / "services.env"
NAMES = (
    "FIRESTORE_EMULATOR_HOST",
    "BIGQUERY_EMULATOR_HOST",
    "BIGQUERY_STORAGE_EMULATOR_HOST",
    "PHOENIX_URL",
    "REDIS_URL",
)


def load() -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if k in NAMES}
    if SERVICES_ENV.exists():
        for line in SERVICES_ENV.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() in NAMES:
                values.setdefault(key.strip(), value.strip())
    return values


def require(name: str) -> str:
    """The emulator address, or a test failure saying how to start it (never a silent skip)."""
    value = load().get(name)
    if not value:
        pytest.fail(f"{name} is not set and {SERVICES_ENV} has no address: run `make services`")
    os.environ[name] = value
    return value
