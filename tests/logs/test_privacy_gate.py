"""The gate fails closed and covers every field: issue 13's reproductions, one test each.

Before configuration, on envelope identifiers, around truncation, in the log formatter (which
must never raise nor print raw) and in error messages.
"""

from __future__ import annotations

import io
import json
import logging
import os
import queue
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import logkit
from logkit.redaction import redact_identifier, reset_redactor
from logkit.sinks.protocols import Query, Role
from logkit.testing import capture_events
from tests.conftest import SCOPE, TEST_REDACTION_KEY

EMAIL = "alice.smith@example.com"
CARD = "4111 1111 1111 1111"
KEY = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789ABCD"
RAW = (EMAIL, CARD, "4111111111111111", KEY, "alice.smith@example", "4111 1111", "AKIAIOSFO")
REPO = Path(__file__).resolve().parents[2]


def assert_clean(text: str, where: str) -> None:
    for needle in RAW:
        assert needle not in text, f"raw {needle!r} in {where}"


def fresh_env(**env: str) -> dict[str, str]:
    """This environment without its LOGKIT_* settings (only the given ones), importing this
    checkout's logkit."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOGKIT_")}
    return {**clean, "PYTHONPATH": str(REPO), **env}


def run_python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter: nothing configured, only the given LOGKIT_* set."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=fresh_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


UNCONFIGURED = f"""
    import logging, logkit
    logkit.configure_logging()
    logging.getLogger("x").warning("mail %s card %s key %s", {EMAIL!r}, {CARD!r}, {KEY!r})
    print(logkit.redact({{"note": {EMAIL!r}, "card": {CARD!r}}})[0])
    print(logkit.redact_for_call({{"prompt": "key " + {KEY!r}}}))
