"""`audit verify` can be neither crashed nor fooled: hypothesis rewrites one column of one stored
row (any value, any SQLite type, constraints dropped as an attacker with the file can) and
verify must report the change, as a library call and through the CLI, never raise.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from logkit import Event
from logkit.auditing.checkpoint import checkpoint_chains, load_keys
from logkit.auditing.report import BREAKS
from logkit.auditing.verify import verify
from logkit.cli.main import app as cli
from logkit.config import AuditConfig
from logkit.envelope import Env
from logkit.sinks.protocols import AuditStore, Role
from logkit.sinks.sqlite import SQLiteBackend
from tests.audit_tamper import ROW_COLUMNS
from tests.conftest import SCOPE

runner = CliRunner()
KEY = "fuzz-key"
TENANT = "t_acme"

# audit_chain as the store creates it, without NOT NULL and UNIQUE: whoever holds the file can
# rewrite the table, so verification must not lean on the constraints either.
LOOSE = """
CREATE TABLE loose (
    chain_id TEXT, seq INTEGER, event_id TEXT, tenant_id TEXT, run_id TEXT, user_id TEXT,
    event_type TEXT, ts_us INTEGER, hash TEXT, record BLOB, payload BLOB, payload_salt TEXT
);
INSERT INTO loose SELECT chain_id, seq, event_id, tenant_id, run_id, user_id, event_type, ts_us,
    hash, record, payload, payload_salt FROM audit_chain;
DROP TABLE audit_chain;
ALTER TABLE loose RENAME TO audit_chain;
CREATE TABLE loose_cp (id INTEGER PRIMARY KEY AUTOINCREMENT, chain_id TEXT, seq INTEGER,
    document TEXT);
