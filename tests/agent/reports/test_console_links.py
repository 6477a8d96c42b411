"""Messages link to the supervisors' console (``[report] console_url``) and say how many
actions wait for approval; vendor text never becomes a link."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from doorfix.agent.config import Settings
from doorfix.agent.engine.report import ActionReport, IncidentReport, RunReport
from doorfix.agent.reports.notify import message_parts, render_message, run_message, should_notify
from doorfix.errors import ConfigError

CONSOLE = "https://doorfix.example.test"


def _report() -> RunReport:
    report = RunReport("run-1", "license-renewal", False, datetime(2026, 11, 16, 8, tzinfo=UTC))
    for n, door in enumerate(("d-3", "d-10")):
        incident = IncidentReport(
            incident_id=f"{n}abc",
            cause="cloud.license_inactive",
            outcome="awaiting_approval",
            subject={"center_id": "c-1", "door_id": door},
        )
        incident.actions.append(ActionReport("renew_license", f"p-1/{door}", "awaiting_approval"))
        report.incidents.append(incident)
    hostile = IncidentReport(
        incident_id="9abc",
        cause="aca.lock_offline",
        outcome="needs_human",
        subject={"lock_id": "[click](https://evil.example)"},
    )
    report.incidents.append(hostile)
    return report


def test_the_run_message_counts_waiting_actions_and_links_the_console() -> None:
    settings = Settings.model_validate({"report": {"console_url": CONSOLE + "/"}})
    report = _report()
    assert should_notify(report, settings.report.notify_on)  # waiting is in the defaults
    title, body, kind = run_message(
        report,
        title="doorfix",
        notify_on=settings.report.notify_on,
        console_url=settings.report.console_url,
    )
    assert "awaiting approval 2" in title
    assert f"**2 action(s) wait for approval**: {CONSOLE}/approvals" in body
    assert f"({CONSOLE}/incidents/0abc)" in body
    assert f"({CONSOLE}/incidents/9abc)" in body
    assert "](https://evil.example)" not in body  # vendor text stays text
    assert kind == "warning"


def test_without_a_console_url_the_message_still_counts_and_links_nothing() -> None:
    _, body, _ = run_message(_report(), title="doorfix", notify_on=Settings().report.notify_on)
    assert "**2 action(s) wait for approval**" in body
    assert "/incidents/" not in body


@pytest.mark.parametrize("bad", ["ftp://x", "doorfix.example", 'https://x"><script>'])
def test_a_console_url_must_be_http(bad: str) -> None:
    with pytest.raises((ValueError, ConfigError), match="console_url"):
        Settings.model_validate({"report": {"console_url": bad}})


def test_a_fleet_ticks_shards_are_told_as_one_run_over_every_center() -> None:
    """The runs of one tick's shards, in one message: their counts summed, every incident
    listed once, the most urgent kind, each run named; one shard alone reads as before."""
    notify_on = Settings().report.notify_on
    waiting = _report()
    waiting.run_id, waiting.shard = "run-a", "0/4"
    failed = RunReport("run-b", "license-renewal", False, datetime(2026, 11, 16, 8, tzinfo=UTC))
    failed.shard, failed.error = "3/4", "cloud: 503 on GET /doors"
    fixed = IncidentReport(
        incident_id="5abc",
        cause="cloud.license_inactive",
        outcome="fixed",
        subject={"center_id": "c-9", "door_id": "d-99"},
    )
    failed.incidents.append(fixed)
    parts = [message_parts(r, notify_on=notify_on) for r in (waiting, failed)]
    title, body, kind = render_message(parts, title="doorfix")
    expected = "awaiting approval 2, fixed and verified 1, needs a person 1"
    assert title == f"doorfix: license-renewal: {expected}", title
    assert "one tick over 2 shards of centers" in body
    assert "`run-a` (shard 0/4), `run-b` (shard 3/4)" in body
    assert "**The run of shard 3/4 did not complete:** cloud: 503 on GET /doors" in body
    assert "**2 action(s) wait for approval**" in body
    listed = [line for line in body.splitlines() if line.startswith("- ")]
    assert len(listed) == 4, listed  # each incident once: 2 awaiting, 1 fixed, 1 needs a person
    # in the sections of a run's message: shard 3's fixed door first, then shard 0's
    assert "door d-99" in listed[0]
    assert "door d-3:" in listed[1]
    assert kind == "failure"  # one shard failed: the tick's message says so
    # one shard's run alone is its own message, as a run's
    alone = render_message(parts[:1], title="doorfix")
    assert alone == run_message(waiting, title="doorfix", notify_on=notify_on)
    assert "(centers of shard 0/4)" in alone[0]
