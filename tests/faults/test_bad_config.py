"""Bad configuration through the real command line (``python -m doorfix`` as a subprocess).

Keys left out take their defaults. Anything else wrong (a type, an unknown key, a URL, a
missing secret, a journal that cannot be opened) exits with code 2 and ONE line on stderr
that names the key, the variable or the path: no traceback, no report, nothing done.
"""

from __future__ import annotations

import json
from pathlib import Path

from faultkit import SECRET_VARS, cli_env, doorfix_each, write_config

from doorfix.clock import SystemClock
from doorfix.sandbox.apifaults import ApiFaults
from doorfix.sandbox.app import create_app
from doorfix.sandbox.scenarios import build_scenario
from doorfix.sandbox.server import ServedSandbox

#: name -> (config file text, what the one line must name)
BAD_CONFIGS: dict[str, tuple[str, str]] = {
    "wrong type (text for a number)": (
        '[guards]\ncooldown_minutes = "soon"\n',
        "[guards] cooldown_minutes",
    ),
    "wrong type (text for a boolean)": (
        '[guards]\nrenewals_enabled = "yes"\n',
        "[guards] renewals_enabled",
    ),
    "wrong type (a date for a text)": ("[cloud]\nclient_id = 2026-11-16\n", "[cloud] client_id"),
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
}


def one_line(stderr: str) -> str:
    """The single line a config error prints (fails if there is anything else)."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_each_bad_config_exits_2_with_one_line_naming_the_key(tmp_path: Path) -> None:
    runs = []
    for n, (text, _named) in enumerate(BAD_CONFIGS.values()):
        folder = tmp_path / str(n)
        folder.mkdir()
        (folder / "doorfix.toml").write_text(text, encoding="utf-8")
        runs.append((("--config", str(folder / "doorfix.toml"), "run", "door-logs"), cli_env()))
    results = doorfix_each(runs)

    for (name, (_text, named)), result in zip(BAD_CONFIGS.items(), results, strict=True):
        assert result.returncode == 2, (name, result.stderr)
        line = one_line(result.stderr)
        assert line.startswith("doorfix: "), name
        assert named in line, (name, line)
        assert result.stdout == "", name  # no report: nothing ran
        assert not (tmp_path / "doorfix.sqlite3").exists()


def test_missing_secrets_and_unusable_journals_exit_2_naming_them(tmp_path: Path) -> None:
    (tmp_path / "a-directory").mkdir()
    journals = {
        "a directory": tmp_path / "a-directory",
        "in a missing directory": tmp_path / "nowhere" / "journal.sqlite3",
    }
    urls = {k: "http://127.0.0.1:9/" + k for k in ("cloud", "aca", "clp", "clp_identity")}
    good = write_config(tmp_path / "good.toml", urls, tmp_path / "journal.sqlite3")
    runs = []
    expected = []
    for var in SECRET_VARS:  # each secret unset
        env = cli_env()
        del env[var]
        runs.append((("--config", str(good), "run", "door-logs"), env))
        expected.append(var)
    blank = cli_env(DOORFIX_ACA_API_KEY="   ")  # set, but to nothing
    runs.append((("--config", str(good), "run", "door-logs"), blank))
    expected.append("DOORFIX_ACA_API_KEY")
    for name, journal in journals.items():
        config = write_config(tmp_path / f"{name}.toml", urls, journal)
        runs.append((("--config", str(config), "run", "door-logs"), cli_env()))
        expected.append(str(journal))
    missing = tmp_path / "no-such-config.toml"
    runs.append((("--config", str(missing), "run", "door-logs"), cli_env()))
    expected.append(str(missing))

    for named, result in zip(expected, doorfix_each(runs), strict=True):
        assert result.returncode == 2, (named, result.stderr)
        line = one_line(result.stderr)
        assert line.startswith("doorfix: "), line
        assert named in line, (named, line)


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
