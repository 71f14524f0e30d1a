"""Fixtures shared by the logs tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def gated(configured: Any, tmp_path: Path) -> Any:
    """A prod runtime with the gate in front of one SQLite file for timeline and audit."""
    db = tmp_path / "logkit.db"
    return configured(
        env="prod",
        sinks={"timeline": f"sqlite:///{db}", "audit": f"sqlite:///{db}"},
        dispatch={"spool_path": tmp_path / "spool.db"},
    )
