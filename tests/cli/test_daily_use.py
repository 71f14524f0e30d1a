"""Issue 20, tried as a new user would: every reproduction (crashes on stored data and input,
inconsistent exit codes, missing conveniences) through Typer's CliRunner and the public API."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import logkit
from logkit import ContractError, dsar
from logkit.cli.common import CliError, parse_time
from logkit.cli.main import app
from tests.conftest import SCOPE, TEST_REDACTION_KEY
from tests.fixtures.legacy_models import UsageEvent

ROOT = Path(__file__).parents[2]
runner = CliRunner()
LONG_RUN = "run_0192f5e2c0ffee00deadbeef00000000_with_a_long_suffix_for_piping"
LONG_MODEL = "publishers/google/models/gemini-2.5-flash-preview-with-a-long-name"


@dataclass
class World:
    dir: Path
    config: Path

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(app, [*args, "--config", str(self.config)], env=env)

    def json(self, *args: str) -> Any:
        result = self.run(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


CONFIG = f"""env = "dev"
[sinks]
timeline = "sqlite:///logkit.db"
audit = "sqlite:///logkit.db"
cost = "sqlite:///logkit.db"
[dispatch]
spool_path = "spool.db"
[redaction]
key = "{TEST_REDACTION_KEY}"
encryption_key_dir = "keys"
"""


@pytest.fixture
def world(in_tmp: Path) -> World:
    """An SQLite store in a temp dir and the logkit.toml naming it (relative paths)."""
    config = in_tmp / "logkit.toml"
    config.write_text(CONFIG)
    logkit.configure(config)
    return World(in_tmp, config)


def flushed() -> None:
    assert logkit.flush(10)


def legacy_usage(cost: Any, **fields: Any) -> logkit.Event:
    """A legacy UsageEvent as old rows hold it (not validated: cost may be "n/a")."""
    legacy = UsageEvent.model_construct(
        id=fields.pop("id", "u_legacy_1"),
        tenant_id="t_acme",
        env="dev",
        surface="chat",
        tool_type="llm",
        tool_id=None,
        provider="acme",
        model_or_plan_id="legacy-model",
        tokens_input=7,
        tokens_output=3,
        cost=cost,
        currency=fields.pop("currency", "USD"),
        metadata={},
        created_at=dt.datetime.now(dt.UTC),
    )
    return logkit.from_legacy(legacy, project_id="p_support", app_id="support-bot", **fields)


# --- crashes on stored data --------------------------------------------------------------------


def test_a_legacy_cost_of_na_is_unpriced_in_timeline_list_show_and_usage_report(
    world: World,
) -> None:
    with logkit.bind(**{**SCOPE, "env": "dev"}), logkit.flow("answer") as run:
        logkit.emit_event(legacy_usage("n/a", run_id=run.run_id))
        logkit.record_usage("openai", "gpt-4o-mini", input_tokens=1000, output_tokens=0)
    flushed()
    listed = world.json("timeline", "list", "--tenant", "t_acme")
    (row,) = listed["runs"]
    assert row["cost"] == {"USD": "0.00015"} and row["unpriced"] == 1
    shown = world.json("timeline", "show", "--run", run.run_id or "", "--tenant", "t_acme")
    assert shown["total_cost"] == {"USD": "0.00015"} and shown["total_unpriced"] == 1
    table = world.run("timeline", "show", "--run", run.run_id or "")
    assert table.exit_code == 0 and "1 unpriced" in table.stdout, table.output
    report = world.json("usage", "report", "--tenant", "t_acme")
    assert report["total"]["unpriced_events"] == 1 and report["total"]["cost"] == {"USD": "0.00015"}


@pytest.mark.parametrize("cost", ["n/a", "NaN", "Infinity", True, {"amount": 1}, [1], ""])
def test_any_stored_cost_is_counted_never_a_crash(world: World, cost: Any) -> None:
    with logkit.bind(**{**SCOPE, "env": "dev", "run_id": "run_bad"}):
        logkit.emit("flow_started", {"name": "f"})
        logkit.emit(
            "usage_recorded",
            {"provider": "acme", "model": "m", "cost": cost, "tokens_input": "x", "currency": 5},
        )
        logkit.emit("flow_ended", {"status": 3, "duration_ms": "slow"})
    flushed()
    for args in (
        ("timeline", "list", "--tenant", "t_acme"),
        ("timeline", "show", "--run", "run_bad"),
        ("usage", "report", "--tenant", "t_acme"),
    ):
        for extra in ((), ("--json",)):
            result = world.run(*args, *extra)
            assert result.exit_code == 0, (args, result.output)
            assert "Traceback" not in result.output


def test_stored_strings_are_never_rich_markup(world: World) -> None:
    with (
        logkit.bind(**{**SCOPE, "env": "dev", "run_id": "run_markup"}),
        logkit.flow("[/]"),
        logkit.step("[bold]step[/bold] :smile:", kind="[red]"),
    ):
        logkit.decision("[/x]", reason="[link=http://x]y[/link]")
        logkit.emit(
            "usage_recorded", {"provider": "p", "model": "m", "cost": "1", "currency": "[/x]"}
        )
    flushed()
    listed = world.run("timeline", "list", "--tenant", "t_acme")
    assert listed.exit_code == 0, listed.output
    assert "│ [/]" in listed.stdout and "1 [/x]" in listed.stdout
    shown = world.run("timeline", "show", "--run", "run_markup")
    assert shown.exit_code == 0, shown.output
    for literal in (
        "flow [/]",
        "[bold]step[/bold] :smile: ([red])",
        "[/x]",
        "[link=http://x]y[/link]",
    ):
        assert literal in shown.stdout, literal
    report = world.run("usage", "report", "--tenant", "t_acme")
    assert report.exit_code == 0 and "1 [/x]" in report.stdout


# --- crashes on input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["timeline", "list", "--tenant", "t_acme"],
        ["timeline", "show", "--run", "r"],
        ["usage", "report", "--tenant", "t_acme"],
        ["audit", "verify", "--tenant", "t_acme"],
        ["dsar", "export", "--tenant", "t_acme", "--out", "x.jsonl"],
        ["retention", "show"],
        ["check-sinks"],
        ["spool", "show"],
        ["demo"],
    ],
)
def test_a_config_that_is_not_utf8_is_one_line_exit_2(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "logkit.toml").write_bytes(b'env = "dev"\n# caf\xe9 \xff\n')
    result = runner.invoke(app, [*args, "--config", "logkit.toml"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        "logkit: config file logkit.toml is not UTF-8 text (byte 17 cannot be decoded)\n"
    )
    as_json = runner.invoke(app, [*args, "--config", "logkit.toml", "--json"])
    assert json.loads(as_json.stdout)["error"]["kind"] == "config"


def test_timeline_show_without_tenant_on_an_unreachable_store_exits_3(in_tmp: Path) -> None:
    (in_tmp / "a_directory").mkdir()
    (in_tmp / "down.toml").write_text(
        '[sinks]\ntimeline = "sqlite:///a_directory"\naudit = "sqlite:///a_directory"\n'
        f'[redaction]\nkey = "k"\n[dispatch]\nspool_path = "{in_tmp / "s.db"}"\n'
    )
    result = runner.invoke(app, ["timeline", "show", "--run", "run_x", "--config", "down.toml"])
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith("logkit: cannot read the timeline store: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    as_json = runner.invoke(
        app, ["timeline", "show", "--run", "run_x", "--config", "down.toml", "--json"]
    )
    assert json.loads(as_json.stdout)["error"]["kind"] == "unavailable"


@pytest.mark.parametrize("out", ["", ".", "a_directory"])
def test_dsar_export_out_must_name_a_file(world: World, out: str) -> None:
    (world.dir / "a_directory").mkdir()
    result = world.run("dsar", "export", "--tenant", "t_acme", "--out", out)
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "logkit: --out must name a file to write (e.g. u_1042.jsonl), not a directory or nothing\n"
    )


# --- every read and delete API needs a tenant ---------------------------------------------------


def test_reads_and_deletes_require_a_valid_tenant(world: World) -> None:
    for tenant in ("t_acme", "t_other"):
        with logkit.bind(**{**SCOPE, "env": "dev", "tenant_id": tenant, "run_id": "run_shared"}):
            logkit.emit("message", {"n": 1}, user_id="u_1")
    flushed()
    assert [e.tenant_id for e in logkit.run_events("t_acme", "run_shared")] == ["t_acme"]
    calls = [
        lambda t: logkit.query_events(t, run_id="run_shared"),
        logkit.query_events,
        lambda t: list(logkit.iter_events(t)),
        lambda t: logkit.run_events(t, "run_shared"),
        lambda t: dsar.delete(t, "u_1", dry_run=True),
        lambda t: dsar.delete(t, "u_1"),
        dsar.ExportRequest,
    ]
    for tenant in (None, "", "acme", "T_ACME", 7):
        for call in calls:
            with pytest.raises(ContractError, match="tenant_id") as caught:
                call(tenant)
            assert "tenant_id" in caught.value.missing or "tenant_id" in caught.value.problems
    assert len(logkit.run_events("t_other", "run_shared")) == 1  # nothing was deleted


def test_iter_events_refuses_at_the_call_not_at_the_first_event() -> None:
    with pytest.raises(ContractError):
        logkit.iter_events(None)  # type: ignore[arg-type]


def test_an_export_window_must_not_be_empty(world: World) -> None:
    with pytest.raises(ContractError, match="since must be before until"):
        dsar.ExportRequest(
            "t_acme",
            since=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            until=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        )
    result = world.run(
        "dsar",
        "export",
        "--tenant",
        "t_acme",
        "--since",
        "2026-01-01",
        "--until",
        "2025-01-01",
        "--out",
        "x.jsonl",
    )
    assert result.exit_code == 2 and "--since must be before --until" in result.stderr
    assert not (world.dir / "x.jsonl").exists()
    assert not [
        e for e in logkit.iter_events("t_acme", role="audit") if e.event_type == "dsar_export"
    ]


# --- one code for one meaning -------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["dsar", "export", "--tenant", "acme", "--out", "x.jsonl"],
        ["audit", "verify", "--tenant", "acme"],
        ["audit", "verify", "--tenant", ""],
        ["usage", "report", "--tenant", "acme"],
        ["timeline", "list", "--tenant", "acme"],
        ["retention", "show", "--tenant", "not a tenant"],
    ],
)
def test_a_malformed_tenant_is_exit_2_everywhere(world: World, args: list[str]) -> None:
    result = world.run(*args)
    assert result.exit_code == 2, result.output
    assert "is not a tenant id" in result.output


def test_no_chain_is_not_found_exit_2_and_tampering_stays_exit_1(world: World) -> None:
    nobody = world.run("audit", "verify", "--tenant", "t_nobody", "--json")
    assert nobody.exit_code == 2
    assert json.loads(nobody.stdout)["error"]["kind"] == "not_found"
    with logkit.bind(**{**SCOPE, "env": "dev", "run_id": "run_a"}):
        logkit.audit("approve", {"n": 1})
        logkit.audit("approve", {"n": 2})
    flushed()
    intact = world.json("audit", "verify", "--tenant", "t_acme")
    (chain,) = intact["chains"]
    assert {"first_bad_seq", "kind", "detail", "head_seq", "head_hash"} <= set(chain)
    assert (chain["first_bad_seq"], chain["kind"], chain["detail"]) == (None, None, None)
    assert (
        chain["head_seq"] == 1 and "`head_seq`, `head_hash`" in (ROOT / "docs/cli.md").read_text()
    )
    import sqlite3

    with sqlite3.connect(world.dir / "logkit.db") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        audit_table = next(
            t for t in tables if "audit" in t and "meta" not in t and "check" not in t
        )
        db.execute(f"UPDATE {audit_table} SET payload = '{{\"n\": 9}}' WHERE seq = 1")
    broken = world.run("audit", "verify", "--tenant", "t_acme", "--json")
    assert broken.exit_code == 1 and json.loads(broken.stdout)["ok"] is False


def test_check_sinks_with_a_missing_config_prints_a_json_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check-sinks", "--config", str(tmp_path / "nope.toml"), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "error": {"kind": "config", "message": f"config file not found: {tmp_path / 'nope.toml'}"}
    }


def test_missing_google_credentials_say_what_to_set() -> None:
    pytest.importorskip("google.auth")
    from google.auth.exceptions import DefaultCredentialsError

    from logkit.sinks import bigquery, firestore

    exc = DefaultCredentialsError("Your default credentials were not found.")
    for error in (firestore._translate("probe", exc), bigquery._translate(exc, "probe")):
        assert isinstance(error, logkit.SinkUnavailable)
        assert "GOOGLE_APPLICATION_CREDENTIALS" in str(error) and "gcloud auth" in str(error)
        assert "(DefaultCredentialsError)" not in str(error)


@pytest.mark.usefixtures("in_tmp")  # restores the memory runtime
def test_paths_in_logkit_toml_are_read_from_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staging = tmp_path / "staging"
    (staging / "keys").mkdir(parents=True)
    (staging / "keys" / "hmac.key").write_text("a-staging-checkpoint-key-of-32-bytes")
    (staging / "keys" / "redaction.key").write_text("a-staging-redaction-key")
    (staging / "logkit.toml").write_text(
        'env = "staging"\n[sinks]\ntimeline = "sqlite:///data/logkit.db"\n'
        'audit = "sqlite:///data/logkit.db"\n[dispatch]\nspool_path = "data/spool.db"\n'
        '[redaction]\nkey_file = "keys/redaction.key"\nencryption_key_dir = "keys/sealed"\n'
        '[audit]\nhmac_key_file = "keys/hmac.key"\nseen_state = "data/seen.json"\n'
    )
    monkeypatch.chdir(staging)
    logkit.configure("logkit.toml")
    with logkit.bind(**{**SCOPE, "env": "staging", "run_id": "run_s"}):
        logkit.audit("approve", {"n": 1})
    flushed()
    monkeypatch.chdir(tmp_path)  # the parent, as a deploy pipeline runs it
    done = runner.invoke(
        app, ["audit", "checkpoint", "--tenant", "t_acme", "--config", "staging/logkit.toml"]
    )
    assert done.exit_code == 0, done.output
    verified = runner.invoke(
        app, ["audit", "verify", "--tenant", "t_acme", "--config", "staging/logkit.toml"]
    )
    assert verified.exit_code == 0, verified.output
    assert (staging / "data" / "seen.json").exists() and not (tmp_path / "data").exists()


def test_relative_paths_from_the_environment_stay_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from logkit.config import load_settings

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "logkit.toml").write_text(
        '[usage]\nprice_table = "prices.toml"\n[audit]\nverify_hmac_key_files = ["old.key"]\n'
        '[sinks]\ntimeline = "sqlite:////abs/x.db"\naudit = "sqlite:///rel.db?timeout=2"\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOGKIT_DISPATCH__SPOOL_PATH", "env/spool.db")
    settings = load_settings("conf/logkit.toml")
    conf = tmp_path / "conf"
    assert settings.usage.price_table == conf / "prices.toml"
    assert settings.audit.verify_hmac_key_files == [conf / "old.key"]
    assert settings.sinks.timeline == "sqlite:////abs/x.db"
    assert settings.sinks.audit == f"sqlite:///{conf / 'rel.db'}?timeout=2"
    assert settings.dispatch.spool_path == Path("env/spool.db")


# --- conveniences -------------------------------------------------------------------------------


def test_piped_tables_never_cut_ids_models_or_dates(world: World) -> None:
    with logkit.bind(**{**SCOPE, "env": "dev", "run_id": LONG_RUN}), logkit.flow("answer_ticket"):
        logkit.record_usage("gcp.vertex_ai", LONG_MODEL, input_tokens=1, output_tokens=1)
    flushed()
    narrow = {"COLUMNS": "80"}
    listed = world.run("timeline", "list", "--tenant", "t_acme", env=narrow)
    assert listed.exit_code == 0, listed.output
    (line,) = [line for line in listed.stdout.splitlines() if "run_" in line]
    assert LONG_RUN in line and re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", line)
    report = world.run("usage", "report", "--tenant", "t_acme", "--by", "model", env=narrow)
    assert f"gcp.vertex_ai/{LONG_MODEL}" in report.stdout, report.stdout
    by_run = world.run("usage", "report", "--tenant", "t_acme", "--by", "run", env=narrow)
    assert LONG_RUN in by_run.stdout
    shown = world.run("timeline", "show", "--run", LONG_RUN, env=narrow)
    assert f"run {LONG_RUN}" in shown.stdout


NOW = dt.datetime(2026, 11, 26, 15, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW - dt.timedelta(hours=2)),
        ("2h ago", NOW - dt.timedelta(hours=2)),
        ("30m", NOW - dt.timedelta(minutes=30)),
        ("90s", NOW - dt.timedelta(seconds=90)),
        ("7d", NOW - dt.timedelta(days=7)),
        ("2w", NOW - dt.timedelta(weeks=2)),
        ("now", NOW),
        ("today", dt.datetime(2026, 11, 26, tzinfo=dt.UTC)),
        ("Yesterday", dt.datetime(2026, 11, 25, tzinfo=dt.UTC)),
        ("2025-06-01", dt.datetime(2025, 6, 1, tzinfo=dt.UTC)),
        ("2025-06-01T12:00Z", dt.datetime(2025, 6, 1, 12, tzinfo=dt.UTC)),
        ("2025-06-01T14:00+02:00", dt.datetime(2025, 6, 1, 12, tzinfo=dt.UTC)),
    ],
)
def test_times_are_iso_relative_or_named(text: str, expected: dt.datetime) -> None:
    assert parse_time(text, "--since", now=NOW) == expected


@pytest.mark.parametrize("text", ["someday", "2 hours", "-2h", "h", "2025-13-01", ""])
def test_a_bad_time_names_the_option(text: str) -> None:
    with pytest.raises(CliError) as caught:
        parse_time(text, "--until", now=NOW)
    assert caught.value.kind == "usage" and caught.value.message.startswith("--until ")


@pytest.mark.parametrize(
    "args",
    [
        ["usage", "report", "--tenant", "t_acme", "--since", "yesterday", "--until", "today"],
        ["usage", "prices", "--tenant", "t_acme", "--since", "2h"],
        ["timeline", "list", "--tenant", "t_acme", "--since", "7d", "--until", "1m"],
        ["dsar", "export", "--tenant", "t_acme", "--since", "yesterday", "--out", "y.jsonl"],
    ],
)
def test_relative_times_wherever_since_and_until_exist(world: World, args: list[str]) -> None:
    result = world.run(*args, "--json")
    assert result.exit_code == 0, result.output


def _runs(world: World) -> None:
    """Five runs of t_acme over four days (run_n started n minutes before its day's mark)."""
    for n, (days_ago, status) in enumerate(
        [(3, "ok"), (2, "failed"), (1, "ok"), (0, "running"), (0, "ok")]
    ):
        ts = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago, minutes=n)
        with logkit.bind(**{**SCOPE, "env": "dev", "run_id": f"run_{n}"}):
            logkit.emit("flow_started", {"name": f"flow{n}"}, ts=ts)
            if status != "running":
                kind = "flow_failed" if status == "failed" else "flow_ended"
                logkit.emit(kind, {"status": status, "duration_ms": 5}, ts=ts)
    flushed()


