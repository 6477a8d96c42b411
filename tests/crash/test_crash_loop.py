"""``doorfix daemon`` SIGKILLed at random points and restarted, again and again.

One sandbox (the demo world on the wall clock, propagation delays zeroed) is served on
127.0.0.1 for the whole loop; every write of the three APIs is answered late **after** it took
effect (``slow`` with ``after=True``), so a kill often lands between an action's intent and its
result. Each cycle starts ``python -m doorfix --config FILE daemon``, waits for its
``daemon_started`` line, then kills it with SIGKILL either after a random delay (0.2-3 s) or,
every third cycle, just after the journal shows an action in flight. A few restarts also
inject a new remediable fault on a healthy subject, and its person presents at once, so there
is fresh work for later cycles to be killed in.

After every kill, a copy of the journal file (with its WAL) is checked (:func:`check_cycle`):

* ``PRAGMA integrity_check`` answers ``ok``, and :class:`Journal` opens the copy;
* once the runs the last crash cut are marked ``interrupted`` (the start-up reconciliation
  ran to its end), no action that crash left ``started`` is still ``started``;
* **nothing lost**: every failure door log the journal marks seen is in the ``event_ids`` of
  an incident; every ACA rejection it marks seen is in an incident's ``event_ids``, or its user
  and lock have a later grant it also saw (the person got in: the group resolved itself), or an
  incident of that user and lock was fixed or synced (history ``fixed`` or
  ``pending_verification``): a rejection before that fix is superseded by it, one after it is a
  verification follow-up, counted in ``rejections_since_fix``; no event is in two incidents;
  a closed incident whose write held says so in its history (fixed, pending, needs_human);
* **nothing repeated**, from the sandbox's mutation log (writes that took effect): one
  renewal per door, one credential per person and value, one membership per group and person,
  one temp key per visitor, one working-hours write per holiday, one Access Matrix disable per
  user and lock (the toggle pair, within the 1 h cool-down that outlives the test), one Sync
  Access per collection (so at most one per run) plus the one repeat the rules allow when a
  kill left a Sync Access's outcome unknown and the next reconciliation sent it again (the
  journal's ``sent_again``, noted on the action before the call, so a kill during that call
  counts too), and no access left disabled at the end.

The loop ends with a clean daemon that runs until every remediable fault is cleared, then
SIGTERM; the same checks run on the final journal, and no action or run is left in flight.

No shape is tolerated: an event decided before a crash is never diagnosed again (its
decision marked it seen), a fix whose outcome a crash cut off is decided from its recorded
result, and a call a crash cut off before it took effect is reconciled ``skipped`` and made
on the next run instead of waiting out the 1 h cool-down. The tests at the end pin the last
two with one killed ``doorfix run`` each; ``tests/faults/test_crash_recovery.py`` pins every
step in process.

``test_crash_loop`` makes 5 crashes (about 30 s); ``test_crash_loop_long`` (``slow``) makes
``$DOORFIX_CRASHES`` of them, 50 by default (about 3 minutes on two cores).

The torn-write tests corrupt copies of a journal: a main file with broken page headers, cut
in half, or without its header is refused with :class:`JournalError`; a WAL whose tail is torn
(the last frame cut, or bytes of it flipped) is recovered by SQLite to the last whole commit,
consistent; and copies taken with ``cp`` while a writer commits all open consistent, each
holding a prefix of the commits.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import configs, processes
from support.accounting import (
    Snapshot,
    fix_unrecorded,
    read_journal,
    rediagnosed,
    unaccounted_events,
)
from support.live_journal import started_actions
from support.polling import wait_for, wait_for_none
from support.processes import DaemonProcess, spawn_doorfix

from doorfix.agent.journal.store import Journal
from doorfix.clock import ManualClock, SystemClock
from doorfix.errors import JournalError
from doorfix.sandbox.api.app import sandbox_state
from doorfix.sandbox.api.server import ServedSandbox, build_app
from doorfix.sandbox.scenarios.demo import demo_manifest
from doorfix.sandbox.world.model import AcaEvent

#: the demo's faults a remedy clears for good (the ground truth says present=false)
REMEDIABLE = frozenset(
    {
        "aca.clp_out_of_sync",
        "aca.iq_out_of_sync",
        "cloud.credential_unassigned",
        "cloud.no_access_group",
        "cloud.visitor_expired",
        "cloud.holiday_restriction",
        "cloud.license_inactive",
    }
)
#: every write endpoint of the three APIs (answered late after taking effect)
WRITES = (
    ("cloud", "renew_door_license"),
    ("cloud", "add_personnel_credential"),
    ("cloud", "add_access_group_member"),
    ("cloud", "set_holiday_working_hours"),
    ("cloud", "create_visitor_temp_key"),
    ("aca", "access_matrix"),
    ("clp", "sync_access"),
)
PLAYBOOKS = ("door-logs", "aca-rejections", "license-renewal")
#: how long one daemon may take to log ``daemon_started``
START_TIMEOUT = 30.0


# ---------------------------------------------------------------------------- the daemon


class Daemon(DaemonProcess):
    """``doorfix daemon`` in a subprocess, as the loop starts, kills and stops it.

    Start-up may take :data:`START_TIMEOUT`; a stop (SIGTERM, the run in flight finished
    first) a minute: every write's answer is held back.
    """

    start_timeout = START_TIMEOUT
    stop_timeout = 60.0


@contextmanager
def daemon(config: Path) -> Iterator[Daemon]:
    """A :class:`Daemon` that never outlives the test; its last lines shown on failure."""
    with processes.daemon(config, factory=Daemon) as process:
        yield process


#: the client timeout: a call a kill cut off is re-read once it can no longer land, so a
#: short timeout keeps each restart's reconciliation short (every answer comes within 1 s)
TIMEOUT_SECONDS = 3


def write_config(path: Path, urls: dict[str, str], journal: Path) -> Path:
    """Every playbook every second, quick retries, renewals on, the holiday openable all day."""
    return configs.daemon_config(path, urls, journal, timeout_seconds=TIMEOUT_SECONDS)


# ---------------------------------------------------------------------------- the world


@dataclass(frozen=True)
class Extra:
    """A remediable fault injected mid-loop, and the presentation that reveals it."""

    kind: str
    params: dict[str, str]
    present: dict[str, str]


@dataclass
class Sandbox:
    """The served demo world and what the loop injects into it."""

    served: ServedSandbox
    extras: list[Extra]
    injected: list[str] = field(default_factory=list)

    def aca_events(self) -> list[AcaEvent]:
        """ACA's feed as the world holds it (a snapshot of a list only appended to)."""
        return list(self.served.state.world.aca_feed)

    def writes(self) -> list[Any]:
        """Writes that took effect (answered ok, or dropped after taking effect)."""
        return [m for m in self.served.state.mutations.since(0) if m.outcome == "ok"]

    def remaining(self) -> list[dict[str, Any]]:
        """The remediable faults (the demo's and the injected ones) still present."""
        truth = httpx.get(f"{self.served.base_url}/sandbox/truth", timeout=10).json()
        return [
            f
            for f in truth["faults"]
            if f["present"] and (f["kind"] in REMEDIABLE or f["fault_id"] in self.injected)
        ]

    def inject_next(self) -> None:
        """Inject the next extra fault and have its person present at once."""
        extra = self.extras[len(self.injected)]
        base = self.served.base_url
        answer = httpx.post(
            f"{base}/sandbox/faults", json={"kind": extra.kind, "params": extra.params}, timeout=10
        )
        assert answer.status_code == 201, answer.text
        self.injected.append(answer.json()["fault_id"])
        decision = httpx.post(f"{base}/sandbox/present", json=extra.present, timeout=10)
        assert decision.status_code == 200, decision.text
        assert decision.json()["granted"] is False, decision.text


