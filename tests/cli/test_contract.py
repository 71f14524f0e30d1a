"""The CLI contract (docs/cli.md), checked over every registered command by walking the Typer
app: examples and exit codes in every --help, --json everywhere, JSON errors with a kind, the
exit codes of the written table, and docs/cli.md naming every command and example."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import logkit
from logkit.cli.common import KINDS, CommandContract, compose_help
from logkit.cli.main import app

ROOT = Path(__file__).parents[2]
runner = CliRunner()


def commands() -> list[tuple[str, Any]]:
    """Every leaf command as (its path without `logkit`, its click command)."""

    def walk(command: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            yield " ".join(path), command
            return
        for name, sub in subcommands.items():
            yield from walk(sub, [*path, name])

    return sorted(walk(typer.main.get_command(app), []))


COMMANDS = commands()
NAMES = [name for name, _ in COMMANDS]
# Values for required options and arguments, so a command gets as far as its configuration.
REQUIRED = {
    "tenant": ["--tenant", "t_acme"],
    "run": ["--run", "run_x"],
    "user": ["--user", "u_1"],
    "to": ["--to", "bigquery://p/d"],
}


def contract(command: Any) -> CommandContract:
    found = getattr(command.callback, "__logkit_cli__", None)
    assert isinstance(found, CommandContract), "decorate the command with @cli_command"
    return found


pytestmark = pytest.mark.usefixtures("in_tmp")


def test_the_walk_finds_every_command_group() -> None:
    assert {"demo", "check-sinks", "serve", "version", "audit verify", "usage prices"} <= set(NAMES)
    assert {"timeline list", "dsar export", "retention show", "codemod list", "spool show"} <= set(
        NAMES
    )


@pytest.mark.parametrize("name", NAMES)
def test_help_has_examples_exit_codes_and_no_hard_line_breaks(name: str) -> None:
    command = dict(COMMANDS)[name]
    promised = contract(command)
    assert promised.examples and 0 in promised.exits
    result = runner.invoke(app, [*name.split(), "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output and "Exit codes: 0 " in result.output
    for example in promised.examples:
        assert example in result.output
    for paragraph in (command.help or "").split("\n\n"):
        if not paragraph.startswith("Examples:"):
            assert "\n" not in paragraph.strip(), paragraph  # reflowed: no ragged breaks


@pytest.mark.parametrize("name", NAMES)
def test_every_example_parses(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each example names options the command has and gives the required ones."""
    command = dict(COMMANDS)[name]
    for example in contract(command).examples:
        words = shlex.split(example, comments=True)[1:]
        assert " ".join(words[: len(name.split())]) == name
        command.make_context(name, words[len(name.split()) :])


@pytest.mark.parametrize("name", NAMES)
def test_json_option_on_every_command(name: str) -> None:
    params = {p.name: p for p in dict(COMMANDS)[name].params}
    assert "json_output" in params and "--json" in params["json_output"].opts


def _required_args(command: Any, tmp: Path) -> list[str]:
    args: list[str] = []
    for param in command.params:
        if not param.required:
            continue
        if param.param_type_name == "argument":
            args.append(str(tmp))
        elif param.name == "out":
            args += ["--out", str(tmp / "out.jsonl")]
        else:
            args += REQUIRED[param.name]
    if "dry_run" in {p.name for p in command.params}:
        args.append("--dry-run")  # dsar delete --json needs it; nothing is changed anyway
    return args


@pytest.mark.parametrize("name", [n for n, c in COMMANDS if "config" in {p.name for p in c.params}])
def test_a_missing_config_is_a_json_config_error_exit_2(name: str, tmp_path: Path) -> None:
    command = dict(COMMANDS)[name]
    args = [*name.split(), *_required_args(command, tmp_path)]
    result = runner.invoke(app, [*args, "--config", str(tmp_path / "nope.toml"), "--json"])
    assert result.exit_code == KINDS["config"] == 2, result.output
    error = json.loads(result.stdout)["error"]  # stdout is the JSON error and nothing else
    assert error["kind"] == "config" and "nope.toml" in error["message"]
    human = runner.invoke(app, [*args, "--config", str(tmp_path / "nope.toml")])
    assert human.exit_code == 2 and human.stdout == ""
    assert human.stderr.startswith("logkit: ") and human.stderr.count("\n") == 1


