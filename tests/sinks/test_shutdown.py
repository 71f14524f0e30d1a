"""Shutdown loses nothing it can keep, within a bound that fits Cloud Run (SIGTERM, then 10 s):
on exit and on SIGTERM every unacknowledged event is in the spool within
``shutdown_spool_s`` whatever the backend does (down, or hanging on every call). The same for
``logkit.audit()`` and ``durability = "spool"``: what they return is kept, even on kill -9.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import logkit
from logkit import AuditUnavailable, Event
from logkit.sinks.protocols import Role
from logkit.spool import Spool
from tests.conftest import SCOPE
from tests.servers import free_port
from tests.streams import wait_for

CLOUD_RUN_GRACE_S = 10.0


class Hung:
    """A backend that accepts connections and never answers: every call hangs."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.held.append(self.listener.accept()[0])  # kept open, never read

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def hung(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hung]:
    backend = Hung()
    # Both of BigQuery's doors hang: REST (tables, schema) and gRPC (the Storage Write API).
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", f"http://127.0.0.1:{backend.port}")
    monkeypatch.setenv("BIGQUERY_STORAGE_EMULATOR_HOST", f"127.0.0.1:{backend.port}")
    yield backend
    backend.close()


HUNG_URI = "bigquery://logkit-test/hung?timeout=60"
HUNG_SINK = f"{HUNG_URI}#timeline"


def spooled(path: Path, sink: str = HUNG_SINK) -> list[int]:
    """The payload numbers waiting in a spool file for ``sink`` (read as another process)."""
    if not path.exists():
        return []
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT body FROM spool WHERE sink = ?", (sink,)).fetchall()
    finally:
        conn.close()
    return sorted(json.loads(body)["payload"]["n"] for (body,) in rows)


def hung_world(configured: Any, tmp_path: Path, **dispatch: Any) -> Any:
    """A dev runtime whose timeline is the hung backend (audit on SQLite, a spool file)."""
    return configured(
        env="dev",
        sinks={"timeline": HUNG_URI, "audit": f"sqlite:///{tmp_path / 'audit.db'}"},
        dispatch={"spool_path": tmp_path / "spool.db", **dispatch},
    )


# --- in this process --------------------------------------------------------------------------


def test_shutdown_spools_everything_while_the_backend_hangs(
    hung: Hung, configured: Any, tmp_path: Path
) -> None:
    runtime = hung_world(configured, tmp_path, batch_size=500)
    with logkit.bind(**SCOPE):
        for i in range(3000):
            logkit.emit("message", {"n": i})
    start = time.monotonic()
    assert logkit.shutdown()  # everything is kept: in the spool
    elapsed = time.monotonic() - start
    assert spooled(runtime.spool.path) == list(range(3000))
    # Within Cloud Run's grace, although each call to the backend would hang for 60 s.
    assert elapsed < CLOUD_RUN_GRACE_S / 2, elapsed


def test_flush_with_a_timeout_returns_true_once_everything_is_spooled(
    hung: Hung, configured: Any, tmp_path: Path
) -> None:
    """Issue 14, item 3: flush(timeout) returned False while the backend was unreachable."""
    runtime = hung_world(configured, tmp_path)
    with logkit.bind(**SCOPE):
        for i in range(10):
            logkit.emit("message", {"n": i})
    assert logkit.flush(timeout=2)
    assert spooled(runtime.spool.path) == list(range(10))
    dispatcher = runtime.dispatchers[Role.TIMELINE]
    assert dispatcher.pending() == 10  # all of it in the spool, none only in memory


