"""Notifications through apprise: a message per run that fixed or escalated something, and a
daily digest with the HTML report attached.

The sinks are apprise URLs from ``DOORFIX_NOTIFY_URLS`` (space-separated). They embed tokens
and passwords, so a URL is never logged: a sink is named by its position and scheme, plus its
host for the schemes whose host is a plain address (mail and webhooks). A sink that fails is
logged once as ``notify_failed`` and never fails the run; every message is scrubbed of the
doorfix secrets and of the sinks' own credentials before it leaves.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise
import structlog

from doorfix.agent.config import ENV_NOTIFY_URLS, Settings
from doorfix.agent.engine.report import IncidentReport, RunReport
from doorfix.agent.journal.store import Journal
from doorfix.agent.reports.period import (
    SECTION_TITLES,
    SECTIONS,
    PeriodReport,
    build_report,
    subject_text,
)
from doorfix.agent.reports.render import render_html, render_markdown
from doorfix.log import redact_text
from doorfix.text import markdown_text

log = structlog.get_logger("doorfix.notify")

Kind = Literal["info", "success", "warning", "failure"]

#: schemes whose host is an address, not a token, so it may be named in a log line
_PLAIN_HOST = frozenset({"mailto", "mailtos", "json", "jsons", "xml", "xmls", "form", "forms"})
#: query parameters whose value is a credential
_SECRET_PARAMS = frozenset({"pass", "password", "token", "key", "apikey", "api_key", "secret"})
#: path segments this long with a digit are treated as tokens (webhook paths carry them)
_TOKEN_SEGMENT = 8
#: seconds one sink may take before it counts as failed
SEND_TIMEOUT = 30.0
#: apprise logs through one process-wide logger; a capture must not see another send's lines
_APPRISE_LOG = threading.Lock()


@dataclass(frozen=True)
class Sink:
    """One apprise URL; ``label`` is the only part of it that may be logged."""

    index: int
    scheme: str
    label: str
    url: str = field(repr=False)
    secrets: tuple[str, ...] = field(repr=False, default=())


def parse_sinks(value: str | None) -> list[Sink]:
    """The sinks of a space-separated list of apprise URLs."""
    sinks = []
    for index, url in enumerate((value or "").split(), start=1):
        scheme, sep, _ = url.partition("://")
        scheme = scheme.lower() if sep else "?"
        label = f"#{index} {scheme}"
        host = _host(url)
        if scheme in _PLAIN_HOST and host:
            label += f"://{host}"
        sinks.append(Sink(index, scheme, label, url, _url_secrets(url)))
    return sinks


def _host(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    return f"{parts.hostname}:{port}" if port else parts.hostname or ""


def _token_like(part: str) -> bool:
    # a token mixes letters and digits; a plain word (a path like /doorfix/incidents) must
    # not be scrubbed out of every message
    return len(part) >= _TOKEN_SEGMENT and any(c.isdigit() for c in part)


def _url_secrets(url: str) -> tuple[str, ...]:
    """The parts of an apprise URL that are credentials: password, tokens in path and query."""
    found = [url]
    try:
        parts = urlsplit(url)
        if parts.password:
            found += [parts.password, unquote(parts.password)]
        found += [s for s in parts.path.split("/") if _token_like(s)]
        found += [v for k, v in parse_qsl(parts.query) if k.lower() in _SECRET_PARAMS and v]
        host = parts.netloc.rpartition("@")[2].partition(":")[0]
        if parts.scheme.lower() not in _PLAIN_HOST and _token_like(host):
            # slack://TokenA/..., msteams://team/token...: the host is a token too (and
            # urlsplit's hostname is lower-cased, so take it as written)
            found.append(host)
    except ValueError:
        pass
    return tuple(found)


@dataclass(frozen=True)
class Delivery:
    """Which sinks took a message and which failed (by label)."""

    sent: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every sink took the message (or none is configured)."""
        return not self.failed


