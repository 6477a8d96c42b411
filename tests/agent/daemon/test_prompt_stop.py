"""SIGTERM is prompt: a daemon whose run waits in a retry back-off (a system answering 503 with
``Retry-After: 60``) stops waiting at once, exits within a few seconds, and records the run
``interrupted`` (not ``failed``), logging what it left for the next run.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from support import configs
from support.polling import wait_for
from support.processes import daemon
from support.served import served_demo

#: the back-off the sandbox asks for: far longer than a prompt stop may take
RETRY_AFTER = 60
#: how long the stop may take (the run's call in flight is answered at once here)
PROMPT_SECONDS = 5.0


def run_rows(journal: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5) as conn:
        return list(conn.execute("SELECT playbook, status, error FROM runs ORDER BY started_at"))


def test_sigterm_cuts_a_retry_back_off_short_and_records_the_run_interrupted(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal.sqlite3"
    with served_demo() as served:
        config = configs.write_config(
            tmp_path / "doorfix.toml",
            served.urls,
            journal,
            "[daemon]\nport = 0\n"
            "[schedule.license_renewal]\nevery_seconds = 3600\nenabled = false\n"
            "[schedule.door_logs]\nevery_seconds = 3600\nenabled = false\n"
            "[schedule.aca_rejections]\nevery_seconds = 3600\n",
            http="retry_attempts = 10\nretry_max_seconds = 900\ntimeout_seconds = 5\n",
        )
        served.state.faults.add("503", system="aca", count=1_000_000, retry_after=RETRY_AFTER)
        with daemon(config) as process:
            process.wait_started()
            wait_for(
                lambda: bool(process.events("http_retry", system="aca")),
                timeout=30,
                what="the run to wait in a retry back-off",
            )
            (retry,) = process.events("http_retry", system="aca")[:1]
            assert retry["wait"] >= RETRY_AFTER - 1
            began = time.monotonic()
            assert process.stop() == 0
            took = time.monotonic() - began
    assert took < PROMPT_SECONDS, f"the daemon took {took:.1f} s to stop"
    (interrupted,) = process.events("run_interrupted")
    assert interrupted["playbook"] == "aca-rejections"
    assert "left" in interrupted
    (stopped,) = process.events("daemon_stopped")
    assert stopped["interrupted_runs"] == 1
    assert stopped["failed_runs"] == 0
    assert not process.events("run_failed")
    rows = run_rows(journal)
    assert [(p, s) for p, s, _ in rows] == [("aca-rejections", "interrupted")]
    assert "next run" in (rows[0][2] or "")