# --- processes that exit, are told to stop, or are killed ---------------------------------------

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading
    import logkit

    port, spool, audit_db, mode, n, durability = sys.argv[1:7]
    os.environ["BIGQUERY_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    os.environ["BIGQUERY_STORAGE_EMULATOR_HOST"] = f"127.0.0.1:{port}"
    logkit.configure(
        env="prod",
        sinks={"timeline": "%(uri)s", "audit": f"sqlite:///{audit_db}"},
        dispatch={"spool_path": spool, "durability": durability},
        redaction={"key": "test-key"},
    )
    SCOPE = %(scope)r
    if mode == "audit-kill":
        with logkit.bind(**SCOPE):
            event = logkit.audit("login", {"n": 0})
        os.kill(os.getpid(), signal.SIGKILL)
    with logkit.bind(**SCOPE):
        for i in range(int(n)):
            logkit.emit("message", {"n": i})
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)  # right after the last emit returned
    print("emitted", flush=True)
    if mode == "wait":
        threading.Event().wait()  # until a signal ends the process
    """
)


def run_script(tmp_path: Path, port: int, mode: str, n: int, durability: str = "memory") -> Any:
    script = tmp_path / "app.py"
    script.write_text(SCRIPT % {"uri": HUNG_URI, "scope": SCOPE})
    args = [str(port), str(tmp_path / "spool.db"), str(tmp_path / "audit.db"), mode, str(n)]
    return subprocess.Popen(
        [sys.executable, str(script), *args, durability],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )


def test_a_normal_exit_spools_every_event_while_the_backend_hangs(
    hung: Hung, tmp_path: Path
) -> None:
    """Issue 14, item 3: 10 events, backend unreachable, normal exit: 0 rows were spooled."""
    process = run_script(tmp_path, hung.port, "exit", 10)
    process.wait(timeout=60)
    assert process.returncode == 0, process.stderr.read()  # type: ignore[union-attr]
    assert spooled(tmp_path / "spool.db") == list(range(10))


def test_sigterm_spools_every_event_within_cloud_runs_grace(hung: Hung, tmp_path: Path) -> None:
    process = run_script(tmp_path, hung.port, "wait", 2000)
    assert process.stdout is not None and process.stdout.readline() == "emitted\n"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=CLOUD_RUN_GRACE_S)  # a TimeoutExpired here fails the test
    assert process.returncode == -signal.SIGTERM  # ended as SIGTERM ends a process
    assert spooled(tmp_path / "spool.db") == list(range(2000))


UVICORN_APP = textwrap.dedent(
    """
    import os, sys
    import logkit, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    port, backend_port, spool, mode = sys.argv[1:5]
    os.environ["BIGQUERY_EMULATOR_HOST"] = f"http://127.0.0.1:{backend_port}"
    os.environ["BIGQUERY_STORAGE_EMULATOR_HOST"] = f"127.0.0.1:{backend_port}"
    settings = {
        "LOGKIT_ENV": "prod",
        "LOGKIT_SINKS__TIMELINE": "%(uri)s",
        "LOGKIT_SINKS__AUDIT": "sqlite:///audit.db",
        "LOGKIT_DISPATCH__SPOOL_PATH": spool,
        "LOGKIT_REDACTION__KEY": "test-key",
    }
    os.environ.update(settings)
    if mode == "import":
        logkit.configure()  # before the server: logkit's SIGTERM handler comes first

    async def emit(request):
        n = int(request.query_params["n"])
        with logkit.bind(**%(scope)r):
            for i in range(n):
                logkit.emit("message", {"n": i})
        return JSONResponse({"emitted": n})

    app = Starlette(routes=[Route("/emit", emit, methods=["POST"])])
    if mode == "lifespan":  # configured at the app's start-up, under uvicorn's handler
        app = logkit.CorrelationMiddleware(app, trust_headers=False)
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")
    """
)


def wait_for_port(port: int, process: Any, timeout: float = 30.0) -> None:
    """Until the server accepts connections (bounded; fails if the process died)."""

    def listening() -> bool:
        assert process.poll() is None, process.stderr.read()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        return False

    wait_for(listening, timeout, f"the app to listen on {port}")


@pytest.mark.parametrize("configured_at", ["import", "lifespan"])
def test_sigterm_to_a_uvicorn_app_spools_every_event_within_10_s(
    hung: Hung, tmp_path: Path, configured_at: str
) -> None:
    script = tmp_path / "server.py"
    script.write_text(UVICORN_APP % {"uri": HUNG_URI, "scope": SCOPE})
    port = free_port()
    spool = str(tmp_path / "spool.db")
    process = subprocess.Popen(
        [sys.executable, str(script), str(port), str(hung.port), spool, configured_at],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        wait_for_port(port, process)
        response = httpx.post(f"http://127.0.0.1:{port}/emit", params={"n": 3000}, timeout=30)
        assert response.json() == {"emitted": 3000}
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=CLOUD_RUN_GRACE_S)
    finally:
        if process.poll() is None:
            process.kill()
    assert spooled(tmp_path / "spool.db") == list(range(3000))


def test_durability_spool_keeps_every_returned_emit_through_kill_9(
    hung: Hung, tmp_path: Path
) -> None:
    process = run_script(tmp_path, hung.port, "kill", 500, durability="spool")
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert spooled(tmp_path / "spool.db") == list(range(500))


def test_audit_returns_only_once_the_record_is_kept_even_through_kill_9(
    hung: Hung, tmp_path: Path
) -> None:
    """Issue 14, item 4: the record lived only in the in-memory queue."""
    script_db = tmp_path / "audit.db"
    script_db.mkdir()  # the audit store cannot be opened: audit() must spool, durably
    process = run_script(tmp_path, hung.port, "audit-kill", 0)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    audit_sink = f"sqlite:///{script_db}#audit"
    conn = sqlite3.connect(tmp_path / "spool.db")
    (body,) = [b for (b,) in conn.execute("SELECT body FROM spool WHERE sink = ?", (audit_sink,))]
    conn.close()
    assert json.loads(body)["payload"] == {"action": "login", "n": 0}


# --- logkit.audit(): chained, durably spooled, or AuditUnavailable -------------------------------


def audit_world(configured: Any, tmp_path: Path, audit_uri: str, **audit: Any) -> Any:
    return configured(
        env="dev",
        sinks={"timeline": "memory://", "audit": audit_uri},
        dispatch={"spool_path": tmp_path / "spool.db"},
        audit={"append_timeout_s": 0.3, **audit},
    )


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[str]:
    """An audit database another process holds the write lock of."""
    from logkit.sinks.sqlite import SQLiteBackend

    path = tmp_path / "audit.db"
    SQLiteBackend(path).check_schema()  # the schema exists, then the lock is taken
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield f"sqlite:///{path}?timeout=0.1"
    holder.execute("ROLLBACK")
    holder.close()


def test_a_locked_audit_store_is_retried_then_the_record_spooled(
    locked: str, configured: Any, tmp_path: Path
) -> None:
    """Issue 14, item 4: a raw sqlite3.OperationalError after 10 s."""
    runtime = audit_world(configured, tmp_path, locked)
    with logkit.bind(**SCOPE, run_id="run_l"):
        event = logkit.audit("login", {"who": "u1"})
    assert event.seq is None  # not chained yet...
    sink = runtime.dispatchers[Role.AUDIT].sink
    assert Spool(tmp_path / "spool.db").count(sink) == 1  # ...but already durable


def test_strict_audit_on_a_locked_store_raises_audit_unavailable(
    locked: str, configured: Any, tmp_path: Path
) -> None:
    audit_world(configured, tmp_path, locked, strict=True)
    with logkit.bind(**SCOPE, run_id="run_l"), pytest.raises(AuditUnavailable) as raised:
        logkit.audit("login")
    assert isinstance(raised.value, logkit.SinkUnavailable)  # handled where outages are
    assert "locked" in str(raised.value)


def test_audit_with_neither_store_nor_spool_raises_audit_unavailable(
    configured: Any, tmp_path: Path
) -> None:
    (tmp_path / "audit.db").mkdir()
    (tmp_path / "spool-dir").mkdir()
    configured(
        env="dev",
        sinks={"timeline": "memory://", "audit": f"sqlite:///{tmp_path / 'audit.db'}"},
        dispatch={"spool_path": tmp_path / "spool-dir"},
        audit={"append_timeout_s": 0.2},
    )
    with logkit.bind(**SCOPE), pytest.raises(AuditUnavailable, match="nothing was kept"):
        logkit.audit("login")


def test_the_spooled_audit_record_is_chained_once_the_store_answers(
    configured: Any, tmp_path: Path
) -> None:
    path = tmp_path / "audit.db"
    path.mkdir()
    runtime = audit_world(configured, tmp_path, f"sqlite:///{path}")
    with logkit.bind(**SCOPE, run_id="run_r"):
        first = logkit.audit("login", {"n": 1})
    assert first.seq is None
    path.rmdir()
    with logkit.bind(**SCOPE, run_id="run_r"):
        second = logkit.audit("logout", {"n": 2})
    assert logkit.flush(10)
    store = runtime.stores[Role.AUDIT]
    chained = store.records("t_acme/run_r")
    assert {r.event_id for r in chained} == {first.event_id, second.event_id}


def test_emit_in_spool_durability_is_in_the_spool_when_it_returns(
    hung: Hung, configured: Any, tmp_path: Path
) -> None:
    runtime = hung_world(configured, tmp_path, durability="spool")
    events: list[Event] = []
    threads = [
        threading.Thread(
            target=lambda k=k: events.extend(
                logkit.emit("message", {"n": k * 100 + i}, **SCOPE) for i in range(100)
            )
        )
        for k in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert spooled(runtime.spool.path) == sorted(e.payload["n"] for e in events)  # type: ignore[type-var]
    assert len(events) == 400


def test_durability_spool_still_delivers_everything_to_a_healthy_backend(
    configured: Any, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    runtime = configured(
        env="dev",
        sinks={"timeline": db, "audit": db},
        dispatch={"spool_path": tmp_path / "spool.db", "durability": "spool"},
    )
    with logkit.bind(**SCOPE, run_id="run_d"):
        sent = [logkit.emit("message", {"n": i}).event_id for i in range(500)]
    assert logkit.flush(10)
    assert [e.event_id for e in logkit.run_events("t_acme", "run_d")] == sent  # in order
    assert runtime.spool.count() == 0


def test_durability_spool_degrades_to_memory_when_the_spool_is_unusable(
    configured: Any, tmp_path: Path
) -> None:
    (tmp_path / "spool-dir").mkdir()
    db = f"sqlite:///{tmp_path / 'store.db'}"
    configured(
        env="dev",
        sinks={"timeline": db, "audit": db},
        dispatch={"spool_path": tmp_path / "spool-dir", "durability": "spool"},
    )
    with logkit.bind(**SCOPE, run_id="run_m"):
        for i in range(50):
            logkit.emit("message", {"n": i})  # never raises: the request path goes on
    assert logkit.flush(10)
    assert len(logkit.run_events("t_acme", "run_m")) == 50
