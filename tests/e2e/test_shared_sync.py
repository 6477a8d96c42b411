"""One Sync Access serves every user of the collection.

Two users are refused at locks of one collection (ACA and CLP grant both, the IQ does not):
the second refusal joins the first one's Sync Access (``pending_verification``, the shared
action referenced, no second call), in the same run or in a later run within the cool-down,
and each incident closes ``fixed`` on its own user's next granted presentation.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from support.configs import write_config
from support.demo import Demo
from support.processes import spawn_doorfix

from doorfix.clock import SystemClock
from doorfix.sandbox.api.app import create_app
from doorfix.sandbox.api.server import ServedSandbox
from doorfix.sandbox.faults.api import ApiFaults
from doorfix.sandbox.scenarios.registry import build_scenario

#: the demo's IQ fault (u-2 at l-2, collection col-1) and a healthy user at a lock of col-1
FIRST = {"user_id": "u-2", "lock_id": "l-2"}
SECOND = {"user_id": "u-12", "lock_id": "l-12"}


def _run(config: Path) -> dict[str, Any]:
    proc = spawn_doorfix("--config", str(config), "run", "aca-rejections", "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    report: dict[str, Any] = json.loads(out)
    return report


def _of(report: dict[str, Any], pair: dict[str, str]) -> list[dict[str, Any]]:
    return [
        i
        for i in report["incidents"]
        if i["cause"] == "aca.iq_out_of_sync" and {k: i["subject"].get(k) for k in pair} == pair
    ]


def _present(base: str, pair: dict[str, str]) -> bool:
    answer = httpx.post(f"{base}/sandbox/present", json={**pair, "via": "tag"}, timeout=10)
    assert answer.status_code == 200, answer.text
    granted: bool = answer.json()["granted"]
    return granted


def test_two_users_of_one_collection_share_one_sync_access_in_one_run(tmp_path: Path) -> None:
    world = build_scenario("demo", seed=0, clock=SystemClock())
    timing = world.settings
    timing.sync_start_delay_s = 0
    timing.sync_duration_s = 0
    assert world.locks["l-2"].collection_id == world.locks["l-12"].collection_id
    app = create_app(world, api_faults=ApiFaults(seed=0))
    config = tmp_path / "doorfix.toml"
    with ServedSandbox(app) as served:
        write_config(config, served.urls, tmp_path / "j.sqlite3")
        base = served.base_url
        answer = httpx.post(
            f"{base}/sandbox/faults",
            json={"kind": "aca.iq_out_of_sync", "params": SECOND},
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        assert not _present(base, FIRST)
        assert not _present(base, SECOND)

        first = _run(config)
        syncs = [m for m in served.state.mutations.since(0) if m.operation == "sync_access"]

        assert len(syncs) == 1  # one call serves both
        (a,) = _of(first, FIRST)
        (b,) = _of(first, SECOND)
        assert (a["outcome"], b["outcome"]) == ("pending_verification", "pending_verification")
        # whichever was worked first sent it; the other references it
        actions = [a["actions"] for a in (a, b)]
        assert all([x["status"] for x in acts] == ["succeeded"] for acts in actions)
        joined = [
            i for i in (a, b) if "joined the Sync Access" in i["actions"][0].get("detail", "")
        ]
        (sharer,) = joined
        assert sharer["evidence"]["joined_sync_action"]

        # each closes on its own user's next granted presentation
        assert _present(base, SECOND)
        second = _run(config)
        assert [i["outcome"] for i in _of(second, SECOND)] == ["fixed"]
        assert _of(second, FIRST) == []  # u-2 has not come back yet: still waiting
        assert _present(base, FIRST)
        third = _run(config)
        assert [i["outcome"] for i in _of(third, FIRST)] == ["fixed"]


async def test_a_refusal_delivered_in_a_later_run_joins_the_sync_within_the_cool_down(
    demo: Demo,
) -> None:
    world = demo.state.world
    world.inject("aca.iq_out_of_sync", **SECOND)
    world.feed_delay_h["l-12"] = 0.1  # l-12's events reach ACA six minutes late
    assert not world.present_at_lock(SECOND["user_id"], SECOND["lock_id"], "tag").granted

    first = await demo.run("aca-rejections")
    assert [i.outcome for i in first.incidents if i.subject.get("user_id") == "u-2"] == [
        "pending_verification"
    ]
    demo.clock.advance(timedelta(minutes=7))  # within the 1 h cool-down of that Sync Access

    second = await demo.run("aca-rejections")

    (late,) = [i for i in second.incidents if i.subject.get("user_id") == "u-12"]
    assert late.cause == "aca.iq_out_of_sync"
    assert late.outcome == "pending_verification"  # not "deferred: in cool-down"
    assert len([m for m in demo.mutations() if m[1] == "sync_access"]) == 1
    # and u-12's next presentation (granted: the shared job reached the IQ) closes it
    assert world.present_at_lock(SECOND["user_id"], SECOND["lock_id"], "tag").granted
    demo.clock.advance(timedelta(minutes=7))
    await demo.run("aca-rejections")
    row = demo.agent.journal.incident(late.incident_id)
    assert row is not None
    assert (row.open, row.outcome) == (False, "fixed")
