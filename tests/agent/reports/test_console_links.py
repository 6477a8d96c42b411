"""Messages link to the supervisors' console (``[report] console_url``) and say how many
actions wait for approval; vendor text never becomes a link."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from doorfix.agent.config import Settings
from doorfix.agent.engine.report import ActionReport, IncidentReport, RunReport
from doorfix.agent.reports.notify import run_message, should_notify
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
