"""Supervised mode against the demo world: listed remedies wait for a person's approval.

A renewal (the write that bills) waits; approved, it runs at the next run through every
guard and is verified; refused, it never runs and a person is told who refused and why; a
plan that changed or an approval past its time-to-live lapses with a note; a decision on an
action that already ran or lapsed says so.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from support.demo import DEMO_SETTINGS, START, Demo, make_demo
from support.renewals import renewals

from doorfix.agent.journal.store import ApprovalRow
from doorfix.agent.reports.period import build_report
from doorfix.agent.reports.render import render_html, render_json, render_markdown
from doorfix.errors import StateConflict, UnknownRecord

SUPERVISED: dict[str, Any] = {
    **DEMO_SETTINGS,
    "remedies": {**DEMO_SETTINGS["remedies"], "approve": ["renew_license"]},
}


@pytest.fixture
async def demo() -> AsyncIterator[Demo]:
    harness = make_demo(SUPERVISED)
    try:
        yield harness
    finally:
        await harness.aclose()


def _waiting(demo: Demo) -> list[ApprovalRow]:
    return demo.agent.journal.approvals(status="awaiting_approval")


def _with(demo: Demo, section: str, **values: Any) -> None:
    """Change one config section of the demo's agent (as a config reload would)."""
    settings = demo.agent.settings
    changed = getattr(settings, section).model_copy(update=values)
    demo.agent = dataclasses.replace(
        demo.agent, settings=settings.model_copy(update={section: changed})
    )


async def test_a_listed_remedy_waits_and_runs_only_after_approval(demo: Demo) -> None:
    first = await demo.run("license-renewal")
    waiting = [i for i in first.incidents if i.outcome == "awaiting_approval"]
    assert len(waiting) == 2
    assert all(i.actions[0].status == "awaiting_approval" for i in waiting)
    assert renewals(demo.state) == []  # nothing billed yet
    again = await demo.run("license-renewal")
    assert renewals(demo.state) == []  # a second run keeps waiting, asks nothing twice
    assert {i.outcome for i in again.incidents} >= {"awaiting_approval"}
    assert len(_waiting(demo)) == 2

    approval = _waiting(demo)[0]
    door = approval.params["door_id"]
    decided = demo.agent.journal.decide_approval(
        approval.approval_id, approve=True, by="dana", note="budget ok"
    )
    assert (decided.status, decided.decided_by, decided.note) == ("approved", "dana", "budget ok")

    after = await demo.run("license-renewal")
    assert renewals(demo.state) == [door]  # the approved one, and only it
    fixed = [i for i in after.incidents if i.outcome == "fixed"]
    assert [i.subject["door_id"] for i in fixed] == [door]
    ran = demo.agent.journal.approval(approval.approval_id)
    assert ran is not None
    assert ran.status == "ran"
    assert ran.action_id is not None
    [action] = demo.agent.journal.actions(incident_id=approval.incident_id)
    assert (action.action_id, action.status) == (ran.action_id, "succeeded")
    with pytest.raises(StateConflict, match="already ran"):
        demo.agent.journal.decide_approval(approval.approval_id, approve=True, by="x", note=None)


async def test_a_refused_action_never_runs_and_a_person_is_told_who_refused(demo: Demo) -> None:
    await demo.run("license-renewal")
    approval = _waiting(demo)[0]
    demo.agent.journal.decide_approval(
        approval.approval_id, approve=False, by="dana", note="door is being retired"
    )
    after = await demo.run("license-renewal")
    refused = next(i for i in after.incidents if i.incident_id == approval.incident_id)
    assert refused.outcome == "needs_human"
    assert "dana refused" in refused.steps[0]["text"]
    assert "door is being retired" in refused.steps[0]["text"]
    assert approval.params["door_id"] not in renewals(demo.state)
    # the refusal holds for the same call on that door: the next scans neither ask again nor
    # tell it again (a repeat within the cool-down stays with the incident that told it)
    door = approval.params["door_id"]
    for _ in range(2):
        later = await demo.run("license-renewal")
        assert [i for i in later.incidents if i.subject.get("door_id") == door] == []
    assert all(a.target != approval.target for a in _waiting(demo))
    assert door not in renewals(demo.state)
    with pytest.raises(StateConflict, match="already refused by dana"):
        demo.agent.journal.decide_approval(approval.approval_id, approve=True, by="x", note=None)


