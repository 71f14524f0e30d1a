"""Nothing raw passes the gate: planted PII and secrets of every kind, through every exit.

Values are planted in model and tool call inputs and outputs, plain events (keys and values),
audit payloads and log messages (exception text too); then the stored events, the raw bytes of
every SQLite file (database, WAL, spool), the log output and the outbound payload are searched.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

import logkit
from logkit.redaction.sealing import subject_of, unseal
from logkit.sinks.protocols import Query, Role
from tests.conftest import SCOPE

PLANTED = {
    "email": "maria.gonzalez@example.org",
    "phone": "+44 20 7946 0958",
    "card": "5425 2334 3010 9903",
    "card_2series": "2221000000000009",
    "iban": "DE89 3704 0044 0532 0130 00",
    "us_ssn": "123-45-6789",
    "ipv4": "203.0.113.77",
    "ipv6": "2001:db8:85a3::8a2e:370:7334",
    "aws_access_key": "AKIAIOSFODNN7EXAMPLE",
    "github_token": "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    "github_pat": "github_pat_11ABCDEFG0123456789_"
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY12",
    "slack_token": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "slack_webhook": "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    "google_api_key": "AIzaSyA1234567890abcdefghijklmnopqrstuv",
    "openai_key": "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH",
    "anthropic_key": "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ-abcdefgh",
    "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "bearer": "Bearer 8f2a9c7e1b4d6f3a0e5c9b7d2a4f6e8c",
    "url_credentials": "postgres://admin:S3cr3tPassw0rd@db.internal:5432/app",
    "private_key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq9n0Q8x4FZ\n"
    "q1w2e3r4t5y6u7i8o9p0\n-----END RSA PRIVATE KEY-----",
}
# The part of each value that must never appear anywhere (for wrappers, the secret itself).
NEEDLES = {k: v for k, v in PLANTED.items()}
NEEDLES["bearer"] = "8f2a9c7e1b4d6f3a0e5c9b7d2a4f6e8c"
NEEDLES["url_credentials"] = "S3cr3tPassw0rd"
NEEDLES["private_key"] = "MIIEpAIBAAKCAQEA7bq9n0Q8x4FZ"
NEEDLES["card"] = "5425 2334 3010 9903"


def text_with_everything() -> str:
    return " | ".join(f"{kind}: {value}" for kind, value in PLANTED.items())


def assert_clean(haystack: str | bytes, where: str) -> None:
    for kind, needle in NEEDLES.items():
        raw = needle.encode() if isinstance(haystack, bytes) else needle
        assert raw not in haystack, f"raw {kind} found in {where}"


def test_no_raw_value_reaches_stores_files_logs_or_providers(gated: Any, tmp_path: Path) -> None:
    text = text_with_everything()
    stream = io.StringIO()
    logger = logging.getLogger("test.pii")
    logger.propagate = False
    logkit.configure_logging(stream=stream, logger=logger)
    with logkit.bind(**SCOPE, run_id="run_pii", user_id="u_1"):
        with logkit.model_call("openai", "gpt-4o", input={"prompt": text}) as call:
            outbound = logkit.redact_for_call({"messages": [{"role": "user", "content": text}]})
            call.set_output({"answer": f"I see {PLANTED['email']} and {PLANTED['card']}"})
            call.record_usage(input_tokens=120, output_tokens=30)
        with logkit.tool_call("crm.lookup", input={PLANTED["email"]: PLANTED["phone"]}) as tool:
            tool.set_output({"customer": {"iban": PLANTED["iban"], "ssn": PLANTED["us_ssn"]}})
        logkit.emit("message", {PLANTED["email"]: text, "nested": [text, {"k": text}]})
        logkit.audit("customer.viewed", {"who": PLANTED["email"], "note": text})
        logger.info("user wrote %s", text)
        try:
            raise ValueError(f"lookup failed for {PLANTED['email']} with {PLANTED['bearer']}")
        except ValueError:
            logger.exception("crm failure for %s", PLANTED["phone"])
    assert logkit.flush(30)
    logger.handlers.clear()

    assert_clean(json.dumps(outbound), "the outbound payload")
    assert "[EMAIL:" in json.dumps(outbound)
    assert_clean(stream.getvalue(), "log output")
    stored: list[logkit.Event] = []
    for role in (Role.TIMELINE, Role.AUDIT, Role.COST):
        stored += gated.stores[role].query(Query(tenant_id="t_acme", limit=10_000)).events
    assert len(stored) >= 8
    for event in stored:
        assert_clean(event.model_dump_json(), f"stored {event.event_type}")
    assert any(e.redaction and e.redaction.counts for e in stored)
    # The raw bytes on disk: the database, its write-ahead log (before a checkpoint folds it
    # in) and the spool, then again after shutdown.
    wal = [p for p in tmp_path.rglob("*-wal")]
    assert wal, "expected SQLite write-ahead logs while the runtime is open"
    for path in [p for p in tmp_path.rglob("*") if p.is_file() and ".db" in p.name]:
        assert_clean(path.read_bytes(), path.name)
    logkit.shutdown()
    for path in [p for p in tmp_path.rglob("*") if p.is_file() and ".db" in p.name]:
        assert_clean(path.read_bytes(), path.name)


def test_pseudonyms_are_stable_in_a_tenant_and_differ_across_tenants(gated: Any) -> None:
    value = {"email": PLANTED["email"]}
    one, _ = logkit.redact(value, tenant_id="t_acme")
    two, _ = logkit.redact(value, tenant_id="t_acme")
    other, _ = logkit.redact(value, tenant_id="t_other")
    assert one == two and one != other and one["email"].startswith("[EMAIL:")


def test_sealed_payload_is_recoverable_until_its_key_is_destroyed(
    gated: Any, tmp_path: Path
) -> None:
    with logkit.bind(**SCOPE, user_id="u_7"):
        event = logkit.emit("model_call_ended", {"prompt": PLANTED["email"]}, seal_raw=True)
    assert_clean(event.model_dump_json(), "the sealed event")
    assert event.payload["prompt"].startswith("[EMAIL:")
    keys = gated.keys
    assert unseal(event, keys) == {"prompt": PLANTED["email"]}
    tampered = event.replace(event_id="01a2aaaa-0000-7000-8000-000000000000")
    with pytest.raises(logkit.RedactionError, match="does not decrypt"):
        unseal(tampered, keys)  # a ciphertext cannot be moved to another event
    assert keys.destroy(subject_of("t_acme", "u_7"))
    with pytest.raises(logkit.RedactionError, match="destroyed"):
        unseal(event, keys)
    assert logkit.flush(10)
    (stored,) = [
        e
        for e in gated.stores[Role.TIMELINE].query(Query(tenant_id="t_acme")).events
        if e.event_id == event.event_id
    ]
    assert stored.payload["_sealed"]["subject"] == subject_of("t_acme", "u_7")


def test_redaction_key_is_required_outside_dev(configured: Any, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(logkit.ConfigError, match="no redaction key"):
        configured(env="prod", sinks={"timeline": db, "audit": db}, redaction={})


def test_policy_none_is_refused_outside_dev(configured: Any, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(logkit.ConfigError, match="'none' is refused"):
        configured(
            env="prod",
            sinks={"timeline": db, "audit": db},
            redaction={"key": "k", "policies": {"ops": "none"}},
        )
