"""The supervisors' console: server-rendered pages on the daemon's endpoint.

*Now* (each playbook's last and next run, upstream and circuit-breaker state, the last 24 h
by outcome, the incidents chart), *Needs a person* (``needs_human`` incidents not yet marked
handled, grouped by who acts first, each with its checklist and evidence), *Waiting for
approval* (supervised mode's actions, approved or refused here), *Incidents* (a filterable
list and each incident's page), *History* (the look-ups of ``doorfix history``).

Every page is a Jinja2 template with autoescape on: vendor text (names, notes, error
messages) is escaped, and every value passes the secrets redactor first. The pages load
nothing but their own stylesheet and run no script, under a strict Content-Security-Policy.
Writes are plain forms (POST, a CSRF token each) that need the approver's token
(:mod:`~doorfix.agent.daemon.access`); what a write records is one journal transaction.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import structlog
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from doorfix.agent.daemon.access import COOKIE, ConsoleAccess, Role, Session
from doorfix.agent.engine.shards import Shard
from doorfix.agent.journal.store import IncidentRow, Journal, RunRow
from doorfix.agent.reports.history import SUBJECT_KEYS, subject_history
from doorfix.agent.reports.period import build_report, subject_text
from doorfix.agent.reports.render import OUTCOME_COLOURS, svg_chart
from doorfix.clock import Clock
from doorfix.connectors.aca import API as ACA_API
from doorfix.connectors.cloud import COMMANDS_PATH
from doorfix.connectors.models import iso_z
from doorfix.errors import StateConflict, UnknownRecord
from doorfix.log import Redactor
from doorfix.text import printable

log = structlog.get_logger("doorfix.console")

_HERE = Path(__file__).resolve().parent
#: who acts on a needs_human incident, in the order the page lists them
WHO_ORDER: tuple[str, ...] = ("on_site_staff", "user", "support", "distributor", "vendor_support")
WHO_TITLES: Mapping[str, str] = {
    "on_site_staff": "On-site staff",
    "user": "The user",
    "support": "Support",
    "distributor": "The distributor",
    "vendor_support": "Vendor support",
    "": "Nobody named",
}
#: the strictest policy the pages work under: their own stylesheet, no script, no frame
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    # not no-referrer: under it a browser sends "Origin: null" with a form, which is refused
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
#: a form body larger than this is refused
MAX_FORM_BYTES = 16_384
#: a note longer than this is refused
MAX_NOTE = 2000
#: the chart covers this many days
CHART_DAYS = 14
#: how far back the *Needs a person* page looks
NEEDS_A_PERSON_DAYS = 30


#: the cloud command each cloud remedy sends (``POST`` to the cloud's commands path)
CLOUD_COMMANDS: Mapping[str, str] = {
    "renew_license": "renew_door_license",
    "assign_credential": "add_personnel_credential",
    "add_to_access_group": "add_access_group_member",
    "create_temp_key": "create_visitor_temp_key",
    "set_holiday_hours": "set_holiday_working_hours",
}


def api_calls(remedy: str, params: Mapping[str, Any]) -> list[str]:
    """The HTTP calls a remedy makes with these parameters, as the connectors send them."""
    call = params.get("call", params)
    if not isinstance(call, Mapping):
        return []
    if remedy in CLOUD_COMMANDS:
        body = {"command": CLOUD_COMMANDS[remedy], "param": dict(call)}
        return [f"POST {COMMANDS_PATH} {json.dumps(body, sort_keys=True, default=str)}"]
    if remedy == "toggle_access_matrix":
        path = f"{ACA_API}/access_matrix/{call.get('user_id')}/{call.get('lock_id')}"
        return [f'PUT {path} {{"enabled": false}}', f'PUT {path} {{"enabled": true}}']
    if remedy == "sync_access":
        return [
            f"POST /larry/v1/sites/{call.get('site_id')}/collections/"
            f"{call.get('collection_id')}/sync_access"
        ]
    return []  # escalate: a report, no call


@dataclass(frozen=True)
class PlaybookState:
    """One playbook as the daemon sees it now."""

    playbook: str
    last_run: RunRow | None
    next_run: datetime | None
    upstream_down: bool
    breakers: tuple[str, ...] = ()
    #: in a fleet, the newest run of each shard of centers (a tick is one run per shard)
    shard_runs: tuple[RunRow, ...] = ()

    @property
    def status(self) -> str:
        """The last run's status; in a fleet, how many shards' newest runs are in each."""
        if self.shard_runs:
            by = Counter(r.status for r in self.shard_runs)
            states = ", ".join(f"{status} {n}" for status, n in sorted(by.items()))
            return f"{states} (of {len(self.shard_runs)} shards)"
        return self.last_run.status if self.last_run else "-"

    @property
    def counts(self) -> dict[str, int]:
        """The last run's counts; in a fleet, summed over the shards' newest runs."""
        total: Counter[str] = Counter()
        for run in self.shard_runs or ((self.last_run,) if self.last_run else ()):
            total.update(run.counts)
        return dict(total)


def playbook_runs(
    journal: Journal, playbook: str, shards: int
) -> tuple[RunRow | None, tuple[RunRow, ...]]:
    """A playbook's newest run and, with ``shards`` over 1, the newest run of each shard."""
    runs = journal.runs(playbook=playbook, limit=1 if shards <= 1 else 3 * shards)
    newest: dict[str, RunRow] = {}
    for run in runs:  # newest first
        if run.shard is not None:
            newest.setdefault(run.shard, run)
    ordered = sorted(newest.values(), key=lambda r: Shard.parse(str(r.shard)).index)
    return (runs[0] if runs else None), tuple(ordered)