"""


# --- 1. fail closed before configuration -----------------------------------------------------


def test_before_configure_dev_redacts_with_the_generated_dev_key(tmp_path: Path) -> None:
    done = run_python(UNCONFIGURED, tmp_path)
    assert done.returncode == 0, done.stderr
    assert_clean(done.stdout + done.stderr, "a program's output before configure()")
    line = json.loads(done.stdout.splitlines()[0])
    assert "[EMAIL:" in line["message"] and "[CARD:" in line["message"]
    assert "[ANTHROPIC_KEY:" in done.stdout.splitlines()[2]
    assert (tmp_path / ".logkit" / "redaction.key").exists()


def test_before_configure_prod_without_a_key_refuses_and_never_passes_through(
    tmp_path: Path,
) -> None:
    code = f"""
        import logging, logkit
        logkit.configure_logging()
        logging.getLogger("x").warning("mail %s", {EMAIL!r})
        print(logkit.redact("nothing to find here")[0])
        for call in (lambda: logkit.redact({EMAIL!r}), lambda: logkit.redact_for_call({CARD!r})):
            try:
                call()
            except logkit.RedactionError as exc:
                print("refused:", exc)
    """
    done = run_python(code, tmp_path, LOGKIT_ENV="prod")
    assert done.returncode == 0, done.stderr
    assert_clean(done.stdout + done.stderr, "a prod program's output without a key")
    out = done.stdout.splitlines()
    line = json.loads(out[0])
    assert line["message"] == "mail [EMAIL]" and line["logkit_format_error"] == "RedactionError"
    assert out[1] == "nothing to find here"
    assert out[2].startswith("refused:") and "no redaction key" in out[2]
    assert out[3].startswith("refused:")
    assert not (tmp_path / ".logkit").exists()


def test_before_configure_prod_uses_the_configured_key(tmp_path: Path) -> None:
    done = run_python(UNCONFIGURED, tmp_path, LOGKIT_ENV="prod", LOGKIT_REDACTION__KEY="k1")
    assert done.returncode == 0, done.stderr
    assert_clean(done.stdout + done.stderr, "output with a configured key")
    assert "[EMAIL:" in done.stdout
    from logkit.redaction.engine import RegexRedactor

    expected, _ = RegexRedactor(b"k1").redact(EMAIL)
    assert expected in done.stdout  # the very pseudonym configure() would give


def test_the_default_gate_is_not_pass_through_in_process() -> None:
    reset_redactor()
    assert logkit.redaction.get_redactor().policy == "default"
    redacted, report = logkit.redact({"who": EMAIL})
    assert EMAIL not in json.dumps(redacted) and report.counts == {"email": 1}


# --- 3. envelope identifiers -----------------------------------------------------------------


def stored_text(runtime: Any) -> str:
    assert logkit.flush(30)
    events = []
    for role in (Role.TIMELINE, Role.AUDIT, Role.COST):
        events += runtime.stores[role].query(Query(tenant_id="t_acme", limit=10_000)).events
    return "\n".join(e.to_json() for e in events)


def test_identifiers_are_pseudonymised_whole_and_consistently(gated: Any) -> None:
    ids = {
        "user_id": EMAIL,
        "request_id": f"req-{CARD.replace(' ', '')}",
        "run_id": CARD,
        "step_id": f"step {EMAIL}",
        "parent_step_id": KEY,
        "project_id": f"p_{EMAIL}",
        "surface_id": "chat",
        "app_id": "support-bot",
    }
    event = logkit.emit("message", {"n": 1}, **{**SCOPE, **ids})
    again = logkit.emit("message", {"n": 2}, **{**SCOPE, **ids})
    assert_clean(event.to_json(), "the emitted event")
    assert event.user_id is not None and event.user_id.startswith("[EMAIL:")
    for name in ("request_id", "run_id", "step_id", "parent_step_id", "project_id"):
        assert getattr(event, name).startswith("["), name
        assert getattr(event, name) == getattr(again, name)  # stable: one subject stays one
    assert (event.surface_id, event.app_id) == ("chat", "support-bot")  # plain ids are kept
    assert event.redaction is not None and event.redaction.counts["email"] >= 1
    assert_clean(stored_text(gated), "stored events")


def test_email_id_pseudonym_correlates_with_the_payload_pseudonym(gated: Any) -> None:
    event = logkit.emit("message", {"who": EMAIL}, **SCOPE, user_id=EMAIL)
    token = event.payload["who"]  # [EMAIL:xxxxxxxx]
    assert event.user_id is not None and event.user_id.startswith(token[:-1])


def test_ids_that_are_plain_and_generated_are_kept(gated: Any) -> None:
    with (
        logkit.bind(**SCOPE, user_id="u_1042", request_id="0b6f0c1e-req"),
        logkit.flow("answer") as flow,
    ):
        event = logkit.emit("message", {})
    assert (event.user_id, event.request_id, event.run_id) == (
        "u_1042",
        "0b6f0c1e-req",
        flow.run_id,
    )


def test_tenant_ids_holding_a_value_are_refused(gated: Any) -> None:
    with pytest.raises(logkit.ContractError, match="tenant_id") as caught:
        logkit.emit("message", {}, **{**SCOPE, "tenant_id": "t_4111-1111-1111-1111"})
    assert "4111" not in str(caught.value)


def test_request_id_from_a_client_header_is_gated(gated: Any) -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def handler(request: Any) -> JSONResponse:
        event = logkit.emit("message", {})
        return JSONResponse({"request_id": event.request_id})

    app = logkit.CorrelationMiddleware(Starlette(routes=[Route("/", handler)]), trust_headers=True)
    headers = {
        "X-Tenant-Id": "t_acme",
        "X-Env": "prod",
        "X-Project-Id": "p_support",
        "X-Surface-Id": "chat",
        "X-App-Id": "support-bot",
        "X-Request-Id": f"order {CARD}",
        "X-User-Id": EMAIL,
    }
    with TestClient(app, raise_server_exceptions=True) as client:
        response = client.get("/", headers=headers)
    assert response.status_code == 200
    assert response.json()["request_id"].startswith("[ID:")
    assert_clean(stored_text(gated), "stored events of a request")


def test_legacy_ids_are_gated(gated: Any) -> None:
    legacy = {
        "tenantId": "t_acme",
        "env": "prod",
        "surface": "chat",
        "agentId": "a1",
        "input": {},
        "output": {},
        "requestId": f"r {EMAIL}",
    }
    entry = {
        "event_id": f"evt-{CARD}",
        "event_type": "message",
        "asset_type": "doc",
        "asset_id": "d1",
        "tenant_id": "t_acme",
        "user_id": EMAIL,
        "request_id": CARD,
        "origin_ref": {},
        "surface": "event",
    }
    scope = {"project_id": "p_support", "app_id": "support-bot"}
    one = logkit.emit_event(logkit.from_legacy(legacy, **scope))
    two = logkit.emit_event(logkit.from_legacy(entry, env="prod", **scope))
    for event in (one, two):
        assert_clean(event.to_json(), "an adapted event")
    assert two.user_id is not None and two.user_id.startswith("[EMAIL:")
    assert_clean(stored_text(gated), "stored adapted events")


def test_sealed_subject_holds_no_raw_user_id(gated: Any) -> None:
    event = logkit.emit("message", {"p": EMAIL}, **SCOPE, user_id=EMAIL, seal_raw=True)
    assert_clean(json.dumps(event.payload["_sealed"]), "the sealed envelope")
    assert_clean(stored_text(gated), "stored sealed events")


def test_dsar_export_finds_a_subject_by_the_raw_id(gated: Any, tmp_path: Path) -> None:
    from logkit import dsar

    for n in range(3):
        logkit.emit("message", {"n": n}, **SCOPE, user_id=EMAIL)
    logkit.emit("message", {"n": 9}, **SCOPE, user_id="u_other")
    result = dsar.export(dsar.ExportRequest("t_acme", user_id=EMAIL), tmp_path / "out.jsonl")
    assert result.total == 3
    assert logkit.query_events("t_acme", user_id=EMAIL).events[0].payload["n"] == 0
    deleted = dsar.delete("t_acme", EMAIL)
    assert deleted.counts()["timeline_deleted"] == 3
    assert logkit.query_events("t_acme", user_id=EMAIL).events == []
    text = stored_text(gated)
    assert EMAIL not in text and "dsar_erasure" in text


def test_log_line_identifiers_are_gated() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test.privacy.ids")
    logger.propagate = False
    logkit.configure_logging(stream=stream, logger=logger)
    reset_redactor()
    try:
        with logkit.bind(**SCOPE, request_id=f"req {CARD}", run_id=EMAIL, step_id="s1"):
            logger.info("hello")
    finally:
        logger.handlers.clear()
    line = json.loads(stream.getvalue())
    assert_clean(stream.getvalue(), "a log line")
    assert line["request_id"] == redact_identifier(f"req {CARD}", tenant_id="t_acme")
    assert line["step_id"] == "s1"


# --- 4. redact first, truncate after ---------------------------------------------------------


@pytest.mark.parametrize("value", [EMAIL, CARD, "AKIAIOSFODNN7EXAMPLE"])
def test_failure_messages_are_redacted_before_they_are_cut(gated: Any, value: str) -> None:
    for offset in (len(value) // 2, len(value) - 3, 5):
        message = "x" * (499 - offset) + " " + value + " tail"
        with (
            capture_events() as events,
            pytest.raises(ValueError),
            logkit.bind(**SCOPE),
            logkit.flow("cut"),
        ):
            raise ValueError(message)
        (failed,) = [e for e in events if e.event_type == "flow_failed"]
        text = failed.payload["error.message"]
        assert isinstance(text, str)
        for prefix in (value[: len(value) // 2], value[:9]):
            assert prefix not in text[480:], (offset, text[480:])


# --- 5. the formatter never raises, never prints raw -----------------------------------------


class Direct:
    """Hands records to logkit's handler alone: pytest attaches its own capture handler to
    every logger, and that one re-raises the very formatting errors under test."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.logger = logging.getLogger("test.privacy.formatter")
        self.handler = logkit.configure_logging(stream=self.stream, logger=self.logger)
        self.logger.removeHandler(self.handler)

    def warning(self, msg: Any, *args: Any, extra: dict[str, Any] | None = None) -> None:
        record = self.logger.makeRecord(
            self.logger.name, logging.WARNING, __file__, 1, msg, args, None, extra=extra
        )
        self.handler.handle(record)


