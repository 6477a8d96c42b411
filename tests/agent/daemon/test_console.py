"""The supervisors' console over a journal: pages, escaping, secrets, tokens, CSRF, 404s.

The app is the daemon's own (``build_endpoint`` with the console), driven over ASGI with the
Host a browser on loopback sends; the real-browser tests are in ``tests/browser``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from support.processes import DOORFIX, sandbox_env

from doorfix.agent.daemon.access import ConsoleAccess
from doorfix.agent.daemon.console import (
    CSP,
    Console,
    ConsoleContext,
    PlaybookState,
    playbook_runs,
)
from doorfix.agent.daemon.endpoint import Health, build_endpoint
from doorfix.agent.journal.store import IncidentRow, Journal
from doorfix.clock import ManualClock
from doorfix.log import Redactor

NOW = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
VIEW = "view-token-0123456789"
APPROVE = "approve-token-0123456789"
#: a secret the redactor knows, planted in vendor text
SECRET = "sk-live-9f8e7d6c5b4a"
HOSTILE = '<script>alert("x")</script>'


async def _healthy() -> Health:
    return Health(None)


@pytest.fixture
def journal() -> Iterator[Journal]:
    journal = Journal(":memory:", clock=ManualClock(NOW))
    yield journal
    journal.close()


def _needs_human(journal: Journal, key: str, who: str) -> IncidentRow:
    run_id = journal.start_run("aca-rejections", dry_run=False)
    row = journal.open_incident(
        key=key,
        cause="aca.lock_offline",
        subject={"center_id": "c-1", "lock_id": f"l-{key}"},
        run_id=run_id,
        event_ids=[f"ev-{key}"],
        evidence={"lock_name": HOSTILE, "note": f"token {SECRET}"},
    )
    steps = [{"who": who, "text": f"Power-cycle the IQ of {HOSTILE}"}]
    journal.set_outcome(row.incident_id, outcome="needs_human", run_id=run_id, steps=steps)
    journal.finish_run(run_id, status="completed", counts={"needs_human": 1})
    return row


def _client(
    journal: Journal,
    access: ConsoleAccess,
    status: Callable[[], Sequence[PlaybookState]] = tuple,
) -> httpx.AsyncClient:
    context = ConsoleContext(
        journal=journal,
        clock=ManualClock(NOW),
        access=access,
        redact=Redactor([SECRET]),
        status=status,
    )
    app = build_endpoint(health=_healthy, registry=CollectorRegistry(), console=Console(context))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1", follow_redirects=False
    )


async def _sign_in(client: httpx.AsyncClient, token: str, name: str = "Dana") -> str:
    """Sign in; the CSRF token of the *Needs a person* page's first form."""
    answer = await client.post("/login", data={"name": name, "token": token, "next": "/"})
    assert answer.status_code == 303, answer.text
    page = (await client.get("/needs-a-person")).text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


async def test_every_page_renders_escaped_without_secrets_under_a_strict_csp(
    journal: Journal,
) -> None:
    row = _needs_human(journal, "a", "on_site_staff")
    client = _client(journal, ConsoleAccess(view_token=None, approve_token=None))
    pages = ["/", "/needs-a-person", "/incidents", f"/incidents/{row.incident_id}"]
    pages.append("/history?lock_id=l-a")
    for path in pages:
        answer = await client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-security-policy"] == CSP
        assert "script-src" not in CSP
        assert "'unsafe-inline'" not in CSP
        assert HOSTILE not in answer.text, path
        assert SECRET not in answer.text, path
    needs = (await client.get("/needs-a-person")).text
    assert "&lt;script&gt;" in needs
    assert "On-site staff" in needs
    assert "aca.lock_offline" in needs
    assert "<script" not in needs


async def test_needs_a_person_groups_by_who_acts_first(journal: Journal) -> None:
    _needs_human(journal, "a", "distributor")
    _needs_human(journal, "b", "on_site_staff")
    client = _client(journal, ConsoleAccess(view_token=None, approve_token=None))
    page = (await client.get("/needs-a-person")).text
    on_site, distributor = page.index('id="who-on_site_staff"'), page.index('id="who-distributor"')
    assert on_site < distributor
    assert page.count('class="card incident"') == 2


async def test_without_tokens_the_console_reads_but_never_writes(journal: Journal) -> None:
    row = _needs_human(journal, "a", "on_site_staff")
    client = _client(journal, ConsoleAccess(view_token=None, approve_token=None))
    page = (await client.get("/needs-a-person")).text
    assert "Mark handled" not in page
    assert "read-only" in page
    refused = await client.post(f"/incidents/{row.incident_id}/handled", data={"note": "done"})
    assert refused.status_code == 403
    assert "approver" in refused.text
    assert journal.handled_ids() == set()


