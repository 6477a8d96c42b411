"""``doorfix demo`` on a fresh machine: no config, no secrets, a fixed world in seconds."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import typer
from support.polling import wait_for
from support.processes import DOORFIX
from typer.testing import CliRunner

from doorfix.agent.cli.daemon import register

#: what the demo fixes, each on its own line as it happens
FIXED = (
    "cloud.credential_unassigned",
    "cloud.license_inactive",
    "cloud.no_access_group",
    "cloud.holiday_restriction",
    "cloud.visitor_expired",
    "aca.clp_out_of_sync",
    "aca.iq_out_of_sync",
)


def test_demo_fixes_the_demo_world_and_ends_with_a_summary(tmp_path: Path) -> None:
    # a fresh machine: no config file, no secret in the environment, an empty directory
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORFIX_")}
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [*DOORFIX, "demo", "--seconds", "20"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    lines = out.splitlines()
    for cause in FIXED:
        assert any(" fixed " in line and cause in line for line in lines), cause
    _, _, summary = out.partition("summary")
    assert summary, out
    assert "fixed 8," in summary  # every remediable fault, the Sync Access verified too
    assert "needs_human" in summary
    assert "Needs a person" in summary
    assert "(distributor)" in summary  # a checklist names who must act
    assert "7 faults gone" in summary
    assert not list(tmp_path.iterdir())  # nothing written: the journal lives in memory
    assert "Traceback" not in done.stderr


def test_register_adds_daemon_and_demo_to_an_app() -> None:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = {"config": None}

    register(app)
    runner = CliRunner()
    for command in ("daemon", "demo"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, result.output
    assert "--dry-run" in runner.invoke(app, ["daemon", "--help"]).output
    assert "--seconds" in runner.invoke(app, ["demo", "--help"]).output


def test_demo_console_prints_its_address_serves_it_and_runs_the_whole_time(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORFIX_")}
    env |= {"COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [*DOORFIX, "demo", "--console", "--seconds", "8", "--approve", "renew_license"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = ""
        for line in proc.stdout:
            found = re.search(r"console: (http://127\.0\.0\.1:\d+)/", line)
            if found:
                url = found.group(1)
                break
        assert url, proc.stderr.read() if proc.stderr else ""
        wait_for(lambda: _waiting(url) > 0, timeout=20, what="a renewal waiting for approval")
        page = httpx.get(f"{url}/", timeout=10)
        assert page.status_code == 200
        assert "read-only" in page.text  # no token in the environment: nobody writes
        rest = proc.communicate(timeout=40)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert "summary" in rest
    assert "awaiting_approval" in rest


def _waiting(url: str) -> int:
    page = httpx.get(f"{url}/approvals", timeout=10).text
    return page.count('class="card approval"')


def test_demo_refuses_an_unknown_remedy_to_approve() -> None:
    done = subprocess.run(
        [*DOORFIX, "demo", "--approve", "reboot_everything"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "--approve: unknown remedy reboot_everything" in done.stderr
    assert "Traceback" not in done.stderr
