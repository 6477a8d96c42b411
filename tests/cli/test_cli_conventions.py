"""CLI conventions: version, completion, logging options, config discovery, JSON errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.cli import assert_clean_error, cli

from doorfix import __version__


@pytest.fixture
def nowhere(tmp_path: Path) -> dict[str, str]:
    """An environment whose XDG config home holds nothing."""
    empty = tmp_path / "xdg-empty"
    empty.mkdir()
    return {"XDG_CONFIG_HOME": str(empty)}


def _check(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> dict[str, object]:
    result = cli(*args, "config", "check", "--json", env=env, cwd=cwd)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    data: dict[str, object] = json.loads(lines[0])
    assert (result.returncode == 0) == data["ok"], (result.returncode, data)
    return data


def test_dash_v_prints_the_version() -> None:
    for flag in ("-V", "--version"):
        result = cli(flag)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"doorfix {__version__}"


def test_shell_completion_is_offered_and_shown() -> None:
    assert "--install-completion" in cli("--help", env={"COLUMNS": "200"}).stdout
    # the shell named, not detected from this process's parents (a test run by a service
    # manager or reparented to init has no shell among them)
    shown = cli(
        "--show-completion", "bash", env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    )
    assert shown.returncode == 0, shown.stderr
    assert "complete" in shown.stdout
    assert "_COMPLETE" in shown.stdout


def test_log_level_and_format_apply_to_a_command() -> None:
    quiet = cli("run", "license-renewal", "--json")
    assert quiet.returncode == 0, quiet.stderr
    assert "embedded_sandbox" not in quiet.stderr
    loud = cli("--log-level", "info", "--log-format", "json", "run", "license-renewal", "--json")
    assert loud.returncode == 0, loud.stderr
    events = [json.loads(line) for line in loud.stderr.splitlines() if line.startswith("{")]
    assert any(e["event"] == "embedded_sandbox" for e in events), loud.stderr
    # after the command's name as well as before it
    console = cli("run", "license-renewal", "--log-level", "info", "--log-format", "console")
    assert console.returncode == 0, console.stderr
    assert "embedded_sandbox" in console.stderr
    assert '"event"' not in console.stderr
    checked = cli("config", "check", "--log-level=debug", "--json")
    assert checked.returncode == 0, checked.stderr


def test_no_config_anywhere_is_the_embedded_sandbox(
    tmp_path: Path, nowhere: dict[str, str]
) -> None:
    data = _check(env=nowhere, cwd=tmp_path)
    assert data["config"] is None
    assert data["config_source"] == "no config file found"
    assert data["ok"] is True


def _write(path: Path, body: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"[sandbox]\nembedded = true\n{body}", encoding="utf-8")
    return path


def test_config_discovery_order_is_named_by_config_check(
    tmp_path: Path, nowhere: dict[str, str]
) -> None:
    xdg = tmp_path / "xdg"
    _write(xdg / "doorfix" / "config.toml")
    work = tmp_path / "work"
    work.mkdir()
    data = _check(env={"XDG_CONFIG_HOME": str(xdg)}, cwd=work)
    assert data["config"] == str(xdg / "doorfix" / "config.toml")
    assert "XDG_CONFIG_HOME" in str(data["config_source"])

    _write(work / "doorfix.toml")
    data = _check(env={"XDG_CONFIG_HOME": str(xdg)}, cwd=work)
    assert data["config"] == "doorfix.toml"
    assert "./doorfix.toml" in str(data["config_source"])

    named = _write(tmp_path / "named.toml")
    data = _check(env={"XDG_CONFIG_HOME": str(xdg), "DOORFIX_CONFIG": str(named)}, cwd=work)
    assert data["config"] == str(named)
    assert data["config_source"] == "$DOORFIX_CONFIG"

    explicit = _write(tmp_path / "explicit.toml")
    data = _check(
        "--config",
        str(explicit),
        env={"XDG_CONFIG_HOME": str(xdg), "DOORFIX_CONFIG": str(named)},
        cwd=work,
    )
    assert data["config"] == str(explicit)
    assert data["config_source"] == "--config"

    text = cli("config", "check", env={"XDG_CONFIG_HOME": str(xdg)}, cwd=work)
    assert "doorfix.toml (from ./doorfix.toml" in text.stdout.splitlines()[0]


def test_a_mistyped_key_suggests_the_right_one(tmp_path: Path) -> None:
    config = _write(tmp_path / "typo.toml", "[aca]\nretry_attemps = 3\n")
    line = assert_clean_error(cli("--config", str(config), "run", "door-logs"), "retry_attemps")
    assert "did you mean `retry_attempts`?" in line
    checked = cli("--config", str(config), "config", "check")
    assert checked.returncode == 2
    assert "did you mean `retry_attempts`?" in checked.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["run", "door-logs", "--json"],
        ["diagnose", "--user", "u-1", "--lock", "l-1", "--json"],
        ["report", "--format", "json"],
        ["history", "--user", "u-1", "--format", "json"],
    ],
)
def test_with_json_an_error_is_one_json_object_and_one_stderr_line(
    tmp_path: Path, args: list[str]
) -> None:
    config = _write(tmp_path / "typo.toml", "[guards]\ncooldown_minute = 5\n")
    result = cli("--config", str(config), *args)
    line = assert_clean_error(result, "cooldown_minute")
    error = json.loads(result.stdout)
    assert error["exit_code"] == 2
    assert error["key"] == "[guards] cooldown_minute"
    assert error["error"] in line


@pytest.mark.parametrize(
    "args",
    [
        ["run", "door-logz", "--json"],
        ["run", "door-logs", "--json", "--since", "tomorrow"],
        ["run", "door-logs", "--json", "--bogus"],
        ["diagnose", "--user", "u-1", "--json"],
        ["report", "-f", "json", "--until", "later"],
    ],
)
def test_with_json_a_bad_option_is_one_json_object_too(args: list[str]) -> None:
    result = cli(*args)
    line = assert_clean_error(result)
    error = json.loads(result.stdout)
    assert error["exit_code"] == 2
    assert error["error"] in line


@pytest.mark.parametrize(("command", "offers_sandbox"), [("daemon", True), ("fleet", False)])
def test_a_command_that_needs_a_config_says_where_it_looked(
    tmp_path: Path, nowhere: dict[str, str], command: str, offers_sandbox: bool
) -> None:
    # the daemon and the fleet's view never fall back to the embedded sandbox on their own:
    # the error names the command and the config's places, and offers --sandbox only to
    # the command that takes it
    line = assert_clean_error(
        cli(command, env=nowhere, cwd=tmp_path), f"doorfix {command}", "--config", "./doorfix.toml"
    )
    assert ("--sandbox" in line) is offers_sandbox, line
    if offers_sandbox:
        assert cli(command, "--sandbox", "--help", env=nowhere, cwd=tmp_path).returncode == 0
