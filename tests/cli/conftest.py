"""Fixtures shared by the CLI tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import logkit
from tests.conftest import memory_sinks


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Commands write to ./.logkit: run in a temp dir, then restore the memory runtime."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    logkit.configure(**memory_sinks(tmp_path / "restored"))
