"""A property over the whole API surface: no raw value leaves, whatever, wherever, whenever.

Hypothesis draws a value of every kind the gate knows (tests/redaction/corpus.py: emails,
phones, cards, IBANs, SSNs, IPs and every secret kind), a position for it (payload values and
keys, numbers and numeric strings, every envelope identifier, legacy objects, exception text,
log messages, arguments and ``extra``, flow/step/tool/model names, pulses, audit payloads,
outbound payloads) and whether logkit was configured yet. Then the bytes of every SQLite file,
the log output and every value handed back to the caller are searched for the raw value.
"""

from __future__ import annotations

import io
import json
import logging
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logkit
from logkit.redaction import reset_redactor
from tests.conftest import SCOPE, memory_sinks
from tests.redaction import corpus

# --- values ------------------------------------------------------------------------------------


def needles(kind: str, value: str) -> list[str]:
    """What must not appear anywhere: the value, and its telling parts."""
    found = [value]
    if kind == "url_credentials":
        found = [value.split(":", 1)[1]]  # the user name alone may be a word like "admin"
    elif kind == "email":
        local = value.split("@", 1)[0]
        found += [local] if len(local) >= 6 else []
    elif kind == "private_key":
        found = [line for line in value.replace("\\n", "\n").splitlines() if "-----" not in line]
    elif kind in ("card", "iban"):
        found.append("".join(c for c in value if c.isalnum()))
    return [n for n in found if len(n) >= 6]


def digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


# Kinds whose values are numbers in real payloads, and the key that says what they are.
NUMERIC_KEYS = {"card": "card_number", "phone": "phone", "us_ssn": "ssn"}


# --- positions ---------------------------------------------------------------------------------

Act = Callable[[str, str], list[Any]]  # (kind, planted text) -> what the caller got back


def refused(error: logkit.ContractError) -> list[Any]:
    """A refusal (e.g. an id longer than the contract allows) is an outcome too: its message
    and problems are what leaves, so they are searched like any returned value."""
    return [str(error), error.problems, list(error.missing)]


def _emit(payload: dict[str, Any], **fields: Any) -> list[Any]:
    try:
        return [logkit.emit("message", payload, **{**SCOPE, **fields})]
    except logkit.ContractError as error:
        return refused(error)


def as_number(kind: str, value: str) -> list[Any]:
    number = int(digits(value))
    key = NUMERIC_KEYS[kind]
    out = _emit({key: number, "floats": {key: float(number) if number < 2**53 else 0}})
    out += _emit({"n": number} if kind == "card" else {})
    return out


def as_numeric_string(kind: str, value: str) -> list[Any]:
    return _emit({NUMERIC_KEYS[kind]: digits(value), "list": {NUMERIC_KEYS[kind]: [digits(value)]}})


def legacy_dataset(kind: str, value: str) -> list[Any]:
    legacy = {
        "tenantId": "t_acme",
        "env": "prod",
        "surface": "chat",
        "agentId": value,
        "input": {"q": value},
        "output": {value: 1},
        "metadata": {"note": f"from {value}"},
        "requestId": value,
        "seo_title": value,
    }
    event = logkit.from_legacy(legacy, project_id="p_support", app_id="support-bot")
    return [logkit.emit_event(event)]


def legacy_entry(kind: str, value: str) -> list[Any]:
    entry = {
        "event_id": value,
        "event_type": "message",
        "asset_type": "doc",
        "asset_id": value,
        "tenant_id": "t_acme",
        "user_id": value,
        "request_id": value,
        "origin_ref": {"by": value},
        "surface": "event",
        "metadata": {"v": value},
    }
    event = logkit.from_legacy(entry, env="prod", project_id="p_support", app_id="support-bot")
    return [logkit.emit_event(event)]