@pytest.fixture
def json_log(capsys: pytest.CaptureFixture[str]) -> Any:
    reset_redactor()
    direct = Direct()
    yield direct, direct.stream
    captured = capsys.readouterr()
    assert_clean(captured.out + captured.err, "stdout/stderr")


def test_circular_extra_is_a_line_not_an_error(json_log: Any) -> None:
    logger, stream = json_log
    loop: dict[str, Any] = {"who": EMAIL}
    loop["self"] = loop
    logger.warning("circular", extra={"ctx": loop})
    line = json.loads(stream.getvalue())
    assert line["ctx"]["self"] == "[circular]" and line["ctx"]["who"].startswith("[EMAIL:")


def test_a_missing_format_argument_keeps_the_text_redacted(json_log: Any) -> None:
    logger, stream = json_log
    logger.warning("user %s paid with %s", EMAIL)  # noqa: PLE1206 - the point of the test
    line = json.loads(stream.getvalue())
    assert "[EMAIL:" in line["message"] and "unformatted" in line["message"]
    assert_clean(stream.getvalue(), "the line")


def test_a_thousand_levels_of_extra_do_not_raise(json_log: Any) -> None:
    logger, stream = json_log
    deep: Any = EMAIL
    for _ in range(990):
        deep = {"d": deep}
    logger.warning("deep", extra={"deep": deep})
    line = json.loads(stream.getvalue())
    assert line["message"] == "deep"
    assert_clean(stream.getvalue(), "the line")


