"""The transform on small repositories: what is routed, rewritten or left, and why.

Each test writes a tiny tree (its pyproject.toml, the legacy modules it needs, the module under
test) into a temporary directory and migrates one file of it.
"""

from __future__ import annotations

import keyword
import textwrap
from pathlib import Path

import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from logkit.codemods.project import discover
from logkit.codemods.runner import migrate_source
from logkit.codemods.shapes import select

ENGINE = """
from engines.nexus.backends import get_backend


def run(event):
    event.train_ok = False
    try:
        get_backend().write_event(event)
    except Exception as exc:
        return {"status": "error", "error": str(exc)}
    return {"status": "accepted"}
"""
EVENT_LOG = """
from engines.logging.events.engine import run


def default_event_logger(entry):
    result = run(entry)
    if result.get("status") != "accepted":
        raise RuntimeError(result.get("error"))
"""
SITE = 'DatasetEvent(tenantId=t, env="dev", surface="s", agentId="a", input={}, output={})'
IMPORTS = "from engines.dataset.events.schemas import DatasetEvent\n"


ENGINE_PY = "engines/logging/events/engine.py"  # where the legacy logger run() lives

# Modules the sites import from: empty, but there, so the tree decides they are first party.
STUBS = (
    "engines/dataset/events/schemas.py",
    "engines/nexus/logging.py",
    "engines/nexus/backends.py",
    "engines/export.py",
)


