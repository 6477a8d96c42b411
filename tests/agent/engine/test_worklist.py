"""A person at a door waits only for their own facts: a run acts on each cohort (the refusals
sharing a person, a lock or a CLP site) as soon as its facts are read, while it still reads
the others'; a Sync Access still comes before a toggle at its site.

Seen at the sandbox's door: a transport holds one person's reads until something else has
happened, and notes the order of the writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import httpx
from starlette.types import ASGIApp
from support.demo import DEMO_SETTINGS, SMALL_WORLD, Demo, make_demo

from doorfix.sandbox.api.transport import SandboxTransport

Predicate = Callable[[httpx.Request], bool]


class _Holding(SandboxTransport):
    """The sandbox, holding the requests :meth:`hold` names until one it names ``until`` has
    been answered; notes each write (``POST /larry/...sync_access`` as ``sync``, an ACA write
    as ``aca``; not a token's) and each held request when it is let through."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        self._held: Predicate = lambda request: False
        self._until: Predicate = lambda request: False
        self._released = asyncio.Event()
        self.order: list[str] = []

    def hold(self, held: Predicate, *, until: Predicate) -> None:
        self._held, self._until = held, until

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._held(request):
            await self._released.wait()
            self.order.append("held")
        response = await super().handle_async_request(request)
        if self._until(request):
            self._released.set()
        path = request.url.path
        if request.method != "GET" and not path.endswith("/token"):
            self.order.append("sync" if path.endswith("/sync_access") else "aca")
        return response


def _aca_write(request: httpx.Request) -> bool:
    return request.method != "GET" and "/aca/" in str(request.url)


def _demo() -> tuple[Demo, _Holding]:
    made: list[_Holding] = []

    def transport(app: ASGIApp) -> _Holding:
        made.append(_Holding(app))
        return made[0]

    demo = make_demo(
        DEMO_SETTINGS, scenario="scale", scenario_params=SMALL_WORLD, transport=transport
    )
    return demo, made[0]


def _larry_read_of(demo: Demo, lock_id: str) -> Callable[[httpx.Request], bool]:
    """Whether a request is the Larry access read of ``lock_id`` (a person's own fact)."""

    def held(request: httpx.Request) -> bool:
        return (
            request.method == "GET"
            and request.url.path.endswith("/access")
            and request.url.params.get("lock_id") == lock_id
        )

    return held


def _refused(demo: Demo, *people: tuple[str, str, str]) -> None:
    for kind, user_id, lock_id in people:
        demo.world.inject(kind, user_id=user_id, lock_id=lock_id)
    for _, user_id, lock_id in people:
        demo.clock.advance(timedelta(seconds=30))
        demo.world.present_at_lock(user_id, lock_id, "tag")
    demo.clock.advance(timedelta(seconds=30))


async def test_a_person_is_fixed_while_the_run_still_reads_another_s_facts() -> None:
    """Two people refused at two sites: the second one's Larry access read is held until
    the first one's toggle is answered. A run that acted only once it had read everyone's
    facts would never send that toggle (and never end)."""
    demo, door = _demo()
    try:
        _refused(
            demo,
            ("aca.clp_out_of_sync", "u-1", "l-1"),
            ("aca.clp_out_of_sync", "u-3", "l-3"),
        )
        door.hold(_larry_read_of(demo, "l-3"), until=_aca_write)
        report = await asyncio.wait_for(demo.run("aca-rejections"), 60)
        # u-1's toggle was sent before u-3's facts were all read
        assert door.order[0] == "aca"
        assert "held" in door.order
        fixed = sorted(i.subject["user_id"] for i in report.incidents if i.outcome == "fixed")
        assert fixed == ["u-1", "u-3"]
    finally:
        await demo.aclose()


async def test_a_sync_access_still_comes_before_a_toggle_at_its_site() -> None:
    """Two people refused at one site, one needing a Sync Access, one a toggle: the toggle's
    facts are read first (the other's Larry access read is held until they are), yet the
    Sync Access is sent first, as when the run read both before acting."""
    demo, door = _demo()
    try:
        _refused(
            demo,
            ("aca.iq_out_of_sync", "u-1", "l-1"),
            ("aca.clp_out_of_sync", "u-2", "l-2"),
        )
        door.hold(_larry_read_of(demo, "l-1"), until=_larry_read_of(demo, "l-2"))
        report = await asyncio.wait_for(demo.run("aca-rejections"), 60)
        writes = [w for w in door.order if w != "held"]
        assert writes[0] == "sync", door.order
        assert "aca" in writes
        causes = {i.subject["user_id"]: i.cause for i in report.incidents}
        assert causes == {"u-1": "aca.iq_out_of_sync", "u-2": "aca.clp_out_of_sync"}
        # the report lists the Sync Access first, whatever order the facts came in
        assert report.incidents[0].cause == "aca.iq_out_of_sync"
    finally:
        await demo.aclose()


async def test_a_deferral_due_at_a_site_keeps_its_sync_access_first() -> None:
    """A Sync Access deferred by the run's cap is retried by the next run, in which a new
    refusal at its site needs a toggle: the new refusal waits for the retry (its cohort is
    kept for last), so the Sync Access is sent first, as it would be had both been found
    at once, and is not refused for the toggle's change."""
    demo, door = _demo()
    try:
        settings = demo.agent.settings
        capped = settings.guards.model_copy(update={"max_actions_per_run": 1})
        demo.agent.settings = settings.model_copy(update={"guards": capped})
        # u-3 waited longest: the run's one action is its toggle; u-1's Sync Access waits
        _refused(
            demo,
            ("aca.clp_out_of_sync", "u-3", "l-3"),
            ("aca.iq_out_of_sync", "u-1", "l-1"),
        )
        first = await demo.run("aca-rejections")
        outcomes = {i.subject["user_id"]: i.outcome for i in first.incidents}
        assert outcomes == {"u-3": "fixed", "u-1": "deferred"}
        demo.agent.settings = settings
        del door.order[:]
        _refused(demo, ("aca.clp_out_of_sync", "u-2", "l-2"))
        second = await demo.run("aca-rejections")
        assert door.order == ["sync", "aca", "aca"]
        outcomes = {i.subject["user_id"]: i.outcome for i in second.incidents}
        assert outcomes["u-2"] == "fixed"
        assert outcomes["u-1"] in ("fixed", "pending_verification")
    finally:
        await demo.aclose()
