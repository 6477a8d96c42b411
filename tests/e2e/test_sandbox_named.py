"""The embedded sandbox is never mistaken for the real systems: every output of a command that
worked on it says so, a sandbox run sends nothing, and the daemon refuses to start on it
unless asked to (``--sandbox``).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.processes import DaemonProcess, sandbox_env, spawn_doorfix
from support.receivers import Webhook

NOTICE = "embedded sandbox: no real system was read or changed"

pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with Webhook() as running:
        yield running


def no_config_env(**extra: str) -> dict[str, str]:
    env = {**sandbox_env(), **extra}
    env.pop("DOORFIX_CONFIG", None)
    return env


def doorfix(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = spawn_doorfix(*args, env=env or no_config_env())
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def test_run_and_diagnose_say_they_worked_on_the_sandbox() -> None:
    code, out, err = doorfix("run", "door-logs", "--json")
    assert code == 0, err
    assert json.loads(out)["target"] == "sandbox"
    assert err.count(NOTICE) == 1

    code, out, err = doorfix("run", "license-renewal")
    assert code == 0, err
    assert NOTICE in out  # the table's banner
    assert NOTICE in err

    code, out, err = doorfix("diagnose", "--user", "u-10", "--lock", "l-10", "--json")
    assert code == 0, err
    assert json.loads(out)["target"] == "sandbox"
    assert NOTICE in err


def test_the_period_report_of_a_sandbox_journal_carries_the_banner(tmp_path: Path) -> None:
    config = tmp_path / "doorfix.toml"
    config.write_text(
        f'[sandbox]\nembedded = true\n[journal]\npath = "{tmp_path / "journal.sqlite3"}"\n'
    )
    code, out, err = doorfix("--config", str(config), "run", "aca-rejections", "--json")
    assert code == 0, err
    assert json.loads(out)["target"] == "sandbox"
    page = tmp_path / "report.html"
    code, _, err = doorfix(
        "--config", str(config), "report", "--format", "html", "--output", str(page)
    )
    assert code == 0, err
    html = page.read_text(encoding="utf-8")
    assert f'role="alert"><strong>{NOTICE}</strong>' in html
    code, out, err = doorfix("--config", str(config), "report", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["target"] == "sandbox"
    code, out, err = doorfix("--config", str(config), "report", "--format", "markdown")
    assert code == 0, err
    assert NOTICE in out


def test_the_daemon_needs_a_config_or_sandbox(webhook: Webhook) -> None:
    code, _, err = doorfix("daemon")
    assert code == 2
    assert "--config" in err
    assert "--sandbox" in err
    assert "Traceback" not in err

    # --sandbox: it runs the demo world, says so, and sends nothing even with a sink set
    env = no_config_env(DOORFIX_NOTIFY_URLS=webhook.url())
    process = DaemonProcess(None, args=("--sandbox",), env=env)
    try:
        started = process.wait_started()
        assert started["target"] == "sandbox"
        assert started["notify"] is False
        assert any(NOTICE in line for line in process.raw)
        process.wait_for_event("run_completed", count=3)
        assert process.stop(signal.SIGTERM) == 0
    finally:
        process.close()
    told = [e for e in process.events("run_completed") if e["counts"]]
    assert told, "the sandbox runs found something a live daemon would tell"
    assert webhook.messages() == []
