"""Incidents of a run worked concurrently: those sharing a person, lock, door or target take
turns; Sync Access comes first; and concurrency changes nothing but the time a run takes."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from support.demo import DEMO_SETTINGS, PLAYBOOKS, Demo, make_demo

from doorfix.agent.engine.candidates import Candidate
from doorfix.agent.engine.lanes import connected, plan_lanes
from doorfix.agent.engine.report import RunReport
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


def test_lanes_take_their_turns_longest_waiting_first() -> None:
    start = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)

    def refused(n: int, minutes: int | None) -> Candidate:
        found = candidate(
            Cause.ACA_CLP_OUT_OF_SYNC,
            toggle(f"u-{n}", f"l-{n}"),
            user_id=f"u-{n}",
            lock_id=f"l-{n}",
        )
        since = None if minutes is None else start + timedelta(minutes=minutes)
        return replace(found, waiting_since=since)

    found = [
        refused(0, 5),
        refused(1, None),  # nobody waits (a scan's finding)
        refused(2, 1),
        refused(3, 5),  # as long as the first: the order found
        candidate(Cause.ACA_PRIVACY_MODE, user_id="u-9", lock_id="l-2"),  # joins u-2's lane
        refused(5, 3),
    ]
    assert plan_lanes(found) == [[[2, 4], [5], [0], [3], [1]]]


async def _three_refused(*, width: int = 16, cap: int = 0) -> tuple[RunReport, list[str]]:
    """Three people refused at their locks one minute apart, in the reverse of the order the
    run finds them; the run that follows (``width`` incidents at once, at most ``cap`` actions
    if given): its report and whom its Access Matrix calls name."""
    demo = make_demo({**DEMO_SETTINGS, "engine": {"max_concurrent_incidents": width}})
    try:
        await demo.run("aca-rejections")  # the demo's own refusals, with no cap
        if cap:
            settings = demo.agent.settings
            guards = settings.guards.model_copy(update={"max_actions_per_run": cap})
            demo.agent.settings = settings.model_copy(update={"guards": guards})
        before = len(demo.mutations())
        world = demo.state.world
        people = [("u-7", "l-7"), ("u-13", "l-13"), ("u-12", "l-12")]
        for user_id, lock_id in people:
            world.inject("aca.clp_out_of_sync", user_id=user_id, lock_id=lock_id)
        for user_id, lock_id in people:
            demo.clock.advance(timedelta(minutes=1))
            world.present_at_lock(user_id, lock_id, "tag")
        demo.clock.advance(timedelta(minutes=1))
        report = await demo.run("aca-rejections")
        toggled = [
            dict(targets)["user_id"]
            for system, _operation, targets in demo.mutations()[before:]
            if system == "aca"
        ]
        return report, toggled
    finally:
        await demo.aclose()


def _outcomes(report: RunReport) -> list[tuple[str, str]]:
    return [(i.subject["user_id"], i.outcome) for i in report.incidents if i.cause.endswith("sync")]


async def test_the_longest_waiting_person_is_worked_first() -> None:
    report, toggled = await _three_refused(width=1)
    # the report keeps the order found; the calls follow who waited longest
    assert _outcomes(report) == [("u-12", "fixed"), ("u-13", "fixed"), ("u-7", "fixed")]
    assert toggled == ["u-7", "u-7", "u-13", "u-13", "u-12", "u-12"], toggled


async def test_under_a_cap_the_longest_waiting_person_is_fixed() -> None:
    # sixteen incidents at once, one action allowed per run
    report, toggled = await _three_refused(cap=1)
    assert _outcomes(report) == [("u-12", "deferred"), ("u-13", "deferred"), ("u-7", "fixed")]
    assert toggled == ["u-7", "u-7"], toggled


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


async def test_the_longest_waiting_persons_writes_go_first_among_queued_writes() -> None:
    """Sixteen incidents at once: each toggle's disable and enable wait in ACA's queue beside
    the others'. A person's enable goes ahead of every write of those who waited less, so
    it follows its disable at once (but for the write already at the queue's head), not
    after every other toggle's disable; the toggles end in the order the people waited."""
    report, toggled = await _three_refused()
    assert _outcomes(report) == [("u-12", "fixed"), ("u-13", "fixed"), ("u-7", "fixed")]
    waited = ["u-7", "u-13", "u-12"]  # refused a minute apart, in this order
    assert sorted(toggled) == sorted(waited * 2), toggled
    first = {p: toggled.index(p) for p in waited}
    second = {p: len(toggled) - 1 - toggled[::-1].index(p) for p in waited}
    assert sorted(waited, key=second.__getitem__) == waited, toggled
    assert all(second[p] - first[p] <= 2 for p in waited), toggled


@given(
    st.dictionaries(
        st.integers(0, 40), st.sets(st.sampled_from("abcdefghij"), max_size=3), max_size=25
    )
)
def test_connected_groups_exactly_what_shares_something(touched: dict[int, set[str]]) -> None:
    """Lanes and a run's cohorts are :func:`connected` groups: every key in one group, two
    keys sharing anything in the same one, each group held together by what its keys share
    (no two groups could be one), each in the order given."""
    groups = connected(touched)
    assert sorted(k for g in groups for k in g) == sorted(touched)
    group_of = {k: n for n, g in enumerate(groups) for k in g}
    for a, a_touches in touched.items():
        for b, b_touches in touched.items():
            if a_touches & b_touches:
                assert group_of[a] == group_of[b]
    order = list(touched)
    for group in groups:
        assert group == sorted(group, key=order.index)
        reached, frontier = {group[0]}, [group[0]]
        while frontier:
            k = frontier.pop()
            for other in group:
                if other not in reached and touched[k] & touched[other]:
                    reached.add(other)
                    frontier.append(other)
        assert reached == set(group)
