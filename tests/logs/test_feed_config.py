"""The live feed's configuration: [sinks] feed, check-sinks's feed line, serve's sources, and
the writer's behaviour when Redis cannot be reached (bounded, counted, stores unharmed)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import logkit
from logkit.cli.main import app as cli
from logkit.errors import ConfigError
from logkit.sinks.protocols import Query, Role
from logkit.sinks.redis import RedisFeed
from tests import services
from tests.conftest import SCOPE
from tests.replicas import RedisServer
from tests.servers import free_port

runner = CliRunner()


def toml(tmp_path: Path, feed: str, extra: str = "", timeline: str | None = None) -> Path:
    db = f"sqlite:///{tmp_path / 'logkit.db'}"
    path = tmp_path / f"logkit-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(
        f'env = "dev"\n[sinks]\ntimeline = "{timeline or db}"\naudit = "{db}"\nfeed = "{feed}"\n'
        f'[redaction]\nkey = "k-{uuid.uuid4().hex}"\nencryption_key_dir = "{tmp_path / "keys"}"\n'
        f"{extra}"
    )
    return path


def feed_line(path: Path) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(cli, ["check-sinks", "--config", str(path), "--json", "--timeout", "3"])
    import json

    report = json.loads(result.output)
    (line,) = [c for c in report["checks"] if c["check"] == "feed"]
    return result.exit_code, line


def test_check_sinks_round_trips_a_probe_through_the_feed(tmp_path: Path) -> None:
    url = services.require("REDIS_URL")
    prefix = f"lkt{uuid.uuid4().hex[:8]}"
    code, line = feed_line(toml(tmp_path, f"{url}?prefix={prefix}"))
    assert code == 0 and line["ok"] and line["kind"] == "sink", line
    assert line["backend"].startswith("redis 127.0.0.1:") and line["latency_ms"] is not None
    feed = RedisFeed.from_uri(f"{url}?prefix={prefix}")
    try:  # the probe went to the reserved tenant, and is gone again
        assert feed.feed_after("t__logkit_probe", 0) == ([], feed.feed_bounds("t__logkit_probe")[1])
    finally:
        feed.close()


def test_check_sinks_fails_the_feed_line_for_an_unreachable_or_wrong_feed(tmp_path: Path) -> None:
    began = time.monotonic()
    code, line = feed_line(toml(tmp_path, f"redis://127.0.0.1:{free_port()}/0"))
    assert code == 1 and not line["ok"] and "unreachable" in line["problem"]
    assert time.monotonic() - began < 10  # bounded by the feed timeout, not hanging
    code, line = feed_line(toml(tmp_path, f"sqlite:///{tmp_path / 'x.db'}"))
    assert code == 1 and "cannot be the live feed" in line["problem"]


def test_the_password_comes_from_config_and_never_shows(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", aof=False, password="s3cret-feed-pass").start()
    try:
        code, line = feed_line(toml(tmp_path, server.url))
        assert code == 1 and "credentials" in line["problem"]
        code, line = feed_line(
            toml(tmp_path, server.url, extra='[stream]\nfeed_password = "s3cret-feed-pass"\n')
        )
        assert code == 0 and line["ok"], line
        with_password = server.url.replace("redis://", "redis://:s3cret-feed-pass@")
        code, line = feed_line(toml(tmp_path, with_password))
        assert code == 0 and "s3cret" not in line["backend"]
    finally:
        server.stop()


def test_configure_refuses_a_feed_that_is_not_one_and_redis_as_a_store(
    tmp_path: Path, configured: Any
) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    with pytest.raises(ConfigError, match="cannot be the live feed"):
        configured(env="dev", sinks={"timeline": db, "audit": db, "feed": db})
    with pytest.raises(ConfigError, match="redis cannot hold the timeline role"):
        configured(env="dev", sinks={"timeline": "redis://127.0.0.1:1/0", "audit": db})


def test_serve_needs_a_numbering_store_or_a_feed(tmp_path: Path) -> None:
    services.require("FIRESTORE_EMULATOR_HOST")
    firestore = f"firestore://logkit-test?root=t{uuid.uuid4().hex[:12]}"
    db = f"sqlite:///{tmp_path / 'logkit.db'}"
    path = tmp_path / "nofeed.toml"
    path.write_text(
        f'env = "dev"\n[sinks]\ntimeline = "{firestore}"\naudit = "{db}"\n'
        f'[redaction]\nkey = "k"\nencryption_key_dir = "{tmp_path / "keys"}"\n'
    )
    result = runner.invoke(cli, ["serve", "--config", str(path), "--port", str(free_port())])
    assert result.exit_code == 2
    assert "[sinks] feed" in result.output and "firestore" in result.output
    logkit.shutdown()


def test_redis_down_never_slows_emit_and_the_store_gets_everything(
    tmp_path: Path, configured: Any
) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    runtime = configured(
        env="dev",
        sinks={"timeline": db, "audit": db, "feed": f"redis://127.0.0.1:{free_port()}/0"},
        stream={"feed_timeout_s": 2.0, "feed_queue": 50},
    )
    slowest = 0.0
    with logkit.bind(**{**SCOPE, "env": "dev"}):
        ids = []
        for i in range(500):
            began = time.perf_counter()
            ids.append(logkit.emit("message", {"i": i}).event_id)
            slowest = max(slowest, time.perf_counter() - began)
    assert logkit.flush(30)
    writer = runtime.feed_writer
    assert writer is not None
    assert writer.stats.appended == 0 and writer.stats.dropped == 500  # counted, never queued up
    assert writer.stats.last_error and "unreachable" in writer.stats.last_error
    assert slowest < 0.5  # far below one connect timeout (2 s): emit never waited on Redis
    page = runtime.stores[Role.TIMELINE].query(Query(tenant_id=SCOPE["tenant_id"], limit=1000))
    assert [e.event_id for e in page.events] == ids


def test_dsar_delete_reaches_the_feeds_window(tmp_path: Path, configured: Any) -> None:
    from logkit import dsar

    url = services.require("REDIS_URL")
    feed_url = f"{url}?prefix=lkt{uuid.uuid4().hex[:8]}"
    db = f"sqlite:///{tmp_path / 'a.db'}"
    runtime = configured(env="dev", sinks={"timeline": db, "audit": db, "feed": feed_url})
    with logkit.bind(**{**SCOPE, "env": "dev"}):
        for i in range(6):
            logkit.emit("message", {"i": i}, user_id="u_42" if i % 2 else "u_7")
    assert logkit.flush(10)
    feed = runtime.feed
    assert feed is not None

    def users() -> list[str]:
        rows, _ = feed.feed_after(SCOPE["tenant_id"], 0)
        return [r.body.split('"user_id":"')[1].split('"')[0] for r in rows]

    assert users().count("u_42") == 3
    plan = dsar.delete(SCOPE["tenant_id"], "u_42", dry_run=True)
    assert plan.counts()["feed_deleted"] == 3 and users().count("u_42") == 3
    done = dsar.delete(SCOPE["tenant_id"], "u_42")
    assert done.ok and done.counts()["feed_deleted"] == 3
    assert users() == ["u_7", "u_7", "u_7"]  # the window keeps nothing of the subject