INSERT INTO loose_cp SELECT * FROM audit_checkpoints;
DROP TABLE audit_checkpoints;
ALTER TABLE loose_cp RENAME TO audit_checkpoints;
"""
# The checkpoint rows' seq and id only file the signed document; verify reads the document.
CHECKPOINT_COLUMNS = ("chain_id", "document")


@dataclass(frozen=True)
class Template:
    db: Path
    seen: Path
    chain_rows: int
    checkpoint_rows: int


def _event(run_id: str | None, i: int, **fields: Any) -> Event:
    return Event(
        **SCOPE,
        run_id=run_id,
        user_id=f"u{i % 2}",
        event_type=fields.pop("event_type", "audit_action"),
        storage_class="audit",
        payload=fields.pop("payload", {"action": "export", "i": i, "note": "ü€𝄞"}),
        **fields,
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """Two run chains, an erased record with the dsar_erasure record explaining it, stored
    checkpoints, and a remembered state: every kind of row verify reads."""
    tmp = tmp_path_factory.mktemp("fuzz-template")
    db = tmp / "audit.db"
    backend = SQLiteBackend(db)
    store = backend.store(Role.AUDIT)
    assert isinstance(store, AuditStore)
    store.append([_event("run_a", i) for i in range(5)])
    store.append([_event("run_b", i) for i in range(3)])
    store.erase_payloads(_selector("run_a", "u1"))  # seqs 1 and 3 of run_a
    store.append(
        [_event(None, 0, event_type="dsar_erasure", payload={"erased": {"t_acme/run_a": [1, 3]}})]
    )
    keys = load_keys(AuditConfig(hmac_key=KEY), Env.PROD)  # type: ignore[arg-type]
    chains = store.chain_ids(TENANT)
    checkpoint_chains(store, chains, keys)
    seen = tmp / "seen.json"
    report = verify(store, chains, keys, seen_path=seen, tenant_id=TENANT)
    assert report.ok, report.as_dict()
    backend.close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(LOOSE)
    rows = conn.execute("SELECT COUNT(*) FROM audit_chain").fetchone()[0]
    checkpoints = conn.execute("SELECT COUNT(*) FROM audit_checkpoints").fetchone()[0]
    conn.close()
    return Template(db, seen, rows, checkpoints)


def _selector(run_id: str, user_id: str) -> Any:
    from logkit.sinks.protocols import Selector

    return Selector(TENANT, user_id=user_id, run_id=run_id)


@pytest.fixture
def copy(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("fuzz")


# --- what an attacker writes --------------------------------------------------------------------

values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=80),
    st.binary(max_size=80),
    st.sampled_from(["0" * 64, "t_acme/run_a", "t_acme/run_b", "t_acme", "audit_action", "2x"]),
)


@st.composite
def mutations(draw: st.DrawFn, template: Template) -> tuple[str, str, int, Any]:
    """(table, column, row number, how): a new value, or a change derived from the old one."""
    table = draw(st.sampled_from(["audit_chain"] * 5 + ["audit_checkpoints"]))
    if table == "audit_chain":
        column = draw(st.sampled_from(ROW_COLUMNS))
        row = draw(st.integers(0, template.chain_rows - 1))
    else:
        column = draw(st.sampled_from(CHECKPOINT_COLUMNS))
        row = draw(st.integers(0, template.checkpoint_rows - 1))
    how = draw(
        st.one_of(
            values.map(lambda v: ("set", v)),
            st.sampled_from(["flip_type", "flip_byte", "bump", "upper", "append"]).map(
                lambda k: (k, None)
            ),
        )
    )
    return table, column, row, how


def _derived(kind: str, old: Any) -> Any:
    if kind == "flip_type":  # the same content as another SQLite type
        if isinstance(old, bytes):
            return old.decode("utf-8", "replace")
        if isinstance(old, str):
            return old.encode()
        return None if old is not None else b""
    if kind == "flip_byte" and isinstance(old, bytes | str) and old:
        data = bytearray(old.encode() if isinstance(old, str) else old)
        data[len(data) // 2] ^= 0x01
        return bytes(data) if isinstance(old, bytes) else data.decode("utf-8", "replace")
    if kind == "bump" and isinstance(old, int):
        return old + 1
    if kind == "upper" and isinstance(old, str):
        return old.upper()
    if kind == "append" and isinstance(old, bytes | str):
        return old + (b" " if isinstance(old, bytes) else " ")
    return old


def mutate(db: Path, table: str, column: str, row: int, how: tuple[str, Any]) -> bool:
    """Apply one mutation; True when the stored (type, value) really changed."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        rowid, kind, old = conn.execute(
            f"SELECT rowid, typeof({column}), {column} FROM {table} ORDER BY rowid "
            "LIMIT 1 OFFSET ?",
            (row,),
        ).fetchone()
        new = how[1] if how[0] == "set" else _derived(how[0], old)
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (new, rowid))
        after = conn.execute(
            f"SELECT typeof({column}), {column} FROM {table} WHERE rowid = ?", (rowid,)
        ).fetchone()
    finally:
        conn.close()
    return after != (kind, old)


# --- the property -----------------------------------------------------------------------------


def run_verify(db: Path, seen: Path) -> Any:
    backend = SQLiteBackend(db)
    try:
        store = backend.store(Role.AUDIT)
        assert isinstance(store, AuditStore)
        keys = load_keys(AuditConfig(hmac_key=KEY), Env.PROD)  # type: ignore[arg-type]
        return verify(store, store.chain_ids(TENANT), keys, seen_path=seen, tenant_id=TENANT)
    finally:
        backend.close()


def run_cli(db: Path, seen: Path, human: bool) -> Any:
    env = {
        "LOGKIT_ENV": "prod",
        "LOGKIT_SINKS__AUDIT": f"sqlite:///{db}",
        "LOGKIT_SINKS__TIMELINE": f"sqlite:///{db}",
        "LOGKIT_AUDIT__HMAC_KEY": KEY,
        "LOGKIT_AUDIT__SEEN_STATE": str(seen),
        "LOGKIT_REDACTION__KEY": "k",
    }
    args = ["audit", "verify", "--tenant", TENANT, *([] if human else ["--json"])]
    return runner.invoke(cli, args, env=env)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), human=st.booleans())
