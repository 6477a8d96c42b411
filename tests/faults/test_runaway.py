"""Runaway protection: a fault no remedy clears is tried only as often as the cool-down, the
attempts that did not hold and the budgets allow over six simulated hours, escalated to a person
once, and never looped.

doorfix runs every 10 minutes; the person keeps trying every 10 minutes.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest
from faultkit import every, make_world, toggles

from doorfix.sandbox.world.people import LockPresentation

HOURS = 6
RUNS = HOURS * 6  # every 10 minutes


@pytest.mark.parametrize("cooldown", [60, 180])
async def test_a_toggle_that_never_holds_is_tried_twice_after_a_cool_down_then_escalated_once(
    cooldown: int,
) -> None:
    w = make_world(scenario_params={"hours": HOURS + 1.0}, guards={"cooldown_minutes": cooldown})
    try:
        user, lock = (w.manifest["normal.tag"][k] for k in ("user_id", "lock_id"))
        # ACA's pushes to CLP never land for this user: toggling cannot help
        w.state.world.inject("aca.clp_out_of_sync", user_id=user, lock_id=lock, sticky=True)
        w.state.world.present_at_lock(user, lock, "tag")
        w.state.world.schedule_presentations(
            LockPresentation(user, lock, "tag"),
            w.clock.now() + every(5),
            600,
            w.clock.now() + every(400),
        )
        reports = []
        for _ in range(RUNS):
            reports.append(await w.run("aca-rejections"))
            w.clock.advance(every(10))

        pairs = [
            m.at
            for m in w.landed()
            if m.operation == "access_matrix"
            and m.targets["user_id"] == user
            and m.params["enabled"] is False
        ]
        # tried, then once more after the cool-down, then never again ([guards]
        # max_attempts_not_held = 2 within attempt_window_hours): never looped
        assert len(pairs) == 2
        assert all(b - a >= timedelta(minutes=cooldown) for a, b in pairwise(pairs))
        assert toggles(w.mutations())[(user, lock)] == [False, True] * len(pairs)
        mine = [i for r in reports for i in r.incidents if i.subject.get("user_id") == user]
        tried = [i for i in mine if i.actions and i.actions[0].status == "succeeded"]
        assert len(tried) == len(pairs)
        # each try ends with a person told, vendor support among them
        for incident in tried:
            assert incident.outcome == "needs_human"
            assert "vendor_support" in {s["who"] for s in incident.steps}
        # between tries: waiting out the cool-down, no call made; after the second: escalated
        # once, and the later refusals join that escalation instead of being reported again
        waiting = [i for i in mine if i not in tried]
        escalated = [i for i in waiting if i.outcome == "needs_human"]
        assert len(escalated) == 1
        assert "did not hold" in escalated[0].reason
        assert {(i.outcome, i.reason) for i in waiting if i not in escalated} <= {
            ("deferred", "in cool-down")
        }
    finally:
        await w.aclose()


async def test_a_license_that_keeps_lapsing_stops_being_renewed_when_the_budget_is_spent() -> None:
    budget = 4  # a month's renewals: the demo's first run uses two of them
    w = make_world(
        scenario_params={"hours": HOURS + 1.0},
        guards={"renewals_enabled": True, "max_renewals_per_month": budget},
    )
    try:
        door = w.manifest["cloud.license_inactive"]["door_id"]
        lapsed = 0
        reports = []
        for _ in range(RUNS):
            reports += [await w.run("door-logs"), await w.run("license-renewal")]
            renewed = [m for m in w.landed() if m.operation == "renew_door_license"]
            if len([m for m in renewed if m.targets["door_id"] == door]) > lapsed:
                lapsed += 1  # the license lapses again right after each renewal
                w.state.world.inject("cloud.license_inactive", door_id=door)
            w.clock.advance(every(10))

        renewals = [m for m in w.landed() if m.operation == "renew_door_license"]
        assert len(renewals) == budget  # every renewal bills: never one more than allowed
        times = [m.at for m in renewals if m.targets["door_id"] == door]
        assert all(b - a >= timedelta(hours=1) for a, b in pairwise(times))  # the cool-down
        last = [
            i
            for r in reports
            for i in r.incidents
            if i.subject.get("door_id") == door and i.cause == "cloud.license_inactive"
        ][-1]
        assert last.outcome == "needs_human"
        assert "budget" in last.reason
        assert {s["who"] for s in last.steps} >= {"support"}
    finally:
        await w.aclose()