class Notifier:
    """Sends one message to every configured sink; a failing sink is logged, never raised."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        *,
        title: str = "doorfix",
        redact: Iterable[str] = (),
        timeout: float = SEND_TIMEOUT,
    ) -> None:
        self.sinks = tuple(sinks)
        self.title = title
        self.timeout = timeout
        self._secrets = (*redact, *(s for sink in self.sinks for s in sink.secrets))

    @classmethod
    def from_env(
        cls,
        settings: Settings,
        *,
        env: Mapping[str, str] | None = None,
        redact: Iterable[str] = (),
    ) -> Notifier:
        """The notifier of ``DOORFIX_NOTIFY_URLS`` and the ``[report]`` settings."""
        source = os.environ if env is None else env
        return cls(
            parse_sinks(source.get(ENV_NOTIFY_URLS)), title=settings.report.title, redact=redact
        )

    @property
    def enabled(self) -> bool:
        """True when at least one sink is configured."""
        return bool(self.sinks)

    @property
    def redactions(self) -> tuple[str, ...]:
        """The values scrubbed from every message: doorfix secrets and sink credentials."""
        return self._secrets

    def scrub(self, text: str) -> str:
        """``text`` without any doorfix secret or sink credential."""
        return redact_text(text, self._secrets)

    async def send(
        self,
        title: str,
        body: str,
        *,
        kind: Kind = "info",
        attach: Sequence[Path] = (),
    ) -> Delivery:
        """Send a Markdown message to every sink, one after the other, each with a deadline."""
        title, body = self.scrub(title), self.scrub(body)
        sent: list[str] = []
        failed: list[str] = []
        for sink in self.sinks:
            try:
                reason = await asyncio.wait_for(
                    asyncio.to_thread(_deliver, sink, title, body, kind, tuple(attach)),
                    self.timeout,
                )
            except TimeoutError:
                reason = f"no answer within {self.timeout:g} s"
            except Exception as exc:  # noqa: BLE001 - a broken sink must never fail the run
                reason = f"{type(exc).__name__}: {exc}"
            if reason is None:
                sent.append(sink.label)
                continue
            failed.append(sink.label)
            # the reason comes from apprise and may quote the URL: scrub it as a message
            log.warning(
                "notify_failed", sink=sink.label, scheme=sink.scheme, reason=self.scrub(reason)
            )
        if sent:
            log.info("notify_sent", sinks=sent, title=title)
        return Delivery(tuple(sent), tuple(failed))


@contextmanager
def _apprise_log() -> Iterator[io.StringIO]:
    """Capture apprise's warnings for one send; they may quote a sink URL, so none propagates."""
    logger = logging.getLogger(apprise.LOGGER_NAME)
    with _APPRISE_LOG:
        propagate, logger.propagate = logger.propagate, False
        try:
            capture = apprise.LogCapture(level=logging.WARNING)  # type: ignore[no-untyped-call]
            with capture as captured:
                yield captured
        finally:
            logger.propagate = propagate


def _deliver(sink: Sink, title: str, body: str, kind: Kind, attach: tuple[Path, ...]) -> str | None:
    """Send through one sink (blocking); None on success, else why it failed."""
    client = apprise.Apprise()
    with _apprise_log() as captured:
        if not client.add(sink.url):
            return "not an apprise URL it understands"
        attachment = apprise.AppriseAttachment([str(p) for p in attach]) if attach else None
        ok = client.notify(
            body=body,
            title=title,
            notify_type=kind,
            body_format=apprise.NotifyFormat.MARKDOWN,
            attach=attachment,
        )
    if ok:
        return None
    lines = [line for line in captured.getvalue().splitlines() if line.strip()]
    return lines[-1].split(" - ", 2)[-1] if lines else "the sink refused the message"


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
    mode = " (dry-run)" if report.dry_run else ""
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
    return heading, "\n".join(lines) + "\n", _kind(report, wanted)


def _incident_lines(incident: IncidentReport, console_url: str | None = None) -> str:
    # vendor text (ids, names, notes) is data: it must never become a link or markup; the
    # only link is the console's own URL (config) and the incident's id (doorfix's own hex)
    head = f"- {markdown_text(incident.cause)}: {markdown_text(subject_text(incident.subject))}"
    if console_url and incident.incident_id.isalnum():
        head += f" ({console_url}/incidents/{incident.incident_id})"
    actions = "; ".join(f"{a.remedy} {a.target} [{a.status}]" for a in incident.actions)
    if actions:
        head += f": {markdown_text(actions)}"
    if incident.reason:
        head += f" ({markdown_text(incident.reason)})"
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
    """Send the run's message if it fixed or escalated something; None when nothing was sent."""
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
        f"{SECTION_TITLES.get(o, o).lower()} {n}" for o, n in report.by_outcome.items()
    )
    title = f"{report.title} digest {report.until:%Y-%m-%d}: {counts or 'nothing found'}"
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
