"""Named scenarios: deterministic, the demo's one-of-each fault layout, the scale world."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

import pytest

from doorfix.clock import ManualClock
from doorfix.sandbox.faults.registry import FAULTS
from doorfix.sandbox.scenarios.registry import SCENARIOS, build_scenario, demo_manifest
from doorfix.sandbox.world.doors import (
    AMBIGUOUS,
    HOLIDAY,
    LICENSE,
    NO_PERMISSION,
    NOT_VALID,
)
from doorfix.sandbox.world.world import World

_FINGERPRINT = """
import sys
from datetime import datetime
from doorfix.clock import ManualClock
from doorfix.sandbox.scenarios.registry import build_scenario
clock = ManualClock(datetime.fromisoformat(sys.argv[1]))
print(build_scenario("demo", seed=int(sys.argv[2]), clock=clock).fingerprint())
"""


def test_same_seed_same_world(clock: ManualClock) -> None:
    """Two builds from the same seed and instant are equal; another seed differs."""
    one = build_scenario("demo", seed=3, clock=ManualClock(clock.now()))
    two = build_scenario("demo", seed=3, clock=ManualClock(clock.now()))
    other = build_scenario("demo", seed=4, clock=ManualClock(clock.now()))
    assert one.fingerprint() == two.fingerprint()
    assert one.fingerprint() != other.fingerprint()
    assert demo_manifest(one) == demo_manifest(two)


def test_same_world_across_processes(clock: ManualClock) -> None:
    """Byte for byte across interpreters, whatever their string-hash seed."""
    prints = {
        subprocess.run(
            [sys.executable, "-c", _FINGERPRINT, clock.now().isoformat(), "1"],
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    here = build_scenario("demo", seed=1, clock=ManualClock(clock.now())).fingerprint()
    assert prints == {here + "\n"}


def test_registry_and_refusals(clock: ManualClock) -> None:
    """Scenarios are listed with their defaults; unknown names and parameters raise."""
    assert set(SCENARIOS) >= {"demo", "scale", "empty"}
    assert SCENARIOS["scale"].params["door_logs"] == 1_000_000
    with pytest.raises(ValueError, match="unknown scenario"):
        build_scenario("nope", clock=clock)
    with pytest.raises(TypeError, match="colour"):
        build_scenario("demo", clock=clock, colour="red")
    assert build_scenario("empty", clock=clock).centers == {}


def test_demo_holds_one_of_every_fault_all_present(demo: World) -> None:
    """Exactly one instance of every kind, each present from the start."""
    statuses = demo.faults()
    assert sorted(f.kind for f in statuses) == sorted(FAULTS)
    assert [f.kind for f in statuses if not f.present] == []


def test_demo_faults_do_not_share_people_locks_or_doors(demo: World) -> None:
    """Each fault on its own person, lock and door, so fixing one never fixes another."""
    statuses = [f for f in demo.faults() if not f.kind.startswith("feed.")]
    for key in ("user_id", "lock_id", "door_id", "personnel_id", "visitor_id"):
        used = Counter(f.subject[key] for f in statuses if key in f.subject)
        assert [k for k, n in used.items() if n > 1] == [], key


def test_demo_manifest_names_subjects(demo: World, manifest: dict[str, dict[str, str]]) -> None:
    """Every kind maps to its fault id and subject; the healthy extras are there too."""
    for kind in FAULTS:
        assert manifest[kind]["fault_id"].startswith("fault-")
    for extra in ("normal.tag", "normal.mkey", "normal.door", "license.expiring_soon"):
        assert extra in manifest
    s = manifest["normal.tag"]
    assert demo.present_at_lock(s["user_id"], s["lock_id"], "tag").granted
    door = manifest["license.expiring_soon"]
    expires = demo.doors[door["door_id"]].license.expires_at
    assert expires is not None
    assert expires - demo.clock.now() < timedelta(days=30)


def test_demo_has_an_hour_of_history(demo: World) -> None:
    """At build the door log and ACA's feed already hold the last hour's tries."""
    details = {
        row.detail
        for project in demo.projects
        for row in demo.door_logs.last(project, 1000)
        if row.result == "failure"
    }
    assert {LICENSE, AMBIGUOUS, NO_PERMISSION, NOT_VALID, HOLIDAY, "Invalid Card"} <= details
    rejected = {e.user_id for e in demo.aca_feed if e.type.endswith("_rejected")}
    for kind in ("aca.clp_out_of_sync", "aca.iq_out_of_sync", "aca.mkey_revoked"):
        assert demo_manifest(demo)[kind]["user_id"] in rejected
    assert min(e.occurred_at for e in demo.aca_feed) < demo.clock.now() - timedelta(minutes=50)


def test_demo_keeps_people_trying(demo: World, clock: ManualClock) -> None:
    """Every ten minutes the faulted people try again, for the first hours."""
    logs_before = sum(demo.door_logs.count(p) for p in demo.projects)
    feed_before = len(demo.aca_feed)
    clock.advance(timedelta(minutes=30))
    demo.advance()
    assert sum(demo.door_logs.count(p) for p in demo.projects) >= logs_before + 3 * 8
    assert len(demo.aca_feed) > feed_before
    clock.advance(timedelta(hours=6))
    demo.advance()
    quiet = sum(demo.door_logs.count(p) for p in demo.projects)
    clock.advance(timedelta(hours=1))
    demo.advance()
    assert sum(demo.door_logs.count(p) for p in demo.projects) == quiet


def test_small_scale_world_is_healthy(clock: ManualClock) -> None:
    """The scale scenario's model: every center complete, users get in, logs spread in order."""
    world = build_scenario("scale", clock=clock, centers=3, door_logs=3000, days=2)
    assert (len(world.centers), len(world.locks), len(world.doors), len(world.users)) == (
        3,
        15,
        12,
        60,
    )
    for user in list(world.users.values())[:10]:
        (row,) = [a for a in world.aca_accesses(user.id) if a.state == "active"]
        assert world.present_at_lock(user.id, row.lock_id, "tag").granted
    assert len(world.door_logs) == 3000
    project = next(iter(world.projects))
    since = int((clock.now() - timedelta(days=2)).timestamp())
    total, page = world.door_log_page(project, since, 1, 500)
    assert total == world.door_logs.count(project) > 0
    assert [r.log_id for r in page] == sorted(r.log_id for r in page)
    assert [r.capture_time for r in page] == sorted(r.capture_time for r in page)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_scale_builds_a_million_rows_in_time(clock: ManualClock) -> None:
    """The full-size scale world: under 30 s to build, a 500-row page well under 20 ms."""
    started = time.perf_counter()
    world = build_scenario("scale", clock=clock)
    assert time.perf_counter() - started < 30
    assert len(world.door_logs) == 1_000_000
    failures = 0
    project = next(iter(world.projects))
    total, _ = world.door_log_page(project, 0, 1, 1)
    pages = []
    for index in range(1, total // 500 + 2):
        tic = time.perf_counter()
        _, rows = world.door_log_page(project, 0, index, 500)
        pages.append(time.perf_counter() - tic)
        failures += sum(r.result == "failure" for r in rows)
    assert sorted(pages)[len(pages) // 2] < 0.020
    assert failures < total * 0.05
