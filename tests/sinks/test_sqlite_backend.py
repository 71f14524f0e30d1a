"""SQLite specifics: URIs, error mapping at the boundary, and drain at interpreter exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from logkit import ConfigError, Event, SinkUnavailable
from logkit.sinks.protocols import Query, Role
from logkit.sinks.sqlite import SQLiteBackend, path_from_uri
from tests.conftest import SCOPE


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("sqlite:///.logkit/logkit.db", Path(".logkit/logkit.db")),
        ("sqlite:////var/lib/logkit.db", Path("/var/lib/logkit.db")),
        ("sqlite:///x.db?mode=rwc", Path("x.db")),
    ],
)
def test_uri_paths(uri: str, path: Path) -> None:
    assert path_from_uri(uri) == path


@pytest.mark.parametrize("uri", ["sqlite://", "sqlite:///", "sqlite:/x.db", "file:///x.db"])
def test_bad_uris_are_config_errors(uri: str) -> None:
    with pytest.raises(ConfigError, match="sqlite:///"):
        path_from_uri(uri)


def test_unusable_path_is_sink_unavailable_not_a_driver_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    backend = SQLiteBackend(blocker / "logkit.db")
    with pytest.raises(SinkUnavailable) as info:
        backend.store(Role.TIMELINE).write([Event(**SCOPE, event_type="message")])
    assert isinstance(info.value.__cause__, OSError | __import__("sqlite3").Error)


def test_interpreter_exit_drains_what_was_emitted(tmp_path: Path) -> None:
    db = tmp_path / "exit.db"
    script = textwrap.dedent(f"""
        import logkit
        logkit.configure(env="dev", sinks={{"timeline": "sqlite:///{db}",
                                           "audit": "sqlite:///{db}"}},
                         dispatch={{"spool_path": "{tmp_path / "spool.db"}",
                                    "flush_interval_s": 60}})
        with logkit.bind(tenant_id="t_acme", env="dev", project_id="p", surface_id="s",
                         app_id="a"):
            for i in range(5000):
                logkit.emit("message", {{"i": i}})
        # no flush(): the atexit hook must drain the queue
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    backend = SQLiteBackend(db)
    try:
        events, cursor = [], None
        while True:
            page = backend.store(Role.TIMELINE).query(
                Query(tenant_id="t_acme", limit=5000, cursor=cursor)
            )
            events += page.events
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    finally:
        backend.close()
    assert sorted(e.payload["i"] for e in events) == list(range(5000))  # type: ignore[type-var]
