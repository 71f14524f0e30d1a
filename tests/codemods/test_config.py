"""The repository's codemod table: extra loggers, sinks, hooks and storage methods."""

from __future__ import annotations

from pathlib import Path

import pytest
from logkit.codemods.config import LOGGERS, STORAGE, load_config
from logkit.codemods.project import discover

from logkit.config import load_settings
from logkit.errors import ConfigError


def test_without_a_table_the_legacy_defaults_apply(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config.loggers == LOGGERS and config.storage == STORAGE and config.source is None
    assert "engines.logging.event_log.default_event_logger" in config.loggers


def test_pyproject_adds_to_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.logkit.codemod]\n"
        'loggers = ["engines.chat.history.log_turn"]\n'
        'hooks = ["on_event", "engines.x.TraceHook"]\n'
        "[tool.logkit.codemod.routes]\n"
        '"engines.x.Turn" = "engines.chat.history.log_turn"\n'
    )
    config = load_config(tmp_path)
    assert config.loggers == (*LOGGERS, "engines.chat.history.log_turn")
    assert "on_event" in config.hook_names and "engines.x.TraceHook" in config.hook_types
    assert config.routes["engines.x.Turn"] == "engines.chat.history.log_turn"
    assert config.source == str(tmp_path / "pyproject.toml")


def test_logkit_toml_carries_it_too_and_the_runtime_ignores_it(tmp_path: Path) -> None:
    path = tmp_path / "logkit.toml"
    path.write_text('env = "dev"\n\n[codemod]\nsinks = ["engines.export.publish"]\n')
    assert load_config(tmp_path).sinks == ("engines.export.publish",)
    assert load_settings(path).env == "dev"  # the [codemod] table is not a runtime error


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tool.logkit.codemod]\nloggerz = []\n", "invalid codemod table: loggerz: "),
        ("[tool.logkit.codemod]\nsinks = 3\n", "invalid codemod table: sinks: "),
        ("[tool.logkit.codemod\n", "is not valid TOML"),
    ],
)
def test_a_bad_table_is_a_config_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path)


def test_an_explicit_file_must_have_the_table(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text("[tool.other]\n")
    with pytest.raises(ConfigError, match=r"has no \[tool.logkit.codemod\] table"):
        load_config(tmp_path, path)


def test_the_project_root_is_the_nearest_marker_and_modules_follow_the_tree(
    tmp_path: Path,
) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nsrc = ['src']\n")
    (tmp_path / "src" / "engines" / "chat").mkdir(parents=True)
    site = tmp_path / "src" / "engines" / "chat" / "pipeline.py"
    site.write_text("")
    project = discover([site])
    assert project.root == tmp_path.resolve()
    # No __init__.py anywhere: a namespace package, named by its path below the source root.
    assert project.module_of(site) == "engines.chat.pipeline"
    assert project.package_of(site) == "engines.chat"
    assert project.is_first_party("engines.chat.pipeline")
    assert not project.is_first_party("engines.nowhere") and not project.is_first_party("attrs")
