"""The hardware scan takes the centers in turn: a run scans at most ``hardware_scan_centers``.

A refusal's run never waits for a scan of every center; every center is still scanned once
in each ``ceil(centers / hardware_scan_centers)`` runs, a dry-run moves nothing, and each
shard of a fleet goes round its own centers. Which centers a run scanned is seen at the
sandbox's door (the sites whose locks it listed) and in what it reported.
"""

from __future__ import annotations

import asyncio
import math
import re

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.types import ASGIApp
from support.demo import DEMO_SETTINGS, SMALL_WORLD, Demo, make_demo

from doorfix.agent.engine.collect_aca import scan_turn
from doorfix.agent.engine.report import RunReport
from doorfix.agent.engine.run import RunFailed
from doorfix.agent.engine.shards import Shard, all_shards
from doorfix.sandbox.api.transport import SandboxTransport

_LOCKS = re.compile(r"/sites/([^/]+)/locks$")


class _Listing(SandboxTransport):
    """The sandbox, noting each site whose locks were listed."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        self.sites: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        found = _LOCKS.search(request.url.path)
        if request.method == "GET" and found:
            self.sites.append(found.group(1))
        return await super().handle_async_request(request)


WORLD = SMALL_WORLD  # no refusal: each run's lock listings are its scan's alone


class _Scan:
    """An agent scanning at most ``most`` centers a run over :data:`WORLD`, one lock of each
    center in privacy mode; which centers each run listed the locks of, and found."""

    def __init__(self, most: int) -> None:
        self.listing: _Listing | None = None

        def transport(app: ASGIApp) -> _Listing:
            self.listing = _Listing(app)
            return self.listing

        self.demo = make_demo(
            {**DEMO_SETTINGS, "engine": {"hardware_scan_centers": most}},
            transport=transport,
            scenario="scale",
            scenario_params=WORLD,
        )
        world = self.demo.world
        self.center_of = {c.clp_site_id: c.id for c in world.centers.values()}
        self.centers = sorted(self.center_of.values())
        #: the lock put in privacy mode -> its center
        self.planted: dict[str, str] = {}
        #: the centers whose planted lock a real run reported
        self.found: set[str] = set()
        for lock in world.locks.values():
            if self.center_of[lock.site_id] not in self.planted.values():
                lock.privacy_mode = True
                self.planted[lock.id] = self.center_of[lock.site_id]

    async def run(self, *, dry_run: bool = False, shard: Shard | None = None) -> list[str]:
        """One aca-rejections run a minute on: the centers whose locks it listed, in order.

        The run reports the planted lock of each of those centers it had not found before
        (a finding seen again is a repeat of its open incident, not reported again), and no
        other center's.
        """
        assert self.listing is not None
        self.demo.clock.advance(60)
        before = len(self.listing.sites)
        report = await self.demo.run("aca-rejections", dry_run=dry_run, shard=shard)
        listed = [self.center_of[s] for s in self.listing.sites[before:]]
        assert sorted(_found(report, self.planted)) == sorted(set(listed) - self.found)
        if not dry_run:
            self.found.update(listed)
        return listed


def _found(report: RunReport, planted: dict[str, str]) -> list[str]:
    """The centers whose planted lock the run reported in privacy mode (would be, dry)."""
    return [
        planted[i.subject["lock_id"]]
        for i in report.incidents
        if i.cause == "aca.privacy_mode" and i.subject.get("lock_id") in planted
    ]


async def test_each_run_scans_the_next_centers_round_again() -> None:
    scan = _Scan(2)
    try:
        assert len(scan.centers) == 5
        turns = [sorted(await scan.run()) for _ in range(4)]
        c = scan.centers
        # two centers a run in id order, round again: each once in every three runs; a
        # lock found again when its center's turn comes (its incident still open)
        assert turns == [c[0:2], c[2:4], sorted([c[4], c[0]]), c[1:3]]
    finally:
        await scan.demo.aclose()


async def test_a_dry_run_scans_the_next_centers_and_leaves_them_next() -> None:
    scan = _Scan(2)
    try:
        c = scan.centers
        assert sorted(await scan.run()) == c[0:2]
        assert sorted(await scan.run(dry_run=True)) == c[2:4]
        assert sorted(await scan.run(dry_run=True)) == c[2:4]
        assert sorted(await scan.run()) == c[2:4]
    finally:
        await scan.demo.aclose()


@pytest.mark.parametrize("most", [0, 5, 9])
async def test_no_turns_when_a_run_may_scan_every_center(most: int) -> None:
    """0 (every center), or at least as many as there are: each run scans each center once."""
    scan = _Scan(most)
    try:
        for _ in range(2):
            assert sorted(await scan.run()) == scan.centers
    finally:
        await scan.demo.aclose()


@pytest.mark.parametrize("count", [2, 3])
async def test_each_shard_goes_round_its_own_centers(count: int) -> None:
    scan = _Scan(1)
    try:
        shards = all_shards(count)
        own = {s: [c for c in scan.centers if s.holds(c)] for s in shards}
        assert sum(map(len, own.values())) == 5
        for turn in range(4):
            for shard in shards:
                listed = await scan.run(shard=shard)
                # the shard's own centers, one a run in id order, round again
                expected = [own[shard][turn % len(own[shard])]] if own[shard] else []
                assert listed == expected, (shard, turn)
    finally:
        await scan.demo.aclose()


# --------------------------------------------------------------------------- nobody waits for it


class _HeldScan(SandboxTransport):
    """The sandbox, holding the listing of one site's locks (a center nobody was refused at,
    so only the hardware scan lists it) until an ACA write (a fix) has been answered;
    ``fail`` answers that listing with a server error instead, once a fix was answered."""

    def __init__(self, app: ASGIApp, site: str, *, fail: bool = False) -> None:
        super().__init__(app)
        self.site = site
        self.fail = fail
        self.fixed = asyncio.Event()
        self.order: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        found = _LOCKS.search(request.url.path)
        if request.method == "GET" and found and found.group(1) == self.site:
            await self.fixed.wait()
            self.order.append("scan")
            if self.fail:
                return httpx.Response(400, json={"message": "bad site"}, request=request)
        response = await super().handle_async_request(request)
        if request.method != "GET" and "/aca/" in str(request.url):
            self.order.append("fix")
            self.fixed.set()
        return response


def _held_demo(*, fail: bool = False) -> tuple[Demo, _HeldScan]:
    held: list[_HeldScan] = []
    quiet_site = ""

    def transport(app: ASGIApp) -> _HeldScan:
        held.append(_HeldScan(app, quiet_site, fail=fail))
        return held[0]

    demo = make_demo(DEMO_SETTINGS, transport=transport)
    # the demo's c-3 has no lock: no refusal there, the scan alone lists its locks
    held[0].site = demo.world.centers["c-3"].clp_site_id
    assert not [lk for lk in demo.world.locks.values() if lk.site_id == held[0].site]
    return demo, held[0]


async def test_a_refusal_is_fixed_while_the_scan_still_reads() -> None:
    """The run acts on its refusals before the scan has read every center: a listing the
    scan alone makes is held until a fix has been sent (a run that acted only after its
    scan would never send one, and never end)."""
    demo, held = _held_demo()
    try:
        report = await asyncio.wait_for(demo.run("aca-rejections"), 60)
        assert held.order[0] == "fix"
        assert "scan" in held.order
        fixed = [i for i in report.incidents if i.outcome == "fixed"]
        assert [i.cause for i in fixed] == ["aca.clp_out_of_sync"]
        # the scan's findings are still reported, after the refusals' incidents
        hardware = [i.cause for i in report.incidents if "user_id" not in i.subject]
        assert sorted(hardware) == ["aca.lock_offline", "aca.privacy_mode"]
        assert report.incidents[-1].cause in hardware
    finally:
        await demo.aclose()


async def test_a_scan_that_fails_fails_the_run_after_the_fixes_it_made() -> None:
    """A scan's read that fails fails the run with its own error (system, endpoint); what
    the run fixed meanwhile stands in the journal."""
    demo, held = _held_demo(fail=True)
    try:
        with pytest.raises(RunFailed) as failed:
            await asyncio.wait_for(demo.run("aca-rejections"), 60)
        assert "clp" in str(failed.value)
        assert "list_locks" in str(failed.value)
        assert held.order[:2] == ["fix", "scan"]
        fixed = [i for i in failed.value.report.incidents if i.outcome == "fixed"]
        assert [i.cause for i in fixed] == ["aca.clp_out_of_sync"]
        # the next run reads on: nothing is fixed twice, the feed's events are not new
        held.fail = False
        again = await demo.run("aca-rejections")
        assert not [i for i in again.incidents if i.outcome == "fixed"]
    finally:
        await demo.aclose()


# --------------------------------------------------------------------------- the turns, generated

_IDS = st.sets(st.from_regex(r"c-[0-9]{1,4}", fullmatch=True), min_size=1, max_size=40)


@given(ids=_IDS, most=st.integers(1, 50), passes=st.integers(1, 4), after=st.none() | _IDS)
def test_every_center_is_in_one_of_each_ceil_centers_over_most_turns(
    ids: set[str], most: int, passes: int, after: set[str] | None
) -> None:
    """Whatever the centers, the turn's size and where the last run stopped (a center that
    may be gone since): each turn is at most ``most`` distinct centers, and any
    ``ceil(centers / most)`` consecutive turns scan every center."""
    window = math.ceil(len(ids) / most)
    place = None if after is None else min(after)
    turns = []
    for _ in range(window * passes + 1):
        turn = scan_turn(sorted(ids, reverse=True), place, most)
        assert len(turn) == min(most, len(ids)) == len(set(turn))
        assert set(turn) <= ids
        turns.append(set(turn))
        place = turn[-1]
    for i in range(len(turns) - window + 1):
        assert set().union(*turns[i : i + window]) == ids
