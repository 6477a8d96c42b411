"""Every world fault of the demo, proven over HTTP: the runbook's symptom, then its remedy.

The world-level proofs are ``tests/sandbox/world/test_world_faults.py``; these make the same
claims through nothing but HTTP, as doorfix and a support agent meet them: the three vendor
APIs with real tokens, and the ``/sandbox/`` control API for what no vendor API does (someone
presenting a credential, time passing, the person on site or the user acting through
``POST /sandbox/onsite``). Subjects come from ``GET /sandbox/truth``; variants the demo holds
once are injected with ``POST /sandbox/faults`` (ids from :func:`demo_manifest`).

One table row per fault kind (and variant). Each row:

1. shows the symptom the seed describes (the ACA event registered under the user, or none;
   Larry access; the CLP entry, lock and IQ state; the door log's Detail text; ACA accesses,
   bookings, mobile keys, the center's release);
2. applies the runbook's remedy through the public API (or shows it refused, or that nothing
   needs fixing, exactly as the runbook says);
3. then either shows the person gets in and ``/sandbox/truth`` reports the fault gone, or shows
   the same symptom again and the fault still present.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import pytest
from sandbox_calls import COMMANDS_PATH, bearer

from doorfix.sandbox.api.transport import InProcessSandbox
from doorfix.sandbox.scenarios.registry import demo_manifest

JSON = dict[str, Any]
Subject = dict[str, str]
Manifest = dict[str, dict[str, str]]
T = TypeVar("T")

#: the design's grace after a center's release (``aca.too_early``)
RELEASE_GRACE = timedelta(hours=24)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


# --------------------------------------------------------------------------- the HTTP client


class Api:
    """Everything a test may touch: the vendor APIs with real tokens, and ``/sandbox/``."""

    def __init__(self, sb: InProcessSandbox) -> None:
        self.sb = sb
        self._cloud_token: str | None = None
        self._clp_token: str | None = None
        self._request_seq = 0

    # ------------------------------------------------------------------ control API

    async def control(
        self, method: str, path: str, status: int = 200, json: JSON | None = None
    ) -> Any:
        """One control call that must answer ``status``; its JSON (None for 204)."""
        response = await self.sb.control.request(method, path, json=json)
        assert response.status_code == status, response.text
        return None if status == 204 else response.json()

    async def now(self) -> datetime:
        """The sandbox clock."""
        return _time((await self.control("GET", "/truth"))["now"])

    async def fault(self, fault_id: str) -> JSON:
        """The fault as ``/sandbox/truth`` lists it now."""
        truth = await self.control("GET", "/truth")
        (found,) = [f for f in truth["faults"] if f["fault_id"] == fault_id]
        return dict(found)

    async def fault_of_kind(self, kind: str) -> JSON:
        """The demo's one fault of ``kind``."""
        truth = await self.control("GET", "/truth")
        (found,) = [f for f in truth["faults"] if f["kind"] == kind]
        return dict(found)

    async def renewals(self) -> dict[str, int]:
        """``renew_door_license`` calls per door so far."""
        renewals: dict[str, int] = (await self.control("GET", "/truth"))["renewals"]
        return renewals

    async def step(self, seconds: float) -> None:
        """Let ``seconds`` of sandbox time pass."""
        await self.control("POST", "/clock", json={"advance_seconds": seconds})

    async def set_clock(self, at: datetime) -> None:
        """Move the sandbox clock forward to ``at``."""
        await self.control("POST", "/clock", json={"set": at.isoformat()})

    async def onsite(self, action: str, **params: Any) -> JSON:
        """What a person on site (or the user) does: ``POST /sandbox/onsite``."""
        answer: JSON = await self.control(
            "POST", "/onsite", json={"action": action, "params": params}
        )
        assert answer["action"] == action
        return answer

    async def present_lock(self, s: Subject) -> JSON:
        """The user presents their tag or mobile key at the lock."""
        body = {"user_id": s["user_id"], "lock_id": s["lock_id"], "via": s["via"]}
        decision: JSON = await self.control("POST", "/present", json=body)
        return decision

    async def present_door(self, s: Subject) -> JSON:
        """The card (or the visitor's newest temp key) at the door."""
        if "visitor_id" in s:
            visitor = await self.visitor(s)
            ctype, value = "temp_key", visitor["temp_keys"][-1]["code"]
        else:
            ctype, value = "card", s["credential_value"]
        body = {"door_id": s["door_id"], "credential_type": ctype, "credential_value": value}
        decision: JSON = await self.control("POST", "/present", json=body)
        return decision

    async def present_maintenance_card(self, lock_id: str) -> str:
        """Runbook a1.2: the maintenance card at the lock; where its incident went."""
        answer = await self.control("POST", "/present", json={"maintenance_card": lock_id})
        recorded: str = answer["recorded"]
        return recorded

    async def until(
        self,
        probe: Callable[[], Awaitable[T | None]],
        *,
        what: str,
        step_s: float = 5,
        deadline_s: float = 600,
    ) -> T:
        """Probe, stepping the sandbox clock between tries, until it answers or time is up."""
        waited = 0.0
        while True:
            found = await probe()
            if found is not None:
                return found
            if waited >= deadline_s:
                raise AssertionError(f"{what}: not within {deadline_s} s of sandbox time")
            await self.step(step_s)
            waited += step_s

    # ------------------------------------------------------------------ ACA

    async def aca(self, path: str, **params: Any) -> Any:
        """An ACA read that must succeed."""
        response = await self.sb.aca.get(path, params=params, headers=self.sb.aca_headers())
        assert response.status_code == 200, response.text
        return response.json()

    async def aca_list(self, path: str, **params: Any) -> list[JSON]:
        """Every row of an ACA cursor list."""
        rows: list[JSON] = []
        cursor: str | None = None
        while True:
            page = await self.aca(
                path, limit=500, **params, **({"cursor": cursor} if cursor else {})
            )
            rows += page["data"]
            cursor = page["next_cursor"]
            if cursor is None:
                return rows

    async def set_matrix(self, user_id: str, lock_id: str, enabled: bool) -> httpx.Response:
        """``PUT`` one Access Matrix cell."""
        return await self.sb.aca.put(
            f"/api/v1/access_matrix/{user_id}/{lock_id}",
            json={"enabled": enabled},
            headers=self.sb.aca_headers(),
        )

    async def events_mark(self) -> str:
        """A cursor at the end of ACA's events feed: what comes after it is new."""
        cursor: str | None = None
        while True:
            page = await self.aca(
                "/api/v1/events", limit=500, **({"after": cursor} if cursor else {})
            )
            cursor = page["next_cursor"]
            if not page["data"]:
                assert cursor is not None
                return cursor

    async def events_since(self, mark: str, user_id: str, lock_id: str) -> dict[str, JSON]:
        """Events recorded after ``mark`` for one user at one lock, by id (repeats collapse)."""
        found: dict[str, JSON] = {}
        cursor = mark
        while True:
            page = await self.aca("/api/v1/events", limit=500, after=cursor)
            for event in page["data"]:
                if (event["user_id"], event["lock_id"]) == (user_id, lock_id):
                    found[event["id"]] = event
            if not page["data"]:
                return found
            cursor = page["next_cursor"]

    async def aca_user(self, user_id: str) -> JSON:
        """An ACA user."""
        user: JSON = await self.aca(f"/api/v1/users/{user_id}")
        return user

    async def access_to(self, user_id: str, lock_id: str) -> JSON | None:
        """The user's ACA access row for the lock (None: no booking gives it)."""
        rows = [
            a
            for a in await self.aca_list(f"/api/v1/users/{user_id}/accesses")
            if a["lock_id"] == lock_id
        ]
        assert len(rows) <= 1, rows
        return rows[0] if rows else None

    async def latest_mobile_key(self, user_id: str) -> JSON:
        """The user's newest mobile key in ACA."""
        keys = await self.aca_list(f"/api/v1/users/{user_id}/mobile_keys")
        assert keys, "the user has no mobile key"
        return sorted(keys, key=lambda k: _time(k["issued_at"]))[-1]

    async def inventories_with_lock(self, center_id: str, lock_id: str) -> list[JSON]:
        """The center's inventories that hold the lock."""
        rows = await self.aca_list("/api/v1/inventories", center_id=center_id)
        return [i for i in rows if lock_id in i["lock_ids"]]

    async def active_bookings(self, user_id: str) -> list[JSON]:
        """The user's company's active bookings now, with their inventory."""
        user = await self.aca_user(user_id)
        now = await self.now()
        bookings = await self.aca_list(
            "/api/v1/bookings",
            company_id=user["company_id"],
            center_id=user["center_id"],
            active_at=now.isoformat().replace("+00:00", "Z"),
        )
        inventories = {
            i["id"]: i
            for i in await self.aca_list("/api/v1/inventories", center_id=user["center_id"])
        }
        return [
            b | {"inventory": inventories[b["inventory_id"]]}
            for b in bookings
            if b["status"] == "active"
        ]

    # ------------------------------------------------------------------ CLP

    async def _clp_auth(self, fresh: bool = False) -> dict[str, str]:
        if fresh or self._clp_token is None:
            self._clp_token = await self.sb.clp_token()
        return bearer(self._clp_token)

    async def clp_get(
        self, path: str, params: JSON | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """A CLP GET with a bearer token (renewed once if the sandbox clock expired it)."""
        auth = await self._clp_auth()
        response = await self.sb.clp.get(path, params=params, headers={**auth, **(headers or {})})
        if response.status_code == 401:
            auth = await self._clp_auth(fresh=True)
            response = await self.sb.clp.get(
                path, params=params, headers={**auth, **(headers or {})}
            )
        return response

    async def clp(self, path: str, **params: Any) -> Any:
        """A CLP read that must succeed."""
        response = await self.clp_get(path, params)
        assert response.status_code == 200, response.text
        return response.json()

    async def clp_feed(self, path: str, since: datetime) -> list[JSON]:
        """Every row of a continuation-token feed from ``since`` on."""
        params = {
            "$filter": f"utc_date_time ge {since.isoformat().replace('+00:00', 'Z')}",
            "$orderby": "utc_date_time asc",
            "$top": 1000,
        }
        response = await self.clp_get(path, params)
        rows: list[JSON] = []
        while True:
            assert response.status_code == 200, response.text
            page = response.json()
            rows += page["items"]
            token = page["continuation_token"]
            if token is None:
                return rows
            response = await self.clp_get(path, headers={"CLP-Continuation-Token": token})

    async def lock(self, s: Subject) -> JSON:
        """CLP's view of the lock (with its IQ summary)."""
        lock: JSON = await self.clp(f"/v1.2/sites/{s['site_id']}/locks/{s['lock_id']}")
        return lock

    async def iq(self, s: Subject) -> JSON:
        """CLP's view of the lock's IQ."""
        iq: JSON = await self.clp(f"/v1.2/sites/{s['site_id']}/iqs/{s['iq_id']}")
        return iq

    async def larry(self, s: Subject) -> JSON:
        """Larry access of the ACA user (its CLP platform user) at the lock."""
        user = await self.aca_user(s["user_id"])
        larry: JSON = await self.clp(
            f"/larry/v1/sites/{s['site_id']}/access",
            user_id=user["clp_user_id"],
            lock_id=s["lock_id"],
        )
        return larry

    async def entry(self, s: Subject, entry_id: str, since: datetime) -> JSON:
        """One CLP entry of the lock's site."""
        rows = await self.clp_feed(f"/v1.1/sites/{s['site_id']}/entries", since)
        (entry,) = [e for e in rows if e["id"] == entry_id]
        return entry

    async def incidents(self, s: Subject, since: datetime) -> list[JSON]:
        """CLP incidents of the site from ``since`` on."""
        return await self.clp_feed(f"/v1.1/sites/{s['site_id']}/incidents", since)

    async def sync_access(self, s: Subject) -> JSON:
        """Runbook c2: Sync Access on the lock's collection; the finished job."""
        lock = await self.lock(s)
        larry = f"/larry/v1/sites/{s['site_id']}"
        path = f"{larry}/collections/{lock['collection_id']}/sync_access"
        auth = await self._clp_auth()
        response = await self.sb.clp.post(path, headers=auth)
        if response.status_code == 401:
            response = await self.sb.clp.post(path, headers=await self._clp_auth(fresh=True))
        assert response.status_code == 202, response.text
        started = response.json()
        assert started["state"] == "queued"

        async def finished() -> JSON | None:
            job: JSON = await self.clp(f"{larry}/sync_jobs/{started['job_id']}")
            return job if job["state"] in ("succeeded", "failed") else None

        return await self.until(finished, what="the Sync Access job", step_s=5)

    # ------------------------------------------------------------------ cloud

    async def cloud(self, command: str, **param: Any) -> JSON:
        """One cloud command (token renewed once if the sandbox clock expired it)."""
        self._request_seq += 1
        body = {"command": command, "id": f"fault-proof-{self._request_seq}", "param": param}
        for fresh in (False, True):
            if fresh or self._cloud_token is None:
                self._cloud_token = await self.sb.cloud_token()
            response = await self.sb.cloud.post(
                COMMANDS_PATH, json=body, headers=bearer(self._cloud_token)
            )
            if response.status_code != 401:
                break
        assert response.status_code == 200, response.text
        answer: JSON = response.json()
        return answer

    async def cloud_ok(self, command: str, **param: Any) -> Any:
        """A cloud command that must succeed: its result."""
        answer = await self.cloud(command, **param)
        assert answer["success"] is True, answer
        return answer["result"]

    async def cloud_error(self, command: str, **param: Any) -> str:
        """A cloud command that must answer a business error: its code."""
        answer = await self.cloud(command, **param)
        assert answer["success"] is False, answer
        code: str = answer["error"]["code"]
        return code

    async def cloud_items(self, command: str, **param: Any) -> list[JSON]:
        """Every item of a paged cloud command."""
        items: list[JSON] = []
        page_index = 1
        while True:
            result = await self.cloud_ok(command, page_size=500, page_index=page_index, **param)
            items += result["items"]
            if len(items) >= result["total"] or not result["items"]:
                return items
            page_index += 1

    async def door_log_row(self, project_id: str, log_id: int) -> JSON:
        """The door-log row a presentation wrote (read as the runbook says: Logs > Door Logs)."""
        since = _epoch(await self.now()) - 3600
        rows = await self.cloud_items("get_door_log", project_id=project_id, start_time=since)
        (row,) = [r for r in rows if r["log_id"] == log_id]
        return row

    async def door(self, s: Subject) -> JSON:
        """The door with its license."""
        door: JSON = await self.cloud_ok(
            "get_door_detail", project_id=s["project_id"], door_id=s["door_id"]
        )
        return door

    async def personnel(self, s: Subject) -> JSON:
        """The subject's cloud person."""
        person: JSON = await self.cloud_ok(
            "get_personnel_detail", project_id=s["project_id"], personnel_id=s["personnel_id"]
        )
        return person

    async def groups_opening(self, s: Subject) -> list[JSON]:
        """The project's access groups that list the door."""
        groups = await self.cloud_items("get_access_group_list", project_id=s["project_id"])
        return [g for g in groups if s["door_id"] in g["door_ids"]]

    async def visitor(self, s: Subject) -> JSON:
        """The subject's cloud visitor with their temp keys."""
        visitor: JSON = await self.cloud_ok(
            "get_visitor_detail", project_id=s["project_id"], visitor_id=s["visitor_id"]
        )
        return visitor

    async def visit(self, s: Subject) -> JSON:
        """The ACA visit behind the cloud visitor."""
        (visit,) = await self.aca_list("/api/v1/visits", cloud_visitor_id=s["visitor_id"])
        return visit

    async def holiday_blocking(self, s: Subject) -> JSON:
        """The holiday of the door that falls on today (the project's local date)."""
        project = await self.cloud_ok("get_project_info", project_id=s["project_id"])
        today = (await self.now()).astimezone(ZoneInfo(project["time_zone"])).date().isoformat()
        holidays = await self.cloud_items("get_holiday_list", project_id=s["project_id"])
        (holiday,) = [h for h in holidays if s["door_id"] in h["door_ids"] and today in h["dates"]]
        return holiday


Step = Callable[[Api, Subject], Awaitable[None]]


# --------------------------------------------------------------------------- lock symptoms


async def refused_and_registered(api: Api, s: Subject, entry_detail: str) -> JSON:
    """Runbook B: the lock refuses, and the rejection is registered under the user profile.

    ACA's feed holds exactly that event (its id, type, credential) for the user at the lock,
    and CLP's entries hold it as ``lock_rejected`` with ``entry_detail``.
    """
    mark, now = await api.events_mark(), await api.now()
    decision = await api.present_lock(s)
    assert (decision["granted"], decision["event_recorded"]) == (False, "now"), decision
    events = await api.events_since(mark, s["user_id"], s["lock_id"])
    assert list(events) == [decision["event_id"]]
    event = events[decision["event_id"]]
    assert event["type"] == f"{s['via']}_rejected"
    assert event["center_id"] == s["center_id"]
    user = await api.aca_user(s["user_id"])
    if s["via"] == "tag":
        assert event["credential"] in {t["number"] for t in user["tags"]}
    else:
        assert event["credential"] == (await api.latest_mobile_key(s["user_id"]))["id"]
    entry = await api.entry(s, decision["entry_id"], now)
    assert (entry["event_category"], entry["event_detail"]) == ("lock_rejected", entry_detail)
    assert (entry["lock_id"], entry["user_id"]) == (s["lock_id"], user["clp_user_id"])
    return event


async def refused_unregistered(api: Api, s: Subject, recorded: str) -> None:
    """Runbook A: the lock refuses and NO event is registered under the user profile."""
    mark = await api.events_mark()
    decision = await api.present_lock(s)
    assert (decision["granted"], decision["event_recorded"]) == (False, recorded), decision
    assert await api.events_since(mark, s["user_id"], s["lock_id"]) == {}


async def aca_active(api: Api, s: Subject) -> None:
    """ACA gives the user the lock (runbook b1: the access is active)."""
    access = await api.access_to(s["user_id"], s["lock_id"])
    assert access is not None
    assert (access["state"], access["disabled_by"]) == ("active", None)


async def sym_clp_out_of_sync(api: Api, s: Subject) -> None:
    """C c1: ACA active, Larry access denied."""
    await refused_and_registered(api, s, "no_access")
    await aca_active(api, s)
    larry = await api.larry(s)
    assert (larry["status"], larry["reason"]) == ("denied", "no_access_group")


async def sym_iq_out_of_sync(api: Api, s: Subject) -> None:
    """C c2: ACA active, Larry access granted, the lock still rejects the tag."""
    await refused_and_registered(api, s, "no_access")
    await aca_active(api, s)
    larry = await api.larry(s)
    assert (larry["status"], larry["reason"]) == ("granted", None)


async def sym_iq_offline(api: Api, s: Subject) -> None:
    """A a1: no event reaches ACA; CLP shows the IQ offline (its loss in the incidents)."""
    now = await api.now()
    await refused_unregistered(api, s, "late")
    lock, iq = await api.lock(s), await api.iq(s)
    assert lock["iq"] == {"id": s["iq_id"], "revision": iq["revision"], "online": False}
    assert iq["online"] is False
    of_iq = [
        i for i in await api.incidents(s, now - timedelta(days=1)) if i["iq"] == {"id": iq["id"]}
    ]
    assert of_iq[-1]["type"] == "iq_connection_lost"
    await aca_active(api, s)
    assert (await api.larry(s))["status"] == "granted"


async def sym_half_connected(api: Api, s: Subject) -> None:
    """A a1.3: an IQ1's lock is attached_pending: no event, no lock_time_set for the card."""
    now = await api.now()
    await refused_unregistered(api, s, "never")
    lock = await api.lock(s)
    assert (lock["online"], lock["iq_link_state"]) == (True, "attached_pending")
    assert (lock["iq"]["revision"], lock["iq"]["online"]) == (1, True)
    assert await api.present_maintenance_card(s["lock_id"]) == "never"
    incidents = await api.incidents(s, now)
    assert not [i for i in incidents if i["lock"] == {"id": s["lock_id"]}]


async def sym_privacy_mode(api: Api, s: Subject) -> None:
    """A a2: an escutcheon lock in privacy mode refuses and registers nothing in ACA."""
    await refused_unregistered(api, s, "never")
    lock = await api.lock(s)
    assert (lock["lock_type"], lock["privacy_mode"]) == ("escutcheon", True)
    assert lock["online"] is True
    assert lock["iq"]["online"] is True
    await aca_active(api, s)
    assert (await api.larry(s))["status"] == "granted"


async def sym_booking_mismatch(api: Api, s: Subject) -> None:
    """A a3: the booking is for ``714ResCo-work01``, the lock belongs to room ``714``."""
    await refused_and_registered(api, s, "no_access")
    assert await api.access_to(s["user_id"], s["lock_id"]) is None
    (room,) = await api.inventories_with_lock(s["center_id"], s["lock_id"])
    assert room["name"] == "714"
    booked = [b["inventory"] for b in await api.active_bookings(s["user_id"])]
    (co_work,) = [i for i in booked if i["name"].startswith(room["name"])]
    assert co_work["name"] == "714ResCo-work01"
    assert s["lock_id"] not in co_work["lock_ids"]
    assert (await api.larry(s))["status"] == "denied"


async def sym_access_disabled(api: Api, s: Subject) -> None:
    """B b1: the access is disabled via the Access Matrix."""
    await refused_and_registered(api, s, "no_access")
    access = await api.access_to(s["user_id"], s["lock_id"])
    assert access is not None
    assert (access["state"], access["disabled_by"]) == ("disabled", "access_matrix")


async def sym_no_booking(api: Api, s: Subject) -> None:
    """B: the booking that gave the lock ended; no active booking gives it now."""
    await refused_and_registered(api, s, "no_access")
    access = await api.access_to(s["user_id"], s["lock_id"])
    assert access is not None
    assert (access["state"], access["disabled_by"]) == ("disabled", "booking_ended")
    booked = await api.active_bookings(s["user_id"])
    assert booked
    assert all(s["lock_id"] not in b["inventory"]["lock_ids"] for b in booked)


async def sym_too_early(api: Api, s: Subject) -> None:
    """ "24 hours after the center is released": this one was released less than 24 h ago."""
    await refused_and_registered(api, s, "no_access")
    center = await api.aca(f"/api/v1/centers/{s['center_id']}")
    age = await api.now() - _time(center["released_at"])
    assert timedelta(0) <= age < RELEASE_GRACE


def sym_mobile_key(state: str, entry_detail: str, last_error: str | None) -> Step:
    """D: the mobile key is refused; ACA shows the key revoked, corrupted or failing."""

    async def symptom(api: Api, s: Subject) -> None:
        event = await refused_and_registered(api, s, entry_detail)
        key = await api.latest_mobile_key(s["user_id"])
        assert event["credential"] == key["id"]
        assert (key["state"], key["last_error"]) == (state, last_error)
        await aca_active(api, s)

    return symptom


# --------------------------------------------------------------------------- door symptoms


async def door_refused(api: Api, s: Subject, detail: str) -> JSON:
    """The device refuses; the door log's Detail column says why, in the seed's words."""
    decision = await api.present_door(s)
    assert (decision["granted"], decision["detail"]) == (False, detail), decision
    row = await api.door_log_row(s["project_id"], decision["log_id"])
    assert (row["door_id"], row["result"], row["detail"]) == (s["door_id"], "failure", detail)
    return row


async def aca_tag_owner(api: Api, s: Subject) -> JSON:
    """The ACA user holding the presented card as a tag, and that tag."""
    (user,) = await api.aca_list("/api/v1/users", tag=s["credential_value"])
    (tag,) = [t for t in user["tags"] if t["number"] == s["credential_value"]]
    return user | {"tag": tag}


async def nobody_holds_the_card(api: Api, s: Subject) -> None:
    owners = await api.cloud_items(
        "find_personnel", project_id=s["project_id"], credential_value=s["credential_value"]
    )
    assert owners == []


async def sym_credential_unassigned(api: Api, s: Subject) -> None:
    """Invalid [Credential Type]: no person holds the card, ACA says whose assigned tag it is."""
    row = await door_refused(api, s, "Invalid Card")
    assert (row["credential_type"], row["personnel_id"]) == ("card", None)
    await nobody_holds_the_card(api, s)
    owner = await aca_tag_owner(api, s)
    assert owner["tag"]["state"] == "assigned"
    assert owner["cloud_personnel_id"] is not None


async def sym_unknown_credential(api: Api, s: Subject) -> None:
    """Invalid Card for a card ACA lists as a lost tag: a security finding, not a fix."""
    row = await door_refused(api, s, "Invalid Card")
    assert row["personnel_id"] is None
    await nobody_holds_the_card(api, s)
    owner = await aca_tag_owner(api, s)
    assert owner["tag"]["state"] == "lost"


async def sym_no_access_group(api: Api, s: Subject) -> None:
    """No access permission (or license): the license is fine, no group gives the door."""
    row = await door_refused(api, s, "No access permission or door license is not available")
    assert row["personnel_id"] == s["personnel_id"]
    assert (await api.door(s))["license"]["status"] == "active"
    person = await api.personnel(s)
    assert person["user_group_ids"] == []
    opening = {g["access_group_id"] for g in await api.groups_opening(s)}
    assert opening
    assert not opening & set(person["access_group_ids"])


async def sym_inherited_group(api: Api, s: Subject) -> None:
    """No access permission for a user-group member: the groups are inherited."""
    row = await door_refused(api, s, "No access permission")
    assert row["personnel_id"] == s["personnel_id"]
    person = await api.personnel(s)
    assert person["user_group_ids"] == [s["user_group_id"]]
    opening = {g["access_group_id"] for g in await api.groups_opening(s)}
    user_groups = await api.cloud_items("get_user_group_list", project_id=s["project_id"])
    (group,) = [g for g in user_groups if g["user_group_id"] == s["user_group_id"]]
    assert s["personnel_id"] in group["member_ids"]
    assert not opening & (set(group["access_group_ids"]) | set(person["access_group_ids"]))


async def expired_key_refused(api: Api, s: Subject) -> JSON:
    """Not within the valid period: the visitor's newest temp key has expired."""
    row = await door_refused(api, s, "Not within the valid period")
    assert (row["credential_type"], row["visitor_id"]) == ("temp_key", s["visitor_id"])
    visitor = await api.visitor(s)
    assert visitor["temp_keys"][-1]["expired"] is True
    assert visitor["aca_visit_id"] == s["visit_id"]
    return await api.visit(s)


async def sym_visitor_expired(api: Api, s: Subject) -> None:
    """The key expired while the visit ACA shows is still on."""
    visit = await expired_key_refused(api, s)
    assert visit["status"] == "active"
    assert _time(visit["ends_at"]) > await api.now()


async def sym_visit_over(api: Api, s: Subject) -> None:
    """The key expired and so did the visit: refused as designed."""
    visit = await expired_key_refused(api, s)
    assert visit["status"] == "ended"
    assert _time(visit["ends_at"]) <= await api.now()


async def sym_holiday(api: Api, s: Subject) -> None:
    """No access permission during holidays: today's holiday has no working hours."""
    await door_refused(api, s, "No access permission during holidays")
    holiday = await api.holiday_blocking(s)
    assert holiday["holiday_id"] == s["holiday_id"]
    assert holiday["working_hours_enabled"] is False


async def sym_license_inactive(api: Api, s: Subject) -> None:
    """Door license expired or not activated, on an account that may pay."""
    await door_refused(api, s, "Door license expired or not activated")
    assert (await api.door(s))["license"]["status"] in ("expired", "inactivated")


# --------------------------------------------------------------------------- remedies


async def toggle_access_matrix(api: Api, s: Subject) -> None:
    """c1: disable then enable the access in the Access Matrix; re-check Larry access."""
    for enabled in (False, True):
        response = await api.set_matrix(s["user_id"], s["lock_id"], enabled)
        assert response.status_code == 200, response.text
        assert response.json()["clp_sync"] == "queued"

    async def larry_grants() -> JSON | None:
        larry = await api.larry(s)
        return larry if larry["status"] == "granted" else None

    await api.until(larry_grants, what="Larry access after the toggle", step_s=1)


async def sync_access(api: Api, s: Subject) -> None:
    """c2: Sync Access on the lock's collection, then wait for its job."""
    job = await api.sync_access(s)
    assert (job["state"], job["error"]) == ("succeeded", None)


async def power_cycle_iq_offline(api: Api, s: Subject) -> None:
    """a1.1: Sync Access cannot reach an offline IQ; a person power cycles it on site.

    Events come again (the held ones, with their original time), then c2 pushes the access
    the hub missed while it was away.
    """
    failed = await api.sync_access(s)
    assert (failed["state"], failed["error"]) == ("failed", "iq_offline")
    mark, since = await api.events_mark(), await api.now()
    answer = await api.onsite("power_cycle_iq", iq_id=s["iq_id"])
    assert answer["iq"]["online"] is True
    assert (await api.iq(s))["online"] is True
    late = await api.events_since(mark, s["user_id"], s["lock_id"])
    assert late
    assert all(_time(e["occurred_at"]) < _time(e["recorded_at"]) for e in late.values())
    kinds = [i["type"] for i in await api.incidents(s, since) if i["iq"] == {"id": s["iq_id"]}]
    assert kinds[-1] == "iq_connection_restored"
    await sync_access(api, s)


async def power_cycle_half_connected(api: Api, s: Subject) -> None:
    """a1.1 + a1.2: power cycle the IQ1; the maintenance card's lock_time_set now arrives."""
    since = await api.now()
    await api.onsite("power_cycle_iq", iq_id=s["iq_id"])
    assert (await api.lock(s))["iq_link_state"] == "attached"
    assert await api.present_maintenance_card(s["lock_id"]) == "now"
    incidents = [i for i in await api.incidents(s, since) if i["lock"] == {"id": s["lock_id"]}]
    assert [i["type"] for i in incidents] == ["lock_time_set"]
    await sync_access(api, s)


async def repair_privacy_connector(api: Api, s: Subject) -> None:
    """a2: Sync Access does not help; on site the lock is removed and the connector repaired."""
    await sync_access(api, s)
    assert (await api.lock(s))["privacy_mode"] is True
    answer = await api.onsite("set_privacy_mode", lock_id=s["lock_id"], on=False)
    assert answer["lock"]["privacy_mode"] is False
    assert (await api.lock(s))["privacy_mode"] is False


async def enabling_is_refused(api: Api, s: Subject) -> None:
    """ACA refuses to enable a lock no booking gives: ``409 no_booking``."""
    response = await api.set_matrix(s["user_id"], s["lock_id"], True)
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "no_booking"


def refused_as_designed(api_call: Step | None) -> Step:
    """Nothing needs fixing: the truth calls it ``no_fault`` (after ``api_call``, if any)."""

    async def remedy(api: Api, s: Subject) -> None:
        if api_call is not None:
            await api_call(api, s)
        faults = (await api.control("GET", "/faults"))["faults"]
        found = [f for f in faults if f["subject"] == s and not f["cleared"]]
        assert [(f["remedy"], f["outcome"]) for f in found] == [(None, "no_fault")]

    return remedy


async def wait_out_the_grace(api: Api, s: Subject) -> None:
    """The agent defers; 24 h after the release the center's IQs hold their access."""
    center = await api.aca(f"/api/v1/centers/{s['center_id']}")
    await api.set_clock(_time(center["released_at"]) + RELEASE_GRACE + timedelta(seconds=1))


async def reinstall_app(api: Api, s: Subject) -> None:
    """D: the user reinstalls the app; a new mobile key, active in ACA."""
    answer = await api.onsite("reinstall_app", user_id=s["user_id"])
    key = await api.latest_mobile_key(s["user_id"])
    assert key == answer["mobile_key"]
    assert (key["state"], key["last_error"]) == ("active", None)


async def reinstall_fails_again(api: Api, s: Subject) -> None:
    """D: generation itself is broken: the new key fails too (escalate to vendor support)."""
    answer = await api.onsite("reinstall_app", user_id=s["user_id"])
    key = await api.latest_mobile_key(s["user_id"])
    assert key["id"] == answer["mobile_key"]["id"]
    assert key["last_error"] == "generation_failed"


async def assign_credential(api: Api, s: Subject) -> None:
    """Assign the card to the person ACA says holds it as an assigned tag."""
    owner = await aca_tag_owner(api, s)
    person = await api.cloud_ok(
        "add_personnel_credential",
        project_id=s["project_id"],
        personnel_id=owner["cloud_personnel_id"],
        type="card",
        value=s["credential_value"],
    )
    assert {"type": "card", "value": s["credential_value"]} in person["credentials"]


async def nothing_may_be_assigned(api: Api, s: Subject) -> None:
    """A lost tag is never assigned; whoever found it keeps trying an hour later."""
    await api.step(3600)


async def add_to_access_group(api: Api, s: Subject) -> None:
    """+Add to Existing Access Group: one that opens the door."""
    group = (await api.groups_opening(s))[0]
    result = await api.cloud_ok(
        "add_access_group_member",
        project_id=s["project_id"],
        access_group_id=group["access_group_id"],
        personnel_id=s["personnel_id"],
    )
    assert result["access_group_id"] == group["access_group_id"]
    assert group["access_group_id"] in (await api.personnel(s))["access_group_ids"]


async def membership_refused(api: Api, s: Subject) -> None:
    """An inherited group cannot be edited one by one: ``conflict``; nothing changes."""
    before = await api.personnel(s)
    group = (await api.groups_opening(s))[0]
    code = await api.cloud_error(
        "add_access_group_member",
        project_id=s["project_id"],
        access_group_id=group["access_group_id"],
        personnel_id=s["personnel_id"],
    )
    assert code == "conflict"
    assert await api.personnel(s) == before


async def create_temp_key(api: Api, s: Subject) -> None:
    """A new visitor credential, from now to the end of the visit ACA still shows."""
    visit = await api.visit(s)
    ends = _epoch(_time(visit["ends_at"]))
    key = await api.cloud_ok(
        "create_visitor_temp_key",
        project_id=s["project_id"],
        visitor_id=s["visitor_id"],
        door_ids=[s["door_id"]],
        start_time=_epoch(await api.now()),
        finish_time=ends,
    )
    assert (key["finish_time"], key["expired"]) == (ends, False)


async def nothing_to_renew(api: Api, s: Subject) -> None:
    """A new key may not outlive the visit, and the visit is over: nothing to issue."""
    visit = await api.visit(s)
    assert _time(visit["ends_at"]) <= await api.now()
    await refused_as_designed(None)(api, s)


async def set_holiday_hours(api: Api, s: Subject) -> None:
    """Enable Working Hours on the holiday (all day, so the proof holds at any hour)."""
    holiday = await api.holiday_blocking(s)
    result = await api.cloud_ok(
        "set_holiday_working_hours",
        project_id=s["project_id"],
        holiday_id=holiday["holiday_id"],
        enabled=True,
        start_time="00:00",
        end_time="23:59",
    )
    assert result["working_hours_enabled"] is True


async def renew_license(api: Api, s: Subject) -> None:
    """The account may pay: renew the license once (each call bills)."""
    project = await api.cloud_ok("get_project_info", project_id=s["project_id"])
    assert "payment" in project["permissions"]
    door = await api.cloud_ok(
        "renew_door_license", project_id=s["project_id"], door_id=s["door_id"], months=12
    )
    assert door["license"]["status"] == "active"
    assert (await api.renewals()).get(s["door_id"]) == 1


def renewal_refused(code: str, may_pay: bool) -> Step:
    """Without payment the renewal is refused with ``code``; nothing is billed."""

    async def remedy(api: Api, s: Subject) -> None:
        project = await api.cloud_ok("get_project_info", project_id=s["project_id"])
        assert ("payment" in project["permissions"]) is may_pay
        assert (
            await api.cloud_error(
                "renew_door_license", project_id=s["project_id"], door_id=s["door_id"], months=12
            )
            == code
        )
        assert s["door_id"] not in await api.renewals()

    return remedy


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    """One fault kind (or variant): its symptom, its remedy, and whether the remedy clears it.

    ``inject`` builds ``POST /sandbox/faults`` params for a variant the demo does not hold
    (from the demo's manifest); ``replaces`` first undoes the demo's own instance by fiat.
    """

    name: str
    kind: str
    symptom: Step
    remedy: Step
    clears: bool
    inject: Callable[[Manifest], JSON] | None = None
    replaces: bool = False


def _half_connected(m: Manifest) -> JSON:
    # the healthy mobile-key user's lock hangs off an IQ1
    s = m["normal.mkey"]
    return {"lock_id": s["lock_id"], "user_id": s["user_id"], "variant": "half_connected"}


def _visit_over(m: Manifest) -> JSON:
    return {"visitor_id": m["cloud.visitor_expired"]["visitor_id"], "visit_over": True}


def _no_funds(m: Manifest) -> JSON:
    s = m["normal.door"]
    return {
        "door_id": s["door_id"],
        "personnel_id": s["personnel_id"],
        "status": "expired",
        "reason": "funds",
    }


async def sym_tag_not_assigned(api: Api, s: Subject) -> None:
    """The premise fails: the user's only tag is lost in ACA, and the lock refuses it."""
    decision = await api.present_lock(s)
    assert decision["granted"] is False, decision
    user = await api.aca_user(s["user_id"])
    assert [(t["number"], t["state"]) for t in user["tags"]] == [(s["credential"], "lost")]


async def toggle_does_not_open_a_lost_tag(api: Api, s: Subject) -> None:
    """c1's toggle makes Larry grant, yet the lost tag stays refused: no sync is the fix."""
    assert (await api.larry(s))["status"] == "denied"
    await toggle_access_matrix(api, s)
    decision = await api.present_lock(s)
    assert decision["granted"] is False, decision


async def sym_key_replaced_long_ago(api: Api, s: Subject) -> None:
    """History: the key in use was issued long ago, after an older key was revoked."""
    keys = await api.aca_list(f"/api/v1/users/{s['user_id']}/mobile_keys")
    states = {k["id"]: k["state"] for k in keys}
    assert (states[s["mobile_key_id"]], states[s["replaced_key_id"]]) == ("active", "revoked")


async def nothing_to_do(api: Api, s: Subject) -> None:
    """No fault: nothing to remedy."""


CASES = [
    Case(
        "tag_not_assigned",
        "aca.tag_not_assigned",
        sym_tag_not_assigned,
        toggle_does_not_open_a_lost_tag,
        False,
    ),
    Case(
        "mkey_replaced_long_ago",
        "aca.mkey_replaced_long_ago",
        sym_key_replaced_long_ago,
        nothing_to_do,
        False,
    ),
    Case("clp_out_of_sync", "aca.clp_out_of_sync", sym_clp_out_of_sync, toggle_access_matrix, True),
    Case("iq_out_of_sync", "aca.iq_out_of_sync", sym_iq_out_of_sync, sync_access, True),
    Case("lock_offline", "aca.lock_offline", sym_iq_offline, power_cycle_iq_offline, True),
    Case(
        "lock_offline-half_connected",
        "aca.lock_offline",
        sym_half_connected,
        power_cycle_half_connected,
        True,
        inject=_half_connected,
    ),
    Case("privacy_mode", "aca.privacy_mode", sym_privacy_mode, repair_privacy_connector, True),
    Case(
        "booking_mismatch", "aca.booking_mismatch", sym_booking_mismatch, enabling_is_refused, False
    ),
    Case(
        "access_disabled",
        "aca.access_disabled",
        sym_access_disabled,
        refused_as_designed(sync_access),
        False,
    ),
    Case(
        "no_booking",
        "aca.no_booking",
        sym_no_booking,
        refused_as_designed(enabling_is_refused),
        False,
    ),
    Case("too_early", "aca.too_early", sym_too_early, wait_out_the_grace, True),
    Case(
        "mkey_revoked",
        "aca.mkey_revoked",
        sym_mobile_key("revoked", "blocked", None),
        reinstall_app,
        True,
    ),
    Case(
        "mkey_corrupted",
        "aca.mkey_corrupted",
        sym_mobile_key("corrupted", "no_access", None),
        reinstall_app,
        True,
    ),
    Case(
        "mkey_generation_failed",
        "aca.mkey_generation_failed",
        sym_mobile_key("active", "no_access", "generation_failed"),
        reinstall_fails_again,
        False,
    ),
    Case(
        "credential_unassigned",
        "cloud.credential_unassigned",
        sym_credential_unassigned,
        assign_credential,
        True,
    ),
    Case(
        "unknown_credential",
        "cloud.unknown_credential",
        sym_unknown_credential,
        nothing_may_be_assigned,
        False,
    ),
    Case(
        "no_access_group",
        "cloud.no_access_group",
        sym_no_access_group,
        add_to_access_group,
        True,
    ),
    Case(
        "inherited_group",
        "cloud.inherited_group",
        sym_inherited_group,
        membership_refused,
        False,
    ),
    Case("visitor_expired", "cloud.visitor_expired", sym_visitor_expired, create_temp_key, True),
    Case(
        "visitor_expired-visit_over",
        "cloud.visitor_expired",
        sym_visit_over,
        nothing_to_renew,
        False,
        inject=_visit_over,
        replaces=True,
    ),
    Case(
        "holiday_restriction",
        "cloud.holiday_restriction",
        sym_holiday,
        set_holiday_hours,
        True,
    ),
    Case(
        "license_inactive",
        "cloud.license_inactive",
        sym_license_inactive,
        renew_license,
        True,
    ),
    Case(
        "no_payment",
        "cloud.no_payment",
        sym_license_inactive,
        renewal_refused("permission_denied", may_pay=False),
        False,
    ),
    Case(
        "no_payment-no_funds",
        "cloud.no_payment",
        sym_license_inactive,
        renewal_refused("payment_required", may_pay=True),
        False,
        inject=_no_funds,
    ),
]


async def _fault_under_test(api: Api, sb: InProcessSandbox, case: Case) -> JSON:
    """The demo's fault of the kind, or the variant injected over HTTP."""
    if case.inject is None:
        return await api.fault_of_kind(case.kind)
    if case.replaces:
        demo = await api.fault_of_kind(case.kind)
        await api.control("DELETE", f"/faults/{demo['fault_id']}", status=204)
    params = case.inject(demo_manifest(sb.world))
    record: JSON = await api.control(
        "POST", "/faults", status=201, json={"kind": case.kind, "params": params}
    )
    return await api.fault(record["fault_id"])


async def person_gets_in(api: Api, s: Subject) -> None:
    """The person tries again (as people do) until the door or lock opens."""
    if "lock_id" in s:

        async def opens() -> JSON | None:
            decision = await api.present_lock(s)
            return decision if decision["granted"] else None

        mark = await api.events_mark()
        decision = await api.until(opens, what="the lock opening", step_s=10)
        assert decision["event_recorded"] == "now"
        event = (await api.events_since(mark, s["user_id"], s["lock_id"]))[decision["event_id"]]
        assert event["type"] == f"{s['via']}_granted"
    else:
        decision = await api.present_door(s)
        assert (decision["granted"], decision["detail"]) == (True, ""), decision
        row = await api.door_log_row(s["project_id"], decision["log_id"])
        assert row["result"] == "success"


def test_every_fault_kind_of_the_demo_has_a_case(sandbox: InProcessSandbox) -> None:
    """No kind of the demo's runbook faults goes unproven."""
    kinds = {f.kind for f in sandbox.world.faults() if not f.kind.startswith("feed.")}
    assert kinds == {c.kind for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_fault_symptom_and_remedy_over_http(sandbox: InProcessSandbox, case: Case) -> None:
    """The seed's symptom; the runbook's remedy through the API; cleared, or exactly not."""
    api = Api(sandbox)
    fault = await _fault_under_test(api, sandbox, case)
    assert fault["present"] is True
    s: Subject = fault["subject"]
    await case.symptom(api, s)
    await case.remedy(api, s)
    if case.clears:
        await person_gets_in(api, s)
        assert (await api.fault(fault["fault_id"]))["present"] is False
    else:
        await case.symptom(api, s)
        assert (await api.fault(fault["fault_id"]))["present"] is True


# --------------------------------------------------------------------------- the on-site endpoint


async def test_onsite_links_go_down_and_come_back(sandbox: InProcessSandbox) -> None:
    """``set_lock_online`` / ``set_iq_online``: what CLP then shows, and the incidents."""
    api = Api(sandbox)
    s = demo_manifest(sandbox.world)["normal.tag"]
    user = await api.aca_user(s["user_id"])
    center = await api.aca(f"/api/v1/centers/{user['center_id']}")
    at = {**s, "site_id": center["clp_site_id"]}
    since = await api.now()
    lock = (await api.onsite("set_lock_online", lock_id=s["lock_id"], online=False))["lock"]
    assert lock["online"] is False
    assert (await api.lock(at))["online"] is False
    decision = await api.present_lock(at)
    assert (decision["granted"], decision["event_recorded"]) == (True, "late")
    await api.onsite("set_lock_online", lock_id=s["lock_id"], online=True)
    iq_id = lock["iq"]["id"]
    iq = (await api.onsite("set_iq_online", iq_id=iq_id, online=False))["iq"]
    assert (iq["id"], iq["online"]) == (iq_id, False)
    assert (await api.onsite("set_iq_online", iq_id=iq_id, online=True))["iq"]["online"] is True
    kinds = [i["type"] for i in await api.incidents(at, since) if i["iq"] == {"id": iq_id}]
    assert kinds == [
        "lock_connection_lost",
        "lock_connection_restored",
        "iq_connection_lost",
        "iq_connection_restored",
    ]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"action": "fly_to_site", "params": {}}, 400),
        ({"action": "power_cycle_iq"}, 400),  # no iq_id
        ({"action": "power_cycle_iq", "params": {"iq_id": 7}}, 400),
        ({"action": "set_privacy_mode", "params": {"lock_id": "l-4", "on": "off"}}, 400),
        ({"action": "power_cycle_iq", "params": []}, 400),
        ({"action": "power_cycle_iq", "params": {"iq_id": "iq-nope"}}, 404),
        ({"action": "set_lock_online", "params": {"lock_id": "l-nope", "online": True}}, 404),
        ({"action": "reinstall_app", "params": {"user_id": "u-nope"}}, 404),
    ],
    ids=[
        "unknown-action",
        "no-params",
        "id-not-a-string",
        "flag-not-a-bool",
        "params-not-an-object",
        "unknown-iq",
        "unknown-lock",
        "unknown-user",
    ],
)
async def test_onsite_refuses_what_it_cannot_do(
    sandbox: InProcessSandbox, body: JSON, status: int
) -> None:
    """Unknown actions and bad params are 400, unknown ids 404, with ``{"error"}``."""
    answer = await Api(sandbox).control("POST", "/onsite", status=status, json=body)
    assert isinstance(answer["error"], str)
