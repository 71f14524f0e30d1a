"""A tiny, predictable redaction gate for tests that are about the plumbing, not detection."""

from __future__ import annotations

import json
from typing import Any

from logkit import RedactionReport


class WordRedactor:
    """Replaces the word 'hunter2' wherever it appears; remembers the tenants it served."""

    policy = "test-words"
    clean = RedactionReport(policy="test-words")

    def __init__(self) -> None:
        self.tenants: list[str | None] = []

    def redact(self, value: Any, *, tenant_id: str | None = None) -> tuple[Any, RedactionReport]:
        self.tenants.append(tenant_id)
        text = json.dumps(value)
        count = text.count("hunter2")
        if not count:
            return value, self.clean
        redacted = json.loads(text.replace("hunter2", "[SECRET:1]"))
        return redacted, RedactionReport(policy=self.policy, counts={"secret": count})
