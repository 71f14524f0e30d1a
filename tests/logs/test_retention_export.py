"""Retention, DSAR export and DSAR erasure: on SQLite and on both emulators, and through the CLI.

Events are planted straight into the stores with chosen timestamps (the timeline holding copies
of the audit and cost events, as the router does), so retention runs against a frozen clock.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import logkit
from logkit import dsar, retention
from logkit.auditing.checkpoint import load_keys
from logkit.auditing.verify import verify
from logkit.cli.main import app as cli
from logkit.envelope import Event
from logkit.errors import RequestRefusedError
from logkit.redaction.sealing import subject_of
from logkit.runtime import Runtime
from logkit.sinks.protocols import AuditStore, EventStore, Query, Role, Selector
from logkit.sinks.registry import open_backend
from tests.conftest import SCOPE, memory_sinks
from tests.sinks.backends import DURABLE_KINDS, discard, uri_for

runner = CliRunner()
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
SECRET = "Ximena-7f3e9c"  # a raw value planted in the subject's payloads


def days_ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def event(kind: str, age_days: float, **fields: Any) -> Event:
    """An ops, cost or audit event of the given age (scope from SCOPE)."""
    types = {"ops": "message", "cost": "usage_recorded", "audit": "audit_action"}
    data: dict[str, Any] = {**SCOPE, "event_type": types[kind], "storage_class": kind}
    data["ts"] = days_ago(age_days)
    data["payload"] = {"note": f"{kind} {age_days}d"}
    data.update(fields)
    return Event(**data)


class World:
    """A configured runtime on one backend kind, and helpers to plant and read events."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def store(self, role: Role) -> EventStore:
        return self.runtime.stores[role]

    @property
    def audit(self) -> AuditStore:
        store = self.runtime.stores[Role.AUDIT]
        assert isinstance(store, AuditStore)
        return store

    def plant(self, events: list[Event]) -> list[Event]:
        """Store like the router: audit chained, cost in the cost store, all on the timeline."""
        audit = self.audit.append([e for e in events if e.storage_class == "audit"])
        rest = [e for e in events if e.storage_class != "audit"]
        self.store(Role.COST).write([e for e in rest if e.storage_class == "cost"])
        self.store(Role.TIMELINE).write(rest + audit)
        stored = {e.event_id: e for e in rest + audit}
        return [stored[e.event_id] for e in events]  # in the order given

    def read(self, role: Role, tenant_id: str = "t_acme", **filters: Any) -> list[Event]:
        events, cursor = [], None
        while True:
            page = self.store(role).query(Query(tenant_id, cursor=cursor, limit=1000, **filters))
            events += page.events
            if page.next_cursor is None:
                return events
            cursor = page.next_cursor

    def verify(self, tenant_id: str = "t_acme") -> Any:
        keys = load_keys(self.runtime.settings.audit, self.runtime.settings.env)
        return verify(self.audit, self.audit.chain_ids(tenant_id), keys)


def subject_events() -> list[Event]:
    """What the subject u_42 did, and what u_7 (someone else) did, across every class."""
    mine = {"user_id": "u_42", "payload": {"note": SECRET}}
    theirs = {"user_id": "u_7"}
    return [
        event("ops", 1, run_id="run_a", **mine),
        event("ops", 2, run_id="run_b", **mine),
        event("cost", 1, run_id="run_a", **mine),
        event("audit", 1, run_id="run_a", **mine),
        event("audit", 3, **mine),  # the tenant chain
        event("ops", 1, run_id="run_a", **theirs),
        event("cost", 1, run_id="run_a", **theirs),
        event("audit", 1, run_id="run_a", **theirs),
        event("ops", 1, tenant_id="t_other", user_id="u_42"),  # same user id, other tenant
    ]