def test_a_formatter_failure_gives_a_masked_fallback_line(json_log: Any) -> None:
    logger, stream = json_log

    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no")

    logger.warning(Hostile())
    logger.warning("card %s", CARD, extra={"x": Hostile()})
    first, second = (json.loads(x) for x in stream.getvalue().splitlines())
    assert "unprintable" in first["message"]
    assert_clean(stream.getvalue(), "fallback lines")
    assert "[CARD" in second["message"]


def test_a_write_failure_never_prints_the_record(capsys: pytest.CaptureFixture[str]) -> None:
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    logger = logging.getLogger("test.privacy.broken")
    logger.propagate = False
    logkit.configure_logging(stream=Broken(), logger=logger)
    try:
        logger.warning("mail %s", EMAIL)
    finally:
        logger.handlers.clear()
    err = capsys.readouterr().err
    assert_clean(err, "stderr")
    assert "could not be written" in err and "OSError" in err


UVICORN_APP = """
    import logging, sys, uvicorn, logkit
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def x(request):
        logging.getLogger("app").warning("query was %s", request.url.query)
        return PlainTextResponse("ok")

    logkit.configure_logging()
    uvicorn.run(Starlette(routes=[Route("/x", x)]), host="127.0.0.1", port=int(sys.argv[1]))
"""


def served_lines(tmp_path: Path, argv: list[str], path: str, marker: str) -> tuple[list[str], str]:
    """Start a server process (argv gets the port), wait until it says it listens, GET
    ``path``, wait for the line naming ``marker``; returns stdout's lines and stderr."""
    import httpx

    from tests.servers import free_port

    port = free_port()
    server = subprocess.Popen(
        [*argv, str(port)],
        cwd=tmp_path,
        env=fresh_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert server.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(x) for x in server.stdout], daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        while "Uvicorn running" not in (seen[-1] if seen else ""):
            seen.append(lines.get(timeout=60))  # the server says when it listens
        assert httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10).status_code == 200
        while not any(marker in x for x in seen):
            seen.append(lines.get(timeout=30))
    finally:
        server.terminate()
        _, err = server.communicate(timeout=20)
        reader.join(10)
    while not lines.empty():
        seen.append(lines.get())
    return seen, err


