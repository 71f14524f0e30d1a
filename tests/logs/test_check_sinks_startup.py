"""``logkit check-sinks`` checks what start-up checks, and its probes stay out of real data.

Each concern configure() validates is its own line (table and --json): the stores, the redaction
key, the audit checkpoint keys, the sealed-payload key provider; the service scope and the
contract policy are reported. A config check-sinks passes starts; one that would die at start-up
fails here first, naming the same problem.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import logkit
from logkit import ConfigError
from logkit.cli.main import app as cli
from logkit.config import load_settings
from logkit.envelope import PROBE_TENANT, is_reserved_tenant
from logkit.sinks.protocols import Query, Role
from logkit.sinks.registry import open_backend

runner = CliRunner()


@pytest.fixture(autouse=True)
def _own_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative defaults (``.logkit/audit-seen.json``, the state `audit verify` remembers) land
    in the test's directory, not in the checkout, where a second run would find the first's."""
    monkeypatch.chdir(tmp_path)


def config(tmp_path: Path, env: str = "staging", *, extra: str = "", key: bool = True) -> Path:
    db = f"sqlite:///{tmp_path / 'logkit.db'}"
    text = f'env = "{env}"\n[sinks]\ntimeline = "{db}"\naudit = "{db}"\n'
    text += "[redaction]\n"
    if key:
        text += 'key = "a-real-secret"\n'
    text += f'encryption_key_dir = "{tmp_path / "keys"}"\n{extra}'
    path = tmp_path / "logkit.toml"
    path.write_text(text)
    return path


def check(path: Path) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(cli, ["check-sinks", "--config", str(path), "--json"])
    return result.exit_code, json.loads(result.output)


def lines(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["check"]: c for c in report["checks"]}


def test_every_concern_is_its_own_line(tmp_path: Path) -> None:
    code, report = check(config(tmp_path, extra='[service]\nproject_id = "p"\napp_id = "a"\n'))
    assert code == 0, report
    by_name = lines(report)
    assert list(by_name) == [
        "timeline",
        "audit",
        "cost",
        "redaction key",
        "audit keys",
        "sealed-payload keys",
        "service scope",
        "contract policy",
    ]
    assert all(c["ok"] for c in report["checks"])
    assert [c["kind"] for c in report["checks"]][:3] == ["sink"] * 3
    assert by_name["service scope"]["backend"] == "env=staging project_id=p app_id=a surface_id=-"
    assert "on_violation=record" in by_name["contract policy"]["backend"]
    table = runner.invoke(cli, ["check-sinks", "--config", str(config(tmp_path))])
    assert table.exit_code == 0
    for name in by_name:
        assert name.split()[0] in table.output  # a narrow terminal folds long names


def test_a_staging_config_without_a_redaction_key_fails_as_start_up_would(tmp_path: Path) -> None:
    """Was: exit 0, and then the app died at start ("no redaction key")."""
    path = config(tmp_path, key=False)
    code, report = check(path)
    assert code == 1 and not report["ok"]
    line = lines(report)["redaction key"]
    assert not line["ok"] and "no redaction key" in line["problem"]
    assert all(c["ok"] for c in report["checks"] if c["check"] != "redaction key")
    with pytest.raises(ConfigError, match="no redaction key"):
        logkit.configure(path)


def test_unreadable_audit_keys_fail_here_and_at_start_up(tmp_path: Path, configured: Any) -> None:
    path = config(tmp_path, extra=f'[audit]\nhmac_key_file = "{tmp_path / "gone.key"}"\n')
    code, report = check(path)
    line = lines(report)["audit keys"]
    assert code == 1 and not line["ok"] and "cannot read key file" in line["problem"]
    with pytest.raises(ConfigError, match="cannot read key file"):
        configured(path)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    path = config(tmp_path, extra=f'[audit]\ned25519_public_key_file = "{bad}"\n')
    code, report = check(path)
    assert code == 1 and "Ed25519" in lines(report)["audit keys"]["problem"]


def test_audit_keys_that_are_there_are_reported(tmp_path: Path) -> None:
    code, report = check(config(tmp_path, "prod", extra='[audit]\nhmac_key = "sign-here"\n'))
    line = lines(report)["audit keys"]
    assert code == 0 and line["ok"] and "signing: hmac-sha256" in line["backend"]
    code, report = check(config(tmp_path, "prod"))
    assert code == 0 and "cannot sign" in lines(report)["audit keys"]["note"]


def test_an_unreachable_sealed_payload_key_provider_fails(tmp_path: Path) -> None:
    path = config(tmp_path)
    (tmp_path / "keys").write_text("a file where the key directory should be")
    code, report = check(path)
    line = lines(report)["sealed-payload keys"]
    assert code == 1 and not line["ok"] and line["problem"]


def test_probes_go_to_the_reserved_tenant_and_leave_no_customer_data(tmp_path: Path) -> None:
    """Was: a probe record appended to a real audit chain on every run."""
    path = config(tmp_path)
    settings = load_settings(path)
    backend = open_backend(settings.sinks.audit or "")
    try:
        audit: Any = backend.store(Role.AUDIT)
        from logkit.envelope import Event

        audit.append(
            [
                Event(
                    tenant_id="t_acme",
                    env="staging",
                    project_id="p",
                    surface_id="s",
                    app_id="a",
                    event_type="audit_action",
                    storage_class="audit",
                    payload={"action": "login"},
                )
            ]
        )
        head = audit.head("t_acme/_tenant")
        for _ in range(2):
            assert check(path)[0] == 0
        assert audit.head("t_acme/_tenant") == head
        assert audit.tenant_ids() == sorted(["t_acme", PROBE_TENANT])
        assert is_reserved_tenant(PROBE_TENANT)
        assert [r.seq for r in audit.records(f"{PROBE_TENANT}/check-sinks")] == [0, 1]
        for role in (Role.TIMELINE, Role.COST):  # deleted again after the read-back
            store = backend.store(role)
            assert store.tenant_ids() == []
            assert store.query(Query(tenant_id=PROBE_TENANT)).events == []
    finally:
        backend.close()
    verified = runner.invoke(
        cli, ["audit", "verify", "--config", str(path), "--tenant", PROBE_TENANT]
    )
    assert verified.exit_code == 0, verified.output
