"""A system down for an hour of simulated time, with runs attempted every 5 minutes.

Runs that need the system fail (RunFailed: exit code 1) without moving any feed position; the
others keep working. When the system is back, the next run catches up from where the last
completed run stopped: no event of the outage is lost, and nothing is done twice.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from faultkit import World, cli_env, doorfix, duplicates, every, toggles
from support.configs import write_config

from doorfix.agent.engine.run import PLAYBOOKS
from doorfix.clock import SystemClock
from doorfix.errors import System
from doorfix.sandbox.api.app import create_app
from doorfix.sandbox.api.server import ServedSandbox
from doorfix.sandbox.faults.api import ApiFaults
from doorfix.sandbox.scenarios.registry import build_scenario
from doorfix.sandbox.world.people import LockPresentation

OUTAGE = every(60)
STEP = every(5)
FEED = "aca-events"


def outage_events(w: World, start: datetime, end: datetime) -> list[str]:
    """The ids of every rejection that happened during the outage."""
    return [
        e.id
        for e in w.state.world.aca_feed
        if e.type.endswith("_rejected") and start <= e.occurred_at < end
    ]


@pytest.mark.parametrize(
    ("down", "failing"),
    [("clp", {"aca-rejections"}), ("aca", set(PLAYBOOKS))],
    ids=["clp-down", "aca-down"],
)
async def test_an_hour_long_outage_fails_runs_cleanly_then_catches_up_without_gaps(
    world: World, down: System, failing: set[str]
) -> None:
    w = world
    await w.attempt_all()  # a normal morning run: the demo's faults are dealt with
    w.clock.advance(STEP)
    # new trouble during the outage: a door's license lapses, a user falls out of CLP
    door = w.manifest["normal.door"]["door_id"]
    user, lock = (w.manifest["normal.tag"][k] for k in ("user_id", "lock_id"))
    w.state.world.inject("cloud.license_inactive", door_id=door)
    w.state.world.inject("aca.clp_out_of_sync", user_id=user, lock_id=lock)
    w.state.world.schedule_presentations(  # the user keeps trying every 10 minutes
        LockPresentation(user, lock, "tag"),
        w.clock.now() + every(1),
        600,
        w.clock.now() + every(100),
    )
    cursor = w.agent.journal.cursor(FEED)
    start = w.clock.now()
    rule = w.faults.add("503", system=down, count=1_000_000, retry_after=1)
    during = []
    while w.clock.now() < start + OUTAGE:
        during += await w.attempt_all()
        w.clock.advance(STEP)
    end = w.clock.now()
    w.faults.remove(rule.id)

    # every run that needs the system failed (exit 1), naming it; the others completed
    assert {o.playbook for o in during if o.failed} == failing
    assert all(o.failed is None for o in during if o.playbook not in failing)
    for o in during:
        if o.failed is not None:
            assert str(o.failed).startswith(f"{down} ")
            assert "status=503" in str(o.failed)
            assert o.result.error == str(o.failed)
    assert w.agent.journal.cursor(FEED) == cursor  # no position moved past unread events
    statuses = {r.status for r in w.agent.journal.runs(limit=200)}
    assert statuses == {"completed", "failed"}
    if down == "clp":  # the cloud playbooks kept working: the lapsed license renewed at once
        renewed = [m for m in w.landed() if m.operation == "renew_door_license"]
        assert [m.targets["door_id"] for m in renewed if start <= m.at < end] == [door]

    for _ in range(2):  # back: the next runs catch up
        for outcome in await w.attempt_all():
            assert outcome.failed is None, outcome.failed
        w.clock.advance(STEP)

    # no gap: every refusal of the outage hour is held by an incident of the journal
    missed = outage_events(w, start, end)
    assert len(missed) >= 6
    held = {e for i in w.agent.journal.incidents(limit=10_000) for e in i.event_ids}
    assert [e for e in missed if e not in held] == []
    # the new trouble is fixed, once
    present = w.present()
    assert present["aca.clp_out_of_sync"] is False
    assert present["cloud.license_inactive"] is False
    assert toggles(w.mutations())[(user, lock)] == [False, True]
    assert duplicates(w.mutations()) == []


def test_the_cli_exits_1_with_the_partial_report_when_a_system_stays_down(
    tmp_path: Path,
) -> None:
    world = build_scenario("demo", seed=0, clock=SystemClock())
    app = create_app(world, api_faults=ApiFaults(seed=0))
    with ServedSandbox(app) as served:
        served.state.faults.add("503", system="clp", count=1_000_000, retry_after=0)
        # one journal each: the two commands run at the same time
        config, other = (
            write_config(tmp_path / f"{n}.toml", served.urls, tmp_path / f"{n}.sqlite3")
            for n in ("aca", "cloud")
        )
        run, cloud = doorfix(
            ("--config", str(config), "run", "aca-rejections", "--json"),
            ("--config", str(other), "run", "door-logs", "--json"),
            env=cli_env(),
        )
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)  # the partial report is still printed, as JSON
    assert report["playbook"] == "aca-rejections"
    assert report["error"].startswith("clp ")
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("doorfix: the run could not complete: clp ")
    # the cloud playbook does not need CLP: it completes
    assert cloud.returncode == 0, cloud.stderr
    assert json.loads(cloud.stdout)["counts"]