def test_uvicorn_access_log_is_json_and_redacted(tmp_path: Path) -> None:
    query = "?email=alice.smith%40example.com&card=4111111111111111"
    argv = [sys.executable, "-c", textwrap.dedent(UVICORN_APP)]
    seen, err = served_lines(tmp_path, argv, f"/x{query}", "GET /x")
    out = "".join(seen)
    assert_clean(out + err, "uvicorn's output")
    assert "alice.smith%40example.com" not in out + err
    access = [json.loads(x) for x in seen if "GET /x" in x]
    assert access[0][json_labels()]["logger"] == "uvicorn.access"
    assert "[EMAIL:" in access[0]["message"] and "[CARD:" in access[0]["message"]
    app_line = next(json.loads(x) for x in seen if "query was" in x)
    assert "[EMAIL:" in app_line["message"]


def test_logkit_serve_logs_json_through_the_gate(tmp_path: Path) -> None:
    query = f"?email={EMAIL}&card={CARD.replace(' ', '')}"
    argv = [sys.executable, "-m", "logkit", "serve", "--port"]
    seen, err = served_lines(tmp_path, argv, f"/healthz{query}", "GET /healthz")
    assert_clean("".join(seen) + err, "logkit serve's output")
    for line in seen:
        json.loads(line)  # every line is JSON
    access = next(json.loads(x) for x in seen if "GET /healthz" in x)
    assert "[EMAIL:" in access["message"] and "[CARD:" in access["message"]


def json_labels() -> str:
    from logkit.devlog import LABELS_KEY

    return LABELS_KEY


# --- 6. errors name fields, never values -----------------------------------------------------


def test_contract_errors_do_not_quote_payload_keys() -> None:
    with pytest.raises(logkit.ContractError) as caught:
        logkit.emit("message", {EMAIL: object()}, **SCOPE)
    assert_clean(str(caught.value), "the error")
    assert_clean(json.dumps(caught.value.problems), "the error's problems")
    assert "payload" in str(caught.value)


def test_unknown_event_types_are_not_quoted() -> None:
    with pytest.raises(logkit.ContractError) as caught:
        logkit.emit(f"type {CARD}", {}, **SCOPE)
    assert "event_type" in str(caught.value)
    assert_clean(str(caught.value), "the error")


@pytest.mark.parametrize(
    ("legacy", "field"),
    [
        (
            {
                "event_id": "e1",
                "event_type": "message",
                "asset_type": "doc",
                "asset_id": "d",
                "tenant_id": "t_acme",
                "origin_ref": {},
                "created_at": CARD,
            },
            "created_at",
        ),
        (
            {
                "tenantId": "t_acme",
                "env": "prod",
                "surface": "chat",
                "agentId": "a",
                "input": {},
                "output": {},
                "metadata": {"blob": b"\xff" + EMAIL.encode()},
            },
            "metadata",
        ),
        (
            {
                "tenantId": "t_acme",
                "env": "prod",
                "surface": "chat",
                "agentId": "a",
                "input": {"blob": b"\xfe\xff"},
                "output": {},
            },
            "input",
        ),
    ],
)
def test_legacy_adapters_raise_contract_errors_naming_the_field(
    legacy: dict[str, Any], field: str
) -> None:
    with pytest.raises(logkit.ContractError) as caught:
        logkit.from_legacy(legacy, env="prod", project_id="p", app_id="a")
    assert field in str(caught.value)
    assert_clean(str(caught.value), "the error")


def test_logkit_errors_mask_what_they_would_quote() -> None:
    error = logkit.SinkError(f"write of {EMAIL} failed at 10.0.0.7 with {KEY}")
    assert str(error) == "write of [EMAIL] failed at 10.0.0.7 with [ANTHROPIC_KEY]"


def test_pseudonymised_ids_are_idempotent_for_readers() -> None:
    reset_redactor()
    logkit.redaction.set_redactor(_keyed())
    once = redact_identifier(EMAIL, tenant_id="t_acme")
    assert redact_identifier(once, tenant_id="t_acme") == once
    assert redact_identifier(EMAIL, tenant_id="t_other") != once


def _keyed() -> Any:
    from logkit.redaction.engine import RegexRedactor

    return RegexRedactor(TEST_REDACTION_KEY.encode())