def tree(tmp_path: Path, files: dict[str, str], config: str = "") -> Path:
    """A repository root with ``files`` (dedented) and a codemod table."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "pyproject.toml").write_text("[tool.logkit.codemod]\n" + config)
    for stub in STUBS:
        (tmp_path / stub).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / stub).touch()
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return tmp_path


def migrate(
    root: Path, name: str = "engines/site.py", *, unsafe: bool = False, in_run: bool = True
) -> tuple[str, list[str]]:
    """Migrate ``name`` of the tree; the report as ``line action [via]: reason`` lines."""
    path = root / name
    files = list(root.rglob("*.py")) if in_run else [path]
    project = discover([root], in_run=files)
    new, sites = migrate_source(path.read_bytes(), path, project=project, unsafe=unsafe)
    lines = [
        f"{s.line} {s.action}" + (f" via {s.via}" if s.via else "") + f": {s.reason}" for s in sites
    ]
    return new.decode(), lines


def with_engine(tmp_path: Path, site: str, config: str = "", **more: str) -> Path:
    files = {ENGINE_PY: ENGINE, "engines/site.py": site, **more}
    return tree(tmp_path, files, config)


def migrate_engine(tmp_path: Path, engine: str, **more: str) -> tuple[str, list[str]]:
    """Migrate the logger module ``engine`` itself, in a tree with ``more`` files."""
    return migrate(tree(tmp_path, {ENGINE_PY: engine, **more}), ENGINE_PY)


# --- routed: nothing changes at the site ----------------------------------------------------------


def test_a_site_handed_to_run_under_any_alias_is_routed_and_unchanged(tmp_path: Path) -> None:
    site = f"""
    from engines.dataset.events.schemas import DatasetEvent
    from engines.logging.events.engine import run as log_event


    def f(t, created):
        evt = {SITE}
        result = log_event(evt)
        created.append(evt)
        return result["status"]
    """
    root = with_engine(tmp_path, site)
    new, sites = migrate(root)
    assert new == (root / "engines/site.py").read_text()
    assert sites == [
        "6 routed via engines.logging.events.engine.run: run() persists through logkit; "
        "the call site is unchanged"
    ]


def test_forwarding_loggers_are_followed_to_the_one_that_persists(tmp_path: Path) -> None:
    site = """
    from engines.logging import event_log


    def f(t):
        event_log.default_event_logger(event_log.EventLogEntry(event_type="x", tenant_id=t))
    """
    root = with_engine(tmp_path, site, **{"engines/logging/event_log.py": EVENT_LOG})
    _new, sites = migrate(root)
    assert sites == [
        "5 routed via engines.logging.event_log.default_event_logger: default_event_logger() "
        "-> run() persists through logkit; the call site is unchanged"
    ]


@pytest.mark.parametrize(
    ("engine", "in_run", "reason"),
    [
        (None, True, "engines.logging.events.engine is not in this tree"),
        (ENGINE, False, "run() is not migrated yet (apply engines/logging/events/engine.py too)"),
        ("def run(event):\n    return {}\n", True, "neither stores the object nor forwards it"),
    ],
)
def test_a_logger_that_does_not_reach_logkit_leaves_its_sites(
    tmp_path: Path, engine: str | None, in_run: bool, reason: str
) -> None:
    site = f"""
    from engines.dataset.events.schemas import DatasetEvent
    from engines.logging.events.engine import run


    def f(t):
        run({SITE})
    """
    files = {"engines/site.py": site}
    if engine is not None:
        files[ENGINE_PY] = engine
    _new, sites = migrate(tree(tmp_path, files), in_run=in_run)
    assert len(sites) == 1 and sites[0].startswith("6 left via engines.logging.events.engine.run")
    assert reason in sites[0]


def test_an_already_migrated_logger_routes_its_sites(tmp_path: Path) -> None:
    engine = (
        "import logkit\n\n\ndef run(event):\n    logkit.emit_event(logkit.from_legacy(event))\n"
    )
    site = (
        f"{IMPORTS}from engines.logging.events.engine import run\n\n\ndef f(t):\n    run({SITE})\n"
    )
    root = tree(tmp_path, {ENGINE_PY: engine, "engines/site.py": site})
    _new, sites = migrate(root, in_run=False)
    assert sites[0].startswith("6 routed via engines.logging.events.engine.run")


def test_a_logger_named_in_the_repositorys_table_is_followed(tmp_path: Path) -> None:
    site = f"""
    from engines.dataset.events.schemas import DatasetEvent
    from engines.logging.events.engine import run


    def log_turn(event):
        return run(event)


    def f(t):
        log_turn({SITE})
    """
    root = with_engine(tmp_path, site, config='loggers = ["engines.site.log_turn"]\n')
    _new, sites = migrate(root)
    assert sites == [
        "10 routed via engines.site.log_turn: log_turn() -> run() persists through logkit; "
        "the call site is unchanged"
    ]


def test_a_builder_is_followed_to_its_caller_in_the_module(tmp_path: Path) -> None:
    site = f"""
    from engines.dataset.events.schemas import DatasetEvent
    from engines.logging.events.engine import run as log_dataset_event


    def build(t):
        return {SITE}


    def handler(t, event_logger=log_dataset_event):
        event = build(t)
        return event_logger(event)


    def builder_nobody_calls(t):
        return {SITE}
    """
    _new, sites = migrate(with_engine(tmp_path, site))
    assert sites == [
        "6 routed via engines.logging.events.engine.run: returned by build() to its caller; "
        "handed to handler()'s event_logger, which defaults to it; run() persists through "
        "logkit; the call site is unchanged",
        "15 left: returned to the caller (a builder): its callers decide",
    ]


# --- hooks: still called, and their default reaches logkit ----------------------------------------

HOOKED = """
from typing import Callable, Optional

from engines.dataset.events.schemas import DatasetEvent
from engines.nexus.logging import ModelCallLog, ModelCallLogger, PromptSnapshot


def _noop(event):
    pass


class Service:
    def __init__(
        self,
        model_call_logger: Optional[ModelCallLogger] = None,
        event_logger: Callable[[DatasetEvent], None] = _noop,
        required_hook: ModelCallLogger = None,
    ) -> None:
        self._model_call_logger = model_call_logger
        self._event_logger = event_logger

    def _log_model_call(self, call):
        try:
            self._model_call_logger(call)
        except Exception:
            pass

    def work(self, t, text):
        self._log_model_call(
            ModelCallLog(tenant_id=t, env="dev", model_id="m", purpose="p",
                         prompt=PromptSnapshot(text=text), output_dimensions=1)
        )
        self._event_logger(DatasetEvent(tenantId=t, env="dev", surface="s", agentId="a",
                                        input={}, output={}))
