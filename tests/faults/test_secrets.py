"""Secrets never leave: not in a log line, a report, a journal row or an error's text.

The sandbox is given recognisable credentials and doorfix the same (and, for the failing
cases, recognisably wrong ones). Everything doorfix produces is gathered as text, and none of
the secrets, nor any bearer token the sandbox issued, may appear in it.
"""

from __future__ import annotations

import base64
import io
import json
import re
import sqlite3
import traceback
from datetime import timedelta
from pathlib import Path

import httpx
import respx
from faultkit import Forward, Routes, World, cli_env, doorfix_each, make_world
from rich.console import Console
from structlog.testing import capture_logs
from support.configs import write_config

from doorfix.agent.engine.report import render_table
from doorfix.agent.engine.run import RunFailed
from doorfix.agent.engine.ticket import diagnose_ticket
from doorfix.agent.reports.period import build_report
from doorfix.agent.reports.render import render
from doorfix.agent.runtime import sandbox_secrets
from doorfix.clock import SystemClock
from doorfix.sandbox.api.app import create_app
from doorfix.sandbox.api.auth import SandboxCredentials
from doorfix.sandbox.api.server import ServedSandbox
from doorfix.sandbox.faults.api import ApiFaults
from doorfix.sandbox.scenarios.registry import build_scenario

CREDS = SandboxCredentials(
    cloud_client_secret="CLOUD-SECRET-9f3a61c2e7",
    aca_api_key="ACA-KEY-4b8d20f5a1",
    clp_client_secret="CLP-SECRET-c07b4419de",
)
#: wrong but just as secret: what a failing authentication was attempted with
WRONG = ("CLOUD-WRONG-77e1a0", "ACA-WRONG-5c2f9d", "CLP-WRONG-0ad3b6")
#: what a token of the sandbox looks like (``secrets.token_urlsafe(24)`` after the system)
TOKEN = re.compile(r"\b(?:cloud|clp)-[A-Za-z0-9_-]{32}(?![A-Za-z0-9_-])")


def basic(secret: str) -> str:
    """The HTTP Basic credentials CLP's token request carries (as secret as the secret)."""
    return base64.b64encode(f"{CREDS.clp_client_id}:{secret}".encode()).decode()


SECRETS = (
    CREDS.cloud_client_secret,
    CREDS.aca_api_key,
    CREDS.clp_client_secret,
    basic(CREDS.clp_client_secret),
    *WRONG,
    basic(WRONG[2]),
)


def leaks(text: str, tokens: list[str]) -> list[str]:
    """Every secret or token found in ``text``."""
    found = [s for s in (*SECRETS, *tokens) if s in text]
    return found + TOKEN.findall(text)


def journal_dump(path: Path) -> str:
    """Every column of every row of every table of the journal, as text."""
    out = []
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            out += [repr(row) for row in conn.execute(f"SELECT * FROM {table}")]  # noqa: S608
    assert len(out) > 50  # runs, incidents, actions, events, feeds: the journal is full
    return "\n".join(out)


def tap_tokens(tokens: list[str]) -> Routes:
    """Routes that note every access token the sandbox issues."""

    def routes(router: respx.Router, forward: Forward) -> None:
        async def note(request: httpx.Request) -> httpx.Response:
            response = await forward(request)
            if response.status_code == 200:
                tokens.append(json.loads(response.content)["access_token"])
            return response

        router.post(path__regex=r"/(oauth/token|connect/token)$").mock(side_effect=note)

    return routes


async def everything(w: World) -> list[str]:
    """Every playbook real and dry, the ticket path both ways, tokens expiring in between."""
    texts = []
    reports = [await w.run(p, dry_run=True) for p in ("door-logs", "aca-rejections")]
    reports += [await w.run(p) for p in ("door-logs", "aca-rejections", "license-renewal")]
    w.faults.expire_tokens("cloud")
    w.faults.expire_tokens("clp")
    w.faults.add("503", system="aca", endpoint="users", count=2)
    w.clock.advance(timedelta(minutes=15))
    reports += [await w.run(p) for p in ("door-logs", "aca-rejections")]
    lock, door = w.manifest["normal.tag"], w.manifest["normal.door"]
    reports.append(await diagnose_ticket(w.agent, lock["user_id"], lock_id=lock["lock_id"]))
    reports.append(
        await diagnose_ticket(w.agent, lock["user_id"], door_id=door["door_id"], fix=True)
    )
    for report in reports:
        texts.append(report.to_json())
        screen = io.StringIO()
        render_table(report, Console(file=screen, width=200))
        texts.append(screen.getvalue())
    period = build_report(
        w.agent.journal, since=w.clock.now() - timedelta(days=1), until=w.clock.now()
    )
    texts += [render(period, fmt) for fmt in ("text", "markdown", "html", "json")]
    return texts


