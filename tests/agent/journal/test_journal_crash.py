"""A process killed mid-work leaves a journal that tells the truth about what it did."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from doorfix.agent.journal.store import Journal
from doorfix.clock import ManualClock
from doorfix.errors import JournalError

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")

REPO = Path(__file__).resolve().parents[3]
DEADLINE_S = 30.0
BATCH = 50
KEY = "incident/toggle_access_matrix/u-7/l-3"
PARAMS = {"user_id": "u-7", "lock_id": "l-3", "center_id": "c-1"}

# The child is the agent: it records through the real Journal, then is killed without warning.
CHILD = f"""
import itertools, signal, sys
from doorfix.agent.journal.store import Journal
from doorfix.clock import SystemClock

path, mode = sys.argv[1], sys.argv[2]
journal = Journal(path, clock=SystemClock())
run_id = journal.start_run("aca-rejections", dry_run=False)
if mode == "intent":
    incident = journal.open_incident(
        key="aca.clp_out_of_sync|c-1|u-7|l-3", cause="aca.clp_out_of_sync",
        subject={{"center_id": "c-1", "user_id": "u-7", "lock_id": "l-3"}},
        run_id=run_id, event_ids=["ev-1"], evidence={{"larry_access": "denied"}},
    )
    journal.intent(
        run_id=run_id, incident_id=incident.incident_id, remedy="toggle_access_matrix",
        target="u-7/l-3", system="aca", params={PARAMS!r}, idempotency_key={KEY!r},
    )
    print("INTENT_WRITTEN", flush=True)
    signal.pause()  # the API call that never returns
else:
    # resume after the stored cursor, as the engine does
    for batch in itertools.count(int(journal.cursor("door-logs") or 0) + 1):
        ids = [f"{{batch:08d}}-{{n:03d}}" for n in range({BATCH})]
        journal.advance_feed("door-logs", cursor=f"{{batch:08d}}", event_ids=ids, run_id=run_id)
        print(f"ADVANCED {{batch}}", flush=True)
"""


class Child:
    """A journal-writing subprocess whose stdout is read line by line against a deadline."""

    def __init__(self, script: Path, journal: Path, mode: str, stderr: Path) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        }
        self._stderr_path = stderr
        self._stderr = stderr.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(journal), mode],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            cwd=REPO,
        )
        self._buffer = b""

    def wait_for(self, wanted: Callable[[str], bool]) -> str:
        """Return the first line ``wanted`` accepts; fail once the deadline passes."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + DEADLINE_S
        while True:
            while b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                if wanted(line.decode()):
                    return line.decode()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"child said nothing wanted in {DEADLINE_S}s: {self._diagnosis()}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    pytest.fail(f"child exited ({self.proc.wait()}): {self._diagnosis()}")
                self._buffer += chunk

    def kill(self) -> None:
        """SIGKILL: no handler, no atexit, no flush; exactly a crash."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=DEADLINE_S) == -signal.SIGKILL

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=DEADLINE_S)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()

    def _diagnosis(self) -> str:
        self._stderr.flush()
        return self._stderr_path.read_text(errors="replace")[-2000:]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[[str], Child]]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    children: list[Child] = []

    def start(mode: str) -> Child:
        child = Child(
            script, tmp_path / "journal.sqlite3", mode, tmp_path / f"stderr-{len(children)}"
        )
        children.append(child)
        return child

    yield start
    for child in children:
        child.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2030, 1, 1, tzinfo=UTC))


def test_an_intent_survives_a_crash_and_is_never_repeated(
    spawn: Callable[[str], Child], tmp_path: Path, clock: ManualClock
) -> None:
    child = spawn("intent")
    child.wait_for(lambda line: line == "INTENT_WRITTEN")
    child.kill()

    with Journal(tmp_path / "journal.sqlite3", clock=clock) as journal:
        [action] = journal.in_flight()
        assert action.status == "started"
        assert action.params == PARAMS
        assert (action.remedy, action.target, action.idempotency_key) == (
            "toggle_access_matrix",
            "u-7/l-3",
            KEY,
        )
        with pytest.raises(JournalError, match="already recorded"):
            journal.intent(
                run_id=action.run_id,
                incident_id=action.incident_id,
                remedy="toggle_access_matrix",
                target="u-7/l-3",
                system="aca",
                params=PARAMS,
                idempotency_key=KEY,
            )
        journal.reconcile(action.action_id, status="succeeded", detail={"larry_access": "granted"})
        assert journal.in_flight() == []
        notes = [entry.note or "" for entry in journal.history(action.incident_id)]
        assert any("reconciled" in note for note in notes)
        assert journal.check() is None


def check_feed_consistent(path: Path, clock: ManualClock, at_least: int) -> int:
    """Every batch up to the stored cursor is wholly seen, none after; return the cursor."""
    with Journal(path, clock=clock) as journal:
        assert journal.check() is None
        cursor = journal.cursor("door-logs")
        assert cursor is not None
        last = int(cursor)
        assert last >= at_least

        def ids(batch: int) -> list[str]:
            return [f"{batch:08d}-{n:03d}" for n in range(BATCH)]

        committed = [event for batch in range(1, last + 1) for event in ids(batch)]
        assert journal.unseen("door-logs", committed) == set()
        after = [event for batch in range(last + 1, last + 4) for event in ids(batch)]
        assert journal.unseen("door-logs", after) == set(after)
    return last


def advanced_to(batch: int) -> Callable[[str], bool]:
    """Accept the child's progress line once it has committed ``batch``."""
    return lambda line: line.startswith("ADVANCED ") and int(line.split()[1]) >= batch


def crash_repeatedly(
    spawn: Callable[[str], Child], path: Path, clock: ManualClock, rounds: int
) -> None:
    """Kill a streaming child ``rounds`` times, each a little later, checking after each."""
    last = 0
    for round_ in range(rounds):
        child = spawn("stream")
        # varied distances make the kill land at varied points of a commit
        target = last + 3 + round_ % 7
        child.wait_for(advanced_to(target))
        child.kill()
        last = check_feed_consistent(path, clock, at_least=target)


def test_a_crash_during_a_stream_of_advances_loses_and_doubles_nothing(
    spawn: Callable[[str], Child], tmp_path: Path, clock: ManualClock
) -> None:
    crash_repeatedly(spawn, tmp_path / "journal.sqlite3", clock, rounds=5)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_many_crashes_keep_the_feed_consistent(
    spawn: Callable[[str], Child], tmp_path: Path, clock: ManualClock
) -> None:
    crash_repeatedly(spawn, tmp_path / "journal.sqlite3", clock, rounds=30)
