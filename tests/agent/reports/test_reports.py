"""The period report, from journals the agent wrote on the demo: what a reader is told."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from reportkit import Demo
from support.demo import START

from doorfix.agent.journal.store import Journal
from doorfix.agent.reports.period import PeriodReport, ProblemEntry, build_report
from doorfix.agent.reports.render import FORMATS, render, render_markdown
from doorfix.clock import ManualClock
from doorfix.durations import format_duration

SECRET = "sk-live-REPORT-9f8e7d6c5b4a"


def report_of(demo: Demo, *, days: int = 7) -> PeriodReport:
    now = demo.clock.now()
    return build_report(demo.journal, since=now - timedelta(days=days), until=now)


def one(report: PeriodReport, outcome: str, cause: str, **subject: str) -> ProblemEntry:
    found = [
        p
        for p in report.section(outcome)
        if p.cause == cause and all(p.subject.get(k) == v for k, v in subject.items())
    ]
    assert len(found) == 1, (outcome, cause, subject, [p.cause for p in report.section(outcome)])
    return found[0]


async def test_sections_after_three_days_of_runs(three_days: Demo) -> None:
    report = report_of(three_days)

    toggled = one(report, "fixed", "aca.clp_out_of_sync", user_id="u-1", lock_id="l-1")
    assert [(a.remedy, a.target, a.status) for a in toggled.actions] == [
        ("toggle_access_matrix", "u-1/l-1", "succeeded")
    ]
    synced = one(report, "fixed", "aca.iq_out_of_sync", user_id="u-2")
    assert "verified" in synced.note
    assert synced.fixed_at is not None
    assert synced.fixed_at.date() == START.date() + timedelta(1)

    offline = one(report, "needs_human", "aca.lock_offline", lock_id="l-3")
    assert offline.who == ("on_site_staff",)
    assert any("Power-cycle IQ iq-3" in s["text"] for s in offline.steps)
    # a door's license is the door's problem, whoever was refused and whichever playbook saw it
    license_ = one(report, "needs_human", "cloud.license_inactive", door_id="d-11")
    assert "personnel_id" not in license_.subject
    assert "distributor" in license_.who
    # the same problem came back each morning (license-renewal lists the door every day; the
    # first morning's refusals joined that door's incident): one entry, every incident counted
    assert license_.incidents == 3
    escalated = one(report, "needs_human", "aca.iq_out_of_sync", user_id="u-11")
    assert [a.remedy for a in escalated.actions] == ["sync_access"]
    assert {p.cause for p in report.section("no_fault")} == {
        "aca.access_disabled",
        "aca.no_booking",
        "aca.too_early",  # the deferral ended when the sync's verdict came in
    }
    superseded = one(report, "no_fault", "aca.too_early", user_id="u-11")
    assert superseded.note.startswith("superseded by incident ")
    assert report.section("deferred") == []  # nothing deferred is left open for ever
    assert report.by_outcome["fixed"] == len(report.section("fixed")) == 8


async def test_counts_by_cause_and_remedy(three_days: Demo) -> None:
    report = report_of(three_days)
    assert report.by_cause["aca.clp_out_of_sync"] == {"fixed": 1}
    assert report.by_cause["aca.iq_out_of_sync"] == {"fixed": 1, "needs_human": 1}
    assert report.by_cause["cloud.license_inactive"]["fixed"] == 2
    assert report.by_remedy["sync_access"] == {"succeeded": 2}
    assert report.by_remedy["renew_license"] == {"succeeded": 2}
    assert report.by_remedy["toggle_access_matrix"] == {"succeeded": 1}
    assert sum(report.by_outcome.values()) == len(report.problems)
    journal_incidents = three_days.journal.incidents(since=START - timedelta(days=7))
    assert report.incident_count == len(journal_incidents)
    assert report.runs == {p: {"completed": 3} for p in sorted(report.runs)}


async def test_incidents_per_day_cover_the_period(three_days: Demo) -> None:
    report = report_of(three_days)
    busy = {d.day: d for d in report.per_day if d.total}
    assert sorted(busy) == [START.date() + timedelta(n) for n in range(3)]
    assert sum(d.total for d in report.per_day) == report.incident_count
    assert len(report.per_day) == 8  # seven days back from 11:00 on day three, both ends
    first = busy[START.date()]
    assert first.counts["needs_human"] > 0


async def test_pending_and_deferred_after_the_first_run(demo: Demo) -> None:
    await demo.run_all()
    report = report_of(demo)
    pending = one(report, "pending_verification", "aca.iq_out_of_sync", user_id="u-2")
    assert [(a.remedy, a.status) for a in pending.actions] == [("sync_access", "succeeded")]
    one(report, "deferred", "aca.too_early", user_id="u-11")
    # the fixes of the first run were all verified on the spot
    assert report.time_to_fix.fixes == len(report.section("fixed")) == 7


async def test_a_dry_run_reports_what_it_would_fix(demo: Demo) -> None:
    await demo.run_all(dry_run=True)
    report = report_of(demo)
    would = {p.cause for p in report.section("would_fix")}
    assert {"aca.clp_out_of_sync", "cloud.no_access_group", "cloud.license_inactive"} <= would
    assert not report.section("fixed")
    assert "Would fix (dry-run)" in render_markdown(report)


def test_mean_time_from_first_event_to_verified_fix(tmp_path: Path) -> None:
    clock = ManualClock(START)
    with Journal(tmp_path / "j.sqlite3", clock=clock) as journal:
        run = journal.start_run("aca-rejections", dry_run=False)

        def incident(key: str, first_event: str) -> str:
            row = journal.open_incident(
                key=key,
                cause="aca.clp_out_of_sync",
                subject={"user_id": key, "lock_id": "l-1"},
                run_id=run,
                event_ids=[f"ev-{key}"],
                evidence={"first_seen": first_event},
            )
            return row.incident_id

        fast = incident("u-1", "2026-11-16T07:30:00Z")  # fixed at 08:00: 30 min
        slow = incident("u-2", "2026-11-16T07:00:00Z")  # pending, verified at 10:00: 3 h
        journal.set_outcome(fast, outcome="fixed", run_id=run)
        journal.set_outcome(slow, outcome="pending_verification", run_id=run)
        clock.advance(timedelta(hours=2))
        journal.set_outcome(slow, outcome="fixed", run_id=run, note="verified")
        report = build_report(journal, since=START - timedelta(days=1), until=clock.now())
        later = build_report(
            journal, since=START + timedelta(hours=1), until=clock.now() + timedelta(hours=1)
        )

    assert report.time_to_fix.fixes == 2
    assert report.time_to_fix.mean == timedelta(hours=1, minutes=45)
    assert report.time_to_fix.text() == "1 h 45 min over 2 verified fix(es)"
    # only fixes inside the period count
    assert later.time_to_fix.fixes == 1
    assert later.time_to_fix.mean == timedelta(hours=3)


async def test_text_markdown_and_json_tell_the_same_story(three_days: Demo) -> None:
    report = report_of(three_days)
    text = render(report, "text")
    markdown = render(report, "markdown")
    data = json.loads(render(report, "json"))
    # vendor text in markdown is escaped (``\\[succeeded\\]``); it reads as the text does
    shown = re.sub(r"\\(.)", r"\1", markdown)

    for out in (text, shown):
        assert "Needs a person (11)" in out
        assert "Fixed and verified (8)" in out
        assert "toggle_access_matrix" in out
        assert "[succeeded]" in out
        assert "(on_site_staff) Power-cycle IQ iq-3" in out
        assert "(distributor) Contact the distributor" in out
        assert "aca.clp_out_of_sync" in out
        assert "By remedy" in out
        assert "Mean time from first event to verified fix" in out
    assert (
        "| aca.clp_out_of_sync | C c1 | center c-1, lock 701 (l-1), user u-1 "
        "| toggle_access_matrix u-1/l-1 [succeeded] |"
    ) in shown

    assert data["counts"] == dict(report.by_outcome)
    assert data["by_remedy"]["sync_access"] == {"succeeded": 2}
    mean = report.time_to_fix.mean
    assert mean is not None
    assert data["mean_time_to_fix_seconds"] == round(mean.total_seconds())
    offline = next(p for p in data["sections"]["needs_human"] if p["cause"] == "aca.lock_offline")
    assert offline["who"] == ["on_site_staff"]
    assert offline["steps"][0]["who"] == "on_site_staff"
    fixed = {(p["cause"], p["subject"].get("user_id")) for p in data["sections"]["fixed"]}
    assert ("aca.clp_out_of_sync", "u-1") in fixed
    assert sum(d["counts"].get("needs_human", 0) for d in data["per_day"]) > 0


def test_secrets_are_scrubbed_from_every_format(tmp_path: Path) -> None:
    clock = ManualClock(START)
    with Journal(tmp_path / "j.sqlite3", clock=clock) as journal:
        run = journal.start_run("door-logs", dry_run=False)
        row = journal.open_incident(
            key="k",
            cause="cloud.license_inactive",
            subject={"door_id": "d-1"},
            run_id=run,
            event_ids=["e-1"],
            evidence={"leak": f"token={SECRET}"},
        )
        action = journal.intent(
            run_id=run,
            incident_id=row.incident_id,
            remedy="renew_license",
            target="p-1/d-1",
            system="cloud",
            params={},
            idempotency_key="k-1",
        )
        journal.result(action, status="failed", detail={"error": f"refused key {SECRET}"})
        journal.set_outcome(
            row.incident_id,
            outcome="failed",
            run_id=run,
            steps=[{"who": "support", "text": f"retry with {SECRET}"}],
            note=f"secret was {SECRET}",
        )
        report = build_report(
            journal, since=START - timedelta(hours=1), until=clock.now(), redact=[SECRET]
        )
    assert report.section("failed")
    for fmt in FORMATS:
        out = render(report, fmt)
        assert SECRET not in out, fmt
        # markdown escapes the marker (``\\*\\*\\*``), which renders as ``***``
        assert "***" in out.replace("\\*", "*"), fmt


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59, "59 s"), (61, "1 min 01 s"), (3_900, "1 h 05 min"), (180_000, "2 d 2 h")],
)
def test_durations_read_like_a_person_writes_them(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text
