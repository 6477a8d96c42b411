"""The run report: DESIGN.md's JSON shape, and a readable table for a terminal."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape as rich_escape
from rich.table import Table
from rich.text import Text

from doorfix.agent.words import reason_code, runbook_step, sentence, subject_names, subject_text
from doorfix.connectors.models import iso_z
from doorfix.text import printable

ActionStatus = Literal["planned", "awaiting_approval", "succeeded", "failed", "skipped", "unknown"]
#: what a run read and changed: the real systems, or the embedded sandbox's simulated world
Target = Literal["live", "sandbox"]

#: the one sentence every output of a run on the embedded sandbox carries
SANDBOX_NOTICE = "embedded sandbox: no real system was read or changed"


@dataclass
class ActionReport:
    """One action of an incident, as the report shows it."""

    remedy: str
    target: str
    status: ActionStatus
    system: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        """DESIGN.md's ``actions[]`` entry, with the exact parameters and any detail."""
        out: dict[str, Any] = {"remedy": self.remedy, "target": self.target, "status": self.status}
        if self.system:
            out["system"] = self.system
        if self.params:
            out["params"] = dict(self.params)
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass
class IncidentReport:
    """One incident of a run."""

    incident_id: str
    cause: str
    outcome: str
    subject: Mapping[str, str]
    event_ids: list[str] = field(default_factory=list)
    actions: list[ActionReport] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    steps: list[Mapping[str, str]] = field(default_factory=list)
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        """DESIGN.md's ``incidents[]`` entry."""
        out: dict[str, Any] = {
            "incident_id": self.incident_id,
            "cause": self.cause,
            "outcome": self.outcome,
            "subject": dict(self.subject),
            "event_ids": list(self.event_ids),
            "actions": [a.as_dict() for a in self.actions],
            "evidence": dict(self.evidence),
            "steps": [dict(s) for s in self.steps],
        }
        if self.reason:
            out["reason"] = sentence(self.reason)
        # a no_fault incident says why (docs/causes.md); the runbook step is its own field
        out["reason_code"] = reason_code(self.outcome, self.reason)
        out["runbook_step"] = runbook_step(self.cause)
        names = subject_names(self.subject, self.evidence)
        if names:
            out["names"] = names
        return out


@dataclass
class SkippedRecord:
    """A record that could not be used (schema drift, unresolved id), with where it came from."""

    system: str
    endpoint: str
    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        """The report's form."""
        return {
            "system": self.system,
            "endpoint": self.endpoint,
            "field": self.field,
            "message": self.message,
        }


@dataclass
class RepeatReport:
    """A repeat the run did not report again: it joined an incident reported moments ago."""

    cause: str
    subject: Mapping[str, str]
    joined_incident_id: str
    #: the joined incident's outcome
    outcome: str
    event_ids: list[str] = field(default_factory=list)
    first_seen_at: datetime | None = None
    #: the facts the repeat was diagnosed from (where the names of its subject's ids are)
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The report's ``repeats[]`` entry."""
        return {
            "cause": self.cause,
            "subject": dict(self.subject),
            "names": subject_names(self.subject, self.evidence),
            "joined_incident_id": self.joined_incident_id,
            "outcome": self.outcome,
            "event_ids": list(self.event_ids),
            "first_seen_at": iso_z(self.first_seen_at, whole_seconds=True)
            if self.first_seen_at
            else None,
        }

    def line(self) -> str:
        """One line for a person (vendor text not yet escaped)."""
        events = f", {len(self.event_ids)} more event(s)" if self.event_ids else ""
        return (
            f"{self.cause} {subject_text(self.subject, self.evidence)}: joined incident "
            f"{self.joined_incident_id} ({self.outcome}{events})"
        )


