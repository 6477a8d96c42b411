"""A run killed (SIGKILL) between an action's intent and its result loses nothing, repeats nothing.

The sandbox is served on 127.0.0.1 in this process; doorfix runs as a real subprocess with a
journal file. The license renewal (the call that bills) is made slow, so the test can kill
the run while the call is in flight, after the journal recorded the intent.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

from support.configs import write_config
from support.live_journal import started_actions
from support.polling import wait_for
from support.processes import spawn_doorfix
from support.renewals import hold_back_renewal, renewals

from doorfix.agent.journal.store import Journal
from doorfix.clock import SystemClock
from doorfix.sandbox.api.app import create_app
from doorfix.sandbox.api.server import ServedSandbox
from doorfix.sandbox.faults.api import ApiFaults
from doorfix.sandbox.scenarios.registry import build_scenario

#: renewals are allowed (the call that bills is the one the test kills the run in)
RENEWALS = "[guards]\nrenewals_enabled = true\n"


def test_sigkill_between_intent_and_result(tmp_path: Path) -> None:
    world = build_scenario("demo", seed=0, clock=SystemClock())
    app = create_app(world, api_faults=ApiFaults(seed=0))
    journal_path = tmp_path / "journal.sqlite3"
    config = tmp_path / "doorfix.toml"
    with ServedSandbox(app) as served:
        write_config(config, served.urls, journal_path, RENEWALS)
        # the renewal lands at once, but its answer is held back: the run is killed while it
        # waits, after the journal holds the intent and the account was billed, before the result
        hold_back_renewal(served.state, seconds=30)

        first = spawn_doorfix("--config", str(config), "run", "door-logs", "--json")
        try:
            wait_for(
                lambda: (
                    len(renewals(served.state)) == 1
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

        second = spawn_doorfix("--config", str(config), "run", "door-logs", "--json")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
        assert json.loads(out)["playbook"] == "door-logs"

        # nothing repeated: still exactly one renewal, and no write made twice
        assert renewals(served.state) == [renewals(served.state)[0]]
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
        # nothing lost: every failure is decided, by the first run (which worked its other
        # incidents concurrently while the renewal's answer was held back) or by the second
        decided = journal.incidents(limit=1000)
    assert len(decided) > 1
    assert all(row.outcome for row in decided)
