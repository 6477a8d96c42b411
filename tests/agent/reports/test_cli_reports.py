"""``doorfix report``: formats, files, periods, and refusing what it cannot do."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from reportkit import Demo, cli_app, write_config
from typer.testing import CliRunner

from doorfix.agent.config import ENV_SECRETS
from doorfix.agent.journal.store import Journal
from doorfix.clock import ManualClock

FAKE = {
    "DOORFIX_CLOUD_CLIENT_SECRET": "cloud-SECRET-1a2b3c4d",
    "DOORFIX_ACA_API_KEY": "aca-SECRET-5e6f7a8b",
    "DOORFIX_CLP_CLIENT_SECRET": "clp-SECRET-9c0d1e2f",
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def period(demo: Demo) -> list[str]:
    """The demo's three days, whatever the wall clock says."""
    now = demo.clock.now()
    since = now - timedelta(days=3)
    return ["--since", f"{since:%Y-%m-%dT%H:%M:%SZ}", "--until", f"{now:%Y-%m-%dT%H:%M:%SZ}"]


async def test_report_in_every_format_to_stdout_and_files(
    three_days: Demo, tmp_path: Path, runner: CliRunner
) -> None:
    config = write_config(tmp_path / "doorfix.toml", journal=three_days.journal_path)
    base = ["--config", str(config), "report", *period(three_days)]
    app = cli_app()

    text = runner.invoke(app, base)
    assert text.exit_code == 0, text.output
    assert "Needs a person (11)" in text.stdout
    assert "(on_site_staff) Power-cycle IQ iq-3" in text.stdout

    as_json = runner.invoke(app, [*base, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert data["counts"]["fixed"] == 8
    assert data["by_cause"]["aca.clp_out_of_sync"] == {"fixed": 1}

    for fmt, marker in (("markdown", "## Needs a person (11)"), ("html", "<svg")):
        target = tmp_path / f"report.{fmt}"
        written = runner.invoke(app, [*base, "--format", fmt, "--output", str(target)])
        assert written.exit_code == 0, written.output
        assert marker in target.read_text(encoding="utf-8")
        assert f"wrote the {fmt} report to {target}" in written.stderr
        assert written.stdout == ""


async def test_report_never_prints_a_secret(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var, value in FAKE.items():
        monkeypatch.setenv(var, value)
    clock = ManualClock(datetime.now(UTC) - timedelta(hours=1))
    path = tmp_path / "journal.sqlite3"
    with Journal(path, clock=clock) as journal:
        run = journal.start_run("aca-rejections", dry_run=False)
        row = journal.open_incident(
            key="k",
            cause="aca.clp_out_of_sync",
            subject={"user_id": "u-1", "lock_id": "l-1"},
            run_id=run,
            event_ids=["ev-1"],
            evidence={"header": f"Bearer {FAKE['DOORFIX_ACA_API_KEY']}"},
        )
        journal.set_outcome(
            row.incident_id,
            outcome="needs_human",
            run_id=run,
            steps=[{"who": "support", "text": f"key {FAKE['DOORFIX_CLP_CLIENT_SECRET']}"}],
            note=f"secret {FAKE['DOORFIX_CLOUD_CLIENT_SECRET']}",
        )
    config = write_config(tmp_path / "doorfix.toml", journal=path)
    app = cli_app()
    for fmt in ("text", "markdown", "html", "json"):
        result = runner.invoke(app, ["--config", str(config), "report", "--format", fmt])
        assert result.exit_code == 0, result.output
        assert "u-1" in result.stdout
        for secret in FAKE.values():
            assert secret not in result.output, (fmt, secret)
    assert set(FAKE) == set(ENV_SECRETS.values())


def test_report_refuses_a_missing_journal_and_a_bad_period(
    tmp_path: Path, runner: CliRunner
) -> None:
    config = write_config(tmp_path / "doorfix.toml", journal=tmp_path / "never.sqlite3")
    app = cli_app()
    missing = runner.invoke(app, ["--config", str(config), "report"])
    assert missing.exit_code == 2
    assert "[journal] path" in missing.stderr
    assert not (tmp_path / "never.sqlite3").exists()

    bad = runner.invoke(app, ["--config", str(config), "report", "--since", "yesterday"])
    assert bad.exit_code == 2
    assert "--since" in bad.stderr
    empty = runner.invoke(
        app, ["--config", str(config), "report", "--since", "2026-11-16", "--until", "2026-11-15"]
    )
    assert empty.exit_code == 2
    assert "the period is empty" in empty.stderr


def test_report_without_a_config_explains_the_embedded_journal(runner: CliRunner) -> None:
    result = runner.invoke(cli_app(), ["report", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"] == {}
    assert "keeps no journal" in result.stderr