"""


def test_a_hook_is_still_called_and_its_default_now_reaches_logkit(tmp_path: Path) -> None:
    new, sites = migrate(with_engine(tmp_path, HOOKED))
    assert "self._log_model_call(\n" in new and "self._event_logger(DatasetEvent(" in new
    # Laid out as ruff format would (line-length 88 here).
    assert (
        "        self._model_call_logger = (\n"
        "            model_call_logger if model_call_logger is not None else legacy_hook()\n"
        "        )\n" in new
    )
    assert (
        "        self._event_logger = (\n"
        "            event_logger\n"
        "            if event_logger is not _noop\n"
        '            else legacy_hook({"DatasetEvent": "engines.logging.events.engine.run"})\n'
        "        )\n" in new
    )
    assert "\nfrom logkit.codemods.runtime import legacy_hook\n\nfrom engines.dataset" in new
    assert [s.split(":")[0] for s in sites] == [
        "18 migrated via engines.site.Service._model_call_logger",
        "19 migrated via engines.site.Service._event_logger",
        "29 routed via engines.site.Service._log_model_call",
        "32 routed via engines.site.Service._event_logger",
    ]
    assert "default now hands the object to run()" in sites[3]
    again, _sites = migrate(with_engine(tmp_path / "again", new))
    assert again == new


def test_a_dataset_event_hook_whose_logger_does_not_reach_logkit_keeps_its_default(
    tmp_path: Path,
) -> None:
    root = tree(tmp_path, {"engines/site.py": HOOKED})  # no run() in this tree
    new, sites = migrate(root)
    assert "event_logger if event_logger" not in new
    assert "model_call_logger if model_call_logger is not None" in new
    (event_site,) = [s for s in sites if s.startswith("32 ")]
    assert event_site.startswith("32 left via engines.site.Service._event_logger: DatasetEvent")


def test_a_required_hook_and_a_plain_parameter_reach_what_the_caller_passes(
    tmp_path: Path,
) -> None:
    site = f"""
    from engines.dataset.events.schemas import DatasetEvent


    class Service:
        def __init__(self, event_logger):
            self._event_logger = event_logger

        def work(self, t):
            self._event_logger({SITE})


    def handler(t, sink):
        sink({SITE})
    """
    new, sites = migrate(with_engine(tmp_path, site))
    assert new == (tmp_path / "engines/site.py").read_text()
    assert sites == [
        "9 left via engines.site.Service._event_logger: the hook event_logger is required: it "
        "reaches whatever its caller injects",
        "13 left: handed to the parameter sink: it reaches what its caller passes",
    ]


# --- sinks: the only call sites rewritten ---------------------------------------------------------

SINK_CONFIG = 'sinks = ["engines.export.publish"]\n'


def sink_site(body: str) -> str:
    return f"{IMPORTS}from engines.export import publish\n\n\ndef f(t, out):\n{body}"


@pytest.mark.parametrize("unsafe", [False, True])
def test_a_pure_sink_call_is_adapted_or_with_unsafe_converted(tmp_path: Path, unsafe: bool) -> None:
    site = sink_site(f"    publish({SITE})\n")
    new, sites = migrate(tree(tmp_path, {"engines/site.py": site}, SINK_CONFIG), unsafe=unsafe)
    assert "publish" not in new  # the import went with its last use
    if unsafe:
        assert "DatasetEvent" not in new and 'logkit.emit(\n        "dataset_event",' in new
        assert sites[0].startswith("6 converted via engines.export.publish: publish() is a pure")
    else:
        assert f"logkit.emit_event(logkit.from_legacy({SITE}))" in new
        assert sites[0].startswith("6 adapted via engines.export.publish")
    start = "import logkit\n\n\ndef f" if unsafe else "import logkit\n\nfrom engines.dataset"
    assert new.startswith(start)


@pytest.mark.parametrize(
    ("body", "tests", "reason"),
    [
        (f"    out.append(publish({SITE}))\n", "", "the result of publish() is used"),
        (f"    publish({SITE}, urgent=True)\n", "", "not as its only positional argument"),
        (
            f"    publish({SITE})\n",
            'def test_x(monkeypatch):\n    monkeypatch.setattr(site, "publish", print)\n',
            "tests replace publish in engines.site: the call stays",
        ),
        (
            f"    publish({SITE})\n",
            "from unittest import mock\n\n\n"
            'def test_x():\n    mock.patch("engines.site.publish")\n',
            "tests replace publish in engines.site",
        ),
    ],
)
def test_a_sink_call_that_is_not_provably_the_same_is_left(
    tmp_path: Path, body: str, tests: str, reason: str
) -> None:
    files = {"engines/site.py": sink_site(body)}
    if tests:
        files["tests/test_site.py"] = "from engines import site\n\n\n" + tests
    root = tree(tmp_path, files, SINK_CONFIG)
    new, sites = migrate(root)
    assert new == (root / "engines/site.py").read_text()
    assert len(sites) == 1 and reason in sites[0], sites


def test_storage_methods_and_readers_are_not_logging(tmp_path: Path) -> None:
    site = f"""
    from engines.dataset.events.schemas import DatasetEvent


    class Store:
        def write_event(self, event):
            self.rows.append(event.model_dump())

        def list_events(self):
            return [DatasetEvent(**row) for row in self.rows]


    def f(t, backend):
        backend.write_event({SITE})
    """
    root = tree(tmp_path, {"engines/site.py": site})
    path = root / "engines/site.py"
    new, sites = migrate_source(path.read_bytes(), path, project=discover([root]))
    assert new == path.read_bytes()
    assert [(s.line, s.action, s.logs) for s in sites] == [(9, "left", False), (13, "left", False)]
    assert "a storage class (a reader)" in sites[0].reason
    assert "stored with .write_event(), a storage method" in sites[1].reason


# --- the logger implementation --------------------------------------------------------------------


def test_run_persists_through_logkit_and_keeps_the_rest(tmp_path: Path) -> None:
    engine = """
    import json
    import logging

    from engines.nexus.backends import get_backend

    logger = logging.getLogger(__name__)


    def run(event):
        event.train_ok = False
        try:
            get_backend().write_event(event)
        except Exception as exc:
            return {"status": "error", "error": str(exc)}
        print(json.dumps({"t": event.tenantId}), flush=True)
        print("to a file", file=None)
        return {"status": "accepted"}
    """
    new, sites = migrate_engine(tmp_path, engine)
    # The backend's import went (nothing uses it, no test replaces it): its group with it.
    expected = textwrap.dedent(engine).lstrip()
    expected = expected.replace(
        "from engines.nexus.backends import get_backend\n", "import logkit\n"
    )
    expected = expected.replace(
        "get_backend().write_event(event)", "logkit.emit_event(logkit.from_legacy(event))"
    )
    expected = expected.replace(
        'print(json.dumps({"t": event.tenantId}), flush=True)',
        'logger.info(json.dumps({"t": event.tenantId}))',
    )
    assert new == expected
    assert "logkit.emit_event(logkit.from_legacy(event))" in new
    assert 'logger.info(json.dumps({"t": event.tenantId}))' in new
    assert 'print("to a file", file=None)' in new  # not the one-line JSON print
    assert "get_backend" not in new and "event.train_ok = False" in new
    assert sites == [
        "9 migrated via engines.logging.events.engine.run: its storage write now goes through "
        "logkit; its stdout line is a log line (logger.info)"
    ]
    again, _ = migrate_engine(tmp_path / "again", new)
    assert again == new


def test_a_narrow_handler_also_catches_logkit_and_a_patched_accessor_stays(
    tmp_path: Path,
) -> None:
    engine = """
    from engines.nexus.backends import BackendError, get_backend


    def run(event):
        try:
            get_backend().write_event(event)
        except BackendError as exc:
            return {"status": "error", "error": str(exc)}
        print("stored")
        return {"status": "accepted"}
    """
    test = "from engines.logging.events import engine\n\n\ndef test_x(monkeypatch):\n"
    test += '    monkeypatch.setattr(engine, "get_backend", None)\n'
    new, _sites = migrate_engine(tmp_path, engine, **{"tests/test_engine.py": test})
    assert "except (BackendError, logkit.LogkitError) as exc:" in new
    assert "from engines.nexus.backends import BackendError, get_backend" in new
    assert 'logging.getLogger(__name__).info("stored")' in new
    assert new.startswith("import logging\n\nimport logkit\n\nfrom engines.nexus.backends")


def test_a_write_whose_result_is_used_is_kept_and_reported(tmp_path: Path) -> None:
    engine = """
    def run(event, backend):
        stored = backend.write_event(event)
        return {"status": "accepted", "id": stored}
    """
    new, sites = migrate_engine(tmp_path, engine)
    assert new == textwrap.dedent(engine).lstrip()
    assert sites == [
        "1 left via engines.logging.events.engine.run: the result of .write_event() is used: "
        "that write is kept"
    ]


# --- names ----------------------------------------------------------------------------------------


def test_a_lookalike_class_from_another_module_is_never_touched(tmp_path: Path) -> None:
    site = f"""
    from myapp.models import DatasetEvent
    from engines.export import publish


    def f(t):
        publish({SITE})
    """
    root = tree(tmp_path, {"engines/site.py": site}, SINK_CONFIG)
    new, sites = migrate(root)
    assert new == (root / "engines/site.py").read_text()
    assert sites == ["6 left: myapp.models.DatasetEvent is not the legacy class"]


def test_a_local_name_shadowing_the_import_is_not_the_legacy_class(tmp_path: Path) -> None:
    site = sink_site(f"    DatasetEvent = dict\n    publish({SITE})\n")
    root = tree(tmp_path, {"engines/site.py": site}, SINK_CONFIG)
    new, _sites = migrate(root)
    assert new == (root / "engines/site.py").read_text()


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
    tmp_path: Path, binding: str, migrated: bool
) -> None:
    site = sink_site(f"    publish({SITE})\n").replace("\n\n\ndef f", f"\n{binding}\n\ndef f")
    root = tree(tmp_path, {"engines/site.py": site}, SINK_CONFIG)
    new, sites = migrate(root)
    assert ("logkit.emit_event(" in new) is migrated
    if not migrated:
        assert new == (root / "engines/site.py").read_text()
        assert sites[0].endswith("the name logkit is bound to something else here")


def test_positional_arguments_and_test_files_are_left(tmp_path: Path) -> None:
    site = sink_site('    publish(DatasetEvent("t_x", "dev"))\n')
    root = tree(tmp_path, {"engines/site.py": site, "tests/test_site.py": site}, SINK_CONFIG)
    new, sites = migrate(root)
    assert new == site and sites[0].startswith("6 left: positional arguments")
    again, test_sites = migrate(root, "tests/test_site.py")
    assert again == site and test_sites == []


def test_only_limits_the_shapes(tmp_path: Path) -> None:
    root = tree(tmp_path, {"engines/site.py": sink_site(f"    publish({SITE})\n")}, SINK_CONFIG)
    path = root / "engines/site.py"
    new, sites = migrate_source(
        path.read_bytes(), path, ("model-call-log",), project=discover([root])
    )
    assert new == path.read_bytes() and sites == []
    with pytest.raises(KeyError):
        select(("no-such-codemod",))


def test_unparsable_source_raises_the_parser_error(tmp_path: Path) -> None:
    with pytest.raises(cst.ParserSyntaxError):
        migrate_source(b"def f(:\n", tmp_path / "x.py")


# --- properties -----------------------------------------------------------------------------------

RESERVED = {"logkit", "publish", "engines", "f", "True", "False", "None", "legacy_hook"}
identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
    lambda name: not keyword.iskeyword(name) and name not in RESERVED and not name.startswith("__")
)
ORDER = ["tenantId", "env", "surface", "agentId", "input", "output"]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    names=st.lists(identifiers, min_size=6, max_size=6, unique=True),
    order=st.permutations(ORDER),
    key=st.text(alphabet="abcxyz_", min_size=1, max_size=6),
    used_after=st.sampled_from(["return {v}", "out.append({v})", "print({v}.metadata)", "pass"]),
)
def test_any_alias_variable_and_use_migrates_and_migrates_once(
    tmp_path_factory: pytest.TempPathFactory,
    names: list[str],
    order: list[str],
    key: str,
    used_after: str,
) -> None:
    alias, var, *params = names
    values = dict(zip(ORDER[:4], params, strict=True))
    values["input"] = f'{{"{key}": 1}}'
    values["output"] = "{}"
    site = (
        f"from engines.dataset.events.schemas import DatasetEvent as {alias}\n"
        "from engines.export import publish\n\n\n"
        f"def f({', '.join(params)}, out):\n"
        f"    {var} = {alias}({', '.join(f'{k}={values[k]}' for k in order)})\n"
        f"    publish({var})\n"
        f"    {used_after.format(v=var)}\n"
    )
    for unsafe in (False, True):
        root = tree(tmp_path_factory.mktemp("p"), {"engines/site.py": site}, SINK_CONFIG)
        new, sites = migrate(root, unsafe=unsafe)
        cst.parse_module(new)
        (line,) = sites
        if unsafe and used_after == "pass":
            assert line.startswith("6 converted") and f"{alias}(" not in new.split("def f")[1]
            assert f'"{key}": 1' in new and f"tenant_id={values['tenantId']}" in new
        else:
            assert line.startswith("6 adapted")
            assert f"logkit.emit_event(logkit.from_legacy({var}))" in new
        (root / "engines/site.py").write_text(new)
        assert migrate(root, unsafe=unsafe)[0] == new  # a second run changes nothing


def test_a_hook_defaulting_with_or_keeps_its_form(tmp_path: Path) -> None:
    site = """
    from engines.nexus.logging import ModelCallLog, ModelCallLogger, PromptSnapshot


    def _noop(call):
        pass


    class Service:
        def __init__(self, model_call_logger: ModelCallLogger | None = None) -> None:
            self._log = model_call_logger or _noop

        def work(self, t):
            self._log(ModelCallLog(tenant_id=t, env="dev", model_id="m", purpose="p",
                                   prompt=PromptSnapshot(text="x"), output_dimensions=1))
    """
    new, sites = migrate(with_engine(tmp_path, site))
    assert "        self._log = model_call_logger or legacy_hook()\n" in new
    assert [line.split(":")[0] for line in sites] == [
        "10 migrated via engines.site.Service._log",
        "13 routed via engines.site.Service._log",
    ]
    again, _sites = migrate(with_engine(tmp_path / "again", new))
    assert again == new


def test_a_logger_persisting_through_a_named_helper_migrates_the_helper(tmp_path: Path) -> None:
    engine = """
    from engines.nexus.backends import get_backend


    def _store(event):
        get_backend().write_event(event)


    def run(event):
        event.train_ok = False
        _store(event)
        return {"status": "accepted"}
    """
    site = (
        f"{IMPORTS}from engines.logging.events.engine import run\n\n\ndef f(t):\n    run({SITE})\n"
    )
    files = {ENGINE_PY: engine, "engines/site.py": site}
    config = 'loggers = ["engines.logging.events.engine._store"]\n'
    root = tree(tmp_path, files, config)
    _new, sites = migrate(root)
    assert sites[0].startswith(
        "6 routed via engines.logging.events.engine.run: run() -> _store() persists"
    )
    new, reported = migrate(root, ENGINE_PY)
    assert "def _store(event):\n    logkit.emit_event(logkit.from_legacy(event))" in new
    assert reported[0].startswith("4 migrated via engines.logging.events.engine._store")
