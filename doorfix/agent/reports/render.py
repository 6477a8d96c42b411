"""Renderers of the period report: rich text, Markdown, JSON, and one self-contained HTML file.

The HTML file has its CSS inline and its chart as inline SVG, a Content-Security-Policy that
forbids loading anything, and no script: it can be mailed, attached or archived as is.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Literal

from rich.console import Console
from rich.markup import escape as rich_escape
from rich.table import Table
from rich.text import Text

from doorfix.agent.engine.report import OUTCOME_STYLE, SANDBOX_NOTICE
from doorfix.agent.reports.period import (
    LISTED_SECTIONS,
    OPEN,
    SECTION_TITLES,
    SECTIONS,
    DayCount,
    PeriodReport,
    ProblemEntry,
)
from doorfix.agent.words import runbook_step, sentence, subject_text
from doorfix.connectors.models import iso_z
from doorfix.durations import format_duration
from doorfix.text import markdown_text, printable

Format = Literal["text", "markdown", "html", "json"]
FORMATS: tuple[Format, ...] = ("text", "markdown", "html", "json")

#: One colour per outcome, shared by the chart, its legend and the badges.
OUTCOME_COLOURS: Mapping[str, str] = {
    "fixed": "#2e7d32",
    "pending_verification": "#00838f",
    "would_fix": "#1565c0",
    "needs_human": "#f9a825",
    "failed": "#c62828",
    "deferred": "#7b1fa2",
    "no_fault": "#9e9e9e",
    "awaiting_approval": "#ef6c00",
    OPEN: "#5d4037",
}


def render(report: PeriodReport, fmt: Format) -> str:
    """The report as text in one of :data:`FORMATS` (text is rendered without colour)."""
    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "html":
        return render_html(report)
    if fmt == "json":
        return render_json(report)
    console = Console(record=True, width=160, file=io.StringIO(), color_system=None)
    render_text(report, console)
    return console.export_text()


def _when(moment: datetime) -> str:
    """ISO 8601 in UTC, to the minute: ``2026-11-16T08:00Z``."""
    return iso_z(moment, whole_seconds=True)[:-4] + "Z"


def _period(report: PeriodReport) -> str:
    return f"{_when(report.since)} to {_when(report.until)}"


def _counts_line(counts: Mapping[str, int]) -> str:
    parts = [f"{SECTION_TITLES.get(o, o).lower()} {n}" for o, n in counts.items()]
    return ", ".join(parts) or "no incidents"


def _headline(report: PeriodReport) -> str:
    """The counts, by listed section; a period whose runs failed never reads "nothing found"."""
    line = _counts_line(report.by_section)
    failed = sum(statuses.get("failed", 0) for statuses in report.runs.values())
    if failed:
        line += f"; {failed} run(s) FAILED before they finished (see Runs)"
    return line


def _who(p: ProblemEntry) -> str:
    return ", ".join(p.who) or "support"


def _subject(p: ProblemEntry) -> str:
    return subject_text(p.subject, p.evidence)


def _runs_line(report: PeriodReport) -> str:
    parts = []
    for playbook, statuses in report.runs.items():
        detail = ", ".join(f"{n} {s}" for s, n in statuses.items())
        parts.append(f"{playbook} ({detail})")
    return "; ".join(parts) or "no runs"


def _actions_text(problem: ProblemEntry) -> str:
    return "; ".join(f"{a.remedy} {a.target} [{a.status}]" for a in problem.actions)


# json --------------------------------------------------------------------------------------


def render_json(report: PeriodReport) -> str:
    """The report as one JSON object."""
    return json.dumps(report.as_dict(), indent=2)


# rich text ---------------------------------------------------------------------------------


def render_text(report: PeriodReport, console: Console) -> None:
    """Print the report for a person on a terminal."""
    if report.target == "sandbox":
        console.print(Text(f"[{SANDBOX_NOTICE}]", style="bold reverse"))
    console.print(f"[bold]{rich_escape(report.title)} report[/bold] {_period(report)}")
    console.print(
        f"{len(report.problems)} problem(s) in {report.incident_count} incident(s): "
        f"{_headline(report)}",
        markup=False,
    )
    console.print(f"Runs: {_runs_line(report)}", markup=False)
    console.print(
        f"Mean time from first event to verified fix: {report.time_to_fix.text()}", markup=False
    )
    for section in LISTED_SECTIONS:
        problems = report.listed(section)
        if not problems:
            continue
        style = OUTCOME_STYLE.get(section, "dim")
        console.print()
        console.print(f"[bold {style}]{SECTION_TITLES[section]}[/] ({len(problems)})")
        if section == "needs_human":
            _text_checklists(problems, console)
            continue
        table = Table(show_lines=False, expand=False)
        for column in ("cause", "runbook", "subject", "actions", "last seen", "note"):
            table.add_column(column, overflow="fold")
        for p in problems:
            table.add_row(
                Text(printable(p.cause)),
                Text(printable(runbook_step(p.cause))),
                Text(printable(_subject(p))),
                Text(printable(_actions_text(p) or "-")),
                Text(_when(p.last_seen_at)),
                Text(printable(sentence(p.note))),
            )
        console.print(table)
    if report.approvals:
        console.print()
        console.print(f"[bold]Approvals[/bold] ({len(report.approvals)})")
        for a in report.approvals:
            console.print(f"  {printable(a.text())}", markup=False, highlight=False)
    _text_tables(report, console)


def _text_checklists(problems: Sequence[ProblemEntry], console: Console) -> None:
    for p in problems:
        subject = rich_escape(printable(_subject(p)))
        console.print(
            f"- [yellow]{rich_escape(printable(p.cause))}[/yellow] "
            f"{subject} (who: {rich_escape(printable(_who(p)))}; "
            f"runbook: {rich_escape(printable(runbook_step(p.cause)))})"
        )
        # prose is left to the terminal to wrap, so a saved report keeps one step per line
        if p.note:
            console.print(f"  {printable(sentence(p.note))}", markup=False, soft_wrap=True)
        for n, step in enumerate(p.steps, 1):
            line = f"  {n}. ({step.get('who', '?')}) {step.get('text', '')}"
            console.print(printable(line), markup=False, soft_wrap=True)
        if p.actions:
            console.print(f"  actions: {printable(_actions_text(p))}", markup=False, soft_wrap=True)


def _text_tables(report: PeriodReport, console: Console) -> None:
    if report.by_cause:
        console.print()
        table = Table(title="By cause")
        table.add_column("cause")
        columns = _outcome_columns(report.by_cause.values())
        for outcome in columns:
            table.add_column(outcome, justify="right")
        for cause, counts in report.by_cause.items():
            table.add_row(Text(printable(cause)), *(str(counts.get(o, 0) or "") for o in columns))
        console.print(table)
    if report.by_remedy:
        table = Table(title="By remedy (actions)")
        table.add_column("remedy")
        statuses = sorted({s for counts in report.by_remedy.values() for s in counts})
        for status in statuses:
            table.add_column(status, justify="right")
        for remedy, counts in report.by_remedy.items():
            table.add_row(Text(printable(remedy)), *(str(counts.get(s, 0) or "") for s in statuses))
        console.print(table)
    busy = [d for d in report.per_day if d.total]
    if busy:
        table = Table(title="Incidents per day")
        table.add_column("day")
        table.add_column("incidents", justify="right")
        table.add_column("by outcome")
        for d in busy:
            table.add_row(d.day.isoformat(), str(d.total), Text(_counts_line(d.counts)))
        console.print(table)


def _outcome_columns(rows: Iterable[Mapping[str, int]]) -> list[str]:
    seen = {o for counts in rows for o in counts}
    return [o for o in (*SECTIONS, OPEN) if o in seen]


# markdown ----------------------------------------------------------------------------------


def _md(text: object) -> str:
    """A table cell of data: markdown, HTML and pipes escaped, controls shown, one line."""
    return markdown_text(str(text)).strip() or "-"


def render_markdown(report: PeriodReport) -> str:
    """The report as Markdown (a chat message, a ticket, an email body)."""
    out = [
        f"# {report.title} report: {_period(report)}",
        "",
        *([f"> **{SANDBOX_NOTICE}**", ""] if report.target == "sandbox" else []),
        f"{len(report.problems)} problem(s) in {report.incident_count} incident(s): "
        f"**{_headline(report)}**",
        "",
        f"- Runs: {_runs_line(report)}",
        f"- Mean time from first event to verified fix: {report.time_to_fix.text()}",
        f"- Journal: {_md(report.journal)}",
    ]
    for section in LISTED_SECTIONS:
        problems = report.listed(section)
        if not problems:
            continue
        out += ["", f"## {SECTION_TITLES[section]} ({len(problems)})", ""]
        if section == "needs_human":
            out += _md_checklists(problems)
            continue
        out += [
            "| cause | runbook | subject | actions | last seen | note |",
            "|---|---|---|---|---|---|",
        ]
        out += [
            f"| {_md(p.cause)} | {_md(runbook_step(p.cause))} | {_md(_subject(p))} "
            f"| {_md(_actions_text(p))} | {_md(_when(p.last_seen_at))} | {_md(sentence(p.note))} |"
            for p in problems
        ]
    if report.by_cause:
        columns = _outcome_columns(report.by_cause.values())
        out += ["", "## By cause", "", f"| cause | {' | '.join(columns)} |"]
        out.append("|---" * (len(columns) + 1) + "|")
        for cause, counts in report.by_cause.items():
            cells = " | ".join(str(counts.get(o, 0)) for o in columns)
            out.append(f"| {_md(cause)} | {cells} |")
    if report.by_remedy:
        statuses = sorted({s for counts in report.by_remedy.values() for s in counts})
        out += ["", "## By remedy (actions)", "", f"| remedy | {' | '.join(statuses)} |"]
        out.append("|---" * (len(statuses) + 1) + "|")
        for remedy, counts in report.by_remedy.items():
            cells = " | ".join(str(counts.get(s, 0)) for s in statuses)
            out.append(f"| {_md(remedy)} | {cells} |")
    if report.approvals:
        out += ["", f"## Approvals ({len(report.approvals)})", ""]
        out += [f"- {_md(a.text())}" for a in report.approvals]
    busy = [d for d in report.per_day if d.total]
    if busy:
        out += ["", "## Incidents per day", "", "| day | incidents | by outcome |", "|---|---|---|"]
        out += [
            f"| {d.day.isoformat()} | {d.total} | {_md(_counts_line(d.counts))} |" for d in busy
        ]
    return "\n".join(out) + "\n"


def _md_checklists(problems: Sequence[ProblemEntry]) -> list[str]:
    out: list[str] = []
    for p in problems:
        out.append(f"### {_md(p.cause)}: {_md(_subject(p))}")
        out.append("")
        out.append(
            f"Who: **{_md(_who(p))}**. Runbook: {_md(runbook_step(p.cause))}."
            + (f" {_md(sentence(p.note))}." if p.note else "")
        )
        out.append("")
        out += [
            f"{n}. ({_md(step.get('who', '?'))}) {_md(step.get('text', ''))}"
            for n, step in enumerate(p.steps, 1)
        ]
        if p.actions:
            out += ["", f"Actions: {_md(_actions_text(p))}"]
        out.append("")
    return out


# html --------------------------------------------------------------------------------------

_CSS = """
.sandbox{background:#fde68a;color:#000;padding:.5em 1em;border:2px solid #b45309}
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#1c1c1c;
background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.muted{color:#616161}.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.tile{border-left:6px solid #9e9e9e;background:#f5f5f5;padding:8px 12px;min-width:120px}
.tile b{display:block;font-size:22px}
table{border-collapse:collapse;width:100%;font-size:13px;margin-bottom:8px}
th,td{border:1px solid #e0e0e0;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#eceff1}td.n{text-align:right}
.badge{display:inline-block;color:#fff;border-radius:3px;padding:1px 6px;font-size:12px;
white-space:nowrap}
ol{margin:0;padding-left:18px}code{font-size:12px}
"""


def render_html(report: PeriodReport) -> str:
    """The report as one self-contained HTML document (inline CSS and SVG, no script)."""
    title = f"{report.title} report: {_period(report)}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        (
            f'<p class="sandbox" role="alert"><strong>{escape(SANDBOX_NOTICE)}</strong></p>'
            if report.target == "sandbox"
            else ""
        ),
        f'<p class="muted">{len(report.problems)} problem(s) in {report.incident_count} '
        f"incident(s) &middot; runs: {escape(_runs_line(report))} &middot; journal "
        f"<code>{escape(report.journal)}</code></p>",
        _html_tiles(report),
        "<h2>Incidents over time</h2>",
        svg_chart(report.per_day),
        _html_checklists(report.section("needs_human")),
        _html_incidents(report.problems),
        _html_actions(report),
        _html_approvals(report),
        _html_crosstab(
            "By cause", "cause", report.by_cause, _outcome_columns(report.by_cause.values())
        ),
        _html_crosstab(
            "By remedy (actions)",
            "remedy",
            report.by_remedy,
            sorted({s for counts in report.by_remedy.values() for s in counts}),
        ),
        f'<p class="muted">Generated {escape(iso_z(report.until, whole_seconds=True))} '
        "by doorfix.</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _badge(outcome: str, section: str | None = None) -> str:
    colour = OUTCOME_COLOURS.get(outcome, "#616161")
    label = escape(SECTION_TITLES.get(section or outcome, outcome))
    return f'<span class="badge" style="background:{colour}">{label}</span>'


def _html_tiles(report: PeriodReport) -> str:
    tiles = [
        f'<div class="tile" style="border-color:{OUTCOME_COLOURS.get(o, "#9e9e9e")}">'
        f"<b>{n}</b>{escape(SECTION_TITLES.get(o, o))}</div>"
        for o, n in report.by_section.items()
    ]
    tiles.append(
        f'<div class="tile"><b>{escape(_short_ttf(report))}</b>mean time to verified fix</div>'
    )
    return f'<div class="tiles">{"".join(tiles)}</div>'


def _short_ttf(report: PeriodReport) -> str:
    mean = report.time_to_fix.mean
    return "-" if mean is None else format_duration(mean)


def _html_checklists(problems: Sequence[ProblemEntry]) -> str:
    if not problems:
        return ""
    rows = []
    for p in problems:
        steps = "".join(
            f"<li><b>{escape(s.get('who', '?'))}</b>: {escape(s.get('text', ''))}</li>"
            for s in p.steps
        )
        rows.append(
            f'<tr class="step-row"><td>{escape(p.cause)}</td>'
            f"<td>{escape(runbook_step(p.cause))}</td>"
            f"<td>{escape(_subject(p))}</td>"
            f"<td>{escape(_who(p))}</td>"
            f"<td><ol>{steps}</ol></td><td>{escape(sentence(p.note))}</td></tr>"
        )
    return (
        f"<h2>Needs a person ({len(problems)})</h2>"
        '<table id="steps"><thead><tr><th>cause</th><th>runbook</th><th>subject</th><th>who</th>'
        "<th>steps</th><th>why</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _html_incidents(problems: Sequence[ProblemEntry]) -> str:
    rows = [
        f'<tr class="incident-row"><td>{_badge(p.outcome, p.section)}</td>'
        f"<td>{escape(p.cause)}</td><td>{escape(runbook_step(p.cause))}</td>"
        f"<td>{escape(_subject(p))}</td><td class=n>{p.incidents}</td>"
        f"<td class=n>{p.occurrences}</td><td>{escape(_when(p.first_seen_at))}</td>"
        f"<td>{escape(_when(p.last_seen_at))}</td><td>{escape(sentence(p.note))}</td></tr>"
        for p in problems
    ]
    return (
        f"<h2>Incidents ({len(problems)} problem(s))</h2>"
        '<table id="incidents"><thead><tr><th>outcome</th><th>cause</th><th>runbook</th>'
        "<th>subject</th><th>incidents</th><th>events</th><th>first seen</th>"
        "<th>last seen</th><th>note</th>"
        "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _html_actions(report: PeriodReport) -> str:
    rows = [
        f'<tr class="action-row"><td>{escape(_when(a.started_at))}</td>'
        f"<td>{escape(a.remedy)}</td><td>{escape(a.target)}</td><td>{escape(a.system)}</td>"
        f"<td>{escape(a.status)}</td><td>{escape(p.cause)}</td><td>{escape(a.detail)}</td></tr>"
        for p, a in report.actions
    ]
    return (
        f"<h2>Actions ({len(rows)})</h2>"
        '<table id="actions"><thead><tr><th>started</th><th>remedy</th><th>target</th>'
        "<th>system</th><th>status</th><th>cause</th><th>detail</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _html_approvals(report: PeriodReport) -> str:
    if not report.approvals:
        return ""
    rows = [
        f'<tr class="approval-row"><td>{escape(_when(a.requested_at))}</td>'
        f"<td>{escape(a.remedy)}</td><td>{escape(a.target)}</td><td>{escape(a.status)}</td>"
        f"<td>{escape(a.decided_by or '-')}</td>"
        f"<td>{escape(_when(a.decided_at) if a.decided_at else '-')}</td>"
        f"<td>{escape(a.note)}</td></tr>"
        for a in report.approvals
    ]
    return (
        f"<h2>Approvals ({len(rows)})</h2>"
        '<table id="approvals"><thead><tr><th>requested</th><th>remedy</th><th>target</th>'
        "<th>status</th><th>by</th><th>decided</th><th>note</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _html_crosstab(
    title: str, label: str, table: Mapping[str, Mapping[str, int]], columns: Sequence[str]
) -> str:
    if not table:
        return ""
    head = "".join(f"<th>{escape(SECTION_TITLES.get(c, c))}</th>" for c in columns)
    rows = "".join(
        f"<tr><td>{escape(name)}</td>"
        + "".join(f"<td class=n>{counts.get(c, 0)}</td>" for c in columns)
        + "</tr>"
        for name, counts in table.items()
    )
    return (
        f"<h2>{escape(title)}</h2><table><thead><tr><th>{escape(label)}</th>{head}</tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


# svg chart ---------------------------------------------------------------------------------

_W, _H = 960, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 16, 16, 70


def _tick_step(value: int) -> int:
    """The smallest 1/2/5 x 10^n step at which four gridlines reach ``value`` (at least 1)."""
    need = -(-value // 4)
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= need:
                return max(1, m * step)
        step *= 10


def svg_chart(days: Sequence[DayCount], *, inline_style: bool = True) -> str:
    """Incidents per day as stacked bars by outcome, with axes and a legend, as inline SVG.

    ``inline_style=False``: no ``style`` attribute (a page whose CSP forbids inline styles
    sizes ``#chart`` in its stylesheet).
    """
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    tick = _tick_step(max((d.total for d in days), default=0))
    top = tick * 4
    outcomes = [o for o in (*SECTIONS, OPEN) if any(d.counts.get(o) for d in days)]
    out = [
        '<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="100%" '
        + (f'style="max-width:{_W}px" ' if inline_style else "")
        + f'viewBox="0 0 {_W} {_H}" role="img" '
        'aria-label="Incidents per day by outcome">',
        f'<rect x="0" y="0" width="{_W}" height="{_H}" fill="#ffffff"/>',
    ]
    for i in range(5):
        y = _TOP + plot_h - plot_h * i / 4
        out.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W - _RIGHT}" y2="{y:.1f}" stroke="#e0e0e0"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#616161">{tick * i}</text>'
        )
    slot = plot_w / max(1, len(days))
    bar = max(1.0, slot * 0.7)
    label_every = max(1, round(len(days) / 15))
    for n, day in enumerate(days):
        x = _LEFT + n * slot + (slot - bar) / 2
        y = _TOP + plot_h
        for outcome in outcomes:
            count = day.counts.get(outcome, 0)
            if not count:
                continue
            h = plot_h * count / top
            y -= h
            out.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{OUTCOME_COLOURS[outcome]}"><title>{day.day.isoformat()}: '
                f"{count} {escape(SECTION_TITLES.get(outcome, outcome))}</title></rect>"
            )
        if n % label_every == 0:
            out.append(
                f'<text x="{x + bar / 2:.1f}" y="{_TOP + plot_h + 16}" font-size="11" '
                f'text-anchor="middle" fill="#424242">{day.day.strftime("%m-%d")}</text>'
            )
    out.append(
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_W - _RIGHT}" y2="{_TOP + plot_h}" '
        'stroke="#9e9e9e"/>'
    )
    x = float(_LEFT)
    legend_y = _H - 24
    for outcome in outcomes or ["fixed"]:
        label = escape(SECTION_TITLES.get(outcome, outcome))
        out.append(
            f'<rect x="{x:.0f}" y="{legend_y - 10}" width="12" height="12" '
            f'fill="{OUTCOME_COLOURS[outcome]}"/><text x="{x + 16:.0f}" y="{legend_y}" '
            f'font-size="12" fill="#424242">{label}</text>'
        )
        x += 24 + 7 * len(SECTION_TITLES.get(outcome, outcome))
    if not any(d.total for d in days):
        out.append(
            f'<text x="{_W / 2:.0f}" y="{_TOP + plot_h / 2:.0f}" text-anchor="middle" '
            'font-size="14" fill="#9e9e9e">no incidents in this period</text>'
        )
    out.append("</svg>")
    return "".join(out)
