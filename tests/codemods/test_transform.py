"""The transform on single sources: name resolution, tiers, and properties over random names."""

from __future__ import annotations

import keyword
from pathlib import Path

import libcst as cst
import libcst.matchers as m
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from logkit.codemods.runner import migrate_source
from logkit.codemods.shapes import select

HEADER = """from engines.dataset.events.logger import log_event
from engines.dataset.events.schemas import DatasetEvent
"""


def migrate(source: str, only: tuple[str, ...] | None = None) -> tuple[str, list[str]]:
    new, sites = migrate_source(source.encode(), Path("engines/x/site.py"), only)
    return new.decode(), [f"{s.line} {s.action}: {s.reason}" for s in sites]


def test_a_lookalike_class_from_another_module_is_never_touched() -> None:
    source = """from myapp.models import DatasetEvent
from engines.dataset.events.logger import log_event


def f(t):
    log_event(DatasetEvent(tenantId=t, env="dev", surface="s", agentId="a", input={}, output={}))
"""
    new, sites = migrate(source)
    assert new == source
    assert sites == ["6 left: myapp.models.DatasetEvent is not the legacy class"]


def test_a_local_name_shadowing_the_import_is_not_the_legacy_class() -> None:
    source = (
        HEADER
        + """

def f(DatasetEvent, t):
    log_event(DatasetEvent(tenantId=t, env="dev", surface="s", agentId="a", input={}, output={}))
"""
    )
    new, _sites = migrate(source)
    assert new == source


def test_direct_rewrite_maps_camel_case_and_keeps_values_verbatim() -> None:
    source = (
        HEADER
        + """

def f(ctx, agent):
    log_event(DatasetEvent(
        tenantId=ctx.tenant_id,
        env=ctx.env,
        surface="chat",
        agentId=agent.id,
        input={"k": 1},
        output={},
        actorType="robot",
    ))
"""
    )
    new, sites = migrate(source)
    assert sites == ["6 converted: logkit.emit('dataset_event', ...)"]
    call = _emit_call(new)
    assert _kwargs(call) == {
        "tenant_id": "ctx.tenant_id",
        "env": "ctx.env",
        "surface_id": '"chat"',
    }
    payload = cst.Module([]).code_for_node(call.args[1].value)
    # Not one of human/agent/system: kept in the payload as the adapter would.
    assert '"legacy_actor_type": "robot"' in payload and '"agent_id": agent.id' in payload
    assert "DatasetEvent" not in new.split("def f")[0]  # the import went with its last use


@pytest.mark.parametrize(
    ("argument", "reason"),
    [
        ("input=payload", "input= is not provably JSON"),
        ("input={}, requestId=ctx.rid", "requestId= is checked at run time"),
        ("input={}, traceId=tid", "traceId= is checked at run time"),
        ('input={}, analytics_event_type="audit"', "an audit DatasetEvent"),
        ("input={}, analytics_event_type=kind", "analytics_event_type is decided at run time"),
        ("input={}, colour='red'", "unknown field colour="),
        ("input={}, **more", "**kwargs"),
    ],
)
def test_what_the_adapter_decides_at_run_time_keeps_the_object(argument: str, reason: str) -> None:
    source = (
        HEADER
        + f"""

def f(ctx, payload, tid, kind, more):
    log_event(DatasetEvent(tenantId="t_a", env="dev", surface="s", agentId="a", output={{}},
                           {argument}))
"""
    )
    new, sites = migrate(source)
    assert len(sites) == 1 and sites[0].startswith("6 adapted: " + reason), sites
    assert "logkit.emit_event(logkit.from_legacy(DatasetEvent(" in new
    assert "from engines.dataset.events.schemas import DatasetEvent" in new


def test_prompt_text_goes_into_the_payload_that_the_gate_redacts() -> None:
    source = """from engines.nexus.logging import ModelCallLog, PromptSnapshot


class E:
    def run(self, doc):
        self._log_model_call(ModelCallLog(tenant_id=self.t, env="prod", model_id="m",
            purpose="embed_upsert", prompt=PromptSnapshot(text=doc.text), output_dimensions=3))
"""
    new, sites = migrate(source)
    assert sites == ["6 converted: logkit.emit('model_call_ended', ...)"]
    assert '"prompt": {"text": doc.text}' in new
    assert "ModelCallLog" not in new and "PromptSnapshot" not in new
    assert "print(" not in new and "logging" not in new.replace("engines.nexus.logging", "")


def test_a_logger_whose_result_is_checked_is_left_alone() -> None:
    source = (
        HEADER
        + """

def f():
    evt = DatasetEvent(tenantId="t_a", env="dev", surface="s", agentId="a", input={}, output={})
    if log_event(evt)["status"] != "accepted":
        raise RuntimeError
"""
    )
    new, sites = migrate(source)
    assert new == source
    assert sites == ["6 left: evt is not logged here (the logger's result is used)"]


def test_only_limits_the_shapes() -> None:
    source = (
        HEADER
        + """from engines.nexus.logging import ModelCallLog


def f():
    log_event(DatasetEvent(tenantId="t_a", env="dev", surface="s", agentId="a", input={},
                           output={}))
"""
    )
    new, sites = migrate(source, only=("model-call-log",))
    assert new == source and sites == []
    with pytest.raises(KeyError):
        select(("no-such-codemod",))