def extra_faults(world: Any) -> list[Extra]:
    """Remediable faults on the demo's healthy people, each on targets of its own."""
    notes = world.notes
    tag, mkey, late = notes["normal.tag"], notes["normal.mkey"], notes["normal.late_feed"]
    door = notes["normal.door"]
    parking = notes["license.expiring_soon"]["door_id"]
    late_user = world.users[late["user_id"]]
    late_card = late_user.tags[0].number
    return [
        Extra(
            "aca.clp_out_of_sync",
            {"user_id": tag["user_id"], "lock_id": tag["lock_id"]},
            {"user_id": tag["user_id"], "lock_id": tag["lock_id"], "via": "tag"},
        ),
        Extra(
            "cloud.credential_unassigned",
            {"user_id": tag["user_id"], "door_id": door["door_id"]},
            {
                "door_id": door["door_id"],
                "credential_type": "card",
                "credential_value": door["credential_value"],
            },
        ),
        Extra(
            "aca.clp_out_of_sync",
            {"user_id": mkey["user_id"], "lock_id": mkey["lock_id"]},
            {"user_id": mkey["user_id"], "lock_id": mkey["lock_id"], "via": "tag"},
        ),
        Extra(
            "cloud.no_access_group",
            {"personnel_id": late_user.cloud_personnel_id, "door_id": parking},
            {"door_id": parking, "credential_type": "card", "credential_value": late_card},
        ),
    ]


