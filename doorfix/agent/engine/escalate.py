"""The ``escalate`` remedy: send an incident, its evidence and checklist, to vendor support.

An escalation reaches someone or says it did not. It goes to every sink of
``DOORFIX_ESCALATE_URLS`` (apprise URLs: a vendor-support mailbox, a ticketing webhook),
through the one sending module (:mod:`doorfix.agent.sinks`), and the action is:

- ``succeeded`` when at least one channel accepted the message (the detail names them);
- ``failed`` when every channel failed (the checklist says to send it by hand);
- ``skipped`` when no channel is configured, or the run is on the embedded sandbox (nothing
  simulated is ever sent to a real vendor): the checklist says to send it by hand.

In every case the incident is ``needs_human``: vendor support (or the person who forwards it)
must act.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from doorfix.agent.config import ENV_ESCALATE_URLS
from doorfix.agent.engine.execute import ActionResult
from doorfix.agent.engine.report import SANDBOX_NOTICE, IncidentReport
from doorfix.agent.engine.state import Agent
from doorfix.playbooks.types import Outcome, Step, Who
from doorfix.text import markdown_text

#: the action's detail when no channel is set
NO_CHANNEL = f"no escalation channel configured ({ENV_ESCALATE_URLS} is not set)"


def _subject(subject: Mapping[str, str]) -> str:
    return " ".join(f"{k.removesuffix('_id')}={v}" for k, v in subject.items())


def escalation_message(
    incident: IncidentReport, steps: Sequence[Step], *, title: str, reason: str
) -> tuple[str, str]:
    """The title and Markdown body of an escalation: what failed, the evidence, the checklist."""
    subject = _subject(incident.subject)
    heading = f"{title}: escalation: {incident.cause} ({subject})"
    lines = [
        f"**Incident** `{incident.incident_id}`: {markdown_text(incident.cause)}",
        f"**Subject**: {markdown_text(subject)}",
    ]
    if reason:
        lines.append(f"**Problem**: {markdown_text(reason)}")
    if incident.event_ids:
        lines.append(f"**Events**: {markdown_text(', '.join(incident.event_ids))}")
    if incident.evidence:
        lines += ["", "### Evidence", ""]
        lines += [
            f"- {markdown_text(str(key))}: {markdown_text(_value(value))}"
            for key, value in incident.evidence.items()
        ]
    if steps:
        lines += ["", "### Checklist", ""]
        lines += [
            f"{n}. ({markdown_text(step.who.value)}) {markdown_text(step.text)}"
            for n, step in enumerate(steps, 1)
        ]
    return heading, "\n".join(lines) + "\n"


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _by_hand(why: str) -> Step:
    return Step(
        Who.SUPPORT,
        f"{why}: send this to vendor support (this incident, its evidence and its checklist).",
    )


async def escalate(
    agent: Agent, incident: IncidentReport, steps: Sequence[Step], *, reason: str
) -> ActionResult:
    """Send the escalation to the configured channels; the action's result (see module)."""
    if agent.target == "sandbox":
        note = f"{SANDBOX_NOTICE}: escalation not sent"
        return ActionResult(
            "skipped",
            Outcome.NEEDS_HUMAN,
            {"note": note},
            steps=(_by_hand("Not sent from the embedded sandbox"),),
        )
    sender = agent.escalation
    if sender is None or not sender.enabled:
        return ActionResult(
            "skipped",
            Outcome.NEEDS_HUMAN,
            {"note": NO_CHANNEL},
            steps=(_by_hand("No escalation channel is configured"),),
        )
    title, body = escalation_message(
        incident, steps, title=agent.settings.report.title, reason=reason
    )
    delivery = await sender.send(title, body, kind="failure")
    if delivery.sent:
        detail: dict[str, Any] = {
            "escalated_to": list(delivery.sent),
            "note": f"sent to {', '.join(delivery.sent)}",
        }
        if delivery.failed:
            detail["failed_channels"] = list(delivery.failed)
        return ActionResult("succeeded", Outcome.NEEDS_HUMAN, detail)
    failed = ", ".join(delivery.failed)
    return ActionResult(
        "failed",
        Outcome.NEEDS_HUMAN,
        {"error": f"no escalation channel accepted it: {failed}", "failed_channels": failed},
        steps=(_by_hand(f"doorfix could not reach its escalation channels ({failed})"),),
    )