def test_unparsable_source_raises_the_parser_error() -> None:
    with pytest.raises(cst.ParserSyntaxError):
        migrate_source(b"def f(:\n", Path("x.py"))


# --- properties -------------------------------------------------------------------------------

RESERVED = {"logkit", "log_event", "engines", "f", "True", "False", "None"}
identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
    lambda name: not keyword.iskeyword(name) and name not in RESERVED and not name.startswith("__")
)
FIELDS = {"tenantId": "tenant_id", "env": "env", "surface": "surface_id", "agentId": "agent_id"}


@settings(max_examples=20, deadline=None)
@given(
    names=st.lists(identifiers, min_size=6, max_size=6, unique=True),
    order=st.permutations([*FIELDS, "input", "output"]),
    key=st.text(alphabet="abcxyz_", min_size=1, max_size=6),
)
def test_any_alias_variable_and_keyword_order_migrates_correctly(
    names: list[str], order: list[str], key: str
) -> None:
    alias, var, *params = names
    values = dict(zip(FIELDS, params, strict=True))
    values["input"] = f'{{"{key}": 1}}'
    values["output"] = "{}"
    source = f"""from engines.dataset.events.logger import log_event
from engines.dataset.events.schemas import DatasetEvent as {alias}


def f({", ".join(params)}):
    {var} = {alias}({", ".join(f"{k}={values[k]}" for k in order)})
    log_event({var})
"""
    new, sites = migrate(source)
    assert sites == ["6 converted: logkit.emit('dataset_event', ...)"]
    call = _emit_call(new)
    envelope = {v: values[k] for k, v in FIELDS.items() if v != "agent_id"}
    assert _kwargs(call) == envelope
    payload = cst.Module([]).code_for_node(call.args[1].value)
    assert f'"agent_id": {values["agentId"]}' in payload and f'"{key}": 1' in payload
    assert "engines.dataset.events.schemas" not in new  # the import went with its last use
    assert migrate(new)[0] == new  # idempotent


@settings(max_examples=20, deadline=None)
@given(
    var=identifiers,
    used_after=st.sampled_from(["return {v}", "out.append({v})", "print({v}.metadata)", ""]),
    value=st.sampled_from(["payload", "{'k': payload}", "make()", "{'k': [1, 2]}", "[]"]),
)
def test_any_site_either_keeps_the_object_or_drops_it_and_always_parses(
    var: str, used_after: str, value: str
) -> None:
    source = (
        HEADER
        + f"""

def f(payload, out, make):
    {var} = DatasetEvent(tenantId="t_a", env="dev", surface="s", agentId="a", input={value},
                         output={{}})
    log_event({var})
    {used_after.format(v=var) or "pass"}
"""
    )
    new, sites = migrate(source)
    cst.parse_module(new)
    assert migrate(new)[0] == new
    (site,) = sites
    if "DatasetEvent(" in new.split("def f", 1)[1]:
        # The object survives: every later use of it still has it.
        assert site.split(":")[0].endswith("adapted")
        assert f"logkit.emit_event(logkit.from_legacy({var}))" in new
    else:
        assert site.split(":")[0].endswith("converted") and not used_after


def _emit_call(source: str) -> cst.Call:
    calls = m.findall(
        cst.parse_module(source),
        m.Call(func=m.Attribute(value=m.Name("logkit"), attr=m.Name("emit"))),
    )
    assert len(calls) == 1
    call = calls[0]
    assert isinstance(call, cst.Call)
    return call


def _kwargs(call: cst.Call) -> dict[str, str]:
    module = cst.Module([])
    return {a.keyword.value: module.code_for_node(a.value) for a in call.args if a.keyword}


@pytest.mark.parametrize(
    ("binding", "migrated"),
    [
        ("", True),
        ("import logkit\n", True),
        ("import logkit.testing\n", True),
        ("from mylib import logkit\n", False),
        ("import other as logkit\n", False),
        ("logkit = None\n", False),
    ],
)
def test_a_module_that_uses_the_name_logkit_otherwise_is_left_alone(
    binding: str, migrated: bool
) -> None:
    source = (
        HEADER
        + binding
        + """

def f(t):
    log_event(DatasetEvent(tenantId=t, env="dev", surface="s", agentId="a", input={}, output={}))
"""
    )
    new, sites = migrate(source)
    assert ("logkit.emit(" in new) is migrated
    if not migrated:
        assert new == source
        assert sites[0].endswith("left: the name logkit is bound to something else here")


def test_async_loggers_and_annotated_assignments_are_reported_not_rewritten() -> None:
    source = (
        HEADER
        + """

async def f(t):
    await log_event(DatasetEvent(tenantId=t, env="dev", surface="s", agentId="a", input={},
                                 output={}))
    evt: DatasetEvent = DatasetEvent(tenantId=t, env="dev", surface="s", agentId="a", input={},
                                     output={})
    log_event(evt)
"""
    )
    new, sites = migrate(source)
    assert new == source
    assert sites == [
        "6 left: log_event() is awaited (an async logger: review by hand)",
        "8 left: not handed to a logger here (an annotated assignment, which the codemod does "
        "not follow)",
    ]