@contextmanager
def crash_sandbox(rng: random.Random) -> Iterator[Sandbox]:
    """The demo world on the wall clock with instant propagation, its writes answered late."""
    app = build_app("demo", seed=0, clock=SystemClock())
    state = sandbox_state(app)
    timing = state.world.settings
    timing.push_delay_s = 0
    timing.propagation_delay_s = 0
    timing.sync_start_delay_s = 0
    timing.sync_duration_s = 0
    assert set(demo_manifest(state.world)) >= REMEDIABLE
    for system, endpoint in WRITES:
        # each write lands at once and its answer is held back: a kill in that window is a
        # kill between the journal's intent and its result, with the world already changed
        state.faults.add(
            "slow",
            system=system,
            endpoint=endpoint,
            count=1000,
            slow_seconds=round(rng.uniform(0.3, 0.9), 2),
            after=True,
        )
    with ServedSandbox(app) as served:
        yield Sandbox(served, extra_faults(state.world))


# ---------------------------------------------------------------------------- the journal


def snapshot(journal: Path, into: Path) -> Snapshot | None:
    """Copy the journal (and its WAL) as the killed process left it, and read the copy."""
    if not journal.exists():
        return None
    if into.exists():
        shutil.rmtree(into)
    into.mkdir()
    copy = into / journal.name
    shutil.copyfile(journal, copy)
    wal = journal.with_name(journal.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
    snap = read_journal(sqlite3.connect(copy))
    # the product's own opening path (quick_check, migrations) accepts what the crash left
    with Journal(copy, clock=SystemClock()) as opened:
        assert {a.action_id for a in opened.in_flight()} == snap.started
    return snap


def live_snapshot(journal: Path) -> Snapshot | None:
    """Read the journal a live daemon is writing (read-only, beside the writer)."""
    if not journal.exists():
        return None
    return read_journal(sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5))


def repeated_writes(
    writes: list[Any], *, final: bool, resent_syncs: Counter[str] | None = None
) -> list[str]:
    """Writes made twice where once was the rule (see the module docstring).

    A Sync Access a crash cut off is sent again by the next reconciliation (nothing in CLP
    tells whether it ran; the README's rule): ``resent_syncs`` counts those, by collection,
    from the journal, and each allows one more Sync Access of its collection.
    """
    allowed = resent_syncs or Counter()
    keys: Counter[tuple[str, str]] = Counter()
    for m in writes:
        t, p = m.targets, m.params
        op = m.operation
        if op == "renew_door_license":
            keys[(op, t["door_id"])] += 1
        elif op == "add_personnel_credential":
            keys[(op, f"{t['personnel_id']}/{p['type']}/{p['value']}")] += 1
        elif op == "add_access_group_member":
            keys[(op, f"{t['access_group_id']}/{t['personnel_id']}")] += 1
        elif op == "create_visitor_temp_key":
            keys[(op, t["visitor_id"])] += 1
        elif op == "set_holiday_working_hours":
            keys[(op, t["holiday_id"])] += 1
        elif op == "access_matrix" and p["enabled"] is False:
            keys[("toggle", f"{t['user_id']}/{t['lock_id']}")] += 1
        elif op == "sync_access":
            keys[(op, t["collection_id"])] += 1
    problems = [
        f"{op} {target} written {n} times"
        for (op, target), n in keys.items()
        if n > 1 + (allowed[target] if op == "sync_access" else 0)
    ]
    if final:
        # every disable was followed by an enable: no one is left locked out
        last: dict[str, bool] = {}
        for m in writes:
            if m.operation == "access_matrix":
                last[f"{m.targets['user_id']}/{m.targets['lock_id']}"] = m.params["enabled"]
        problems += [f"access {pair} left disabled" for pair, on in last.items() if not on]
    return problems


