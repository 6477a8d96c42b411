"""Bad configuration through the command line.

Keys left out take their defaults. Anything else wrong (a type, an unknown key, a URL, a
missing secret, a journal that cannot be opened) exits with code 2 and ONE line on stderr
that names the key, the variable or the path: no traceback, no report, nothing done.

Every case goes through doorfix's own CLI app in process (typer's runner: the same code,
milliseconds each); a few of each kind also through ``python -m doorfix`` as a subprocess,
to hold the real process (its exit code, its stderr) to the same.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from faultkit import cli_env, doorfix_each
from support.configs import write_config
from support.processes import SECRET_VARS
from typer.testing import CliRunner

from doorfix.agent.cli.app import app
from doorfix.clock import SystemClock
from doorfix.sandbox.api.app import create_app
from doorfix.sandbox.api.server import ServedSandbox
from doorfix.sandbox.faults.api import ApiFaults
from doorfix.sandbox.scenarios.registry import build_scenario

#: name -> (config file text, what the one line must name)
BAD_CONFIGS: dict[str, tuple[str, str]] = {
    "text for a number": ('[guards]\ncooldown_minutes = "soon"\n', "[guards] cooldown_minutes"),
    "text for a boolean": ('[guards]\nrenewals_enabled = "yes"\n', "[guards] renewals_enabled"),
    "number as text": ('[cloud]\ntimeout_seconds = "10"\n', "[cloud] timeout_seconds"),
    "a date for a text": ("[cloud]\nclient_id = 2026-11-16\n", "[cloud] client_id"),
    "negative cap": ("[guards]\nmax_actions_per_run = -1\n", "[guards] max_actions_per_run"),
    "unknown key": ("[guards]\ncooldown_minuets = 5\n", "[guards] cooldown_minuets"),
    "unknown section": ("[gaurds]\ncooldown_minutes = 5\n", "gaurds"),
    "unknown remedy": ('[remedies]\nenabled = ["fix_everything"]\n', "[remedies] enabled"),
    "not a URL": ('[aca]\nbase_url = "not a url"\n', "[aca] base_url"),
    "plain http off loopback": (
        '[clp]\nidentity_url = "http://idp.example.com/"\n',
        "[clp] identity_url",
    ),
    "bad cron": ('[schedule.door_logs]\ncron = "every morning"\n', "[schedule] door_logs"),
    "not TOML": ("[aca\nbase_url = 1\n", "doorfix.toml"),
    "a password in the journal URL": (
        '[journal]\nurl = "postgresql://doorfix:hunter2@db.internal/doorfix"\n',
        "[journal] url",
    ),
    "a SQLite file as the journal URL": (
        '[journal]\nurl = "sqlite:///var/lib/doorfix.sqlite3"\n',
        "[journal] url",
    ),
    "a SQLite file's path as the journal URL": (
        '[journal]\nurl = "/var/lib/doorfix/journal.sqlite3"\n',
        "[journal] url",
    ),
    "a PostgreSQL URL as the journal path": (
        '[journal]\npath = "postgresql://db.internal/doorfix"\n',
        "[journal] path",
    ),
}
URLS = {k: f"http://127.0.0.1:9/{k}" for k in ("cloud", "aca", "clp", "clp_identity")}


def one_line(stderr: str) -> str:
    """The single line a config error prints (fails if there is anything else)."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("doorfix: ")
    return lines[0]


def bad_config(tmp_path: Path, name: str) -> Path:
    text, _named = BAD_CONFIGS[name]
    path = tmp_path / name.replace(" ", "-") / "doorfix.toml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    return path


def secrets(**changes: str | None) -> dict[str, str | None]:
    """The runner's environment: every secret set, but for ``changes`` (None: unset)."""
    env: dict[str, str | None] = dict(zip(SECRET_VARS, ("s-1", "s-2", "s-3"), strict=True))
    env.update(changes)
    return env


