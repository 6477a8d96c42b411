"""``doorfix approvals``, ``approve`` and ``refuse`` as subprocesses on a journal file, and
what ``doorfix history`` then shows: who decided, when, with what note."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from support.demo import make_demo
from support.processes import DOORFIX, sandbox_env
from test_supervised import SUPERVISED


def _doorfix(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DOORFIX, "--config", str(config), *args],
        env=sandbox_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_approve_and_refuse_from_the_shell_are_recorded_and_shown(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    # the demo's clock is a fixed past morning; the CLI's is the wall clock
    year = {**SUPERVISED["remedies"], "approval_ttl_hours": 24 * 365 * 2}
    demo = make_demo({**SUPERVISED, "remedies": year}, journal=journal)
    try:
        await demo.run("license-renewal")
    finally:
        await demo.aclose()
    config = tmp_path / "doorfix.toml"
    config.write_text(f'[journal]\npath = "{journal}"\n', encoding="utf-8")

    listed = _doorfix(config, "approvals", "--json")
    assert listed.returncode == 0, listed.stderr
    waiting = json.loads(listed.stdout)
    assert [w["remedy"] for w in waiting] == ["renew_license", "renew_license"]
    first, second = waiting[0]["approval_id"], waiting[1]["approval_id"]

    ok = _doorfix(config, "approve", first, "--by", "dana", "--note", "budget ok")
    assert ok.returncode == 0, ok.stderr
    assert "approved by dana" in ok.stdout
    no = _doorfix(config, "refuse", second, "--by", "sam", "--note", "door retired")
    assert no.returncode == 0, no.stderr
    assert "refused by sam" in no.stdout

    twice = _doorfix(config, "approve", second)
    assert twice.returncode == 2
    assert "was already refused by sam" in twice.stderr
    unknown = _doorfix(config, "approve", "nope")
    assert unknown.returncode == 2
    assert "no action nope waits for approval" in unknown.stderr
    silent = _doorfix(config, "refuse", first, "--note", " ")
    assert silent.returncode == 2
    assert "--note" in silent.stderr
    for done in (twice, unknown, silent):
        assert "Traceback" not in done.stderr

    door = waiting[0]["params"]["door_id"]
    history = _doorfix(config, "history", "--door", door, "--format", "json")
    assert history.returncode == 0, history.stderr
    [incident] = json.loads(history.stdout)["incidents"]
    [approval] = incident["approvals"]
    assert (approval["status"], approval["decided_by"], approval["note"]) == (
        "approved",
        "dana",
        "budget ok",
    )
    text = _doorfix(config, "history", "--door", door)
    assert "approved (approval" in text.stdout
    assert "by dana" in text.stdout
    assert "budget ok" in text.stdout
