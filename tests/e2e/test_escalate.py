"""``escalate`` reaches someone or says it did not: ``doorfix run aca-rejections`` against the
demo sandbox served on 127.0.0.1 (its mobile key that cannot be generated is a vendor bug),
with ``DOORFIX_ESCALATE_URLS`` pointing at a real SMTP server and a real webhook on 127.0.0.1.

What a person sees: the escalation arrives with the incident's evidence and checklist and the
action is ``succeeded``; with every channel down it is ``failed``, and with none configured
``skipped``; in both the incident needs a person with the step "send this to vendor support".
The channels' credentials appear nowhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import configs
from support.processes import sandbox_env, secret_env, spawn_doorfix
from support.receivers import (
    HOOK_TOKEN,
    SMTP_PASSWORD,
    SmtpServer,
    Webhook,
    free_port,
    text_of,
)
from support.served import served_demo

pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

CAUSE = "aca.mkey_generation_failed"


def run_aca(tmp_path: Path, escalate_urls: str | None) -> tuple[dict[str, Any], str, str]:
    """One acting ``run aca-rejections --json`` on a fresh served demo world."""
    env = sandbox_env()
    env.pop("DOORFIX_ESCALATE_URLS", None)
    if escalate_urls is not None:
        env["DOORFIX_ESCALATE_URLS"] = escalate_urls
    with served_demo() as served:
        config = configs.write_config(
            tmp_path / "doorfix.toml", served.urls, tmp_path / "journal.sqlite3"
        )
        proc = spawn_doorfix("--config", str(config), "run", "aca-rejections", "--json", env=env)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out), out, err


def escalation(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The vendor-bug incident and its escalate action."""
    (incident,) = [i for i in report["incidents"] if i["cause"] == CAUSE]
    (action,) = [a for a in incident["actions"] if a["remedy"] == "escalate"]
    return incident, action


def by_hand(incident: dict[str, Any]) -> list[str]:
    return [s["text"] for s in incident["steps"] if "send this to vendor support" in s["text"]]


def test_an_escalation_reaches_the_mailbox_and_the_ticket_webhook(tmp_path: Path) -> None:
    with SmtpServer() as smtp, Webhook() as webhook:
        report, out, err = run_aca(tmp_path, f"{smtp.url('vendor@example.test')} {webhook.url()}")
        incident, action = escalation(report)
        assert report["target"] == "live"
        assert action["status"] == "succeeded"
        assert f"#1 mailto://127.0.0.1:{smtp.port}" in action["detail"]
        assert f"#2 json://127.0.0.1:{webhook.port}" in action["detail"]
        assert incident["outcome"] == "needs_human"
        assert not by_hand(incident)

        (mail,) = smtp.received()
        (hook,) = webhook.messages()
    assert mail["to"] == "vendor@example.test"
    for body in (text_of(mail), hook["message"]):
        # the incident, its evidence and its checklist, as the run report has them
        assert incident["incident_id"] in body
        assert "u\\-10" in body or "u-10" in body
        assert "mk\\-10" in body or "mk-10" in body
        assert "Checklist" in body
        assert "investigate with key" in body
    assert CAUSE in hook["title"]
    sent = {k: v for k, v in hook.items() if k != "path"}  # the path is the receiver's URL
    everything = "\n".join([out, err, mail.as_string(), json.dumps(sent)])
    for secret in (SMTP_PASSWORD, HOOK_TOKEN, *secret_env().values()):
        assert secret not in everything


def test_no_channel_is_skipped_and_says_to_send_it_by_hand(tmp_path: Path) -> None:
    report, _, _ = run_aca(tmp_path, None)
    incident, action = escalation(report)
    assert action["status"] == "skipped"
    assert "no escalation channel configured" in action["detail"]
    assert incident["outcome"] == "needs_human"
    assert by_hand(incident)
    assert report["counts"]["needs_human"] >= 1


def test_every_channel_down_is_failed_and_says_to_send_it_by_hand(tmp_path: Path) -> None:
    dead_mail, dead_hook = free_port(), free_port()
    urls = (
        f"mailto://doorfix:{SMTP_PASSWORD}@127.0.0.1:{dead_mail}?mode=insecure"
        f"&from=doorfix@example.test&to=vendor@example.test "
        f"json://127.0.0.1:{dead_hook}/hooks/{HOOK_TOKEN}"
    )
    report, out, err = run_aca(tmp_path, urls)
    incident, action = escalation(report)
    assert action["status"] == "failed"
    assert f"127.0.0.1:{dead_hook}" in action["detail"]
    assert incident["outcome"] == "needs_human"
    (step,) = by_hand(incident)
    assert "could not reach" in step
    for secret in (SMTP_PASSWORD, HOOK_TOKEN):
        assert secret not in out
        assert secret not in err
