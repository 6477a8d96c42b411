"""Notifications through apprise to a real SMTP server and a real webhook; a dead sink is logged.

The SMTP server is aiosmtpd on 127.0.0.1 with a login (plain SMTP, no TLS: ``mode=insecure``);
the webhook is a Starlette app under uvicorn. Both run in threads; apprise reaches them over
real sockets. A third sink points at a port nobody listens on.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
import structlog
from aiosmtpd.controller import Controller
from reportkit import Demo
from support.polling import wait_for
from support.receivers import HOOK_TOKEN, SMTP_PASSWORD, SMTP_USER, Mailbox, Webhook, free_port

from doorfix.agent.config import Settings
from doorfix.agent.engine.report import RunReport
from doorfix.agent.engine.run import run_once
from doorfix.agent.reports.notify import (
    Notifier,
    notify_run,
    parse_sinks,
    run_message,
    send_digest,
    should_notify,
)

# apprise's e-mail plugin imports imghdr (deprecated in 3.11, gone in 3.13) for PGPy; with
# warnings as errors that import would fail and no sink would load. Not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

DOORFIX_SECRETS = ("cloud-SECRET-1a2b3c4d", "aca-SECRET-5e6f7a8b", "clp-SECRET-9c0d1e2f")
SETTINGS = Settings()


@dataclass
class Sinks:
    mailbox: Mailbox
    webhook: Webhook
    smtp_port: int
    dead_port: int

    @property
    def urls(self) -> str:
        return " ".join(
            [
                f"mailto://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{self.smtp_port}"
                "?mode=insecure&from=doorfix@example.test&to=ops@example.test",
                f"json://127.0.0.1:{self.webhook.port}/hooks/{HOOK_TOKEN}",
                f"json://127.0.0.1:{self.dead_port}/hooks/{HOOK_TOKEN}",
            ]
        )

    @property
    def env(self) -> dict[str, str]:
        return {"DOORFIX_NOTIFY_URLS": self.urls}


@pytest.fixture
def sinks(webhook: Webhook) -> Iterator[Sinks]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=mailbox.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield Sinks(mailbox, webhook, port, free_port())
    finally:
        controller.stop()


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def everything(sinks: Sinks, logs: list[MutableMapping[str, Any]]) -> str:
    """Every byte a person or a log file would see."""
    mails = [m.as_string() for m in sinks.mailbox.received()]
    hooks = [json.dumps(m) for m in sinks.webhook.messages()]
    return "\n".join([*mails, *hooks, *(repr(e) for e in logs)])


async def test_a_run_message_reaches_mail_and_webhook_and_a_dead_sink_is_only_logged(
    demo: Demo, sinks: Sinks
) -> None:
    reports = await demo.run_all()
    aca = next(r for r in reports if r.playbook == "aca-rejections")
    # a secret that leaked into a reason must not leave the process
    aca.incidents[0].reason = f"token {DOORFIX_SECRETS[1]} was refused"

    with structlog.testing.capture_logs() as logs:
        delivery = await notify_run(aca, SETTINGS, env=sinks.env, redact=DOORFIX_SECRETS)

    assert delivery is not None
    assert delivery.sent == (
        f"#1 mailto://127.0.0.1:{sinks.smtp_port}",
        f"#2 json://127.0.0.1:{sinks.webhook.port}",
    )
    assert delivery.failed == (f"#3 json://127.0.0.1:{sinks.dead_port}",)
    wait_for(lambda: len(sinks.mailbox.received()) == 1, timeout=10, what="the mail")
    wait_for(lambda: len(sinks.webhook.messages()) == 1, timeout=10, what="the webhook")

    mail = sinks.mailbox.received()[0]
    assert sinks.mailbox.logins, "apprise logged in with the URL's user and password"
    assert mail["To"] == "ops@example.test"
    assert mail["Subject"].startswith(
        "doorfix: aca-rejections: fixed and verified 1, needs a person 7"
    )
    body = text_of(mail)
    assert "toggle_access_matrix u-1/l-1 [succeeded]" in body
    assert "Reinstall the app to get a new mobile key" in body
    assert "(on_site_staff) Power-cycle IQ iq-3" in body

    hook = sinks.webhook.messages()[0]
    assert hook["path"] == f"/hooks/{HOOK_TOKEN}"
    assert hook["type"] == "warning"
    assert hook["title"] == mail["Subject"]
    assert "### Needs a person (7)" in hook["message"]
    assert "aca.access_disabled" not in hook["message"], "no_fault is not in notify_on"

    failed = [e for e in logs if e["event"] == "notify_failed"]
    assert len(failed) == 1
    assert failed[0]["sink"] == f"#3 json://127.0.0.1:{sinks.dead_port}"
    assert failed[0]["log_level"] == "warning"
    seen = everything(sinks, logs)
    for secret in (SMTP_PASSWORD, HOOK_TOKEN + "x", *DOORFIX_SECRETS):
        assert secret not in seen
    assert HOOK_TOKEN not in repr(logs)
    assert HOOK_TOKEN not in mail.as_string()


async def test_runs_with_nothing_to_tell_send_nothing(demo: Demo, sinks: Sinks) -> None:
    dry = next(r for r in await demo.run_all(dry_run=True) if r.playbook == "aca-rejections")
    # what a dry run would fix, what waits and what is refused by design: none is in notify_on
    quiet = [i for i in dry.incidents if i.outcome in {"would_fix", "deferred", "no_fault"}]
    assert {i.outcome for i in quiet} == {"would_fix", "deferred", "no_fault"}
    dry.incidents = quiet
    assert not should_notify(dry, SETTINGS.report.notify_on)
    assert await notify_run(dry, SETTINGS, env=sinks.env) is None
    empty = RunReport("r-1", "door-logs", False, demo.clock.now())
    assert await notify_run(empty, SETTINGS, env=sinks.env) is None
    assert sinks.webhook.messages() == []
    assert sinks.mailbox.received() == []
    # a dry run is told when it finds what notify_on names; with no sink nothing is tried
    asked = Settings.model_validate({"report": {"notify_on": ["would_fix"]}})
    assert should_notify(dry, asked.report.notify_on)
    assert await notify_run(dry, asked, env={}) is None


async def test_a_failed_run_is_told_as_a_failure(demo: Demo, sinks: Sinks) -> None:
    failed = RunReport("r-2", "door-logs", False, demo.clock.now(), error="cloud unreachable")
    delivery = await notify_run(
        failed, SETTINGS, env={"DOORFIX_NOTIFY_URLS": f"json://127.0.0.1:{sinks.webhook.port}/x"}
    )
    assert delivery is not None
    assert delivery.ok
    hook = sinks.webhook.messages()[0]
    assert hook["type"] == "failure"
    assert "The run did not complete:** cloud unreachable" in hook["message"]


async def test_the_daily_digest_carries_the_html_report(three_days: Demo, sinks: Sinks) -> None:
    now = three_days.clock.now()
    with structlog.testing.capture_logs() as logs:
        delivery = await send_digest(
            three_days.journal,
            SETTINGS,
            now=now,
            period=timedelta(days=3),
            env=sinks.env,
            redact=DOORFIX_SECRETS,
        )
    assert delivery is not None
    assert len(delivery.sent) == 2
    assert len(delivery.failed) == 1
    wait_for(lambda: len(sinks.webhook.messages()) == 1, timeout=10, what="the webhook")
    wait_for(lambda: len(sinks.mailbox.received()) == 1, timeout=10, what="the mail")

    hook = sinks.webhook.messages()[0]
    assert hook["title"] == (
        "doorfix digest 2026-11-18: fixed and verified 8, needs a person 11, "
        "superseded by a newer incident 1, refused as designed 2"
    )
    assert "## Needs a person (11)" in hook["message"]
    (attached,) = hook["attachments"]
    assert attached["filename"] == "doorfix-report-2026-11-18.html"
    page = base64.b64decode(attached["base64"]).decode()
    assert "<svg" in page
    assert 'class="incident-row"' in page

    mail = sinks.mailbox.received()[0]
    names = [part.get_filename() for part in mail.iter_attachments()]
    assert names == ["doorfix-report-2026-11-18.html"]
    assert "Needs a person (11)" in text_of(mail)
    assert [e["sink"] for e in logs if e["event"] == "notify_failed"] == [
        f"#3 json://127.0.0.1:{sinks.dead_port}"
    ]
    assert SMTP_PASSWORD not in everything(sinks, logs)
    assert HOOK_TOKEN not in repr(logs)


async def test_a_sink_that_raises_never_fails_the_caller() -> None:
    notifier = Notifier(parse_sinks("json://127.0.0.1:1/x"), timeout=0.0001)
    with structlog.testing.capture_logs() as logs:
        delivery = await notifier.send("title", "body")
    assert not delivery.ok
    assert [e["event"] for e in logs] == ["notify_failed"]


def test_sink_labels_name_no_credential() -> None:
    sinks = parse_sinks(
        f"mailto://{SMTP_USER}:{SMTP_PASSWORD}@smtp.example.test:2525?to=a@example.test "
        "slack://T0KENAAAA/B0KENBBBB/C0KENCCCCCCCC "
        f"jsons://hooks.example.test/notify/{HOOK_TOKEN}?token=qwerty12345"
    )
    assert [s.label for s in sinks] == [
        "#1 mailto://smtp.example.test:2525",
        "#2 slack",
        "#3 jsons://hooks.example.test",
    ]
    labels = " ".join(s.label for s in sinks) + repr(sinks)
    for secret in (SMTP_PASSWORD, "T0KENAAAA", "C0KENCCCCCCCC", HOOK_TOKEN, "qwerty12345"):
        assert secret not in labels
    assert SMTP_PASSWORD in sinks[0].secrets
    assert {"T0KENAAAA", "B0KENBBBB", "C0KENCCCCCCCC"} <= set(sinks[1].secrets)
    assert {HOOK_TOKEN, "qwerty12345"} <= set(sinks[2].secrets)
    # plain words in a webhook path are not tokens: they must not vanish from messages
    (plain,) = parse_sinks("json://hooks.example.test/doorfix/incidents")
    assert "incidents" not in plain.secrets


async def test_a_run_message_lists_the_repeats_it_did_not_report_again(demo: Demo) -> None:
    first = await run_once(demo.agent, "aca-rejections")
    demo.clock.advance(timedelta(minutes=20))  # refused again, within the cool-down
    second = await run_once(demo.agent, "aca-rejections")
    joined = {r.joined_incident_id for r in second.repeats}
    reported = {i.incident_id for i in first.incidents if i.outcome == "needs_human"}
    assert joined
    assert joined <= reported | {i.incident_id for i in first.incidents}

    _title, body, _kind = run_message(second, title="doorfix", notify_on=["needs_human"])
    assert f"### Repeats, already reported ({len(second.repeats)})" in body
    for repeat in second.repeats:
        # markdown: the parenthesis is escaped like every vendor text
        assert f"joined incident {repeat.joined_incident_id} \\({repeat.outcome}" in body
