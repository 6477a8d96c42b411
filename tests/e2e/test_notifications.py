"""Notifications are actually sent: the daemon (a subprocess) and ``run --notify`` against the
demo sandbox served on 127.0.0.1, to a real SMTP server and a real webhook on 127.0.0.1.

What an operator sees: one message per run that has an outcome of ``[report] notify_on``,
with that run's counts, by mail and by webhook; the daily digest at its cron (the daemon's
clock accelerated with ``--speed``, so the test waits seconds, not a day) with the HTML report
attached and the counts ``doorfix report`` gives for the same day; nothing at all about the
embedded sandbox.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support import configs
from support.polling import wait_for
from support.processes import DaemonProcess, daemon, sandbox_env, spawn_doorfix
from support.receivers import SmtpServer, Webhook, text_of
from support.served import served_demo

from doorfix.agent.reports.period import SECTION_TITLES
from doorfix.sandbox.api.server import ServedSandbox

pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

#: the default ``[report] notify_on``
NOTIFY_ON = ("fixed", "needs_human", "failed")
#: clock seconds per real second in the daemon under test
SPEED = 600
#: the digest every 30 clock minutes: every 3 real seconds at SPEED
DIGEST_CRON = "*/30 * * * *"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with Webhook() as running:
        yield running


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


def notify_config(path: Path, served: ServedSandbox, journal: Path, *, every: int) -> Path:
    """Every playbook every ``every`` clock seconds, the digest at :data:`DIGEST_CRON`."""
    schedules = "".join(
        f"[schedule.{name}]\nevery_seconds = {every}\n"
        for name in ("door_logs", "aca_rejections", "license_renewal")
    )
    return configs.write_config(
        path,
        served.urls,
        journal,
        f"""[guards]
