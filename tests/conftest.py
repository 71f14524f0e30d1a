"""Shared fixtures: a clean context, a known redactor, and the scope every test event needs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from logkit.redaction import PassThroughRedactor, set_redactor

SCOPE = {
    "tenant_id": "t_acme",
    "env": "prod",
    "project_id": "p_support",
    "surface_id": "chat",
    "app_id": "support-bot",
}


@pytest.fixture
def scope() -> dict[str, str]:
    return dict(SCOPE)


@pytest.fixture(autouse=True)
def _reset_redactor() -> Iterator[None]:
    """Each test starts with the pass-through gate, whatever the previous one installed."""
    previous = set_redactor(PassThroughRedactor())
    yield
    set_redactor(previous)
