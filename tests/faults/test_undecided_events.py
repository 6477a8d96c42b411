"""No event is marked seen without a decision: one that cannot be decided is listed, not lost.

An ACA event (or a door-log failure) whose ids resolve to nothing for now is recorded as
skipped with its reason, stays unseen in the journal, and the feed's stored position stays
before it: each run reads it again, and the run after the facts come back decides it.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import respx
from faultkit import Forward, make_world

from doorfix.agent.engine.collect_aca import FEED


def _hide_user(hidden: dict[str, Any]) -> Any:
    """Routes answering ``404 not_found`` for the user ``hidden["user"]`` while it is set."""

    def routes(router: respx.Router, forward: Forward) -> None:
        async def answer(request: httpx.Request) -> httpx.Response:
            user = hidden.get("user")
            if user and request.url.path.endswith(f"/users/{user}"):
                return httpx.Response(
                    404,
                    json={"title": "Not Found", "code": "not_found", "detail": "no such user"},
                    headers={"content-type": "application/problem+json"},
                )
            return await forward(request)

        router.route(method="GET", path__regex=re.compile(r".*/aca/api/v1/users/[^/]+$")).mock(
            side_effect=answer
        )

    return routes


async def test_an_event_that_cannot_be_decided_is_read_again_until_it_is() -> None:
    hidden: dict[str, Any] = {}
    w = make_world(routes=_hide_user(hidden))
    try:
        pair = w.manifest["aca.booking_mismatch"]
        user = hidden["user"] = pair["user_id"]
        ids = {e.id for e in w.state.world.aca_feed if e.user_id == user}
        assert ids
        journal = w.agent.journal

        for _ in range(2):  # every run lists it again, none marks it seen
            report = await w.run("aca-rejections")
            assert journal.unseen(FEED, ids) == ids
            assert not [i for i in report.incidents if i.subject.get("user_id") == user]
            (skip,) = [s for s in report.skipped if user in s.message]
            assert skip.field == "user_id"
            assert "not decided" in skip.message

        hidden.pop("user")  # ACA answers for the user again
        report = await w.run("aca-rejections")
        (incident,) = [i for i in report.incidents if i.subject.get("user_id") == user]
        assert incident.cause == "aca.booking_mismatch"
        assert ids <= set(incident.event_ids)
        assert journal.unseen(FEED, ids) == set()
        assert not [s for s in report.skipped if user in s.message]
    finally:
        await w.aclose()
