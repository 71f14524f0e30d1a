"""Every value type: numbers, values a dict key gives context to, identifiers, deep nesting;
and the engine's key handling (a lazy master key, the public per-tenant key)."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logkit.errors import ConfigError, RedactionError
from logkit.redaction import fields
from logkit.redaction.engine import MAX_DEPTH, RegexRedactor
from logkit.redaction.pseudonym import pseudonym, tenant_key
from tests.redaction import corpus

KEY = b"test-master-key"
R = RegexRedactor(KEY)
TOKEN = re.compile(r"\[([A-Z_]+):[0-9a-f]{8}\]")


def redact(value: object) -> tuple[object, dict[str, int]]:
    out, report = R.redact(value, tenant_id="t_a")
    return out, dict(report.counts)


def kind_of(token: object) -> str:
    assert isinstance(token, str), token
    m = TOKEN.fullmatch(token)
    assert m, token
    return m.group(1).lower()


# --- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number", [4111111111111111, 4111111111111111.0, -4111111111111111, 378282246310005]
)
def test_a_card_number_as_a_number_is_replaced(number: float) -> None:
    out, counts = redact({"amount_ref": number, "n": [number]})
    assert isinstance(out, dict)
    assert kind_of(out["amount_ref"]) == "card" and kind_of(out["n"][0]) == "card"
    assert counts == {"card": 2}
    # The same pseudonym as the digits written as a string: the two correlate.
    digits = str(abs(int(number)))
    assert out["amount_ref"] == pseudonym("card", digits, tenant_key(KEY, "t_a"))


@pytest.mark.parametrize(
    "value",
    [0, 7, 4111, 2**31, 1714567890123, 4111111111111112, 12.5, 1e300, float("nan"), True, None],
)
def test_ordinary_numbers_stay(value: object) -> None:
    out, counts = redact({"count": value, "items": [value]})
    assert counts == {}
    assert out == {"count": value, "items": [value]} or value != value  # nan != nan


def test_numbers_too_long_for_str_stay() -> None:
    huge = 10**5000
    out, counts = redact({"x": huge})
    assert counts == {} and out == {"x": huge}


# --- what a key says about its value --------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    [
        ("phone", 4155550134, "phone"),
        ("phone", "4155550134", "phone"),
        ("customer_phone", 5550134, "phone"),
        ("customerPhone", "+4915112345678", "phone"),
        ("mobile_no", 447700900123, "phone"),
        ("WhatsApp", "4915212345678", "phone"),
        ("fax", "0301234567", "phone"),
        ("msisdn", 491511234567, "phone"),
        ("ssn", 123456789, "us_ssn"),
        ("ssn", "123456789", "us_ssn"),
        ("social_security_number", 123456789, "us_ssn"),
        ("socialSecurityNumber", "078051120", "us_ssn"),
        ("card", 4111111111111111, "card"),
        ("card_number", "4111111111111111", "card"),
        ("ccNumber", 5555555555554444, "card"),
        ("pan", "400000000002", "card"),  # 12 digits with a valid Luhn: a PAN under its key
        ("credit_card", 4012888888881881, "card"),
    ],
)
def test_the_key_gives_a_bare_number_its_kind(key: str, value: object, kind: str) -> None:
    out, counts = redact({key: value})
    assert isinstance(out, dict)
    assert kind_of(out[key]) == kind and counts == {kind: 1}


def test_context_reaches_list_items_and_not_sibling_keys() -> None:
    payload = {"phones": [4155550134, "4155550135", ["4155550136"]], "order": 4155550137}
    out, counts = redact(payload)
    assert isinstance(out, dict)
    assert [kind_of(out["phones"][0]), kind_of(out["phones"][1])] == ["phone", "phone"]
    assert kind_of(out["phones"][2][0]) == "phone"
    assert out["order"] == 4155550137 and counts == {"phone": 3}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("phone_verified_at", 1714567890),  # the context word must end the key
        ("phone_count", 12345678),
        ("telemetry", 4155550134),  # "tel" only as a whole word
        ("company", 4111111111111),
        ("pan_hash", 400000000002),
        ("phone", 123456),  # fewer than 7 digits is no phone
        ("ssn", 987654321),  # area 9xx is no SSN
        ("card", 4111111111111112),  # Luhn fails
        ("card_last4", 1111),
        ("phone", True),
    ],
)
def test_context_keeps_its_precision(key: str, value: object) -> None:
    out, counts = redact({key: value})
    assert counts == {} and out == {key: value}


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    [
        ("request_id", "req-4111111111111111", "card"),
        ("orderId", "order_4111111111111111", "card"),
        ("id", "user:4111.1111.1111.1111", "card"),
        ("trace_id", "t:alice@example.com", "email"),
        ("X-Request-Id", "abc.123-45-6789", "us_ssn"),
    ],
)
def test_identifier_values_are_scanned_with_their_separators_as_spaces(
    key: str, value: str, kind: str
) -> None:
    out, counts = redact({key: value})
    assert isinstance(out, dict)
    assert counts == {kind: 1}, (out, counts)
    prefix = re.split(r"[-_.:]", value)[0]
    assert out[key].startswith(prefix) and TOKEN.search(out[key])


def test_identifier_shapes_that_are_not_pii_stay() -> None:
    ids = {
        "run_id": "run_2024-01-15_0123_456789",
        "event_id": "01890a5d-ac96-774b-bcce-b302099a8057",
        "span_id": "00f067aa0ba902b7",
        "user_id": "u_12345",
    }
    assert redact(ids) == (ids, {})


def test_key_classification() -> None:
    assert fields.classify("customerPhone") == fields.PHONE
    assert fields.classify("card_id") == fields.IDENT
    assert fields.classify("social_security_number") == fields.SSN
    assert fields.classify("phone_verified_at") == 0
    assert fields.classify("excel_cell") == fields.PHONE


def test_dict_keys_that_are_numbers_are_inspected() -> None:
    out, counts = redact({4111111111111111: "x"})
    assert isinstance(out, dict)
    (key,) = out
    assert kind_of(key) == "card" and counts == {"card": 1}
    other = {(4111111111111111, "a@b.com"): 1, None: 2, True: 3}
    assert redact(other) == (other, {})


# --- nesting ----------------------------------------------------------------------------------


def nested(depth: int) -> object:
    value: object = "a@b.com"
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


def test_nesting_up_to_the_limit_is_redacted() -> None:
    out, counts = redact(nested(MAX_DEPTH))
    assert counts == {"email": 1} and "a@b.com" not in str(out)


def test_nesting_past_the_limit_is_refused_with_a_redaction_error() -> None:
    with pytest.raises(RedactionError, match=f"deeper than {MAX_DEPTH} levels"):
        R.redact(nested(MAX_DEPTH + 1))
    with pytest.raises(RedactionError):
        R.redact(nested(5000))  # far past Python's own recursion limit: still ours
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(RedactionError):
        R.redact({"a": loop})


# --- keys ------------------------------------------------------------------------------------


def test_a_lazy_master_key_is_read_once_at_the_first_pseudonym() -> None:
    calls: list[int] = []

    def source() -> bytes:
        calls.append(1)
        return KEY

    lazy = RegexRedactor(source)
    assert lazy.scan("mail a@b.com") == [(5, 12, "email")] and calls == []
    assert lazy.redact({"n": 1, "s": "nothing here"})[1].counts == {} and calls == []
    out, _ = lazy.redact("mail a@b.com", tenant_id="t_a")
    assert out == R.redact("mail a@b.com", tenant_id="t_a")[0] and calls == [1]
    lazy.redact("mail c@d.com", tenant_id="t_b")
    assert calls == [1]


@pytest.mark.parametrize("error", [ConfigError("no key"), RedactionError("no key")])
def test_a_failing_key_source_raises_to_the_caller_and_is_tried_again(error: Exception) -> None:
    attempts: list[int] = []

    def source() -> bytes:
        attempts.append(1)
        if len(attempts) == 1:
            raise error
        return KEY

    lazy = RegexRedactor(source)
    with pytest.raises(type(error)):
        lazy.redact("mail a@b.com")
    assert lazy.redact("mail a@b.com")[1].counts == {"email": 1} and len(attempts) == 2


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(RedactionError):
        RegexRedactor(b"")
    with pytest.raises(RedactionError):
        RegexRedactor(lambda: b"").redact("mail a@b.com")


def test_tenant_key_is_public_and_matches_the_derivation() -> None:
    assert R.tenant_key("t_a") == tenant_key(KEY, "t_a")
    assert R.tenant_key(None) == tenant_key(KEY, "_global")
    assert R.tenant_key("t_a") != R.tenant_key("t_b")


# --- property: any value of any kind, in any position of a payload ----------------------------


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(corpus.KINDS), seed=st.integers(0, 2**32 - 1), depth=st.integers(0, 6))
def test_no_planted_value_survives_anywhere_in_a_payload(kind: str, seed: int, depth: int) -> None:
    import random

    before, value, after = corpus.plant(kind, random.Random(seed))
    snippet = f"{before}{value}{after}"  # the value with the context some kinds need
    payload: object = {snippet: [f"x {snippet} y", (snippet,), {"k": snippet}]}
    for _ in range(depth):
        payload = {"wrap": payload, "n": 1}
    out, _ = R.redact(payload)
    assert value not in repr(out)


def test_the_dev_key_is_created_once_and_never_read_half_written(tmp_path: Path) -> None:
    """Processes (here threads) starting together in dev all get the one key the winner wrote,
    never an empty file another is still writing."""
    from logkit.config import RedactionConfig
    from logkit.envelope import Env
    from logkit.redaction.policy import master_key

    config = RedactionConfig(dev_key_file=tmp_path / "keys" / "dev.key")
    start = threading.Barrier(8)
    keys: list[bytes] = []

    def first_use() -> None:
        start.wait(timeout=10)
        keys.append(master_key(config, Env.DEV))

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(keys) == 8 and len(set(keys)) == 1
    assert len(keys[0]) == 64 and keys[0] == config.dev_key_file.read_bytes().strip()
    assert config.dev_key_file.stat().st_mode & 0o777 == 0o600