def test_any_value_in_any_column_is_reported_never_raised(
    template: Template, copy: Path, data: st.DataObject, human: bool
) -> None:
    table, column, row, how = data.draw(mutations(template))
    db, seen = copy / f"audit-{id(data)}.db", copy / f"seen-{id(data)}.json"
    shutil.copy(template.db, db)
    shutil.copy(template.seen, seen)
    changed = mutate(db, table, column, row, how)
    assume(changed)  # a value SQLite stores back as it was is no attack

    report = run_verify(db, seen)  # must not raise
    assert not report.ok, (table, column, row, how)
    bad = [c for c in report.chains if c.status != "ok"]
    assert bad and all(
        isinstance(c.first_bad_seq, int) and c.kind in BREAKS and c.detail for c in bad
    )

    shutil.copy(template.seen, seen)  # the CLI sees the same evidence
    result = run_cli(db, seen, human)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.output  # no traceback
    if not human:
        printed = json.loads(result.stdout)
        assert printed["ok"] is False
        shown = {(c["chain_id"], c.get("first_bad_seq"), c.get("kind")) for c in printed["chains"]}
        assert shown == {(c.chain_id, c.first_bad_seq, c.kind) for c in report.chains}


def test_the_untouched_template_verifies_through_the_cli(template: Template, copy: Path) -> None:
    shutil.copy(template.db, copy / "audit.db")
    shutil.copy(template.seen, copy / "seen.json")
    result = run_cli(copy / "audit.db", copy / "seen.json", human=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True


# --- the same on Firestore (the emulator): any value of any type in any field -----------------


@dataclass
class FirestoreWorld:
    store: AuditStore
    tamper: Any
    seen: Path
    positions: list[tuple[str, int]]


@pytest.fixture(scope="module")
def firestore_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirestoreWorld]:
    from tests.audit_tamper_firestore import FirestoreTamper
    from tests.sinks.backends import make_backend

    tmp = tmp_path_factory.mktemp("fuzz-firestore")
    backend: Any = make_backend("firestore", tmp)
    store = backend.store(Role.AUDIT)
    store.append([_event("run_a", i) for i in range(4)])
    store.append([_event("run_b", i) for i in range(2)])
    keys = load_keys(AuditConfig(hmac_key=KEY), Env.PROD)  # type: ignore[arg-type]
    chains = store.chain_ids(TENANT)
    checkpoint_chains(store, chains, keys)
    seen = tmp / "seen.json"
    assert verify(store, chains, keys, seen_path=seen, tenant_id=TENANT).ok
    tamper = FirestoreTamper(backend.settings.project, backend.settings.root)
    positions = [(c, s) for c in chains for s in tamper.seqs(c)]
    yield FirestoreWorld(store, tamper, seen, positions)
    backend.close()


safe_ints = st.integers(
    min_value=-(2**53) + 1, max_value=2**53 - 1
)  # as far as the JS emulator goes
firestore_values = st.one_of(
    st.none(),
    st.booleans(),
    safe_ints,
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.lists(safe_ints, max_size=2),
    st.dictionaries(st.text(min_size=1, max_size=3), safe_ints, max_size=2),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_firestore_any_value_in_any_field_is_reported_never_raised(
    firestore_world: FirestoreWorld, tmp_path: Path, data: st.DataObject
) -> None:
    world = firestore_world
    chain_id, seq = data.draw(st.sampled_from(world.positions))
    field = data.draw(st.sampled_from([c for c in ROW_COLUMNS if c not in ("chain_id", "seq")]))
    value = data.draw(firestore_values)
    document = world.tamper._record(chain_id, seq)
    before = document.get().to_dict()
    assume(type(before.get(field)) is not type(value) or before.get(field) != value)
    document.set({**before, field: value})
    try:
        seen = tmp_path / f"seen-{id(data)}.json"
        shutil.copy(world.seen, seen)
        keys = load_keys(AuditConfig(hmac_key=KEY), Env.PROD)  # type: ignore[arg-type]
        chains = world.store.chain_ids(TENANT)
        report = verify(world.store, chains, keys, seen_path=seen, tenant_id=TENANT)
    finally:
        document.set(before)  # the next example starts from the intact chain
    assert not report.ok, (chain_id, seq, field, value)
    assert all(c.kind in BREAKS and c.detail for c in report.chains if c.status != "ok")