renewals_enabled = true
[remedies.holiday_hours."Public holiday"]
start_time = "00:00"
end_time = "23:59"
[daemon]
port = 0
[report]
digest_cron = "{DIGEST_CRON}"
{schedules}""",
        http="retry_attempts = 2\nretry_max_seconds = 1\ntimeout_seconds = 5\n",
    )


def summary(counts: dict[str, int]) -> list[str]:
    """The ``needs a person 3`` parts a message shows for the outcomes it is about."""
    return [f"{SECTION_TITLES[o].lower()} {n}" for o, n in counts.items() if o in NOTIFY_ON]


def is_digest(title: str) -> bool:
    return " digest " in title


def test_the_daemon_sends_each_run_once_and_the_digest_at_its_cron(
    tmp_path: Path, webhook: Webhook, smtp: SmtpServer
) -> None:
    journal = tmp_path / "journal.sqlite3"
    env = {**sandbox_env(), "DOORFIX_NOTIFY_URLS": f"{smtp.url()} {webhook.url()}"}
    with served_demo() as served:
        # one run of each playbook (the next would come 24 clock hours later), then digests
        config = notify_config(tmp_path / "doorfix.toml", served, journal, every=86400)

        def spawn(path: Path) -> DaemonProcess:
            return DaemonProcess(path, args=("--speed", str(SPEED)), env=env)

        with daemon(config, factory=spawn) as process:
            started = process.wait_started()
            assert started["notify"] is True
            assert started["target"] == "live"

            def settled() -> bool:
                lines = [e.get("event") for e in list(process.lines)]
                if lines.count("run_completed") < 3:
                    return False
                last_run = max(i for i, e in enumerate(lines) if e == "run_completed")
                return lines[last_run:].count("digest_sent") >= 2

            wait_for(settled, timeout=60, what="every playbook's run, then two digests")
            assert process.stop() == 0

    runs = process.events("run_completed")
    assert len(runs) == 3, process.tail()
    told = [r for r in runs if summary(r["counts"])]
    assert told, "the demo world has fixes and escalations to tell"

    hooks = [m for m in webhook.messages() if not is_digest(m["title"])]
    mails = [m for m in smtp.received() if not is_digest(str(m["subject"]))]
    # once per run that has something to tell, by each sink, and nothing for the others
    assert len(hooks) == len(told), [m["title"] for m in hooks]
    assert len(mails) == len(told), [m["subject"] for m in mails]
    for run in told:
        (hook,) = [m for m in hooks if run["run_id"] in m["message"]]
        (mail,) = [m for m in mails if run["run_id"] in text_of(m)]
        for part in summary(run["counts"]):
            assert part in hook["title"], (part, hook["title"])
            assert part in str(mail["subject"]), (part, mail["subject"])
        assert run["playbook"] in hook["title"]

    # the digest, at its cron on the daemon's clock, with the day's report attached
    digests = process.events("digest_sent")
    for line in digests:
        until = datetime.fromisoformat(line["until"])
        assert until.minute % 30 == 0
        assert until.second == 0
        assert until.microsecond == 0
        assert line["failed"] == []
    last = digests[-1]
    hook_digests = [m for m in webhook.messages() if is_digest(m["title"])]
    mail_digests = [m for m in smtp.received() if is_digest(str(m["subject"]))]
    assert len(hook_digests) >= len(digests)
    assert len(mail_digests) >= len(digests)
    until = datetime.fromisoformat(last["until"])
    (hook_digest,) = [m for m in hook_digests if f"{until:%Y-%m-%d}" in m["title"]][-1:]
    attachments = hook_digest.get("attachments") or []
    assert attachments
    assert attachments[0]["filename"].endswith(".html")
    assert any(part.get_filename() for part in mail_digests[-1].iter_attachments())

    # its counts are the day's report, as `doorfix report` gives it afterwards
    since = until - timedelta(days=1)
    report = subprocess.run(
        [
            *("python", "-m", "doorfix", "--config", str(config), "report"),
            *("--since", since.isoformat(), "--until", until.isoformat(), "--format", "json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    period = json.loads(report.stdout)
    counts: dict[str, Any] = period["counts"]
    assert counts
    # the digest counts no_fault by its reason (refused as designed, already resolved, ...)
    sections = {o: n for o, n in counts.items() if o != "no_fault"} | period["counts_by_reason"]
    assert sum(sections.values()) == sum(counts.values())
    for section, n in sections.items():
        assert f"{SECTION_TITLES.get(section, section).lower()} {n}" in hook_digest["title"]


def test_run_notify_sends_one_message_and_never_for_the_sandbox(
    tmp_path: Path, webhook: Webhook, smtp: SmtpServer
) -> None:
    urls = f"{smtp.url()} {webhook.url()}"
    env = {**sandbox_env(), "DOORFIX_NOTIFY_URLS": urls}
    env.pop("DOORFIX_CONFIG", None)

    # the embedded sandbox: the report says so, stderr says so, nothing is sent
    proc = spawn_doorfix("run", "aca-rejections", "--json", "--notify", env=env)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    report = json.loads(out)
    assert report["target"] == "sandbox"
    assert summary(report["counts"]), "the sandbox run has something a live run would tell"
    assert "embedded sandbox: no real system was read or changed" in err
    assert "not notified" in err

    # a live run (a config, here pointing at a served sandbox) with --notify: one message
    with served_demo() as served:
        config = configs.write_config(tmp_path / "doorfix.toml", served.urls, tmp_path / "j.db")
        proc = spawn_doorfix(
            "--config", str(config), "run", "aca-rejections", "--json", "--notify", env=env
        )
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    live = json.loads(out)
    assert live["target"] == "live"
    assert "embedded sandbox" not in err
    wait_for(lambda: len(webhook.messages()) >= 1, timeout=10, what="the webhook message")
    (hook,) = webhook.messages()
    (mail,) = smtp.received()
    assert live["run_id"] in hook["message"]
    assert live["run_id"] in text_of(mail)
    for part in summary(live["counts"]):
        assert part in hook["title"]
