"""logkit ships ``py.typed``: ``mypy --strict`` on a user's app sees logkit's own types, and no
``Any`` leaks from the public API (PEP 561).

The package is laid out as the wheel ships it (the packages and package-data pyproject.toml
lists), on a path mypy treats as installed packages, so a missing marker shows as
``import-untyped`` and every logkit type as ``Any``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

EXAMPLE_APP = '''
"""A small app on logkit's public API, as a user writes it."""

from __future__ import annotations

import asyncio
import datetime as dt

import logkit
from logkit import Event, EventType, Severity
from logkit.testing import capture_events

MEMORY = {"timeline": "memory://", "audit": "memory://", "cost": "memory://"}
SCOPE = {"tenant_id": "t_acme", "env": "dev", "project_id": "p", "surface_id": "chat",
         "app_id": "bot"}


@logkit.tool_call("crm.lookup")
def lookup(order: str) -> dict[str, str]:
    return {"order": order}


@logkit.step("plan", kind="planning")
async def plan(note: str) -> list[str]:
    return [note]


def handle(note: str) -> str:
    runtime = logkit.configure(env="dev", sinks=MEMORY)
    with logkit.bind(**SCOPE, run_id="run_1"), logkit.flow("answer") as run:
        with logkit.step("retrieve", kind="retrieval") as step:
            found = lookup("1042")
        steps = asyncio.run(plan(note))
        logkit.decision("answer", options=["answer", "escalate"], reason="confident")
        with logkit.model_call("openai", "gpt-4o-mini", input={"prompt": note}) as call:
            call.record_usage(input_tokens=10, output_tokens=2)
        usage = logkit.record_usage("openai", "gpt-4o-mini", input_tokens=1, output_tokens=1)
        event: Event = logkit.emit("message", {"note": note}, severity=Severity.NOTICE)
        record = logkit.audit("approve", {"ticket": note})
    ok: bool = logkit.flush(5)
    since = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    page = logkit.query_events("t_acme", run_id=run.run_id, since=since)
    events: list[Event] = logkit.run_events("t_acme", run.run_id or "")
    every = list(logkit.iter_events("t_acme", types=["message"]))
    with capture_events() as captured:
        logkit.emit(EventType.MESSAGE, {"n": 1}, **SCOPE)
    clean, report = logkit.redact({"email": "a@example.com"})
    outbound = logkit.redact_for_call("call me at a@example.com")
    reveal_type(runtime)
    reveal_type(run)
    reveal_type(step)
    reveal_type(found)
    reveal_type(steps)
    reveal_type(call)
    reveal_type(usage)
    reveal_type(record)
    reveal_type(page.events)
    reveal_type(every)
    reveal_type(captured)
    reveal_type(captured.types())
    reveal_type(event.payload)
    reveal_type(event.ts)
    reveal_type(clean)
    reveal_type(report)
    reveal_type(outbound)
    return f"{event.event_id} {ok} {len(events)} {logkit.__version__}"
'''

TYPO = "import logkit\n\nlogkit.emitt('message')\n"


def _install_like_the_wheel(site: Path) -> None:
    """Copy the packages and package-data pyproject.toml declares, and nothing else."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir = setuptools.get("package-dir", {})
    data = setuptools.get("package-data", {})
    for package in setuptools["packages"]:
        source = ROOT / package_dir.get(package, package.replace(".", "/"))
        target = site / package.replace(".", "/")
        target.mkdir(parents=True, exist_ok=True)
        for module in source.glob("*.py"):
            shutil.copy2(module, target / module.name)
        for pattern in data.get(package, []):
            for extra in source.glob(pattern):
                shutil.copy2(extra, target / extra.name)


def _mypy(app: Path, site: Path, *files: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            os.devnull,
            *files,
        ],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    site, app = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("app")
    _install_like_the_wheel(site)
    (app / "example_app.py").write_text(EXAMPLE_APP)
    (app / "typo.py").write_text(TYPO)
    return site, app


def test_py_typed_is_package_data() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in data["package-data"]["logkit"] and (ROOT / "logkit" / "py.typed").exists()


def test_mypy_strict_on_an_app_sees_logkit_types_and_no_any(installed: tuple[Path, Path]) -> None:
    site, app = installed
    assert (site / "logkit" / "py.typed").exists()
    done = _mypy(app, site, "example_app.py")
    assert done.returncode == 0, done.stdout + done.stderr
    revealed = re.findall(r'Revealed type is "(.*)"', done.stdout)
    assert len(revealed) == EXAMPLE_APP.count("reveal_type(")
    leaks = [t for t in revealed if re.search(r"\bAny\b", t)]
    assert not leaks, leaks
    assert "logkit.envelope.Event" in revealed and "logkit.testing.CapturedEvents" in revealed


def test_a_misspelt_name_is_a_type_error_not_any(installed: tuple[Path, Path]) -> None:
    site, app = installed
    done = _mypy(app, site, "typo.py")
    assert done.returncode == 1 and 'Module has no attribute "emitt"' in done.stdout, done.stdout