@dataclass
class ConsoleContext:
    """What the pages read: the journal, the clock, the daemon's state, the secrets."""

    journal: Journal
    clock: Clock
    access: ConsoleAccess
    status: Callable[[], Sequence[PlaybookState]] = tuple
    redact: Redactor = field(default_factory=Redactor)
    dry_run: bool = False


class _Form:
    """A urlencoded form body, parsed without python-multipart."""

    def __init__(self, body: bytes) -> None:
        self._values = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)

    def get(self, name: str) -> str | None:
        values = self._values.get(name)
        return None if not values else values[0]


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = lambda d: "-" if d is None else iso_z(d, whole_seconds=True)
    env.filters["subject"] = lambda s: printable(subject_text(s))
    env.filters["printable"] = lambda s: printable(str(s), keep_newlines=True)
    env.filters["pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, ensure_ascii=False)
    env.globals["colours"] = OUTCOME_COLOURS
    env.globals["who_titles"] = WHO_TITLES
    return env


class Console:
    """The console's routes around one :class:`ConsoleContext`."""

    def __init__(self, context: ConsoleContext) -> None:
        self.ctx = context
        self.env = _environment()

    # ------------------------------------------------------------------ plumbing

    def routes(self) -> list[BaseRoute]:
        """The console's routes, to add to the daemon's app."""
        return [
            Route("/", self.now, methods=["GET"]),
            Route("/needs-a-person", self.needs_a_person, methods=["GET"]),
            Route("/incidents", self.incidents, methods=["GET"]),
            Route("/incidents/{incident_id}", self.incident, methods=["GET"]),
            Route("/incidents/{incident_id}/handled", self.handled, methods=["POST"]),
            Route("/history", self.history, methods=["GET"]),
            Route("/approvals", self.approvals, methods=["GET"]),
            Route("/approvals/{approval_id}/approve", self.approve, methods=["POST"]),
            Route("/approvals/{approval_id}/refuse", self.refuse, methods=["POST"]),
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/console.css", self.stylesheet, methods=["GET"]),
        ]

    def page(
        self, request: Request, template: str, status_code: int = 200, **values: Any
    ) -> Response:
        """A rendered page with the security headers."""
        session = self._session(request)
        html = self.env.get_template(template).render(
            session=session,
            can_write=session is not None and session.role is Role.APPROVER,
            access=self.ctx.access,
            dry_run=self.ctx.dry_run,
            path=request.url.path,
            waiting=len(self.ctx.journal.approvals(status="awaiting_approval")),
            **values,
        )
        return HTMLResponse(html, status_code=status_code, headers=dict(SECURITY_HEADERS))

    def error(self, request: Request, status: int, message: str) -> Response:
        """An error page: 400, 401, 403, 404, 409."""
        return self.page(request, "error.html", status, status=status, message=message)

    def not_found(self, request: Request, exc: Exception) -> Response:
        """The 404 page of any unknown path."""
        detail = exc.detail if isinstance(exc, HTTPException) else "no such page"
        if detail == "Not Found":
            detail = f"no page {request.url.path}"
        return self.error(request, 404, str(detail))

    def _session(self, request: Request) -> Session | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            role = self.ctx.access.role_of(auth[7:].strip())
            return None if role is None else Session(role, "api", "")
        return self.ctx.access.session(request.cookies.get(COOKIE))

    def _reader(self, request: Request) -> Response | None:
        """None when the request may read; else the answer (a sign-in redirect)."""
        if self.ctx.access.open_to_read or self._session(request) is not None:
            return None
        if request.headers.get("authorization"):
            return self.error(request, 401, "the token is not a console token")
        return RedirectResponse(f"/login?{urlencode({'next': request.url.path})}", 303)

    async def _writer(self, request: Request) -> tuple[Session, _Form] | Response:
        """The approver's session and the form, or the refusal."""
        session = self._session(request)
        if session is None or session.role is not Role.APPROVER:
            return self.error(request, 403, "this needs the approver's token (sign in)")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return self.error(request, 413, f"the form is over {MAX_FORM_BYTES} bytes")
        form = _Form(body)
        from_cookie = not request.headers.get("authorization")
        if from_cookie and not self.ctx.access.csrf_ok(session, form.get("csrf")):
            return self.error(request, 403, "the form's CSRF token is missing or stale: reload")
        return session, form

    def scrub(self, value: Any) -> Any:
        """``value`` without secrets."""
        return self.ctx.redact.scrub(value)

    # ------------------------------------------------------------------ sign in

    async def login_page(self, request: Request) -> Response:
        """The sign-in form."""
        return self.page(request, "login.html", next=_local(request.query_params.get("next")))

    async def login(self, request: Request) -> Response:
        """Check a token; on success set the session cookie and go on."""
        body = await request.body()
        form = _Form(body[:MAX_FORM_BYTES])
        name = printable((form.get("name") or "").strip())[:80]
        if not name:
            return self.page(request, "login.html", 400, next="/", failed="Give your name.")
        signed = self.ctx.access.sign_in(form.get("token") or "", name)
        if signed is None:
            log.warning("console_sign_in_refused", name=name)
            return self.page(request, "login.html", 401, next="/", failed="Unknown token.")
        sid, session = signed
        log.info("console_signed_in", name=name, role=str(session.role))
        answer = RedirectResponse(_local(form.get("next")), 303)
        answer.set_cookie(COOKIE, sid, httponly=True, samesite="strict", path="/")
        return answer

    async def logout(self, request: Request) -> Response:
        """Forget the session."""
        self.ctx.access.sign_out(request.cookies.get(COOKIE))
        answer = RedirectResponse("/login", 303)
        answer.delete_cookie(COOKIE, path="/")
        return answer

    async def stylesheet(self, _request: Request) -> Response:
        """The one stylesheet."""
        css = (_HERE / "static" / "console.css").read_text()
        return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=300"})

    # ------------------------------------------------------------------ pages

    async def now(self, request: Request) -> Response:
        """*Now*: the playbooks, the last 24 h, the chart."""
        if (refused := self._reader(request)) is not None:
            return refused
        journal, now = self.ctx.journal, self.ctx.clock.now()
        day = journal.incidents(since=now - timedelta(hours=24))
        counts = Counter(row.outcome or "open" for row in day)
        report = build_report(journal, since=now - timedelta(days=CHART_DAYS), until=now)
        return self.page(
            request,
            "now.html",
            title="Now",
            now=now,
            playbooks=list(self.ctx.status()),
            counts=dict(sorted(counts.items())),
            chart=Markup(svg_chart(report.per_day, inline_style=False)),  # noqa: S704 - built of numbers and escaped names
        )

    async def needs_a_person(self, request: Request) -> Response:
        """*Needs a person*: unhandled ``needs_human`` incidents, grouped by who acts."""
        if (refused := self._reader(request)) is not None:
            return refused
        journal, now = self.ctx.journal, self.ctx.clock.now()
        rows = [
            r
            for r in journal.incidents(since=now - timedelta(days=NEEDS_A_PERSON_DAYS))
            if r.outcome == "needs_human"
        ]
        handled = journal.handled_ids([r.incident_id for r in rows])
        groups: dict[str, list[IncidentRow]] = defaultdict(list)
        for row in rows:
            if row.incident_id in handled:
                continue
            whos = [s.get("who", "") for s in row.steps if s.get("who")]
            groups[whos[0] if whos else ""].append(self.scrub_row(row))
        order = [w for w in WHO_ORDER if w in groups] + sorted(set(groups) - set(WHO_ORDER))
        return self.page(
            request,
            "needs_a_person.html",
            title="Needs a person",
            groups=[(who, groups[who]) for who in order],
            handled=len(handled),
            total=sum(len(g) for g in groups.values()),
        )

    def scrub_row(self, row: IncidentRow) -> IncidentRow:
        """An incident row with its vendor texts scrubbed of secrets."""
        return dataclasses.replace(
            row,
            subject=self.scrub(row.subject),
            evidence=self.scrub(row.evidence),
            steps=self.scrub(row.steps),
        )

    async def incidents(self, request: Request) -> Response:
        """*Incidents*: filtered by center, cause, outcome and since."""
        if (refused := self._reader(request)) is not None:
            return refused
        query = request.query_params
        center = (query.get("center") or "").strip()
        cause = (query.get("cause") or "").strip()
        outcome = (query.get("outcome") or "").strip()
        since_text = (query.get("since") or "").strip()
        now = self.ctx.clock.now()
        try:
            since = _since(since_text, now) if since_text else None
        except ValueError as exc:
            return self.error(request, 400, f"since: {exc}")
        rows = self.ctx.journal.incidents(
            since=since,
            subject={"center_id": center} if center else None,
            cause=cause or None,
            limit=500,
        )
        if outcome:
            rows = [r for r in rows if (r.outcome or "open") == outcome]
        return self.page(
            request,
            "incidents.html",
            title="Incidents",
            rows=[self.scrub_row(r) for r in rows],
            handled=self.ctx.journal.handled_ids([r.incident_id for r in rows]),
            filters={"center": center, "cause": cause, "outcome": outcome, "since": since_text},
        )

    async def incident(self, request: Request) -> Response:
        """One incident: events, evidence, actions with their calls and results, history."""
        if (refused := self._reader(request)) is not None:
            return refused
        incident_id = request.path_params["incident_id"]
        journal = self.ctx.journal
        row = journal.incident(incident_id)
        if row is None:
            return self.error(request, 404, f"no incident {incident_id}")
        actions = journal.actions(incident_id=incident_id)
        return self.page(
            request,
            "incident.html",
            title=f"Incident {incident_id}",
            row=self.scrub_row(row),
            actions=[
                {
                    "remedy": a.remedy,
                    "system": a.system,
                    "target": self.scrub(a.target),
                    "params": self.scrub(a.params),
                    "status": a.status,
                    "detail": self.scrub(a.detail),
                    "started_at": a.started_at,
                    "finished_at": a.finished_at,
                    "idempotency_key": a.idempotency_key,
                    "calls": self.scrub(api_calls(a.remedy, a.params)),
                }
                for a in actions
            ],
            history=[(h.at, h.outcome, self.scrub(h.note)) for h in journal.history(incident_id)],
            marks=[
                (m.at, m.mark, self.scrub(m.by), self.scrub(m.note))
                for m in journal.marks(incident_id)
            ],
            approvals=[self.scrub(a.as_dict()) for a in journal.incident_approvals(incident_id)],
        )

    async def handled(self, request: Request) -> Response:
        """Mark a ``needs_human`` incident handled, with a note."""
        checked = await self._writer(request)
        if isinstance(checked, Response):
            return checked
        session, form = checked
        incident_id = request.path_params["incident_id"]
        note = (form.get("note") or "").strip()
        if not note:
            return self.error(request, 400, "note: say what was done")
        if len(note) > MAX_NOTE:
            return self.error(request, 400, f"note: at most {MAX_NOTE} characters")
        row = self.ctx.journal.incident(incident_id)
        if row is None:
            return self.error(request, 404, f"no incident {incident_id}")
        if row.outcome != "needs_human":
            return self.error(
                request, 409, f"incident {incident_id} is {row.outcome or 'open'}, not needs_human"
            )
        try:
            self.ctx.journal.mark_handled(incident_id, by=session.name, note=note)
        except UnknownRecord as exc:
            return self.error(request, 404, str(exc))
        except StateConflict as exc:
            return self.error(request, 409, str(exc))
        log.info("incident_handled", incident_id=incident_id, by=session.name)
        return RedirectResponse(_local(form.get("next") or "/needs-a-person"), 303)

    async def approvals(self, request: Request) -> Response:
        """*Waiting for approval*: the actions waiting, and the latest decided ones."""
        if (refused := self._reader(request)) is not None:
            return refused
        journal, now = self.ctx.journal, self.ctx.clock.now()
        waiting = journal.approvals(status="awaiting_approval")
        recent = [a for a in journal.approvals(limit=50) if a.status != "awaiting_approval"]
        incidents = {a.incident_id: journal.incident(a.incident_id) for a in waiting}
        return self.page(
            request,
            "approvals.html",
            title="Waiting for approval",
            now=now,
            rows=[
                (self.scrub(a.as_dict()), a.expired(now), incidents.get(a.incident_id))
                for a in waiting
            ],
            recent=[self.scrub(a.as_dict()) for a in recent],
        )

    async def approve(self, request: Request) -> Response:
        """Approve a waiting action."""
        return await self._decide(request, approve=True)

    async def refuse(self, request: Request) -> Response:
        """Refuse a waiting action (a note is required)."""
        return await self._decide(request, approve=False)

    async def _decide(self, request: Request, *, approve: bool) -> Response:
        checked = await self._writer(request)
        if isinstance(checked, Response):
            return checked
        session, form = checked
        approval_id = request.path_params["approval_id"]
        note = (form.get("note") or "").strip()
        if not approve and not note:
            return self.error(request, 400, "note: say why the action is refused")
        if len(note) > MAX_NOTE:
            return self.error(request, 400, f"note: at most {MAX_NOTE} characters")
        try:
            done = self.ctx.journal.decide_approval(
                approval_id, approve=approve, by=session.name, note=note or None
            )
        except UnknownRecord as exc:
            return self.error(request, 404, str(exc))
        except StateConflict as exc:
            return self.error(request, 409, str(exc))
        log.info(
            "approval_decided",
            approval_id=approval_id,
            status=done.status,
            by=session.name,
            remedy=done.remedy,
        )
        return RedirectResponse(_local(form.get("next") or "/approvals"), 303)

    async def history(self, request: Request) -> Response:
        """*History*: every incident and action of one subject."""
        if (refused := self._reader(request)) is not None:
            return refused
        subject = {
            k: v.strip()
            for k in SUBJECT_KEYS
            if (v := request.query_params.get(k)) is not None and v.strip()
        }
        found = None
        if subject:
            found = subject_history(self.ctx.journal, subject)
        return self.page(
            request,
            "history.html",
            title="History",
            keys=SUBJECT_KEYS,
            subject=subject,
            timeline=[] if found is None else [self.scrub(e.as_dict()) for e in found.timeline()],
            incidents=0 if found is None else len(found.incidents),
            actions=0 if found is None else found.action_count,
        )


def _local(target: str | None) -> str:
    """A redirect target that stays on this site (an absolute path), else ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _since(text: str, now: datetime) -> datetime:
    """``24h``, ``7d`` or an ISO date/time as a time."""
    units = {"h": timedelta(hours=1), "d": timedelta(days=1)}
    if text[-1:] in units and text[:-1].isdigit():
        return now - int(text[:-1]) * units[text[-1]]
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither 24h, 7d nor an ISO date") from None
    return when if when.tzinfo else when.replace(tzinfo=now.tzinfo)
