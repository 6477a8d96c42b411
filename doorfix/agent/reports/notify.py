"""Notifications: a message per run that fixed or escalated something, and a daily digest
with the HTML report attached, both through the sinks of ``DOORFIX_NOTIFY_URLS``
(:mod:`doorfix.agent.sinks`, the one module that sends anything). The daemon sends both (the
digest at ``[report] digest_cron``), ``doorfix run --notify`` sends the run's message; a run on
the embedded sandbox sends nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from doorfix.agent.config import Settings
from doorfix.agent.engine.report import SANDBOX_NOTICE, IncidentReport, RunReport, run_mode
from doorfix.agent.journal.store import Journal
from doorfix.agent.reports.period import (
    SECTION_TITLES,
    SECTIONS,
    PeriodReport,
    build_report,
    subject_text,
)
from doorfix.agent.reports.render import render_html, render_markdown
from doorfix.agent.sinks import Delivery, Kind, Notifier, Sink, parse_sinks
from doorfix.agent.words import sentence
from doorfix.text import markdown_text

log = structlog.get_logger("doorfix.notify")

# the per-run message --------------------------------------------------------------------------


def should_notify(report: RunReport, notify_on: Iterable[str]) -> bool:
    """True when the run has an incident whose outcome is in ``notify_on`` (or failed)."""
    wanted = set(notify_on)
    if report.error and "failed" in wanted:
        return True
    return any(i.outcome in wanted for i in report.incidents)


def waiting_for_approval(report: RunReport) -> int:
    """How many of the run's actions wait for a person's approval (supervised mode)."""
    return sum(1 for i in report.incidents for a in i.actions if a.status == "awaiting_approval")


def run_message(
    report: RunReport,
    *,
    title: str,
    notify_on: Iterable[str],
    console_url: str | None = None,
) -> tuple[str, str, Kind]:
    """The title, Markdown body and kind of the message about one run.

    ``console_url``: the supervisors' console; the message links to it and to each incident.
    """
    wanted = set(notify_on)
    shown = [i for i in report.incidents if i.outcome in wanted]
    counts = {o: n for o, n in report.counts.items() if o in wanted}
    summary = ", ".join(f"{SECTION_TITLES.get(o, o).lower()} {n}" for o, n in counts.items())
    mode = run_mode(report)
    heading = f"{title}: {report.playbook}{mode}: {summary or 'run did not complete'}"
    when = report.started_at.strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"**{report.playbook}**{mode} run `{report.run_id}` at {when}: {summary or '-'}."]
    if report.error:
        lines += ["", f"**The run did not complete:** {markdown_text(report.error)}"]
    waiting = waiting_for_approval(report)
    if waiting:
        where = f": {console_url}/approvals" if console_url else ""
        lines += ["", f"**{waiting} action(s) wait for approval**{where}"]
    elif console_url:
        lines += ["", f"Console: {console_url}/"]
    for outcome in SECTIONS:
        group = [i for i in shown if i.outcome == outcome]
        if group:
            lines += ["", f"### {SECTION_TITLES[outcome]} ({len(group)})", ""]
            lines += [_incident_lines(i, console_url) for i in group]
    if report.repeats:
        # already reported moments ago: a reference to the incident each one joined
        lines += ["", f"### Repeats, already reported ({len(report.repeats)})", ""]
        lines += [f"- {markdown_text(r.line())}" for r in report.repeats]
    return heading, "\n".join(lines) + "\n", _kind(report, wanted)


def _incident_lines(incident: IncidentReport, console_url: str | None = None) -> str:
    # vendor text (ids, names, notes) is data: it must never become a link or markup; the
    # only link is the console's own URL (config) and the incident's id (doorfix's own hex)
    subject = subject_text(incident.subject, incident.evidence)
    head = f"- {markdown_text(incident.cause)}: {markdown_text(subject)}"
    if console_url and incident.incident_id.isalnum():
        head += f" ({console_url}/incidents/{incident.incident_id})"
    actions = "; ".join(f"{a.remedy} {a.target} [{a.status}]" for a in incident.actions)
    if actions:
        head += f": {markdown_text(actions)}"
    if incident.reason:
        head += f" ({markdown_text(sentence(incident.reason))})"
    steps = [
        f"  {n}. ({markdown_text(step.get('who', '?'))}) {markdown_text(step.get('text', ''))}"
        for n, step in enumerate(incident.steps, 1)
    ]
    return "\n".join([head, *steps])


def _kind(report: RunReport, wanted: set[str]) -> Kind:
    outcomes = {i.outcome for i in report.incidents} & wanted
    if report.error or "failed" in outcomes:
        return "failure"
    if outcomes & {"needs_human", "awaiting_approval"}:
        return "warning"
    if outcomes & {"fixed", "pending_verification"}:
        return "success"
    return "info"


async def notify_run(
    report: RunReport,
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    redact: Iterable[str] = (),
    notifier: Notifier | None = None,
) -> Delivery | None:
    """Send the run's message if it fixed or escalated something; None when nothing was sent.

    A run on the embedded sandbox sends nothing: its world is simulated.
    """
    if report.target == "sandbox":
        log.info("notify_skipped", run_id=report.run_id, reason=SANDBOX_NOTICE)
        return None
    sender = notifier or Notifier.from_env(settings, env=env, redact=redact)
    notify_on = settings.report.notify_on
    if not sender.enabled or not should_notify(report, notify_on):
        return None
    title, body, kind = run_message(
        report,
        title=sender.title,
        notify_on=notify_on,
        console_url=settings.report.console_url or None,
    )
    return await sender.send(title, body, kind=kind)


# the daily digest -----------------------------------------------------------------------------


def digest_message(report: PeriodReport, console_url: str | None = None) -> tuple[str, str, Kind]:
    """The title, Markdown body and kind of a digest (linking to the console when given)."""
    counts = ", ".join(
        f"{SECTION_TITLES.get(o, o).lower()} {n}" for o, n in report.by_section.items()
    )
    title = f"{report.title} digest {report.until:%Y-%m-%d}: {counts or 'no incidents'}"
    kind: Kind = "warning" if report.by_outcome.get("needs_human") else "info"
    if report.by_outcome.get("failed"):
        kind = "failure"
    body = render_markdown(report)
    if console_url:
        body += f"\nConsole: {console_url}/ (needs a person: {console_url}/needs-a-person)\n"
    return title, body, kind


async def send_digest(
    journal: Journal,
    settings: Settings,
    *,
    now: datetime,
    period: timedelta = timedelta(days=1),
    env: Mapping[str, str] | None = None,
    redact: Iterable[str] = (),
    notifier: Notifier | None = None,
) -> Delivery | None:
    """Send the digest of the last ``period`` with the HTML report attached; None if no sink."""
    sender = notifier or Notifier.from_env(settings, env=env, redact=redact)
    if not sender.enabled:
        return None
    report = build_report(
        journal, since=now - period, until=now, title=sender.title, redact=sender.redactions
    )
    title, body, kind = digest_message(report, settings.report.console_url or None)
    with tempfile.TemporaryDirectory(prefix="doorfix-digest-") as folder:
        page = Path(folder) / f"doorfix-report-{now:%Y-%m-%d}.html"
        page.write_text(sender.scrub(render_html(report)), encoding="utf-8")
        return await sender.send(title, body, kind=kind, attach=[page])


__all__ = [
    "Delivery",
    "Notifier",
    "Sink",
    "digest_message",
    "notify_run",
    "parse_sinks",
    "run_message",
    "send_digest",
    "should_notify",
]