async def test_no_secret_or_token_in_logs_reports_journal_or_errors(tmp_path: Path) -> None:
    tokens: list[str] = []
    journal = tmp_path / "journal.sqlite3"
    good = sandbox_secrets(CREDS.cloud_client_secret, CREDS.aca_api_key, CREDS.clp_client_secret)
    w = make_world(journal=journal, credentials=CREDS, secrets=good, routes=tap_tokens(tokens))
    texts: list[str] = []
    try:
        with capture_logs() as logs:
            texts += await everything(w)
            # and with wrong credentials, one system at a time
            for n in range(3):
                wrong = [CREDS.cloud_client_secret, CREDS.aca_api_key, CREDS.clp_client_secret]
                wrong[n] = WRONG[n]
                bad = make_world(credentials=CREDS, secrets=sandbox_secrets(*wrong))
                try:
                    for playbook in ("door-logs", "aca-rejections"):
                        try:
                            await bad.run(playbook)
                        except RunFailed as exc:
                            texts += [str(exc), repr(exc), repr(exc.__cause__)]
                            texts.append("".join(traceback.format_exception(exc)))
                            texts.append(exc.report.to_json())
                finally:
                    await bad.aclose()
    finally:
        await w.aclose()
    texts.append(repr(logs))
    texts.append(journal_dump(journal))

    assert len(tokens) >= 4  # a cloud and a CLP token, then new ones after they expired
    assert sum("auth" in t.lower() or "unauthorized" in t for t in texts) >= 3  # it did fail
    assert leaks("\n".join(texts), tokens) == []


def test_no_secret_or_token_in_the_cli_output_and_json_logs(tmp_path: Path) -> None:
    world = build_scenario("demo", seed=0, clock=SystemClock())
    app = create_app(world, credentials=CREDS, api_faults=ApiFaults(seed=0))
    env = cli_env(CREDS)
    with ServedSandbox(app) as served:
        # retries and an expired token give the JSON log stream something to say
        served.state.faults.add("503", system="aca", endpoint="users", count=3, retry_after=0)
        served.state.faults.add("503", system="cloud", endpoint="get_door_list", retry_after=0)
        served.state.faults.expire_tokens("cloud")

        def config(name: str) -> str:
            path = write_config(
                tmp_path / f"{name}.toml",
                served.urls,
                tmp_path / f"{name}.sqlite3",
                "[guards]\nrenewals_enabled = true\n",
            )
            return str(path)

        main = config("main")
        user, lock = world.notes["normal.tag"]["user_id"], world.notes["normal.tag"]["lock_id"]
        first = doorfix_each(
            [
                (("--config", main, "run", "door-logs", "--json"), env),
                (("--config", config("dry"), "run", "aca-rejections", "--dry-run"), env),
                (("--config", config("ticket"), "diagnose", "--user", user, "--lock", lock), env),
                (
                    ("--config", config("wrong"), "run", "aca-rejections"),
                    cli_env(
                        CREDS, DOORFIX_ACA_API_KEY=WRONG[1], DOORFIX_CLP_CLIENT_SECRET=WRONG[2]
                    ),
                ),
            ]
        )
        second = doorfix_each(
            [
                (("--config", main, "report", "--format", "markdown"), env),
                (("--config", main, "history", "--user", user, "--format", "json"), env),
            ]
        )
    results = [*first, *second]
    assert [r.returncode for r in results] == [0, 0, 0, 2, 0, 0], [r.stderr for r in results]
    # the stderr of a run is JSON log lines (and at most a last line for a person)
    logged = [line for r in results for line in r.stderr.splitlines() if line.startswith("{")]
    events = [json.loads(line) for line in logged]
    assert {"http_retry"} <= {e["event"] for e in events}
    wrong = results[3].stderr.strip().splitlines()[-1]
    assert wrong.startswith("doorfix: ")
    assert "401" in wrong or "invalid" in wrong
    texts = [r.stdout + r.stderr for r in results]
    texts += [journal_dump(tmp_path / "main.sqlite3")]
    assert leaks("\n".join(texts), []) == []