async def test_a_view_token_is_needed_to_read_and_cannot_write(journal: Journal) -> None:
    row = _needs_human(journal, "a", "on_site_staff")
    client = _client(journal, ConsoleAccess(view_token=VIEW, approve_token=APPROVE))
    anonymous = await client.get("/needs-a-person")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login")
    assert (await client.get("/", headers={"Authorization": "Bearer wrong"})).status_code == 401
    refused_login = await client.post("/login", data={"name": "Eve", "token": "wrong"})
    assert refused_login.status_code == 401
    assert "doorfix_console" not in refused_login.cookies
    viewer = {"Authorization": f"Bearer {VIEW}"}
    assert (await client.get("/needs-a-person", headers=viewer)).status_code == 200
    refused = await client.post(
        f"/incidents/{row.incident_id}/handled", data={"note": "done"}, headers=viewer
    )
    assert refused.status_code == 403
    assert journal.handled_ids() == set()


async def test_marking_handled_needs_the_csrf_token_and_is_recorded_once(journal: Journal) -> None:
    row = _needs_human(journal, "a", "on_site_staff")
    client = _client(journal, ConsoleAccess(view_token=VIEW, approve_token=APPROVE))
    csrf = await _sign_in(client, APPROVE)
    url = f"/incidents/{row.incident_id}/handled"

    forged = await client.post(url, data={"note": "done"})
    stale = await client.post(url, data={"note": "done", "csrf": "not-the-token"})
    assert (forged.status_code, stale.status_code) == (403, 403)
    assert "CSRF" in forged.text
    assert journal.handled_ids() == set()

    done = await client.post(url, data={"note": "power-cycled the IQ", "csrf": csrf, "next": "/"})
    assert done.status_code == 303
    assert [(m.by, m.note) for m in journal.marks(row.incident_id)] == [
        ("Dana", "power-cycled the IQ")
    ]
    assert 'id="who-on_site_staff"' not in (await client.get("/needs-a-person")).text
    page = (await client.get(f"/incidents/{row.incident_id}")).text
    assert "marked <strong>handled</strong> by Dana: power-cycled the IQ" in page

    again = await client.post(url, data={"note": "twice", "csrf": csrf})
    assert again.status_code == 409
    assert "already marked handled by Dana" in again.text
    assert len(journal.marks(row.incident_id)) == 1


async def test_unknown_ids_and_paths_are_404_pages_and_bad_filters_400(journal: Journal) -> None:
    client = _client(journal, ConsoleAccess(view_token=None, approve_token=APPROVE))
    for path, text in (("/incidents/nope", "no incident nope"), ("/nowhere", "no page")):
        answer = await client.get(path)
        assert answer.status_code == 404
        assert text in answer.text
        assert answer.headers["content-type"].startswith("text/html")
    _needs_human(journal, "a", "on_site_staff")
    csrf = await _sign_in(client, APPROVE)
    missing = await client.post("/incidents/nope/handled", data={"note": "x", "csrf": csrf})
    assert missing.status_code == 404
    assert "no incident nope" in missing.text
    bad = await client.get("/incidents?since=yesterday")
    assert bad.status_code == 400
    assert "since:" in bad.text


async def test_the_incidents_list_filters_by_center_cause_outcome_and_since(
    journal: Journal,
) -> None:
    _needs_human(journal, "a", "on_site_staff")
    client = _client(journal, ConsoleAccess(view_token=None, approve_token=None))
    assert "l-a" in (await client.get("/incidents?center=c-1&outcome=needs_human&since=24h")).text
    assert "l-a" not in (await client.get("/incidents?center=c-2")).text
    assert "l-a" not in (await client.get("/incidents?outcome=fixed")).text
    assert "l-a" not in (await client.get("/incidents?cause=cloud.license_inactive")).text


