"""Test helpers for users' own suites: ``logkit.testing`` and the pytest plugin (``pytest11``
entry point, ``logkit_events`` fixture) capture events in memory and write nothing to the
working directory. Each case runs in a fresh interpreter in an empty directory, as a user's
suite would (this suite's own conftest configures logkit already)."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import logkit
from logkit.testing import capture_events, memory_runtime

SCOPE = 'tenant_id="t_acme", env="dev", project_id="p", surface_id="chat", app_id="bot"'


def _clean_env() -> dict[str, str]:
    """No LOGKIT_* or pytest variables; the logkit under test first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGKIT_", "PYTEST_"))}
    env["PYTHONPATH"] = str(Path(logkit.__file__).parents[1])
    return env


def _run(directory: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python *args`` in ``directory`` with a clean environment."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=directory,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _python(directory: Path, code: str) -> subprocess.CompletedProcess[str]:
    return _run(directory, "-c", textwrap.dedent(code))


def _written(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def test_capture_events_without_configuration_writes_nothing(tmp_path: Path) -> None:
    done = _python(
        tmp_path,
        f"""
        import logkit
        from logkit.testing import capture_events
        with capture_events() as events, logkit.bind({SCOPE}, run_id="run_1"):
            with logkit.flow("answer"):
                logkit.emit("message", {{"email": "maria@example.org"}})
                logkit.audit("approve", {{"n": 1}})
                logkit.record_usage("openai", "gpt-4o-mini", input_tokens=1, output_tokens=1)
        assert logkit.flush(10)
        assert events.types() == [
            "flow_started", "message", "audit_action", "usage_recorded", "flow_ended"
        ], events.types()
        assert "maria@example.org" not in events[1].to_json()
        assert logkit.run_events("t_acme", "run_1")  # stored, in memory
        print("ok")
        """,
    )
    assert done.stdout.strip() == "ok", done.stderr
    assert _written(tmp_path) == []  # no .logkit/: no database, redaction.key or spool.db


def test_memory_sinks_keep_nothing_on_disk(tmp_path: Path) -> None:
    done = _python(
        tmp_path,
        f"""
        import logkit
        from logkit.testing import capture_events
        logkit.configure(sinks={{"timeline": "memory://", "audit": "memory://", "cost": "memory://"}})
        with capture_events() as events, logkit.bind({SCOPE}):
            logkit.emit("message", {{"phone": "+1 415 555 0100"}})
            logkit.audit("approve", {{"n": 1}})
        assert logkit.flush(10) and len(events) == 2
        print("ok")
        """,
    )
    assert done.stdout.strip() == "ok", done.stderr
    assert _written(tmp_path) == []


def test_the_plugin_is_registered_as_pytest11() -> None:
    entry_points = importlib.metadata.entry_points(group="pytest11")
    assert any(e.value == "logkit.pytest_plugin" for e in entry_points)


def test_logkit_events_fixture_in_a_users_suite(tmp_path: Path) -> None:
    (tmp_path / "test_app.py").write_text(
        textwrap.dedent(
            f"""
            import logkit

            def answer(question: str) -> str:
                with logkit.flow("answer"), logkit.step("retrieve", kind="retrieval"):
                    logkit.emit("message", {{"question": question}})
                return "42"

            def test_answer_tells_its_story(logkit_events):
                with logkit.bind({SCOPE}, run_id="run_1"):
                    assert answer("ask maria@example.org") == "42"
                assert logkit_events.types() == [
                    "flow_started", "step_started", "message", "step_ended", "flow_ended"
                ]
                (message,) = logkit_events.of_type("message")
                assert "maria@example.org" not in message.to_json()

            def test_each_test_starts_empty(logkit_events):
                assert list(logkit_events) == []
            """
        )
    )
    done = _run(
        tmp_path, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py", timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    assert _written(tmp_path) == ["test_app.py"]


def test_memory_runtime_brings_the_previous_configuration_back() -> None:
    before = logkit.runtime.current()
    with memory_runtime() as inside:
        assert inside is not before and logkit.runtime.current() is inside
        with (
            capture_events() as events,
            logkit.bind(tenant_id="t_acme", env="dev", project_id="p", surface_id="s", app_id="a"),
        ):
            logkit.emit("message", {"n": 1})
        assert events.types() == ["message"]
    after = logkit.runtime.current()
    assert after is not inside and after.settings == before.settings
