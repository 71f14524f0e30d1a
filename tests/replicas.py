"""Real processes for the production-shape stream tests: `logkit serve` replicas, a writer
process, and a private redis-server a test may stop and restart."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
from starlette.requests import HTTPConnection

from logkit.principal import Principal, Unauthorized
from tests.servers import free_port
from tests.streams import wait_for

ROOT = Path(__file__).resolve().parent.parent
TEST_KEY = "test-redaction-master-key"


def write_config(
    directory: Path, *, timeline: str, feed: str, audit: str | None = None, **stream: Any
) -> Path:
    """A logkit.toml every process of a test shares: stores, the Redis feed, fast retries."""
    audit = audit or f"sqlite:///{directory / 'audit.db'}"
    lines = [
        'env = "dev"',
        "[sinks]",
        f'timeline = "{timeline}"',
        f'audit = "{audit}"',
        f'feed = "{feed}"',
        "[stream]",
        "heartbeat_s = 5",
        "retry_ms = 100",
        *(f"{k} = {json.dumps(v)}" for k, v in stream.items()),
        "[dispatch]",
        "flush_interval_s = 0.05",
        "[redaction]",
        f'key = "{TEST_KEY}"',
        f'encryption_key_dir = "{directory / "keys"}"',
    ]
    path = directory / f"logkit-{uuid.uuid4().hex[:6]}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def process_env(directory: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGKIT_")}
    env["PYTHONPATH"] = str(ROOT)
    env["LOGKIT_DISPATCH__SPOOL_PATH"] = str(directory / f"spool-{uuid.uuid4().hex[:6]}.db")
    return env


class Replica:
    """One `logkit serve` process on a fixed port (a restart comes back on the same one)."""

    def __init__(self, config: Path, directory: Path, authorizer: str | None = None) -> None:
        self.config, self.directory, self.authorizer = config, directory, authorizer
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> Replica:
        command = [sys.executable, "-m", "logkit", "serve", "--config", str(self.config)]
        command += ["--port", str(self.port), "--log-level", "warning"]
        if self.authorizer:
            command += ["--authorizer", self.authorizer]
        self.proc = subprocess.Popen(
            command, env=process_env(self.directory), cwd=self.directory, stderr=subprocess.PIPE
        )
        proc = self.proc
        wait_for(lambda: self.healthy() or proc.poll() is not None, 30, "a logkit serve replica")
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "it exited")
        return self

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def run_writer(config: Path, directory: Path, **options: Any) -> dict[str, Any]:
    """Run tests/feedwriter.py in its own process; what it emitted (ids in emit order)."""
    command = [sys.executable, "-m", "tests.feedwriter", "--config", str(config)]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    done = subprocess.run(
        command, env=process_env(directory), cwd=ROOT, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


class RedisServer:
    """A private redis-server (its own directory and port) that a test can stop and restart."""

    def __init__(self, directory: Path, *, aof: bool = True, password: str | None = None) -> None:
        self.directory, self.aof, self.password = directory, aof, password
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        command = [binary, "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--dir", str(self.directory), "--save", ""]
        command += ["--appendonly", "yes" if self.aof else "no", "--appendfsync", "always"]
        if self.password:
            command += ["--requirepass", self.password]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.2, password=self.password)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.exceptions.RedisError:
                return False

        wait_for(answers, 10, "redis-server")
        client.close()
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()  # SIGTERM: redis finishes its AOF and exits
            proc.wait(10)


def token_authorizer(connection: HTTPConnection) -> Principal:
    """A production-like authorizer: a browser's EventSource sends a token, not headers."""
    tokens = {"acme-reader": Principal("t_acme", "p_support")}
    principal = tokens.get(connection.query_params.get("token", ""))
    if principal is None:
        raise Unauthorized("unknown token")
    return principal