# ---------------------------------------------------------------------------- the loop


@dataclass
class Tally:
    """What the kills hit, for the test's own sanity checks and its failure messages."""

    kills: int = 0
    in_flight: int = 0
    reconciled: int = 0
    interrupted_runs: int = 0
    #: Access Matrix enables sent again by a reconciliation (an idempotent PUT)
    enabled_again: int = 0
    log: list[str] = field(default_factory=list)


def check_cycle(
    sandbox: Sandbox, snap: Snapshot, previous: Snapshot | None, proc: Daemon, *, final: bool
) -> None:
    """The journal's and the world's invariants after one cycle (see the module docstring)."""
    assert snap.integrity == ["ok"], snap.integrity
    if (
        previous is not None
        and previous.running_runs
        and not (previous.running_runs & snap.running_runs)
    ):
        # the runs the last crash cut are marked interrupted: a start-up reconciliation ran to
        # its end (it settles actions first), so nothing the crash left in flight is left
        assert not (previous.started & snap.started), "an in-flight action was not reconciled"
    problems = unaccounted_events(snap, sandbox.aca_events())
    problems += repeated_writes(sandbox.writes(), final=final, resent_syncs=snap.resent_syncs)
    problems += fix_unrecorded(snap)
    assert not problems, "\n".join(problems)


def kill_point(
    rng: random.Random, n: int, journal: Path, before: set[str], sandbox: Sandbox
) -> str:
    """Wait for this cycle's kill point: a random delay, or every third cycle an action in flight.

    An action in flight is caught either at once (its call may not have reached the system
    yet) or once the sandbox logged its write (the answer is still held back).
    """
    if n % 3 != 1:
        time.sleep(rng.uniform(0.2, 3.0))  # the random delay is the thing under test
        return "random"
    landed = rng.random() < 0.5
    writes = len(sandbox.served.state.mutations.since(0))
    # bounded: once every fault is fixed there may be no action left to catch
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and not set(started_now(journal)) - before:
        time.sleep(0.01)
    if landed:
        while (
            time.monotonic() < deadline and len(sandbox.served.state.mutations.since(0)) == writes
        ):
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.2))
        return "in flight, its write landed"
    return "in flight"


def started_now(journal: Path) -> dict[str, str]:
    """Action id -> remedy of the actions the live journal holds in flight (read-only)."""
    if not journal.exists():
        return {}
    try:
        conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=1)
        try:
            rows = conn.execute("SELECT action_id, remedy FROM actions WHERE status = 'started'")
            return dict(rows.fetchall())
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return {}  # no schema yet