@pytest.mark.parametrize("name", BAD_CONFIGS)
def test_each_bad_config_exits_2_with_one_line_naming_the_key(tmp_path: Path, name: str) -> None:
    config = bad_config(tmp_path, name)
    result = CliRunner().invoke(app, ["--config", str(config), "run", "door-logs"], env=secrets())
    assert result.exit_code == 2, result.output
    assert BAD_CONFIGS[name][1] in one_line(result.stderr)
    assert result.stdout == ""  # no report: nothing ran


@pytest.mark.parametrize("var", SECRET_VARS)
def test_a_missing_or_blank_secret_exits_2_naming_its_variable(tmp_path: Path, var: str) -> None:
    config = write_config(tmp_path / "doorfix.toml", URLS, tmp_path / "journal.sqlite3")
    args = ["--config", str(config), "run", "door-logs"]
    for env in (secrets(**{var: None}), secrets(**{var: "   "})):
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == 2, result.output
        assert var in one_line(result.stderr)
    assert not (tmp_path / "journal.sqlite3").exists()  # refused before anything was opened


@pytest.mark.parametrize("where", ["a directory", "in a missing directory"])
def test_an_unusable_journal_exits_2_naming_its_path(tmp_path: Path, where: str) -> None:
    (tmp_path / "a-directory").mkdir()
    journal = {
        "a directory": tmp_path / "a-directory",
        "in a missing directory": tmp_path / "nowhere" / "journal.sqlite3",
    }[where]
    config = write_config(tmp_path / "doorfix.toml", URLS, journal)
    result = CliRunner().invoke(app, ["--config", str(config), "run", "door-logs"], env=secrets())
    assert result.exit_code == 2, result.output
    assert str(journal) in one_line(result.stderr)


def test_the_real_process_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    config = write_config(tmp_path / "doorfix.toml", URLS, tmp_path / "journal.sqlite3")
    (tmp_path / "a-directory").mkdir()
    a_directory = write_config(tmp_path / "dir.toml", URLS, tmp_path / "a-directory")
    no_key = cli_env()
    del no_key["DOORFIX_ACA_API_KEY"]
    runs = {
        "[guards] renewals_enabled": (str(bad_config(tmp_path, "text for a boolean")), cli_env()),
        "[guards] cooldown_minuets": (str(bad_config(tmp_path, "unknown key")), cli_env()),
        "[aca] base_url": (str(bad_config(tmp_path, "not a URL")), cli_env()),
        "DOORFIX_ACA_API_KEY": (str(config), no_key),
        str(tmp_path / "a-directory"): (str(a_directory), cli_env()),
    }
    results = doorfix_each(
        [(("--config", path, "run", "door-logs"), env) for path, env in runs.values()]
    )
    for named, result in zip(runs, results, strict=True):
        assert result.returncode == 2, (named, result.stderr)
        assert named in one_line(result.stderr)
        assert result.stdout == ""


def test_keys_left_out_take_their_defaults(tmp_path: Path) -> None:
    world = build_scenario("demo", seed=0, clock=SystemClock())
    with ServedSandbox(create_app(world, api_faults=ApiFaults(seed=0))) as served:
        # only where the systems are and where the journal lives: the rest is default
        config = write_config(tmp_path / "doorfix.toml", served.urls, tmp_path / "j.sqlite3")
        (result,) = doorfix_each(
            [(("--config", str(config), "run", "door-logs", "--json"), cli_env())]
        )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # renewals are off by default: the expired license goes to a person, unrenewed
    licenses = [i for i in report["incidents"] if i["cause"] == "cloud.license_inactive"]
    assert licenses
    assert {i["outcome"] for i in licenses} == {"needs_human"}
    fixed = {i["cause"] for i in report["incidents"] if i["outcome"] == "fixed"}
    assert fixed == {
        "cloud.credential_unassigned",
        "cloud.no_access_group",
        "cloud.visitor_expired",
    }
