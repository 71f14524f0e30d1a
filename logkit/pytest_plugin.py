"""logkit's pytest plugin (entry point ``pytest11``): the ``logkit_events`` fixture.

::

    def test_answer_is_logged(logkit_events):
        with logkit.bind(tenant_id="t_acme", env="dev", project_id="p", surface_id="chat",
                         app_id="bot", run_id="run_1"):
            answer_ticket()
        assert logkit_events.types() == ["flow_started", ..., "flow_ended"]

The fixture configures logkit in memory for the test (``memory://`` stores, spool and dev keys
in a temporary directory: nothing is written to the working directory), yields the events
emitted during the test (after redaction, as stores would keep them), and brings back whatever
configuration was in force before. Loading the plugin imports nothing but this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from logkit.testing import CapturedEvents


@pytest.fixture
def logkit_events() -> Iterator[CapturedEvents]:
    """The canonical events emitted during the test, captured from in-memory stores."""
    from logkit.testing import capture_events, memory_runtime

    with memory_runtime(), capture_events() as events:
        yield events
