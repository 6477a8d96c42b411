"""A run killed (SIGKILL) between an action's intent and its result loses nothing, repeats nothing.

The sandbox is served on 127.0.0.1 in this process; doorfix runs as a real subprocess with a
journal file. The license renewal (the call that bills) is made slow, so the test can kill
the run while the call is in flight, after the journal recorded the intent.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from doorfix.agent.journal import Journal
from doorfix.clock import SystemClock
from doorfix.sandbox.apifaults import ApiFaults
from doorfix.sandbox.app import create_app
from doorfix.sandbox.auth import SandboxCredentials
from doorfix.sandbox.scenarios import build_scenario
from doorfix.sandbox.server import ServedSandbox


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def write_config(path: Path, urls: dict[str, str], journal: Path) -> None:
    path.write_text(
        f"""
[cloud]
base_url = "{urls["cloud"]}"
[aca]
base_url = "{urls["aca"]}"
[clp]
base_url = "{urls["clp"]}"
identity_url = "{urls["clp_identity"]}"
[journal]
path = "{journal}"
[guards]
renewals_enabled = true
"""
    )


def doorfix(config: Path, *args: str) -> subprocess.Popen[str]:
    creds = SandboxCredentials()
    env = {
        **os.environ,
        "DOORFIX_CLOUD_CLIENT_SECRET": creds.cloud_client_secret,
        "DOORFIX_ACA_API_KEY": creds.aca_api_key,
        "DOORFIX_CLP_CLIENT_SECRET": creds.clp_client_secret,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "doorfix", "--config", str(config), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def started_actions(journal: Path) -> list[tuple[str, str]]:
    if not journal.exists():
        return []
    try:
        with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=1) as conn:
            return list(conn.execute("SELECT remedy, target FROM actions WHERE status = 'started'"))
    except sqlite3.OperationalError:
        return []  # the schema is not there yet


def test_sigkill_between_intent_and_result(tmp_path: Path) -> None:
    world = build_scenario("demo", seed=0, clock=SystemClock())
    app = create_app(world, api_faults=ApiFaults(seed=0))
    journal_path = tmp_path / "journal.sqlite3"
    config = tmp_path / "doorfix.toml"
    with ServedSandbox(app) as served:
        write_config(config, served.urls, journal_path)
        # the renewal lands at once, but its answer is held back: the run is killed while it
        # waits, after the journal holds the intent and the account was billed, before the result
        served.state.faults.add(
            "slow",
            system="cloud",
            endpoint="renew_door_license",
            count=1,
            slow_seconds=30,
            after=True,
        )

        def renewals() -> list[str]:
            return [
                m.targets["door_id"]
                for m in served.state.mutations.since(0)
                if m.operation == "renew_door_license"
            ]

        first = doorfix(config, "run", "door-logs", "--json")
        try:
            wait_for(
                lambda: (
                    len(renewals()) == 1
                    and any(r == "renew_license" for r, _ in started_actions(journal_path))
                ),
                timeout=30,
                what="the renewal to land with its intent in the journal",
            )
        finally:
            first.send_signal(signal.SIGKILL)
            first.communicate(timeout=10)
        assert first.returncode == -signal.SIGKILL
        assert started_actions(journal_path)  # killed between the intent and the result

        second = doorfix(config, "run", "door-logs", "--json")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
        report = json.loads(out)

        # nothing repeated: still exactly one renewal, and no write made twice
        assert renewals() == [renewals()[0]]
        writes = Counter(
            (m.operation, tuple(sorted(m.targets.items())))
            for m in served.state.mutations.since(0)
            if m.outcome == "ok"
        )
        assert max(writes.values()) == 1

    with Journal(journal_path, clock=SystemClock()) as journal:
        assert journal.in_flight() == []
        (renewal,) = journal.actions(remedy="renew_license")
        assert renewal.status == "succeeded"  # settled by re-reading the door, not by re-sending
        incident = journal.incident(renewal.incident_id)
        assert incident is not None
        assert incident.outcome == "fixed"
    # nothing lost: every failure the first run saw is accounted for by the second
    assert report["incidents"]