def test_timeline_list_filters_until_limit_and_status(world: World) -> None:
    _runs(world)
    every = world.json("timeline", "list", "--tenant", "t_acme", "--since", "4d")
    assert [r["run_id"] for r in every["runs"]] == ["run_3", "run_4", "run_2", "run_1", "run_0"]
    assert every["more"] is False
    before = world.json("timeline", "list", "--tenant", "t_acme", "--since", "4d", "--until", "12h")
    assert [r["run_id"] for r in before["runs"]] == ["run_2", "run_1", "run_0"]
    failed = world.json(
        "timeline", "list", "--tenant", "t_acme", "--since", "4d", "--status", "failed"
    )
    assert [r["run_id"] for r in failed["runs"]] == ["run_1"]
    some = world.json(
        "timeline",
        "list",
        "--tenant",
        "t_acme",
        "--since",
        "4d",
        "--status",
        "ok",
        "--status",
        "running",
        "--limit",
        "2",
    )
    assert [r["run_id"] for r in some["runs"]] == ["run_3", "run_4"] and some["more"] is True
    day = world.json("timeline", "list", "--tenant", "t_acme")  # the last 24 hours
    assert {r["run_id"] for r in day["runs"]} == {"run_3", "run_4"}
    assert world.run("timeline", "list", "--tenant", "t_acme", "--limit", "0").exit_code == 2