async def test_an_approval_lapses_when_the_plan_changed(demo: Demo) -> None:
    await demo.run("license-renewal")
    approval = _waiting(demo)[0]
    demo.agent.journal.decide_approval(approval.approval_id, approve=True, by="dana", note=None)
    # the renewal the run would make is no longer the one approved
    demo.agent = dataclasses.replace(
        demo.agent, policy=dataclasses.replace(demo.agent.policy, renewal_months=6)
    )

    after = await demo.run("license-renewal")

    assert renewals(demo.state) == []
    lapsed = demo.agent.journal.approval(approval.approval_id)
    assert lapsed is not None
    assert lapsed.status == "lapsed"
    assert lapsed.note is not None
    assert "the plan changed" in lapsed.note
    assert '"months": 12' in lapsed.note
    assert '"months": 6' in lapsed.note
    again = next(i for i in after.incidents if i.incident_id == approval.incident_id)
    assert again.outcome == "awaiting_approval"  # a new request, for the new plan
    fresh = demo.agent.journal.latest_approval(
        approval.incident_id, approval.remedy, approval.target
    )
    assert fresh is not None
    assert (fresh.status, fresh.params["months"]) == ("awaiting_approval", 6)


async def test_an_approval_expires_after_its_time_to_live(demo: Demo) -> None:
    await demo.run("license-renewal")
    approval = _waiting(demo)[0]
    demo.clock.advance(timedelta(hours=24, seconds=1))
    with pytest.raises(StateConflict, match="lapsed: it waited past"):
        demo.agent.journal.decide_approval(approval.approval_id, approve=True, by="x", note=None)
    lapsed = demo.agent.journal.approval(approval.approval_id)
    assert lapsed is not None
    assert lapsed.status == "lapsed"
    with pytest.raises(UnknownRecord, match="no action nope"):
        demo.agent.journal.decide_approval("nope", approve=True, by="x", note=None)


async def test_every_guard_still_applies_after_approval(demo: Demo) -> None:
    await demo.run("license-renewal")
    approval = _waiting(demo)[0]
    demo.agent.journal.decide_approval(approval.approval_id, approve=True, by="dana", note=None)
    _with(demo, "guards", renewals_enabled=False)

    after = await demo.run("license-renewal")

    assert renewals(demo.state) == []
    held = next(i for i in after.incidents if i.incident_id == approval.incident_id)
    assert held.outcome == "needs_human"
    assert "renewals" in held.reason


async def test_a_dry_run_plans_supervised_remedies_without_asking(demo: Demo) -> None:
    report = await demo.run("license-renewal", dry_run=True)
    assert "would_fix" in {i.outcome for i in report.incidents}
    assert _waiting(demo) == []


async def test_the_period_report_shows_who_decided_when_and_why(demo: Demo) -> None:
    await demo.run("license-renewal")
    yes, no = _waiting(demo)[:2]
    journal = demo.agent.journal
    journal.decide_approval(yes.approval_id, approve=True, by="dana", note="budget ok")
    journal.decide_approval(no.approval_id, approve=False, by="sam", note="<b>retired</b>")
    await demo.run("license-renewal")

    report = build_report(
        journal, since=START - timedelta(hours=1), until=demo.clock.now() + timedelta(hours=1)
    )

    lines = [a.text() for a in report.approvals]
    assert any(
        line.startswith(f"renew_license {yes.target}: ran, approved by dana") for line in lines
    )
    assert any("(budget ok)" in line for line in lines)
    assert any(f"{no.target}: refused by sam" in line for line in lines)
    assert "approved by dana" in render_markdown(report)
    page = render_html(report)
    assert 'id="approvals"' in page
    assert "&lt;b&gt;retired&lt;/b&gt;" in page
    assert "<b>retired</b>" not in page
    as_json = json.loads(render_json(report))
    assert {a["decided_by"] for a in as_json["approvals"]} == {"dana", "sam"}