def legacy_usage_and_model_call(kind: str, value: str) -> list[Any]:
    usage = {
        "id": "u1",
        "tenant_id": "t_acme",
        "env": "prod",
        "surface": "chat",
        "tool_type": "llm",
        "tool_id": value,
        "provider": "openai",
        "model_or_plan_id": "gpt-4o",
        "tokens_input": 1,
        "tokens_output": 1,
        "cost": "0.01",
        "metadata": {"who": value},
    }
    call = {
        "call_id": "c1",
        "tenant_id": "t_acme",
        "env": "prod",
        "model_id": "m",
        "purpose": value,
        "prompt": {"text": f"summarise {value}"},
        "output_dimensions": 3,
    }
    scope = {"project_id": "p_support", "app_id": "support-bot", "surface_id": "chat"}
    return [logkit.emit_event(logkit.from_legacy(x, **scope)) for x in (usage, call)]


def legacy_stream(kind: str, value: str) -> list[Any]:
    event = {
        "type": "message",
        "data": {"text": value},
        "ids": {"request_id": value, "run_id": value, "correlation_id": value},
        "routing": {
            "tenant_id": "t_acme",
            "env": "prod",
            "project_id": "p_support",
            "app_id": "support-bot",
            "surface_id": "chat",
            "session_id": value,
        },
        "meta": {"persist": "always"},
    }
    return [logkit.emit_event(logkit.from_legacy(event))]


def flow_failure(kind: str, value: str) -> list[Any]:
    with logkit.bind(**SCOPE):
        try:
            with logkit.flow(value, note=value), logkit.step(value, kind=value):
                logkit.decision(value, options=[value], reason=value)
                raise RuntimeError(f"failed on {value} " + "x" * 490 + value)
        except RuntimeError:
            pass
    return []


def calls(kind: str, value: str) -> list[Any]:
    with logkit.bind(**SCOPE):
        with logkit.tool_call(value, input={value: value}) as tool:
            tool.set_output([value, {"v": value}])
        with logkit.model_call("openai", value, input=value) as call:
            call.set_output(value)
            call.set_attribute("gen_ai.response.id", value)
            call.record_usage(input_tokens=3, output_tokens=1)
        return [logkit.redact_for_call({"messages": [{"content": value}]})]


def pulse_and_audit(kind: str, value: str) -> list[Any]:
    with logkit.bind(**SCOPE, run_id="run_pulse"):
        first = logkit.state_pulse("state", {"who": value, "list": [value]})
        second = logkit.state_pulse("state", {"who": value, "list": [value, value]})
        audited = logkit.audit(value, {"who": value, value: [value]})
    return [first, second, audited]


def identifiers(kind: str, value: str) -> list[Any]:
    out: list[Any] = []
    for name in ("user_id", "request_id", "run_id", "step_id", "parent_step_id"):
        out += _emit({}, **{name: value})
    for name in ("project_id", "surface_id", "app_id"):
        out += _emit({}, **{name: value})
    with logkit.bind(**SCOPE, user_id=value, request_id=value):
        out.append(logkit.audit("viewed", {}))
    return out


def payload(kind: str, value: str) -> list[Any]:
    return _emit({"text": f"a {value} b", value: {"nested": [value, {"k": value}]}})


ACTS: dict[str, Act] = {
    "payload": payload,
    "identifiers": identifiers,
    "legacy_dataset": legacy_dataset,
    "legacy_entry": legacy_entry,
    "legacy_usage_and_model_call": legacy_usage_and_model_call,
    "legacy_stream": legacy_stream,
    "flow_failure": flow_failure,
    "calls": calls,
    "pulse_and_audit": pulse_and_audit,
}


def act(where: str, kind: str, value: str) -> list[Any]:
    try:
        return ACTS[where](kind, value)
    except logkit.ContractError as error:
        return refused(error)


def log_everywhere(handler: logging.Handler, value: str) -> None:
    """Log records carrying the value in the message, the arguments, ``extra`` and an
    exception, inside a bound scope whose identifiers hold it too."""
    logger = logging.getLogger("test.gate.everywhere")

    def log(level: int, msg: str, args: tuple[Any, ...], exc_info: Any = None, **kw: Any) -> None:
        record = logger.makeRecord(logger.name, level, __file__, 1, msg, args, exc_info, **kw)
        handler.handle(record)

    with logkit.bind(**SCOPE, request_id=value, run_id=value, user_id=value):
        log(logging.INFO, f"direct {value}", ())
        log(logging.WARNING, "arg %s", (value,), extra={"who": value, "deep": {"v": [value]}})
        try:
            raise ValueError(f"bad {value}")
        except ValueError as exc:
            log(logging.ERROR, "failed", (), exc_info=(ValueError, exc, exc.__traceback__))


