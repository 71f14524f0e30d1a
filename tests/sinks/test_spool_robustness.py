"""A broken spool never stops delivery: unreadable rows go to the dead letters (raw bytes
kept), an unusable file is moved aside and replaced, and an operator sees and retries what was
set aside with `logkit spool`. Several processes sharing a spool directory replay each file once.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import logkit
from logkit import Event
from logkit.cli.main import app as cli
from logkit.config import DispatchConfig
from logkit.dispatch import Dispatcher
from logkit.sinks.protocols import Role
from logkit.sinks.sqlite import SQLiteBackend
from logkit.spool import Spool
from logkit.spooldir import adopt, spool_files
from tests.conftest import SCOPE
from tests.sinks.backends import stored_numbers

runner = CliRunner()


def ev(n: int) -> Event:
    return Event(**SCOPE, event_type="message", payload={"n": n})


def rewrite_row(path: Path, row_id: int, body: object) -> None:
    """What a rollback to an older logkit, a bad disk or a curious operator leaves behind."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE spool SET body = ? WHERE id = ?", (body, row_id))
    conn.close()


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[SQLiteBackend]:
    backend = SQLiteBackend(tmp_path / "store.db")
    yield backend
    backend.close()


def config() -> DispatchConfig:
    return DispatchConfig(batch_size=4, flush_interval_s=0.01, replay_interval_s=0.01)