def run_crash_loop(tmp_path: Path, *, crashes: int, seed: int) -> Tally:
    """Kill and restart the daemon ``crashes`` times, then let it finish; check every cycle."""
    rng = random.Random(seed)
    journal = tmp_path / "journal.sqlite3"
    tally = Tally()
    began = time.monotonic()
    with crash_sandbox(rng) as sandbox:
        config = write_config(tmp_path / "doorfix.toml", sandbox.served.urls, journal)
        previous: Snapshot | None = None
        for n in range(crashes):
            if n in (1, 2, 4, 6) and len(sandbox.injected) < len(sandbox.extras):
                sandbox.inject_next()
            with daemon(config) as proc:
                proc.wait_started()
                before = previous.started if previous else set()
                how = kill_point(rng, n, journal, before, sandbox)
                proc.sigkill()
                tally.kills += 1
                snap = snapshot(journal, tmp_path / "copy")
                if snap is None:
                    continue  # killed before the journal file was created
                tally.in_flight += bool(snap.started)
                tally.reconciled += len(proc.events("action_reconciled"))
                tally.log.append(
                    f"cycle {n}: {how}, {len(snap.started)} in flight, "
                    f"{len(proc.events('run_completed'))} runs completed, "
                    f"{len(proc.events('action_reconciled'))} reconciled, "
                    f"{time.monotonic() - began:.1f} s"
                )
                check_cycle(sandbox, snap, previous, proc, final=False)
                previous = snap
        while len(sandbox.injected) < len(sandbox.extras):
            sandbox.inject_next()

        # a clean daemon finishes the work: every remediable fault is cleared, none of them
        # left waiting out a cool-down a crash started
        tally.log.append(f"final daemon at {time.monotonic() - began:.1f} s")
        with daemon(config) as proc:
            proc.wait_started()
            # a failure names the faults left: their journal history tells why
            wait_for_none(sandbox.remaining, timeout=90, what="every remediable fault cleared")
            # one more run of every playbook after the fixes: nothing is written again
            done = {p: len(proc.events("run_completed", playbook=p)) for p in PLAYBOOKS}
            wait_for(
                lambda: all(
                    len(proc.events("run_completed", playbook=p)) > c for p, c in done.items()
                ),
                timeout=60,
                what="another run of every playbook",
            )
            # and the runs started before it, which may still be verifying their fixes beside
            # it (a stop would leave their actions in flight for the next start, by design)
            wait_for(
                lambda: not started_actions(journal), timeout=60, what="every verification to end"
            )
            assert proc.stop() == 0
            tally.reconciled += len(proc.events("action_reconciled"))
        snap = snapshot(journal, tmp_path / "copy")
        assert snap is not None
        check_cycle(sandbox, snap, previous, proc, final=True)
        assert snap.started == set(), "an action is still in flight after a clean stop"
        assert snap.running_runs == set(), "a run is still marked running after a clean stop"
        enables = Counter(
            (m.targets["user_id"], m.targets["lock_id"])
            for m in sandbox.writes()
            if m.operation == "access_matrix" and m.params["enabled"] is True
        )
        tally.enabled_again = sum(n - 1 for n in enables.values())
        tally.log.append(f"done at {time.monotonic() - began:.1f} s")
        with Journal(journal, clock=SystemClock()) as j:
            tally.interrupted_runs = sum(r.status == "interrupted" for r in j.runs(limit=10_000))
    return tally


@pytest.mark.timeout(240)
def test_crash_loop(tmp_path: Path) -> None:
    tally = run_crash_loop(tmp_path, crashes=5, seed=1)
    assert tally.kills == 5, tally.log
    # the loop did what it claims: some kills caught an action between intent and result,
    # and the next start-up settled it by re-reading, not by calling again
    assert tally.in_flight >= 1, tally.log
    assert tally.reconciled >= 1, tally.log
    assert tally.interrupted_runs >= 1, tally.log


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_crash_loop_long(tmp_path: Path) -> None:
    crashes = int(os.environ.get("DOORFIX_CRASHES", "50"))
    tally = run_crash_loop(tmp_path, crashes=crashes, seed=2)
    assert tally.kills == crashes, tally.log
    assert tally.in_flight >= min(3, crashes), tally.log
    assert tally.reconciled >= 1, tally.log


# ---------------------------------------------------------------------------- torn writes


def filled_journal(path: Path, runs: int) -> Journal:
    """A journal holding ``runs`` runs, each with one incident (open; the caller closes it)."""
    clock = ManualClock(datetime(2026, 11, 16, 8, 0, tzinfo=UTC))
    journal = Journal(path, clock=clock)
    for n in range(runs):
        run_id = journal.start_run("door-logs", dry_run=False)
        journal.open_incident(
            key=f"cloud.credential_unassigned|door_id=d-{n}",
            cause="cloud.credential_unassigned",
            subject={"door_id": f"d-{n}"},
            run_id=run_id,
            event_ids=[f"p-1:{n}"],
            evidence={"detail": "Invalid Card " + "x" * 200},
        )
        journal.finish_run(run_id, status="completed", counts={"fixed": 1})
    return journal


def copy_journal(path: Path, into: Path) -> Path:
    """Copy the main file, then its WAL (as a backup taken with ``cp`` would)."""
    into.mkdir()
    copy = into / path.name
    shutil.copyfile(path, copy)
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
    return copy