# --- the property ------------------------------------------------------------------------------


class Leaks:
    """Everything a value could leak into, searched after each example."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stream = io.StringIO()
        self.handler = logkit.configure_logging(
            stream=self.stream, logger=logging.getLogger("test.gate.handler")
        )
        logging.getLogger("test.gate.handler").removeHandler(self.handler)

    def check(self, needles: list[str], returned: list[Any], where: str) -> None:
        assert logkit.flush(30)
        texts = {"log output": self.stream.getvalue()}
        for i, value in enumerate(returned):
            texts[f"returned value {i}"] = (
                value.to_json() if isinstance(value, logkit.Event) else json.dumps(value)
            )
        files = {p: p.read_bytes() for p in self.root.rglob("*") if p.is_file() and ".db" in p.name}
        assert files, "expected SQLite files to search"
        for needle in needles:
            for name, text in texts.items():
                assert needle not in text, f"raw {needle!r} ({where}) in {name}"
            for path, data in files.items():
                raw = needle.encode()
                assert raw not in data, f"raw {needle!r} ({where}) in {path.name}"
        self.stream.seek(0)
        self.stream.truncate()


def planted(kind: str, seed: int) -> tuple[str, str, str]:
    """(kind, the raw value, the snippet planted): the value with the words around it that
    make it what it is ("Bearer <token>", "scheme://user:password@host", "SSN: <9 digits>")."""
    before, value, after = corpus.plant(kind, random.Random(seed))
    return kind, value, before + value + after


values = st.builds(planted, st.sampled_from(corpus.KINDS), st.integers(0, 2**32))

EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def configured_sqlite(gated: Any, tmp_path: Path) -> Iterator[Leaks]:
    yield Leaks(tmp_path)


@EXAMPLES
@given(drawn=values, where=st.sampled_from(sorted(ACTS)))
def test_after_configure_no_raw_value_leaves(
    configured_sqlite: Leaks, drawn: tuple[str, str, str], where: str
) -> None:
    kind, value, text = drawn
    returned = act(where, kind, text)
    log_everywhere(configured_sqlite.handler, text)
    configured_sqlite.check(needles(kind, value), returned, where)


@EXAMPLES
@given(drawn=values.filter(lambda d: d[0] in NUMERIC_KEYS), numeric=st.booleans())
def test_numbers_and_numeric_strings_are_inspected(
    configured_sqlite: Leaks, drawn: tuple[str, str, str], numeric: bool
) -> None:
    kind, value, _ = drawn
    act = as_number if numeric else as_numeric_string
    returned = act(kind, value)
    with logkit.bind(**SCOPE):
        record = logging.makeLogRecord(
            {"msg": "n", "levelno": logging.INFO, NUMERIC_KEYS[kind]: int(digits(value))}
        )
        configured_sqlite.handler.handle(record)
    configured_sqlite.check([digits(value)], returned, act.__name__)


@pytest.fixture
def unconfigured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Leaks]:
    """A process in which nobody called configure(): the first emit configures from the
    environment (dev, SQLite under the working directory)."""
    monkeypatch.chdir(tmp_path)
    logkit.shutdown()
    yield Leaks(tmp_path)
    logkit.configure(**memory_sinks(tmp_path / "restored"))  # type: ignore[arg-type]


@settings(EXAMPLES, max_examples=40)
@given(drawn=values, where=st.sampled_from(sorted(ACTS)))
def test_before_configure_no_raw_value_leaves(
    unconfigured: Leaks, drawn: tuple[str, str, str], where: str
) -> None:
    kind, value, text = drawn
    logkit.shutdown()
    reset_redactor()  # the gate a fresh process starts with
    log_everywhere(unconfigured.handler, text)  # before anything configured logkit
    returned = act(where, kind, text)
    unconfigured.check(needles(kind, value), returned, f"{where}, before configure")