def test_usage_report_by_app_project_and_user(world: World) -> None:
    for app_id, project, user in [
        ("bot", "p_a", "u_1"),
        ("bot", "p_b", "u_2"),
        ("web", "p_a", None),
    ]:
        scope = {**SCOPE, "env": "dev", "app_id": app_id, "project_id": project}
        with logkit.bind(**scope, **({"user_id": user} if user else {})):
            logkit.record_usage("openai", "gpt-4o-mini", input_tokens=1_000_000, output_tokens=0)
    flushed()

    def totals(by: str) -> dict[str, tuple[int, dict[str, str]]]:
        report = world.json("usage", "report", "--tenant", "t_acme", "--by", by)
        return {g[by]: (g["events"], g["cost"]) for g in report["groups"]}

    usd = {"USD": "0.15"}
    assert totals("app") == {"bot": (2, {"USD": "0.30"}), "web": (1, usd)}
    assert totals("project") == {"p_a": (2, {"USD": "0.30"}), "p_b": (1, usd)}
    users = totals("user")
    assert users["(no user)"] == (1, usd) and sorted(v[0] for v in users.values()) == [1, 1, 1]
    bad = world.run("usage", "report", "--tenant", "t_acme", "--by", "week")
    assert bad.exit_code == 2 and "model, run, day, app, project, user" in bad.stderr


def test_docs_links_resolve() -> None:
    """Every relative link of README.md and docs/*.md names a file that exists."""
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not re.match(r"[a-z]+://", target):
                assert (page.parent / target).exists(), f"{page.name} -> {target}"
        assert "see DESIGN.md" not in page.read_text(), page.name