@dataclass
class RunReport:
    """Everything one run found and did."""

    run_id: str
    playbook: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None = None
    incidents: list[IncidentReport] = field(default_factory=list)
    skipped: list[SkippedRecord] = field(default_factory=list)
    error: str | None = None
    #: systems whose circuit breaker opened during the run (no more writes to them)
    breakers: list[str] = field(default_factory=list)
    #: repeats of incidents reported within the cool-down: listed, not reported again
    repeats: list[RepeatReport] = field(default_factory=list)
    #: facts doorfix used with an assumption a person should know (a center with no release date)
    warnings: list[str] = field(default_factory=list)
    #: ``sandbox`` when the run worked on the embedded sandbox (nothing real was touched)
    target: Target = "live"
    #: the shard of centers the run worked (``2/8``, a fleet's tick); None: every center
    shard: str | None = None

    @property
    def counts(self) -> dict[str, int]:
        """Incidents per outcome."""
        return dict(sorted(Counter(i.outcome for i in self.incidents).items()))

    def as_dict(self) -> dict[str, Any]:
        """DESIGN.md's run report object."""
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "playbook": self.playbook,
            "dry_run": self.dry_run,
            "target": self.target,
            "started_at": iso_z(self.started_at, whole_seconds=True),
            "finished_at": iso_z(self.finished_at, whole_seconds=True)
            if self.finished_at
            else None,
            "counts": self.counts,
            "incidents": [i.as_dict() for i in self.incidents],
        }
        if self.shard is not None:
            out["shard"] = self.shard
        if self.repeats:
            out["repeats"] = [r.as_dict() for r in self.repeats]
        if self.warnings:
            out["warnings"] = list(self.warnings)
        if self.skipped:
            out["skipped"] = [s.as_dict() for s in self.skipped]
        if self.breakers:
            out["breakers"] = list(self.breakers)
        if self.error:
            out["error"] = self.error
        return out

    def to_json(self) -> str:
        """The report as one JSON object."""
        return json.dumps(self.as_dict(), sort_keys=False)


#: the rich style of each outcome on a terminal (the run table, the demo, the period report)
OUTCOME_STYLE = {
    "fixed": "green",
    "pending_verification": "cyan",
    "would_fix": "blue",
    "needs_human": "yellow",
    "no_fault": "dim",
    "deferred": "magenta",
    "failed": "red",
    "awaiting_approval": "bright_magenta",
}


def run_mode(report: RunReport) -> str:
    """What the run's heading says beside its playbook: a dry-run, a shard of the centers."""
    mode = " (dry-run)" if report.dry_run else ""
    if report.shard is not None:
        mode += f" (centers of shard {report.shard})"
    return mode


def _headline(report: RunReport) -> str:
    """The counts of the table's first line; a failed run never reads "nothing found"."""
    counts = ", ".join(f"{k} {v}" for k, v in report.counts.items())
    if report.error:
        # a failed run found what it found before it stopped
        return "FAILED before it finished" + (f"; recorded before that: {counts}" if counts else "")
    return counts or ("nothing new" if report.repeats else "nothing found")


def render_table(report: RunReport, console: Console) -> None:
    """Print the report for a person: one row per incident, then steps and skips."""
    mode = run_mode(report)
    counts = _headline(report)
    if report.target == "sandbox":
        console.print(Text(f"[{SANDBOX_NOTICE}]", style="bold reverse"))
    console.print(
        f"[bold]{report.playbook}[/bold]{mode} run {report.run_id}: "
        f"{rich_escape(counts or 'nothing found')}"
    )
    if report.incidents:
        table = Table(show_lines=False)
        for column in ("outcome", "cause", "subject", "actions", "events"):
            table.add_column(column)
        for inc in report.incidents:
            style = OUTCOME_STYLE.get(inc.outcome, "")
            actions = "; ".join(f"{a.remedy} {a.target} [{a.status}]" for a in inc.actions)
            # the cells are data, not markup: "[succeeded]" must print as it is
            table.add_row(
                Text(inc.outcome, style=style),
                Text(printable(inc.cause)),
                Text(printable(subject_text(inc.subject, inc.evidence))),
                Text(printable(actions or sentence(inc.reason))),
                Text(str(len(inc.event_ids))),
            )
        console.print(table)
    for inc in report.incidents:
        if inc.steps:
            subject = printable(subject_text(inc.subject, inc.evidence))
            console.print(Text.assemble((printable(inc.cause), "yellow"), f" {subject}:"))
            for n, step in enumerate(inc.steps, 1):
                line = f"  {n}. ({step.get('who', '?')}) {step.get('text', '')}"
                console.print(Text(printable(line)))
    for warning in report.warnings:
        console.print(Text.assemble(("warning: ", "yellow"), printable(warning)))
    if report.repeats:
        console.print(f"repeats (already reported, joined): {len(report.repeats)}")
        for repeat in report.repeats:
            console.print(Text(printable(f"  {repeat.line()}"), style="dim"))
    for skip in report.skipped:
        where = f"{skip.system} {skip.endpoint}" + (f" field {skip.field}" if skip.field else "")
        line = printable(f" {where}: {skip.message}")
        console.print(Text.assemble(("skipped record", "red"), line))
    if report.error:
        console.print(Text.assemble(("run did not complete: ", "red"), printable(report.error)))
