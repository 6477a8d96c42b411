"""``doorfix config check`` against the sandbox served on 127.0.0.1 with recognisable secrets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from reportkit import cli_app, free_port, write_config
from support.demo import START
from typer.testing import CliRunner, Result

from doorfix.agent.journal.store import Journal
from doorfix.clock import ManualClock
from doorfix.sandbox.api.auth import SandboxCredentials
from doorfix.sandbox.api.server import ServedSandbox, build_app

# apprise's e-mail plugin imports the deprecated imghdr when the notify URLs are parsed
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

SECRETS = {
    "DOORFIX_CLOUD_CLIENT_SECRET": "cloud-SECRET-0a1b2c3d4e",
    "DOORFIX_ACA_API_KEY": "aca-SECRET-5f6a7b8c9d",
    "DOORFIX_CLP_CLIENT_SECRET": "clp-SECRET-e0f1a2b3c4",
}
WRONG = "clp-WRONG-SECRET-77aa88bb"
HOOK_TOKEN = "hook-TOKEN-1234567890abcdef"


@pytest.fixture(scope="module")
def served() -> Iterator[ServedSandbox]:
    credentials = SandboxCredentials(
        cloud_client_secret=SECRETS["DOORFIX_CLOUD_CLIENT_SECRET"],
        aca_api_key=SECRETS["DOORFIX_ACA_API_KEY"],
        clp_client_secret=SECRETS["DOORFIX_CLP_CLIENT_SECRET"],
    )
    app = build_app("demo", seed=0, clock=ManualClock(START), credentials=credentials)
    with ServedSandbox(app) as running:
        yield running


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var, value in SECRETS.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("DOORFIX_NOTIFY_URLS", f"json://127.0.0.1:9/hooks/{HOOK_TOKEN}")
    monkeypatch.delenv("DOORFIX_CONFIG", raising=False)
    return monkeypatch


def check(config: Path) -> tuple[Result, dict[str, str]]:
    """Run the command; the lines by check name."""
    result = CliRunner().invoke(cli_app(), ["--config", str(config), "config", "check"])
    lines = {}
    for line in result.stdout.splitlines():
        status, _, rest = line.partition(" ")
        name, _, detail = rest.strip().partition(": ")
        lines[name] = f"{status} {detail}"
    for secret in (*SECRETS.values(), WRONG, HOOK_TOKEN):
        assert secret not in result.output
    return result, lines


def config_for(tmp_path: Path, served: ServedSandbox, **override: str) -> Path:
    urls = {**served.urls, **override}
    return write_config(tmp_path / "doorfix.toml", journal=tmp_path / "journal.sqlite3", urls=urls)


def test_everything_answers(served: ServedSandbox, tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    config = config_for(tmp_path, served)
    result, lines = check(config)
    assert result.exit_code == 0, result.output
    assert all(status.startswith("ok ") for status in lines.values()), lines
    assert list(lines) == [
        "config",
        "report",
        "secret DOORFIX_CLOUD_CLIENT_SECRET",
        "secret DOORFIX_ACA_API_KEY",
        "secret DOORFIX_CLP_CLIENT_SECRET",
        "notify",
        "escalate",
        "journal",
        "aca",
        "cloud",
        "clp",
    ]
    assert "read center c-1" in lines["aca"]
    assert "read project p-1" in lines["cloud"]
    assert "read site" in lines["clp"]
    assert "will be created" in lines["journal"]
    assert lines["notify"] == "ok 1 sink(s): #1 json://127.0.0.1:9"
    assert not (tmp_path / "journal.sqlite3").exists(), "a check creates nothing"

    Journal(tmp_path / "journal.sqlite3", clock=ManualClock(START)).close()
    result, lines = check(config)
    assert result.exit_code == 0, result.output
    assert "integrity ok" in lines["journal"]


def test_a_missing_secret_names_its_variable(
    served: ServedSandbox, tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    env.delenv("DOORFIX_ACA_API_KEY")
    result, lines = check(config_for(tmp_path, served))
    assert result.exit_code == 2
    assert lines["secret DOORFIX_ACA_API_KEY"].startswith("FAIL missing")
    assert lines["aca"] == "FAIL not checked: DOORFIX_ACA_API_KEY is missing"
    # the others are still checked; the cloud proves its token without a project from ACA
    assert lines["clp"].startswith("ok ")
    assert lines["cloud"].startswith("ok ")
    assert "authenticated" in lines["cloud"]


def test_a_refused_secret_names_the_system_and_its_variable(
    served: ServedSandbox, tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    env.setenv("DOORFIX_CLP_CLIENT_SECRET", WRONG)
    result, lines = check(config_for(tmp_path, served))
    assert result.exit_code == 2
    assert lines["clp"].startswith("FAIL credentials refused (DOORFIX_CLP_CLIENT_SECRET)")
    assert lines["aca"].startswith("ok ")
    assert lines["cloud"].startswith("ok ")


def test_an_unreachable_system_fails_fast_with_its_url(
    served: ServedSandbox, tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    config = config_for(tmp_path, served, clp=f"{dead}/clp", clp_identity=f"{dead}/clp-identity")
    result, lines = check(config)
    assert result.exit_code == 2
    assert lines["clp"].startswith(f"FAIL unreachable at {dead}/clp: ")
    assert "cannot connect" in lines["clp"]
    assert lines["aca"].startswith("ok ")


def test_a_bad_key_an_unusable_journal_and_a_bad_sink(
    tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[guards]\ncooldown_minuts = 5\n")
    result, lines = check(bad)
    assert result.exit_code == 2
    assert lines["config"].startswith("FAIL [guards] cooldown_minuts: unknown key")

    env.setenv("DOORFIX_NOTIFY_URLS", "json://127.0.0.1:9/x nosuchscheme://host/y")
    nowhere = write_config(tmp_path / "nowhere.toml", journal=tmp_path / "missing" / "j.sqlite3")
    result, lines = check(nowhere)
    assert result.exit_code == 2
    assert lines["journal"].startswith("FAIL ")
    assert "does not exist" in lines["journal"]
    assert lines["notify"] == (
        "FAIL DOORFIX_NOTIFY_URLS sink #2 nosuchscheme: not a URL apprise knows"
    )

    # the escalation channels are checked the same way, under their own name
    env.setenv("DOORFIX_ESCALATE_URLS", "nosuchscheme://vendor/support")
    result, lines = check(nowhere)
    assert result.exit_code == 2
    assert lines["escalate"] == (
        "FAIL DOORFIX_ESCALATE_URLS sink #1 nosuchscheme: not a URL apprise knows"
    )


def test_the_embedded_sandbox_needs_no_config(env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli_app(), ["config", "check"])
    assert result.exit_code == 0, result.output
    assert "ok   aca: embedded sandbox: authenticated" in result.stdout
    assert "ok   secrets: embedded sandbox" in result.stdout
