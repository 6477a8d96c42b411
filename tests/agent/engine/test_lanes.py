"""Incidents of a run worked concurrently: those sharing a person, lock, door or target take
turns; Sync Access comes first; and concurrency changes nothing but the time a run takes."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from support.demo import DEMO_SETTINGS, PLAYBOOKS, Demo, make_demo

from doorfix.agent.engine.candidates import Candidate
from doorfix.agent.engine.lanes import plan_lanes
from doorfix.playbooks.types import Cause, Diagnosis, Plan, PlannedAction, Remedy, Subject


def candidate(cause: Cause, *actions: PlannedAction, **subject: str) -> Candidate:
    plan = Plan("remedy", actions=actions) if actions else Plan("needs_human")
    return Candidate(Diagnosis(cause, Subject(center_id="c-1", **subject), {}), plan)


def toggle(user: str, lock: str) -> PlannedAction:
    return PlannedAction(Remedy.TOGGLE_ACCESS_MATRIX, "aca", f"{user}/{lock}", {})


def sync(collection: str) -> PlannedAction:
    return PlannedAction(Remedy.SYNC_ACCESS, "clp", f"s-1/{collection}", {})


def test_incidents_sharing_a_person_lock_or_target_share_a_lane() -> None:
    found = [
        candidate(Cause.ACA_CLP_OUT_OF_SYNC, toggle("u-1", "l-1"), user_id="u-1", lock_id="l-1"),
        candidate(Cause.ACA_PRIVACY_MODE, user_id="u-2", lock_id="l-1"),  # the same lock
        candidate(Cause.ACA_CLP_OUT_OF_SYNC, toggle("u-3", "l-3"), user_id="u-3", lock_id="l-3"),
        candidate(Cause.ACA_IQ_OUT_OF_SYNC, sync("c-9"), user_id="u-4", lock_id="l-4"),
        candidate(Cause.ACA_IQ_OUT_OF_SYNC, sync("c-9"), user_id="u-5", lock_id="l-5"),  # same
        candidate(Cause.ACA_MKEY_REVOKED, user_id="u-3", lock_id="l-7"),  # the same person
    ]
    syncs, rest = plan_lanes(found)
    assert syncs == [[3, 4]]  # one collection: one lane, in the order found, first
    assert rest == [[0, 1], [2, 5]]


def test_one_center_is_not_one_lane() -> None:
    found = [
        candidate(
            Cause.ACA_CLP_OUT_OF_SYNC,
            toggle(f"u-{n}", f"l-{n}"),
            user_id=f"u-{n}",
            lock_id=f"l-{n}",
        )
        for n in range(3)
    ]
    assert plan_lanes(found) == [[[0], [1], [2]]]


async def rounds(demo: Demo, count: int = 3) -> list[Any]:
    reports = []
    for _ in range(count):
        for playbook in PLAYBOOKS:
            reports.append(await demo.run(playbook))
        demo.clock.advance(timedelta(minutes=70))  # past the cool-down: the retries act too
    return reports


def outcomes(reports: list[Any]) -> Counter[tuple[str, str, str]]:
    return Counter(
        (i.cause, str(sorted(i.subject.items())), i.outcome) for r in reports for i in r.incidents
    )


async def test_concurrency_changes_nothing_but_time() -> None:
    """The demo's rounds, one incident at a time and sixteen at once: the same calls (so never
    a second call where one run makes one), the same outcomes, the same journal actions."""
    seen = []
    for width in (1, 16):
        demo = make_demo({**DEMO_SETTINGS, "engine": {"max_concurrent_incidents": width}})
        try:
            reports = await rounds(demo)
            actions = Counter((a.remedy, a.target, a.status) for a in demo.agent.journal.actions())
            seen.append((Counter(map(repr, demo.mutations())), outcomes(reports), actions))
        finally:
            await demo.aclose()
    (calls_1, outcomes_1, actions_1), (calls_16, outcomes_16, actions_16) = seen
    assert calls_16 == calls_1
    assert outcomes_16 == outcomes_1
    assert actions_16 == actions_1
    assert sum(calls_1.values()) > 5  # the demo acted: the comparison is not of two empties