def test_a_non_loopback_bind_without_tokens_is_refused_at_start(tmp_path: Path) -> None:
    config = tmp_path / "doorfix.toml"
    config.write_text(
        f'[journal]\npath = "{tmp_path / "j.db"}"\n[daemon]\nhost = "0.0.0.0"\nport = 0\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in sandbox_env().items() if not k.startswith("DOORFIX_CONSOLE")}
    done = subprocess.run(
        [*DOORFIX, "--config", str(config), "daemon"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "0.0.0.0" in done.stderr  # noqa: S104 - the refused address, named
    assert "DOORFIX_CONSOLE_VIEW_TOKEN and DOORFIX_CONSOLE_APPROVE_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr


async def test_approvals_need_the_approver_a_csrf_token_and_a_note_to_refuse(
    journal: Journal,
) -> None:
    row = _needs_human(journal, "a", "on_site_staff")
    run_id = journal.start_run("license-renewal", dry_run=False)
    waiting = journal.request_approval(
        incident_id=row.incident_id,
        run_id=run_id,
        remedy="renew_license",
        target="p-1/d-1",
        system="cloud",
        params={"project_id": "p-1", "door_id": "d-1", "months": 12},
        ttl=timedelta(hours=24),
    )
    client = _client(journal, ConsoleAccess(view_token=VIEW, approve_token=APPROVE))
    viewer = {"Authorization": f"Bearer {VIEW}"}
    page = await client.get("/approvals", headers=viewer)
    assert page.status_code == 200
    assert f'id="approval-{waiting.approval_id}"' in page.text
    assert 'id="waiting-count">1<' in page.text
    assert "form" not in page.text.split("<main>")[1].split("<h2>Decided")[0]
    url = f"/approvals/{waiting.approval_id}"
    assert (await client.post(f"{url}/approve", headers=viewer)).status_code == 403

    csrf = await _sign_in(client, APPROVE)
    assert (await client.post(f"{url}/approve", data={})).status_code == 403  # no CSRF
    no_note = await client.post(f"{url}/refuse", data={"csrf": csrf, "note": " "})
    assert no_note.status_code == 400
    assert "note:" in no_note.text
    assert (await client.post("/approvals/nope/approve", data={"csrf": csrf})).status_code == 404
    current = journal.approval(waiting.approval_id)
    assert current is not None
    assert current.status == "awaiting_approval"  # nothing half-recorded

    done = await client.post(f"{url}/refuse", data={"csrf": csrf, "note": "not this month"})
    assert done.status_code == 303
    assert done.headers["location"] == "/approvals"
    refused = journal.approval(waiting.approval_id)
    assert refused is not None
    assert (refused.status, refused.decided_by, refused.note) == (
        "refused",
        "Dana",
        "not this month",
    )
    again = await client.post(f"{url}/approve", data={"csrf": csrf})
    assert again.status_code == 409
    assert "already refused by Dana" in again.text


async def test_an_incident_page_shows_each_action_s_exact_api_calls_and_result(
    journal: Journal,
) -> None:
    row = _needs_human(journal, "a", "on_site_staff")
    run_id = journal.start_run("aca-rejections", dry_run=False)
    toggle = journal.intent(
        run_id=run_id,
        incident_id=row.incident_id,
        remedy="toggle_access_matrix",
        target="u-1/l-a",
        system="aca",
        params={"call": {"user_id": "u-1", "lock_id": "l-a"}, "verify": {}},
        idempotency_key="k-1",
    )
    journal.result(toggle, status="succeeded", detail={"larry_access": "granted"})
    renew = journal.intent(
        run_id=run_id,
        incident_id=row.incident_id,
        remedy="renew_license",
        target="p-1/d-1",
        system="cloud",
        params={"call": {"project_id": "p-1", "door_id": "d-1", "months": 12}, "verify": {}},
        idempotency_key="k-2",
    )
    journal.result(renew, status="failed", detail={"error": f"refused {HOSTILE}"})
    client = _client(journal, ConsoleAccess(view_token=None, approve_token=None))

    page = (await client.get(f"/incidents/{row.incident_id}")).text

    assert "PUT /api/v1/access_matrix/u-1/l-a {&#34;enabled&#34;: false}" in page
    assert "PUT /api/v1/access_matrix/u-1/l-a {&#34;enabled&#34;: true}" in page
    assert "POST /api/v1.0/invoke/open-ability/method/manager-commands" in page
    assert "&#34;command&#34;: &#34;renew_door_license&#34;" in page
    assert "&#34;larry_access&#34;: &#34;granted&#34;" in page
    assert "refused &lt;script&gt;" in page
    assert HOSTILE not in page


async def test_a_fleet_s_playbook_shows_the_newest_run_of_each_shard(journal: Journal) -> None:
    """A fleet's tick is one run per shard: the *Now* page sums the shards' newest runs and
    says how many are in each state, not only the one shard's run that happened to be last."""
    finished = {"0/3": ("completed", {"fixed": 2}), "2/3": ("failed", {"needs_human": 1})}
    old = journal.start_run("door-logs", dry_run=False, shard="0/3")
    journal.finish_run(old, status="failed", counts={"failed": 5})  # an older tick's
    for shard, (status, counts) in finished.items():
        run_id = journal.start_run("door-logs", dry_run=False, shard=shard)
        journal.finish_run(run_id, status=status, counts=counts)
    journal.start_run("door-logs", dry_run=False, shard="1/3")  # still going

    def status() -> list[PlaybookState]:
        last, shards = playbook_runs(journal, "door-logs", 3)
        return [PlaybookState("door-logs", last, None, upstream_down=False, shard_runs=shards)]

    client = _client(journal, ConsoleAccess(view_token=None, approve_token=None), status)
    page = (await client.get("/")).text
    row = re.search(r"<tr>\s*<td>door-logs</td>.*?</tr>", page, re.S)
    assert row is not None, page
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row[0], re.S)]
    assert cells[2] == "completed 1, failed 1, running 1 (of 3 shards)"
    assert cells[3] == "fixed 2, needs_human 1"