@pytest.mark.parametrize("name", NAMES)
def test_usage_errors_before_the_command_are_json_too(name: str) -> None:
    result = runner.invoke(app, [*name.split(), "--no-such-option", "--json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "usage" and "--no-such-option" in error["message"]


@pytest.mark.parametrize("name", [n for n, c in COMMANDS if "tenant" in {p.name for p in c.params}])
@pytest.mark.parametrize("tenant", ["acme", "", "not a tenant", "T_ACME"])
def test_a_bad_tenant_is_a_usage_error_everywhere(name: str, tenant: str, tmp_path: Path) -> None:
    command = dict(COMMANDS)[name]
    args = [a if a != "t_acme" else tenant for a in _required_args(command, tmp_path)]
    if "--tenant" not in args:
        args += ["--tenant", tenant]
    result = runner.invoke(app, [*name.split(), *args, "--json"])
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["error"]["kind"] == "usage"
    assert "is not a tenant id" in json.loads(result.stdout)["error"]["message"]


def test_exit_codes_and_kinds_are_the_written_table() -> None:
    doc = (ROOT / "docs" / "cli.md").read_text()
    written = dict(re.findall(r"^\| `(\w+)` \| (\d) \|", doc, flags=re.MULTILINE))
    assert {k: int(v) for k, v in written.items()} == dict(KINDS)
    codes = re.findall(r"^\| (\d) \| ", doc, flags=re.MULTILINE)
    assert codes == ["0", "1", "2", "3"]
    for _, command in COMMANDS:
        assert set(contract(command).exits) <= {0, 1, 2, 3}


def test_docs_cli_names_every_command_and_example() -> None:
    doc = (ROOT / "docs" / "cli.md").read_text()
    for name, command in COMMANDS:
        assert f"logkit {name}" in doc, name
        for example in contract(command).examples:
            assert example in doc, example


def test_version_flag_and_command() -> None:
    flag = runner.invoke(app, ["--version"])
    assert (
        flag.exit_code == 0
        and flag.stdout == f"logkit {logkit.__version__} (schema {logkit.SCHEMA_VERSION})\n"
    )
    as_json = runner.invoke(app, ["version", "--json"])
    assert json.loads(as_json.stdout) == {
        "logkit": logkit.__version__,
        "schema": logkit.SCHEMA_VERSION,
    }


def test_root_help_has_examples() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "Examples:" in result.output and "--version" in result.output


def test_an_unexpected_error_is_one_line_with_its_class_never_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import logkit.usage

    def broken(*_: Any, **__: Any) -> Any:
        raise KeyError("raw-value@example.com")

    monkeypatch.setattr(logkit.usage, "summarize", broken)
    result = runner.invoke(app, ["usage", "report", "--tenant", "t_acme", "--json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "internal" and "KeyError" in error["message"]
    assert "example.com" not in result.output and "Traceback" not in result.output


def test_help_text_is_reflowed_and_markup_safe() -> None:
    text = compose_help(
        "First line\n    goes on.\n\n    [tool.logkit.codemod] stays\n    as written.",
        ["logkit x --y"],
        {0: "ok"},
    )
    assert text.split("\n\n")[:2] == [
        "First line goes on.",
        "\\[tool.logkit.codemod] stays as written.",
    ]
    assert text.endswith("Examples:\n  logkit x --y")


def test_every_command_group_help_has_examples() -> None:
    root = typer.main.get_command(app)
    groups = [name for name, sub in root.commands.items() if hasattr(sub, "commands")]  # type: ignore[attr-defined]
    assert {"audit", "usage", "timeline", "dsar", "retention", "codemod", "spool"} <= set(groups)
    for group in groups:
        result = runner.invoke(app, [group, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0 and "Examples:" in result.output, group
        assert re.search(rf"^\s+logkit {group} ", result.output, flags=re.MULTILINE), group


def test_the_cli_checks_tenants_with_the_envelope_pattern() -> None:
    from logkit import envelope
    from logkit.cli import common

    # One rule, not a copy of it (tests/logs/test_event_contract.py checks every tenant check
    # against the envelope itself).
    assert common.is_tenant_id is envelope.is_tenant_id
