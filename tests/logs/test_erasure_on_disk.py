"""Erasure reaches the disk: after `dsar delete` / `retention apply` on SQLite, no copy of an
erased value stays in the database file, its WAL or shared memory, or the spool's files.

The raw bytes of every file are scanned. Erased values sit in small rows, in overflow pages
(20 KB payloads), in an indexed column (a run id only the subject used) and in payload keys;
other subjects' rows share their pages. They also passed through the spool (replayed, then
acknowledged) and its dead letters. A reader holding a snapshot (a second connection, in this
process or another) keeps the WAL: the erasure then names it in a warning, exits 1 from the CLI,
and a second run once it has closed leaves nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import logkit
from logkit import dsar, erasure, retention
from logkit.cli.main import app as cli
from logkit.envelope import Event
from logkit.runtime import Runtime
from logkit.sinks.protocols import AuditStore, Role
from tests.conftest import SCOPE, TEST_REDACTION_KEY, memory_sinks

runner = CliRunner()
ERASED = b"Ximena-7f3e9c"  # in every erased payload (and only there)
ERASED_RUN = "run-Quillon-55d1"  # a run only the subject's ops events carry (indexed column)
KEPT = b"Bartholomew-0c2a"  # in everybody else's payloads: the scan must still find it
OLD = dt.datetime.now(dt.UTC) - dt.timedelta(days=500)


def _event(user_id: str, i: int, *, kind: str = "ops", ts: dt.datetime | None = None) -> Event:
    mine = user_id == "u_42"
    token = (ERASED if mine else KEPT).decode()
    payload: dict[str, Any] = {"note": f"{token} #{i}", f"key-{token}-{i}": i}
    if i % 5 == 0:  # past a page: the row continues in overflow pages
        payload["blob"] = f"{token} " * 1500
    types = {"ops": "message", "cost": "usage_recorded", "audit": "audit_action"}
    return Event(
        **SCOPE,
        event_type=types[kind],
        storage_class=kind,
        user_id=user_id,
        run_id=ERASED_RUN if mine and kind == "ops" else f"run_{i % 3}",
        payload=payload,
        **({"ts": ts} if ts is not None else {}),
    )


def plant(runtime: Runtime, *, ts: dt.datetime | None = None, dead: bool = True) -> None:
    """The subject's events interleaved with others', in every store and through the spool."""
    events = [
        _event(user, i, kind=kind, ts=ts)
        for i in range(40)
        for user in ("u_42", "u_7", "u_8")
        for kind in (("ops", "cost", "audit") if i % 4 == 0 else ("ops",))
    ]
    audit = runtime.stores[Role.AUDIT]
    assert isinstance(audit, AuditStore)
    chained = audit.append([e for e in events if e.storage_class == "audit"])
    runtime.stores[Role.COST].write([e for e in events if e.storage_class == "cost"])
    runtime.stores[Role.TIMELINE].write([e for e in events if e.storage_class != "audit"] + chained)
    # Events that waited in the spool during an outage, then were replayed and acknowledged;
    # and events a backend rejected (dead letters).
    spooled = [e for e in events if e.storage_class == "ops"][:30]
    runtime.spool.put("sqlite#timeline", spooled)
    runtime.spool.ack([row_id for row_id, _ in runtime.spool.peek("sqlite#timeline", 100)])
    if dead:  # retention leaves dead letters alone (docs/retention-dsar.md)
        runtime.spool.bury("sqlite#timeline", spooled[:9], "rejected (test)")
    assert runtime.spool.count() == 0


def leftovers(directory: Path, needle: bytes) -> dict[str, int]:
    """Copies of ``needle`` in the raw bytes of every database, WAL and shm file."""
    found = {}
    for path in sorted(directory.iterdir()):
        if path.is_file() and ".db" in path.name:
            count = path.read_bytes().count(needle)
            if count:
                found[path.name] = count
    return found


def erased_anywhere(directory: Path) -> dict[str, int]:
    return {**leftovers(directory, ERASED), **leftovers(directory, ERASED_RUN.encode())}


@pytest.fixture
def sqlite_world(configured: Any, tmp_path: Path) -> Iterator[tuple[Runtime, Path]]:
    data = tmp_path / "data"
    data.mkdir()
    db = f"sqlite:///{data / 'logkit.db'}"
    runtime = configured(
        env="dev",
        sinks={"timeline": db, "audit": db, "cost": db},
        dispatch={"spool_path": data / "spool.db"},
    )
    yield runtime, data


@pytest.fixture
def short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(erasure, "WAIT_S", 0.2)  # the bound a reader is waited for


def _reader(path: Path) -> sqlite3.Connection:
    """A second connection holding a read snapshot: BEGIN; SELECT ..."""
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM timeline_events").fetchone()[0] > 0
    return reader


# --- without a reader -------------------------------------------------------------------------


def test_dsar_delete_leaves_no_erased_value_in_any_file(sqlite_world: Any) -> None:
    runtime, data = sqlite_world
    plant(runtime)
    assert erased_anywhere(data)  # the scan sees them before
    result = dsar.delete("t_acme", "u_42")
    assert result.ok and result.warnings == [] and result.as_dict()["residue"] == []
    assert result.dead_letters_deleted == 3 and result.counts()["timeline_deleted"] > 40
    assert erased_anywhere(data) == {}
    assert leftovers(data, KEPT)  # everybody else's events are still there to be found
    logkit.shutdown()  # and nothing comes back when the files are closed
    assert erased_anywhere(data) == {}


def test_retention_apply_leaves_no_expired_value_in_any_file(sqlite_world: Any) -> None:
    runtime, data = sqlite_world
    plant(runtime, ts=OLD, dead=False)
    result = retention.apply(runtime=_expiring_everything(runtime))
    assert result.ok and result.warnings == []
    assert erased_anywhere(data) == {} and leftovers(data, KEPT) == {}


def _expiring_everything(runtime: Runtime) -> Runtime:
    """The runtime with a retention that has expired all of the planted events."""
    days = {"ops_days": 30, "cost_days": 30, "audit_days": 30}
    expiring = runtime.settings.retention.model_copy(update=days)
    runtime.settings = runtime.settings.model_copy(update={"retention": expiring})
    return runtime


# --- a reader holding a snapshot --------------------------------------------------------------


def test_a_reader_in_this_process_is_named_and_a_rerun_clears_the_files(
    sqlite_world: Any, short_wait: None
) -> None:
    runtime, data = sqlite_world
    plant(runtime)
    reader = _reader(data / "logkit.db")
    result = dsar.delete("t_acme", "u_42")
    assert not result.ok and not result.nothing_left and result.failures == []
    (warning,) = result.warnings
    assert f"{data / 'logkit.db'}-wal" in warning
    assert f"pid {os.getpid()}" in warning and "another connection in this process" in warning
    assert "run the same `logkit dsar delete` again" in warning
    report = result.as_dict()
    assert report["ok"] is False and report["warnings"] == [warning]
    (residue,) = report["residue"]
    assert residue["holders"] == [
        {"pid": os.getpid(), "command": residue["holders"][0]["command"], "this_process": True}
    ]
    assert erased_anywhere(data)  # the warning is true: the snapshot kept them
    reader.execute("COMMIT")
    reader.close()
    again = dsar.delete("t_acme", "u_42")
    assert again.ok and again.nothing_left and again.warnings == []
    assert erased_anywhere(data) == {}
    assert leftovers(data, KEPT)


def test_a_reader_in_another_process_is_named_by_pid_and_command(
    sqlite_world: Any, short_wait: None
) -> None:
    runtime, data = sqlite_world
    plant(runtime)
    script = (
        "import sqlite3, sys\n"
        f"c = sqlite3.connect({str(data / 'logkit.db')!r}, isolation_level=None)\n"
        "c.execute('BEGIN'); c.execute('SELECT count(*) FROM timeline_events').fetchone()\n"
        "print('ready', flush=True); sys.stdin.readline()\n"
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
        result = dsar.delete("t_acme", "u_42")
        (residue,) = result.disk.residue if result.disk else []
        assert [h.pid for h in residue.holders.found] == [reader.pid]  # not this process
        assert f"pid {reader.pid} (python" in result.warnings[0]
    finally:
        reader.communicate("done\n", timeout=30)
    assert dsar.delete("t_acme", "u_42").ok
    assert erased_anywhere(data) == {}


def test_retention_with_a_reader_warns_then_a_rerun_clears(
    sqlite_world: Any, short_wait: None
) -> None:
    runtime, data = sqlite_world
    plant(runtime, ts=OLD, dead=False)
    runtime = _expiring_everything(runtime)
    reader = _reader(data / "logkit.db")
    result = retention.apply(runtime=runtime)
    assert not result.ok and result.failures == []
    assert "run `logkit retention apply` again" in result.warnings[0]
    assert result.as_dict()["warnings"] == result.warnings
    reader.close()
    assert retention.apply(runtime=runtime).ok
    assert erased_anywhere(data) == {}


# --- the CLI ----------------------------------------------------------------------------------


@pytest.fixture
def cli_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, short_wait: None) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    db = f"sqlite:///{data / 'logkit.db'}"
    (tmp_path / "logkit.toml").write_text(
        f'env = "dev"\n[sinks]\ntimeline = "{db}"\naudit = "{db}"\ncost = "{db}"\n'
        f'[dispatch]\nspool_path = "{data / "spool.db"}"\n'
        f'[redaction]\nkey = "{TEST_REDACTION_KEY}"\nencryption_key_dir = "{tmp_path / "keys"}"\n'
    )
    plant(logkit.configure(tmp_path / "logkit.toml"), ts=OLD)
    yield data
    logkit.configure(**memory_sinks(tmp_path / "restored"))


def test_cli_dsar_delete_warns_exits_1_and_says_what_to_run(cli_world: Path) -> None:
    subject = ["--tenant", "t_acme", "--user", "u_42", "--config", "logkit.toml"]
    reader = _reader(cli_world / "logkit.db")
    held = runner.invoke(cli, ["dsar", "delete", *subject, "--yes"])
    assert held.exit_code == 1, held.output
    assert "logkit: warning: erased values may remain in" in held.stderr
    assert "another connection in this process" in held.stderr and "-wal" in held.stderr
    assert "run: logkit dsar delete --tenant t_acme --user u_42 --yes" in held.stderr
    as_json = runner.invoke(cli, ["dsar", "delete", *subject, "--yes", "--json"])
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert report["ok"] is False and report["warnings"] and report["residue"][0]["holders"]
    reader.close()
    done = runner.invoke(cli, ["dsar", "delete", *subject, "--yes"])
    assert done.exit_code == 0, done.output
    assert "nothing left" in done.stdout and "warning" not in done.output
    assert erased_anywhere(cli_world) == {}


def test_cli_retention_apply_warns_and_exits_1(cli_world: Path) -> None:
    reader = _reader(cli_world / "logkit.db")
    held = runner.invoke(cli, ["retention", "apply", "--config", "logkit.toml", "--json"])
    assert held.exit_code == 1
    assert json.loads(held.stdout)["warnings"] and "logkit: warning:" in held.stderr
    reader.close()
    assert runner.invoke(cli, ["retention", "apply", "--config", "logkit.toml"]).exit_code == 0