@pytest.fixture(params=DURABLE_KINDS)
def world(request: pytest.FixtureRequest, tmp_path: Path, configured: Any) -> Iterator[World]:
    """SQLite, the Firestore emulator (all roles), or BigQuery (timeline and cost; the audit
    chain of record on SQLite, since BigQuery cannot be one)."""
    uri = uri_for(request.param, tmp_path)
    audit_uri = uri if request.param != "bigquery" else f"sqlite:///{tmp_path / 'audit.db'}"
    open_backend(uri).check_schema(create=True)
    runtime = configured(
        env="dev",
        sinks={"timeline": uri, "cost": uri, "audit": audit_uri},
        audit={"hmac_key": "test-checkpoint-key"},
        retention=RETENTION,
    )
    yield World(runtime)
    runtime.flush(30)  # the records' timeline copies land before the dataset goes
    for backend in runtime.backends.values():
        discard(backend)


RETENTION: dict[str, Any] = {
    "ops_days": 30,
    "cost_days": 90,
    "audit_days": 365,
    "rules": [
        {"app": "bot-fast", "ops_days": 7},  # in every tenant
        {"tenant": "t_acme", "app": "bot-slow", "ops_days": 60, "cost_days": 120},
        {"tenant": "t_held", "legal_hold": True},
    ],
}


# --- export ------------------------------------------------------------------------------------


def test_export_has_every_event_of_the_subject_and_nobody_elses(
    world: World, tmp_path: Path
) -> None:
    planted = world.plant(subject_events())
    result = dsar.export(dsar.ExportRequest("t_acme", user_id="u_42"), tmp_path / "x.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "x.jsonl").read_text().splitlines()]
    got = {(line["store"], line["event"]["event_id"]) for line in lines}
    expected = {
        (role, e.event_id)
        for e in planted
        if e.tenant_id == "t_acme" and e.user_id == "u_42"
        for role in ("timeline", *((str(e.storage_class),) if e.storage_class != "ops" else ()))
    }
    assert got == expected and len(lines) == len(expected) == 8
    manifest = json.loads((tmp_path / "x.manifest.json").read_text())
    assert manifest["counts"] == {"timeline": 5, "audit": 2, "cost": 1}
    import hashlib

    assert manifest["sha256"] == hashlib.sha256((tmp_path / "x.jsonl").read_bytes()).hexdigest()
    assert manifest["logkit_version"] == logkit.__version__
    assert manifest["time_range"]["first"] == days_ago(3).isoformat()
    chains = {c["chain_id"]: c for c in manifest["audit_chains"]}
    assert set(chains) == {"t_acme/run_a", "t_acme/_tenant"}
    assert all(c["checkpoint"]["seq"] == c["head_seq"] for c in chains.values())
    record = _records(world, "dsar_export")[-1]
    assert record.event_id == result.record_id
    assert record.payload["counts"] == manifest["counts"] and SECRET not in record.to_json()


def test_export_narrows_by_run_and_time(world: World, tmp_path: Path) -> None:
    world.plant(subject_events())
    request = dsar.ExportRequest(
        "t_acme", user_id="u_42", run_id="run_a", since=days_ago(1.5), until=NOW
    )
    result = dsar.export(request, tmp_path / "run.jsonl")
    assert result.manifest["counts"] == {"timeline": 3, "audit": 1, "cost": 1}


json_ids = st.sampled_from(["u_1", "u_2", "u_3", None])


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["ops", "cost", "audit"]), json_ids, st.sampled_from(["r1", "r2", None])
        ),
        max_size=25,
    ),
    json_ids,
)
def test_export_completeness_for_any_mix_of_subjects(
    memory_world: World,
    tmp_path: Path,
    spec: list[tuple[str, str | None, str | None]],
    user: str | None,
) -> None:
    tenant = f"t_h{uuid.uuid4().hex[:10]}"
    planted = memory_world.plant(
        [
            event(kind, i, tenant_id=tenant, user_id=u, run_id=r)
            for i, (kind, u, r) in enumerate(spec)
        ]
    )
    out = tmp_path / f"{tenant}.jsonl"
    dsar.export(dsar.ExportRequest(tenant, user_id=user), out)
    exported = [json.loads(line)["event"]["event_id"] for line in out.read_text().splitlines()]
    wanted = [e for e in planted if user is None or e.user_id == user]
    copies = sum(1 + (e.storage_class != "ops") for e in wanted)  # cost/audit: their store too
    assert len(exported) == copies and set(exported) == {e.event_id for e in wanted}