def page_size(path: Path) -> int:
    """The database's page size, from its header."""
    return int.from_bytes(path.read_bytes()[16:18], "big")


def test_a_corrupt_main_file_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "journal.sqlite3"
    filled_journal(source, runs=300).close()  # closing checkpoints everything into the file
    size = page_size(source)
    pages = source.stat().st_size // size
    assert pages > 10

    # b-tree page headers overwritten: the structure no longer adds up
    flipped = copy_journal(source, tmp_path / "flipped")
    data = bytearray(flipped.read_bytes())
    for page in range(2, pages):
        data[(page - 1) * size : (page - 1) * size + 12] = b"\x0d\xff" * 6
    flipped.write_bytes(bytes(data))
    # the second half of the file lost (a copy cut short)
    truncated = copy_journal(source, tmp_path / "truncated")
    with truncated.open("r+b") as f:
        f.truncate((pages // 2) * size)
    # not an SQLite file at all (the header gone)
    garbage = copy_journal(source, tmp_path / "garbage")
    data = bytearray(garbage.read_bytes())
    data[:100] = bytes(range(100))
    garbage.write_bytes(bytes(data))

    for broken in (flipped, truncated, garbage):
        with pytest.raises(JournalError, match="cannot open journal"):
            Journal(broken, clock=SystemClock())
    # and the intact file still opens, with everything in it
    with Journal(source, clock=SystemClock()) as journal:
        assert journal.check() is None
        assert len(journal.runs(limit=1000)) == 300


@pytest.mark.parametrize("tear", ["cut mid-frame", "bytes flipped"])
def test_a_torn_wal_tail_is_recovered_to_the_last_whole_commit(tmp_path: Path, tear: str) -> None:
    source = tmp_path / "journal.sqlite3"
    live = filled_journal(source, runs=5)  # every commit is in the WAL, none checkpointed
    try:
        before = live.runs(limit=100)
        last = live.start_run("license-renewal", dry_run=False)  # one more commit, then torn
        copy = copy_journal(source, tmp_path / "copy")
    finally:
        live.close()
    wal = copy.with_name(copy.name + "-wal")
    size = page_size(source)
    frame = 24 + size
    frames = (wal.stat().st_size - 32) // frame
    assert frames > 5
    data = bytearray(wal.read_bytes())
    end = 32 + frames * frame  # the last frame is the last commit's commit frame
    if tear == "cut mid-frame":
        del data[end - frame // 2 :]
    else:
        # flipped, not zeroed: the commit frame's page may hold zeros there (free space)
        data[end - 100 : end - 50] = bytes(b ^ 0xFF for b in data[end - 100 : end - 50])
    wal.write_bytes(bytes(data))

    with Journal(copy, clock=SystemClock()) as journal:
        assert journal.check() is None  # PRAGMA integrity_check: ok
        runs = journal.runs(limit=100)
    # the torn commit is gone whole; every commit before it is intact
    assert {r.run_id for r in runs} == {r.run_id for r in before}
    assert last not in {r.run_id for r in runs}


def test_copies_taken_while_a_writer_commits_are_consistent(tmp_path: Path) -> None:
    source = tmp_path / "journal.sqlite3"
    journal = filled_journal(source, runs=1)
    committed: list[int] = [1]
    stop = threading.Event()

    def write() -> None:
        deadline = time.monotonic() + 10
        n = 1
        while not stop.is_set() and time.monotonic() < deadline:
            run_id = journal.start_run("door-logs", dry_run=False)
            journal.finish_run(run_id, status="completed", counts={})
            n += 1
            committed.append(n)

    writer = threading.Thread(target=write)
    writer.start()
    seen: list[int] = []
    try:
        for n in range(20):
            floor = committed[-1]
            copy = copy_journal(source, tmp_path / f"copy-{n}")
            ceiling = committed[-1]
            # the WAL copied mid-append has a torn tail: recovered to a commit in the window
            with Journal(copy, clock=SystemClock()) as opened:
                assert opened.check() is None
                count = len(opened.runs(limit=100_000))
            assert floor <= count <= ceiling + 1, (floor, count, ceiling)
            seen.append(count)
            time.sleep(0.02)
    finally:
        stop.set()
        writer.join(15)
        journal.close()
    assert len(set(seen)) > 1  # the copies really were taken while the writer went on


# ---------------------------------------------------------------------------- one kill each
#
# The shapes the loop once tolerated, each reproduced with one killed ``doorfix run``: a
# renewal killed in flight (its write landed, or never reached the world), then a second run.


def one_shot(config: Path, playbook: str) -> subprocess.Popen[str]:
    """``doorfix run PLAYBOOK --json`` in a subprocess."""
    return spawn_doorfix("--config", str(config), "run", playbook, "--json")


def kill_door_logs_during_renewal(tmp_path: Path, *, landed: bool) -> tuple[Sandbox, Path]:
    """A door-logs run killed while its renewal is in flight, then run again to the end.

    ``landed``: the renewal took effect and its answer is held back; otherwise the call is
    held back before it reaches the world. Earlier incidents of the run (the credential) are
    fixed and recorded; the feed's commit, at the end of the run, never happens.
    """
    journal = tmp_path / "journal.sqlite3"
    app = build_app("demo", seed=0, clock=SystemClock())
    state = sandbox_state(app)
    state.faults.add(
        "slow", system="cloud", endpoint="renew_door_license", slow_seconds=30, after=landed
    )
    served = ServedSandbox(app)
    served.__enter__()
    sandbox = Sandbox(served, [])
    config = write_config(tmp_path / "doorfix.toml", served.urls, journal)
    first = one_shot(config, "door-logs")
    try:
        wait_for(
            lambda: "renew_license" in started_now(journal).values(),
            timeout=30,
            what="the renewal's intent",
        )
        if landed:
            wait_for(
                lambda: any(m.operation == "renew_door_license" for m in sandbox.writes()),
                timeout=10,
                what="the renewal to land",
            )
    finally:
        first.kill()
        first.communicate(timeout=10)
    second = one_shot(config, "door-logs")
    _, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    return sandbox, journal


def test_failures_fixed_before_a_crash_are_not_reported_again(tmp_path: Path) -> None:
    sandbox, journal = kill_door_logs_during_renewal(tmp_path, landed=True)
    try:
        snap = snapshot(journal, tmp_path / "copy")
    finally:
        sandbox.served.__exit__(None, None, None)
    assert snap is not None
    assert rediagnosed(snap) == {}


def test_a_call_cut_off_before_it_landed_is_made_on_the_next_run(tmp_path: Path) -> None:
    sandbox, journal = kill_door_logs_during_renewal(tmp_path, landed=False)
    try:
        renewals = [m for m in sandbox.writes() if m.operation == "renew_door_license"]
        license_fault = [f for f in sandbox.remaining() if f["kind"] == "cloud.license_inactive"]
    finally:
        sandbox.served.__exit__(None, None, None)
    snap = snapshot(journal, tmp_path / "copy")
    assert snap is not None
    # the reconciliation found the door unchanged: the renewal never happened...
    assert any(
        note.startswith("reconciled renew_license ") and "no effect found" in note
        for notes in snap.notes.values()
        for note in notes
    )
    # ...so the second run should renew it once, not defer it for the cool-down
    assert len(renewals) == 1
    assert license_fault == []


def test_the_crash_check_allows_only_the_sync_access_a_reconciliation_sent_again() -> None:
    @dataclass
    class Write:
        operation: str
        targets: dict[str, str]
        params: dict[str, Any]

    sync = Write("sync_access", {"site_id": "s-1", "collection_id": "col-1"}, {})
    other = Write("sync_access", {"site_id": "s-1", "collection_id": "col-2"}, {})
    twice = [sync, other, sync]
    assert repeated_writes(twice, final=False) == ["sync_access col-1 written 2 times"]
    assert repeated_writes(twice, final=False, resent_syncs=Counter({"col-1": 1})) == []
    # the allowance is one repeat per re-send, of that collection only
    assert repeated_writes([*twice, sync], final=False, resent_syncs=Counter({"col-1": 1})) == [
        "sync_access col-1 written 3 times"
    ]
    assert repeated_writes([*twice, other], final=False, resent_syncs=Counter({"col-1": 1})) == [
        "sync_access col-2 written 2 times"
    ]
