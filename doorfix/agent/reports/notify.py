"""Notifications: a message per run that fixed or escalated something, and a daily digest
with the HTML report attached, both through the sinks of ``DOORFIX_NOTIFY_URLS``
(:mod:`doorfix.agent.sinks`, the one module that sends anything). The daemon sends both (the
digest at ``[report] digest_cron``), ``doorfix run --notify`` sends the run's message; a run on
the embedded sandbox sends nothing.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

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
    parts = message_parts(report, notify_on=notify_on, console_url=console_url)
    return render_message([parts], title=title, console_url=console_url)


def message_parts(
    report: RunReport, *, notify_on: Iterable[str], console_url: str | None = None
) -> dict[str, Any]:
    """What the message about one run says, as JSON-able parts, its vendor text escaped.

    A fleet keeps each shard's parts in the journal until its tick is told in one message
    (:func:`render_message` over the tick's parts; :mod:`doorfix.agent.journal.ticks`).
    """
    wanted = set(notify_on)
    shown = [i for i in report.incidents if i.outcome in wanted]
    sections: dict[str, list[str]] = {}
    for outcome in SECTIONS:
        group = [i for i in shown if i.outcome == outcome]
        if group:
            sections[outcome] = [_incident_lines(i, console_url) for i in group]
    return {
        "playbook": report.playbook,
        "run_id": report.run_id,
        "dry_run": report.dry_run,
        "mode": run_mode(report),
        "shard": report.shard,
        "started_at": report.started_at.strftime("%Y-%m-%d %H:%M UTC"),
        "counts": {o: n for o, n in report.counts.items() if o in wanted},
        "error": markdown_text(report.error) if report.error else None,
        "waiting": waiting_for_approval(report),
        "sections": sections,
        "repeats": [markdown_text(r.line()) for r in report.repeats],
        "kind": _kind(report, wanted),
    }


#: the kinds of message, the most urgent first: a message of several runs takes the first
_KINDS: tuple[Kind, ...] = ("failure", "warning", "success", "info")


def render_message(
    parts: Sequence[Mapping[str, Any]], *, title: str, console_url: str | None = None
) -> tuple[str, str, Kind]:
    """The title, Markdown body and kind of the message about one run, or about the runs
    of one fleet tick's shards (their incidents together, as one run over every center)."""
    if not parts:
        raise ValueError("render_message: no run to tell about")
    first, one = parts[0], len(parts) == 1
    counted: Counter[str] = Counter()
    for part in parts:
        counted.update(part["counts"])
    summary = ", ".join(
        f"{SECTION_TITLES.get(o, o).lower()} {n}" for o, n in sorted(counted.items())
    )
    playbook = first["playbook"]
    if one:
        mode = str(first["mode"])
        lines = [
            f"**{playbook}**{mode} run `{first['run_id']}` at {first['started_at']}: "
            f"{summary or '-'}."
        ]
    else:
        mode = " (dry-run)" if first["dry_run"] else ""
        runs = ", ".join(f"`{p['run_id']}` (shard {p['shard']})" for p in parts)
        lines = [
            f"**{playbook}**{mode}, one tick over {len(parts)} shards of centers, from "
            f"{min(str(p['started_at']) for p in parts)}: {summary or '-'}.",
            "",
            f"Runs: {runs}.",
        ]
    heading = f"{title}: {playbook}{mode}: {summary or 'run did not complete'}"
    for part in parts:
        if part["error"]:
            which = "run" if one else f"run of shard {part['shard']}"
            lines += ["", f"**The {which} did not complete:** {part['error']}"]
    waiting = sum(int(p["waiting"]) for p in parts)
    if waiting:
        where = f": {console_url}/approvals" if console_url else ""
        lines += ["", f"**{waiting} action(s) wait for approval**{where}"]
    elif console_url:
        lines += ["", f"Console: {console_url}/"]
    for outcome in SECTIONS:
        group = [line for p in parts for line in p["sections"].get(outcome, [])]
        if group:
            lines += ["", f"### {SECTION_TITLES[outcome]} ({len(group)})", ""]
            lines += group
    repeats = [line for p in parts for line in p["repeats"]]
    if repeats:
        # already reported moments ago: a reference to the incident each one joined
        lines += ["", f"### Repeats, already reported ({len(repeats)})", ""]
        lines += [f"- {line}" for line in repeats]
    kind = min((p["kind"] for p in parts), key=_KINDS.index)
    return heading, "\n".join(lines) + "\n", kind


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


async def notify_tick(
    parts: Sequence[Mapping[str, Any]], settings: Settings, *, notifier: Notifier
) -> Delivery | None:
    """Send one message about the runs of one fleet tick (each its shard's
    :func:`message_parts`); None when there is nothing to tell or no sink."""
    if not parts or not notifier.enabled:
        return None
    title, body, kind = render_message(
        parts, title=notifier.title, console_url=settings.report.console_url or None
    )
    return await notifier.send(title, body, kind=kind)


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
    "message_parts",
    "notify_run",
    "notify_tick",
    "parse_sinks",
    "render_message",
    "run_message",
    "send_digest",
    "should_notify",
]