@pytest.fixture
def memory_world(tmp_path: Path, configured: Any) -> World:
    return World(configured(**memory_sinks(tmp_path), retention=RETENTION))


def test_export_refuses_to_overwrite_and_leaves_no_partial_file(
    memory_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from logkit.errors import SinkUnavailable

    memory_world.plant(subject_events())
    (tmp_path / "taken.jsonl").write_text("keep me")
    with pytest.raises(FileExistsError):
        dsar.export(dsar.ExportRequest("t_acme"), tmp_path / "taken.jsonl")
    assert (tmp_path / "taken.jsonl").read_text() == "keep me"

    def down(query: Query) -> Any:
        raise SinkUnavailable("cost store unreachable (test)")

    monkeypatch.setattr(memory_world.store(Role.COST), "query", down)
    with pytest.raises(SinkUnavailable):
        dsar.export(dsar.ExportRequest("t_acme"), tmp_path / "half.jsonl")
    assert not (tmp_path / "half.jsonl").exists()
    assert not (tmp_path / "half.manifest.json").exists()
    monkeypatch.delattr(memory_world.store(Role.COST), "query")  # the class method again
    monkeypatch.setattr(memory_world.audit, "append", down)  # the export cannot be recorded
    with pytest.raises(SinkUnavailable):
        dsar.export(dsar.ExportRequest("t_acme"), tmp_path / "unrecorded.jsonl")
    assert list(tmp_path.glob("unrecorded*")) == []


# --- delete ------------------------------------------------------------------------------------


def test_delete_erases_the_subject_everywhere_and_the_chains_still_verify(world: World) -> None:
    keys = world.runtime.keys
    assert keys is not None
    keys.key(subject_of("t_acme", "u_42"), create=True)  # the subject has sealed payloads
    world.plant(subject_events())
    before = {role: len(world.read(role)) for role in Role}

    result = dsar.delete("t_acme", "u_42")

    assert result.ok and not result.nothing_left
    assert result.counts() == {"timeline_deleted": 5, "audit_erased": 2, "cost_deleted": 1}
    assert (
        result.keys_destroyed == 1 and keys.key(subject_of("t_acme", "u_42"), create=False) is None
    )
    assert world.read(Role.TIMELINE, user_id="u_42") == []
    assert world.read(Role.COST, user_id="u_42") == []
    erased = world.read(Role.AUDIT, user_id="u_42")
    assert len(erased) == 2 and all(e.payload == {} and e.payload_salt is None for e in erased)
    assert all(e.payload_digest for e in erased)  # kept: the chain still verifies
    # Nobody else lost anything (the erasure's own record aside).
    assert len(world.read(Role.TIMELINE, user_id="u_7")) == 3
    assert len(world.read(Role.TIMELINE, "t_other")) == 1
    assert len(world.read(Role.COST)) == before[Role.COST] - 1
    report = world.verify()
    assert report.ok and sum(c.erased for c in report.chains) == 2
    record = _records(world, "dsar_erasure")[-1]
    assert record.event_id == result.record_id and record.user_id is None
    assert record.payload["counts"] == result.counts()
    assert record.payload["erased"] == {"t_acme/_tenant": [0], "t_acme/run_a": [0]}
    assert SECRET not in _everything(world)


def test_dry_run_changes_nothing_and_rerun_finds_nothing_left(world: World) -> None:
    world.plant(subject_events())
    snapshot = _everything(world)
    plan = dsar.delete("t_acme", "u_42", dry_run=True)
    assert plan.record_id is None and _everything(world) == snapshot
    done = dsar.delete("t_acme", "u_42")
    assert done.counts() == plan.counts() and done.erased_chains == plan.erased_chains
    again = dsar.delete("t_acme", "u_42")
    assert again.nothing_left and again.ok and again.erased_chains == {}
    assert dsar.delete("t_acme", "u_42", dry_run=True).nothing_left
    assert world.verify().ok


def test_legal_hold_blocks_deletion(world: World) -> None:
    world.plant(
        [
            event("ops", 400, tenant_id="t_held", user_id="u_42"),
            event("audit", 900, tenant_id="t_held"),
        ]
    )
    with pytest.raises(RequestRefusedError, match="legal hold on tenant t_held"):
        dsar.delete("t_held", "u_42")
    result = retention.apply(now=NOW)
    assert "tenant t_held" in result.held
    # (the retention_applied record's timeline copy arrives through the dispatcher, when it does)
    kept = [e for e in world.read(Role.TIMELINE, "t_held") if e.event_type != "retention_applied"]
    assert len(kept) == 2
    assert all(e.payload for e in world.read(Role.AUDIT, "t_held"))


def test_spooled_events_refuse_an_erasure_that_they_would_undo(
    memory_world: World,
) -> None:
    memory_world.runtime.spool.put("timeline", [event("ops", 1, user_id="u_42")])
    with pytest.raises(RequestRefusedError, match="spool"):
        dsar.delete("t_acme", "u_42")


def test_sqlite_keeps_no_erased_bytes_on_disk(tmp_path: Path, configured: Any) -> None:
    db = tmp_path / "logkit.db"
    runtime = configured(
        env="dev", sinks={"timeline": f"sqlite:///{db}", "audit": f"sqlite:///{db}"}
    )
    world = World(runtime)
    world.plant(subject_events())
    assert SECRET.encode() in _disk_bytes(db)
    dsar.delete("t_acme", "u_42")
    logkit.shutdown()
    assert SECRET.encode() not in _disk_bytes(db)


def _disk_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


# --- retention -----------------------------------------------------------------------------


def test_retention_with_a_frozen_clock(world: World) -> None:
    ages = {
        "ops_old": event("ops", 31),
        "ops_new": event("ops", 29),
        "fast_old": event("ops", 8, app_id="bot-fast"),
        "fast_new": event("ops", 6, app_id="bot-fast"),
        "slow_mid": event("ops", 45, app_id="bot-slow"),
        "slow_old": event("ops", 61, app_id="bot-slow"),
        "slow_cost": event("cost", 100, app_id="bot-slow"),
        "cost_old": event("cost", 91),
        "cost_new": event("cost", 89),
        "audit_old": event("audit", 366),
        "audit_new": event("audit", 364),
        "other_tenant_old": event("ops", 31, tenant_id="t_other"),
    }
    planted = dict(zip(ages, world.plant(list(ages.values())), strict=True))
    result = retention.apply(clock=lambda: NOW)
    assert result.ok, result.as_dict()["failures"]
    kept = {e.event_id for t in ("t_acme", "t_other") for e in world.read(Role.TIMELINE, t)}
    gone = {name for name, e in planted.items() if e.event_id not in kept}
    assert gone == {"ops_old", "fast_old", "slow_old", "cost_old", "audit_old", "other_tenant_old"}
    assert {e.event_id for e in world.read(Role.COST)} == {
        planted[n].event_id for n in ("slow_cost", "cost_new")
    }
    audit = {e.event_id: e for e in world.read(Role.AUDIT)}
    assert audit[planted["audit_old"].event_id].payload_salt is None  # erased, still chained
    assert audit[planted["audit_new"].event_id].payload
    assert world.verify().ok
    record = _records(world, "retention_applied")[-1]
    assert record.payload["counts"]["timeline:ops+stream"] == 3
    assert record.payload["counts"]["audit:audit"] == 1
    again = retention.apply(now=NOW)
    assert again.ok and sum(again.totals().values()) == 0


def test_retention_dry_run_counts_and_changes_nothing(world: World) -> None:
    world.plant([event("ops", 31), event("cost", 91), event("audit", 400), event("ops", 1)])
    snapshot = _everything(world)
    records = len(_records(world, "retention_applied"))
    plan = retention.apply(now=NOW, dry_run=True)
    assert plan.totals() == {"timeline": 3, "cost": 1, "audit": 1}
    assert _everything(world) == snapshot
    assert len(_records(world, "retention_applied")) == records
    assert retention.apply(now=NOW).totals() == plan.totals()


def test_effective_rules_most_specific_wins() -> None:
    from logkit.config import RetentionConfig

    config = RetentionConfig.model_validate(RETENTION)
    slow = retention.rule_for(config, "t_acme", "bot-slow")
    assert (slow.ops_days, slow.cost_days, slow.audit_days) == (60, 120, 365)
    assert retention.rule_for(config, "t_zed", "bot-fast").ops_days == 7
    assert retention.rule_for(config, "t_zed", "bot-slow").ops_days == 30  # t_acme's rule only
    assert retention.held(config, "t_held") == ["tenant t_held"]
    bad = RetentionConfig.model_validate({"audit_days": 10})
    with pytest.raises(logkit.ConfigError, match="audit_days"):
        retention.effective_rules(bad)


# --- the CLI, as a new user would use it ---------------------------------------------------------


@pytest.fixture
def demo_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    for name in ("FIRESTORE_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path
    logkit.configure(**memory_sinks(tmp_path / "restored"))


def test_demo_export_delete_verify(demo_dir: Path) -> None:
    assert runner.invoke(cli, ["demo"]).exit_code == 0
    subject = ["--tenant", "t_acme", "--user", "u_1042"]
    exported = runner.invoke(cli, ["dsar", "export", *subject, "--out", "x.jsonl"])
    assert exported.exit_code == 0, exported.output
    assert "exported" in exported.output and (demo_dir / "x.manifest.json").exists()
    assert "maria.gonzalez" not in (demo_dir / "x.jsonl").read_text()  # the gate ran first
    asked = runner.invoke(cli, ["dsar", "delete", *subject], input="n\n")
    assert asked.exit_code == 1 and "nothing was deleted" in asked.output
    deleted = runner.invoke(cli, ["dsar", "delete", *subject, "--yes"])
    assert deleted.exit_code == 0, deleted.output
    assert "deleted" in deleted.output and "dsar_erasure" in deleted.output
    verified = runner.invoke(cli, ["audit", "verify", "--tenant", "t_acme", "--json"])
    assert verified.exit_code == 0, verified.output
    assert sum(c["erased"] for c in json.loads(verified.output)["chains"]) == 2
    again = runner.invoke(cli, ["dsar", "delete", *subject, "--yes"])
    assert again.exit_code == 0 and "nothing left" in again.output


def test_cli_usage_errors_exit_2_and_change_nothing(demo_dir: Path) -> None:
    (demo_dir / "taken.jsonl").write_text("keep")
    cases = [
        (["dsar", "export", "--tenant", "acme", "--out", "x.jsonl"], "is not a tenant id"),
        (["dsar", "export", "--tenant", "t_acme", "--out", "taken.jsonl"], "already exists"),
        (
            ["dsar", "export", "--tenant", "t_acme", "--since", "someday", "--out", "y.jsonl"],
            "--since",
        ),
        (["dsar", "delete", "--tenant", "t_acme", "--user", "u_1", "--json"], "--json needs --yes"),
        (["dsar", "delete", "--tenant", "t_acme", "--user", " "], "--user must not be empty"),
    ]
    for args, message in cases:
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
    assert (demo_dir / "taken.jsonl").read_text() == "keep"
    assert not (demo_dir / "x.jsonl").exists() and not (demo_dir / "y.jsonl").exists()


def test_cli_dry_run_json_and_legal_hold(demo_dir: Path) -> None:
    assert runner.invoke(cli, ["demo"]).exit_code == 0
    subject = ["--tenant", "t_acme", "--user", "u_1042"]
    dry = runner.invoke(cli, ["dsar", "delete", *subject, "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.output)
    assert plan["dry_run"] and plan["counts"]["audit_erased"] == 2 and plan["record"] is None
    toml = demo_dir / "held.toml"
    toml.write_text('[[retention.rules]]\ntenant = "t_acme"\nlegal_hold = true\n')
    held = runner.invoke(cli, ["dsar", "delete", *subject, "--yes", "--config", str(toml)])
    assert held.exit_code == 1 and "legal hold on tenant t_acme" in held.output
    again = runner.invoke(cli, ["dsar", "delete", *subject, "--dry-run", "--json"])
    assert json.loads(again.output)["counts"] == plan["counts"]  # nothing was deleted
    shown = runner.invoke(
        cli, ["retention", "show", "--tenant", "t_acme", "--config", str(toml), "--json"]
    )
    assert shown.exit_code == 0 and json.loads(shown.output)["rules"][0]["legal_hold"] is True
    applied = runner.invoke(cli, ["retention", "apply", "--config", str(toml)])
    assert applied.exit_code == 0 and "legal hold" in applied.output


def test_cli_unreachable_backend_is_one_line_and_exit_3(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as free:  # a loopback port nobody listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    toml = demo_dir / "down.toml"
    toml.write_text(
        '[sinks]\ntimeline = "bigquery://logkit-test/ds_down?timeout=1"\n'
        f'audit = "sqlite:///{demo_dir / "audit.db"}"\n'
    )
    for args in (
        ["retention", "apply", "--config", str(toml)],
        ["dsar", "delete", "--tenant", "t_acme", "--user", "u_1", "--yes", "--config", str(toml)],
        ["dsar", "export", "--tenant", "t_acme", "--out", "z.jsonl", "--config", str(toml)],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 3, (args, result.output)  # docs/cli.md: unavailable
        assert "bigquery" in result.output.lower() and "Traceback" not in result.output
    assert not (demo_dir / "z.jsonl").exists()


# --- helpers ---------------------------------------------------------------------------------


def _records(world: World, event_type: str) -> list[Event]:
    return [e for e in world.read(Role.AUDIT) if e.event_type == event_type]


def _everything(world: World) -> str:
    """Every stored event of every role, for before/after comparisons and raw-value searches."""
    events = [
        e.to_json()
        for role in Role
        for tenant in ("t_acme", "t_other", "t_held")
        for e in world.read(role, tenant)
    ]
    return "\n".join(sorted(events))


ages = st.floats(min_value=0, max_value=500, allow_nan=False)
apps = st.sampled_from(["support-bot", "bot-fast", "bot-slow"])


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.sampled_from(["ops", "cost", "audit"]), ages, apps), max_size=30))
def test_retention_keeps_exactly_what_its_rules_keep(
    memory_world: World, spec: list[tuple[str, float, str]]
) -> None:
    from logkit.config import RetentionConfig

    tenant = f"t_p{uuid.uuid4().hex[:10]}"
    planted = memory_world.plant(
        [event(kind, age, tenant_id=tenant, app_id=app) for kind, age, app in spec]
    )
    assert retention.apply(now=NOW).ok
    config = RetentionConfig.model_validate(RETENTION)
    kept = {e.event_id for e in memory_world.read(Role.TIMELINE, tenant)}
    audit = {e.event_id: e for e in memory_world.read(Role.AUDIT, tenant)}
    for e in planted:
        rule = retention.rule_for(config, tenant, e.app_id)
        expired = e.ts < NOW - dt.timedelta(days=rule.days(str(e.storage_class)))
        assert (e.event_id not in kept) == expired
        if e.storage_class == "audit":
            assert (audit[e.event_id].payload_salt is None) == expired


@pytest.mark.parametrize("kind", ["firestore", "bigquery"])
def test_new_store_operations_map_an_unreachable_backend(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """count, tenant_ids and erase_payloads raise logkit's SinkError, never a driver error."""
    import socket

    from logkit.errors import SinkError

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    if kind == "firestore":
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{port}")
        backend = open_backend("firestore://logkit-test?root=down&timeout=1")
    else:
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        backend = open_backend("bigquery://logkit-test/ds_down?timeout=1")
    subject = Selector("t_acme", user_id="u_42")
    calls: list[Any] = [
        lambda: backend.store(Role.TIMELINE).count(subject),
        lambda: backend.store(Role.COST).delete(subject),
        lambda: backend.store(Role.TIMELINE).tenant_ids(),
    ]
    if kind == "firestore":
        audit = backend.store(Role.AUDIT)
        assert isinstance(audit, AuditStore)
        calls.append(lambda: audit.erase_payloads(subject))
    for call in calls:
        with pytest.raises(SinkError):
            call()
    backend.close()