BAD_BODIES = [
    '{"garbage":1}',  # JSON, not an event
    "not json",
    b"\x00\xff\xfe random bytes",
    42,
    '{"tenant_id": "t_acme", "event_type": "message"}',  # scope missing
    "",
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_an_unreadable_spool_row_is_set_aside_and_replay_goes_on(
    backend: SQLiteBackend, tmp_path: Path, body: object
) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.put("s#timeline", [ev(i) for i in range(10)])
    rewrite_row(tmp_path / "spool.db", 3, body)
    dispatcher = Dispatcher("s#timeline", backend.store(Role.TIMELINE), spool, config())
    assert dispatcher.flush(10)
    assert stored_numbers(backend.store(Role.TIMELINE)) == [0, 1, 3, 4, 5, 6, 7, 8, 9]
    assert spool.count() == 0
    (letter,) = spool.dead_letters()
    kept = letter.raw if isinstance(body, bytes) else letter.body
    assert kept == (body if isinstance(body, str | bytes) else str(body))
    assert dispatcher.close(5)


def test_a_garbage_row_left_in_the_spool_does_not_stop_a_healthy_backend(
    configured: Any, tmp_path: Path
) -> None:
    """Issue 14, item 2: the row reaches the dead letters, the timeline gets everything else."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    early = Spool(tmp_path / "spool.db")
    early.put(f"{db}#timeline", [ev(i) for i in range(5)])
    rewrite_row(tmp_path / "spool.db", 2, '{"garbage":1}')
    early.close()
    runtime = configured(env="dev", sinks={"timeline": db, "audit": db})
    with logkit.bind(**SCOPE):
        for i in range(5, 20):
            logkit.emit("message", {"n": i})
    assert logkit.flush(10)
    assert stored_numbers(runtime.stores[Role.TIMELINE]) == [i for i in range(20) if i != 1]
    assert runtime.spool.count() == 0 and runtime.spool.dead_count() == 1


def test_a_spool_file_of_random_bytes_is_moved_aside_and_replaced(
    configured: Any, tmp_path: Path
) -> None:
    """Issue 14, item 2: "file is not a database" no longer loses events or blocks exit."""
    (tmp_path / "spool.db").write_bytes(os.urandom(8192))
    db = f"sqlite:///{tmp_path / 'store.db'}"
    runtime = configured(env="dev", sinks={"timeline": db, "audit": db})
    with logkit.bind(**SCOPE):
        for i in range(100):
            logkit.emit("message", {"n": i})
    assert logkit.flush(10)
    assert stored_numbers(runtime.stores[Role.TIMELINE]) == list(range(100))
    (aside,) = runtime.spool.broken_files()
    assert aside.name.startswith("spool.db.broken-") and len(aside.read_bytes()) == 8192
    assert runtime.spool.count() == 0  # a fresh spool, usable again
    env = {"LOGKIT_DISPATCH__SPOOL_PATH": str(runtime.spool.path)}
    shown = runner.invoke(cli, ["spool", "show", "--json"], env=env)
    assert shown.exit_code == 1, shown.output  # something to look at
    assert json.loads(shown.output)["files"][0]["broken"] == [str(aside)]
    assert logkit.shutdown(10)


def test_a_spool_overwritten_while_in_use_is_replaced_without_losing_new_events(
    backend: SQLiteBackend, tmp_path: Path
) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path)
    spool.put("s#timeline", [ev(i) for i in range(5)])
    spool.close()  # everything in the main file (no WAL left), then other bytes in place
    path.write_bytes(os.urandom(path.stat().st_size))
    dispatcher = Dispatcher("s#timeline", backend.store(Role.TIMELINE), spool, config())
    for i in range(5, 25):
        dispatcher.submit(ev(i))
    assert dispatcher.flush(10)
    assert stored_numbers(backend.store(Role.TIMELINE)) == list(range(5, 25))
    assert len(spool.broken_files()) == 1 and spool.count() == 0
    assert dispatcher.close(5)


def test_a_spool_that_cannot_be_opened_never_blocks_a_reachable_backend(
    configured: Any, tmp_path: Path
) -> None:
    (tmp_path / "spool-is-a-directory").mkdir()
    db = f"sqlite:///{tmp_path / 'store.db'}"
    runtime = configured(
        env="dev",
        sinks={"timeline": db, "audit": db},
        dispatch={"spool_path": tmp_path / "spool-is-a-directory"},
    )
    with logkit.bind(**SCOPE):
        for i in range(300):
            logkit.emit("message", {"n": i})
    assert logkit.flush(10)
    assert stored_numbers(runtime.stores[Role.TIMELINE]) == list(range(300))


# --- the operator's view: logkit spool ------------------------------------------------------


@pytest.fixture
def cli_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "logkit.toml"
    config.write_text(f'[dispatch]\nspool_path = "{tmp_path / "spool.db"}"\n')
    return config


def test_spool_show_dead_letters_and_replay(cli_config: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    sink = f"{uri}#timeline"
    spool = Spool(tmp_path / "spool.db")
    spool.put(sink, [ev(i) for i in range(30)])  # what a process left during an outage
    spool.bury(sink, [ev(99)], "SinkWriteError: BigQuery refused the write (test)")
    spool.put(sink, [ev(100)])
    rewrite_row(tmp_path / "spool.db", 31, '{"garbage":1}')
    spool.close()

    shown = runner.invoke(cli, ["spool", "show", "--config", str(cli_config), "--json"])
    assert shown.exit_code == 1, shown.output  # a dead letter needs a look
    (file,) = json.loads(shown.output)["files"]
    assert file["waiting"] == {sink: 31} and file["dead"] == 1

    letters = runner.invoke(cli, ["spool", "dead-letters", "--config", str(cli_config), "--json"])
    assert letters.exit_code == 0, letters.output
    (letter,) = json.loads(letters.output)["dead_letters"]
    assert letter["sink"] == sink and letter["reason"].startswith("SinkWriteError")
    assert "body" not in letter  # data only on request

    replayed = runner.invoke(cli, ["spool", "replay", "--config", str(cli_config), "--json"])
    assert replayed.exit_code == 1, replayed.output  # the garbage row was set aside
    (outcome,) = json.loads(replayed.output)["sinks"]
    assert (outcome["replayed"], outcome["dead"], outcome["waiting"]) == (30, 1, 0)
    backend = SQLiteBackend(tmp_path / "store.db")
    assert stored_numbers(backend.store(Role.TIMELINE)) == list(range(30))

    (good,) = [
        d for d in Spool(tmp_path / "spool.db").dead_letters() if d.reason.startswith("Sink")
    ]
    retried = runner.invoke(
        cli,
        ["spool", "replay", "--dead-letters", "--id", str(good.id), "--config", str(cli_config)],
    )
    assert retried.exit_code == 0, retried.output
    assert stored_numbers(backend.store(Role.TIMELINE)) == [*range(30), 99]
    again = runner.invoke(cli, ["spool", "replay", "--dead-letters", "--config", str(cli_config)])
    assert again.exit_code == 1 and "1 dead" in again.output  # garbage stays garbage
    backend.close()


def test_spool_cli_usage_errors(cli_config: Path) -> None:
    bad = runner.invoke(cli, ["spool", "replay", "--id", "3", "--config", str(cli_config)])
    assert bad.exit_code == 2 and "--dead-letters" in bad.output
    empty = runner.invoke(cli, ["spool", "show", "--config", str(cli_config)])
    assert empty.exit_code == 0 and "nothing waits" in empty.output


# --- a spool directory shared by several processes ------------------------------------------


def _adopt_into(own: str, orphan: str, results: Any) -> None:
    spool = Spool(Path(own))
    results.put(adopt(spool, Path(orphan)) or 0)
    spool.close()


def test_each_left_spool_file_is_claimed_by_exactly_one_process(tmp_path: Path) -> None:
    orphan = tmp_path / "spool-gone-1-abcd.db"
    left = Spool(orphan)
    left.put("s#timeline", [ev(i) for i in range(3000)])
    left.close()
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_adopt_into, args=(str(tmp_path / f"own{i}.db"), str(orphan), results))
        for i in range(4)
    ]
    for worker in workers:
        worker.start()
    moved = sorted(results.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(60)
    assert moved[-1] == 3000 and sum(moved) == 3000  # one claimant took it all
    assert not orphan.exists() and not spool_files(tmp_path)
    total = sum(Spool(tmp_path / f"own{i}.db").count() for i in range(4))
    assert total == 3000  # every row in exactly one place: replayed once


def test_a_running_process_keeps_its_own_spool_file(tmp_path: Path, configured: Any) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    runtime = configured(
        env="dev", sinks={"timeline": db, "audit": db}, dispatch={"spool_dir": tmp_path / "sd"}
    )
    runtime.spool.put("s#timeline", [ev(1)])
    other = Spool(tmp_path / "other.db")
    assert adopt(other, runtime.spool.path) is None  # claimed by a live process: left alone
    assert runtime.spool.count() == 1


def test_a_process_that_is_gone_leaves_its_spool_to_the_next(
    configured: Any, tmp_path: Path
) -> None:
    store_path = tmp_path / "store.db"
    store_path.mkdir()  # the backend is unreachable: a directory is not a database
    db = f"sqlite:///{store_path}"
    directory = tmp_path / "shared-volume"
    settings = {
        "env": "dev",
        "sinks": {"timeline": db, "audit": f"sqlite:///{tmp_path / 'audit.db'}"},
        "dispatch": {"spool_dir": directory, "retry_attempts": 1, "replay_interval_s": 0.05},
    }
    first = configured(**settings)
    with logkit.bind(**SCOPE):
        for i in range(50):
            logkit.emit("message", {"n": i})
    assert logkit.shutdown(5)
    (left,) = spool_files(directory)
    assert left == first.spool.path and Spool(left).count() == 50
    store_path.rmdir()  # the backend is back
    second = configured(**settings)
    assert second.adopter is not None and second.adopter.first_scan.wait(10)
    assert logkit.flush(10)
    assert stored_numbers(second.stores[Role.TIMELINE]) == list(range(50))
    assert second.adopter.adopted == 50 and spool_files(directory) == [second.spool.path]
    assert logkit.shutdown(5)
    assert spool_files(directory) == []  # an empty spool file is not left behind


def test_an_unusable_file_left_in_a_spool_directory_is_set_aside_and_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "shared"
    directory.mkdir()
    garbage = directory / "spool-gone-7-ffff.db"
    garbage.write_bytes(os.urandom(4096))
    assert adopt(Spool(tmp_path / "own.db"), garbage) == 0
    assert not garbage.exists() and spool_files(directory) == []
    monkeypatch.setenv("LOGKIT_DISPATCH__SPOOL_DIR", str(directory))
    shown = runner.invoke(cli, ["spool", "show", "--json"])
    assert shown.exit_code == 1, shown.output
    (entry,) = json.loads(shown.output)["files"]
    assert [Path(p).name for p in entry["broken"]] == ["spool-gone-7-ffff.db.broken-adopted"]
