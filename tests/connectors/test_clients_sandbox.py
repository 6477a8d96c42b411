"""The three clients against the sandbox app in process: every read, the writes, API faults.

The clients are built by the factory exactly as the agent builds them; only the transport
differs (``SandboxTransport`` instead of the network). The sandbox world is read directly
only to pick subjects and to check what the clients answered against the truth.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import time, timedelta

import pytest
from pydantic import SecretStr

from doorfix.clock import ManualClock
from doorfix.connectors._http import RateLimit, RetryPolicy
from doorfix.connectors.factory import (
    AcaSettings,
    Clients,
    CloudSettings,
    ClpSettings,
    HttpSettings,
    build_clients,
)
from doorfix.errors import AuthError, ContractError, PermanentError
from doorfix.sandbox.api.transport import IN_PROCESS_ROOT, InProcessSandbox, SandboxTransport

HTTP = HttpSettings(
    timeout=10.0,
    retry=RetryPolicy(attempts=6, max_elapsed=900.0),
    rate_limit=RateLimit(per_second=0, concurrency=8),
)


def settings(
    sandbox: InProcessSandbox, *, cloud_secret: str | None = None
) -> tuple[CloudSettings, AcaSettings, ClpSettings]:
    creds = sandbox.state.credentials
    return (
        CloudSettings(
            base_url=f"{IN_PROCESS_ROOT}/cloud",
            client_id=creds.cloud_client_id,
            client_secret=SecretStr(cloud_secret or creds.cloud_client_secret),
            http=HTTP,
        ),
        AcaSettings(
            base_url=f"{IN_PROCESS_ROOT}/aca", api_key=SecretStr(creds.aca_api_key), http=HTTP
        ),
        ClpSettings(
            base_url=f"{IN_PROCESS_ROOT}/clp",
            identity_url=f"{IN_PROCESS_ROOT}/clp-identity",
            client_id=creds.clp_client_id,
            client_secret=SecretStr(creds.clp_client_secret),
            http=HTTP,
        ),
    )


@pytest.fixture
async def clients(sandbox: InProcessSandbox, clock: ManualClock) -> AsyncIterator[Clients]:
    cloud, aca, clp = settings(sandbox)
    transport = SandboxTransport(sandbox.app)
    async with build_clients(cloud, aca, clp, clock=clock, transport=transport) as built:
        yield built


def project_with_doors(sandbox: InProcessSandbox) -> str:
    world = sandbox.world
    for project_id, project in world.projects.items():
        paying = "payment" in project.permissions and project.funds
        if paying and any(d.project_id == project_id for d in world.doors.values()):
            return project_id
    raise AssertionError("the demo world has no paying project with doors")


def renewals(sandbox: InProcessSandbox) -> list[str]:
    return [
        row.outcome
        for row in sandbox.state.mutations.since(0)
        if row.system == "cloud" and row.operation == "renew_door_license"
    ]


# --------------------------------------------------------------------------- reads


async def test_aca_reads_match_the_world(clients: Clients, sandbox: InProcessSandbox) -> None:
    world = sandbox.world
    centers = [c async for c in clients.aca.iter_centers()]
    assert {c.id for c in centers} == set(world.centers)
    center = centers[0]
    assert await clients.aca.get_center(center.id) == center

    inventories = [i async for i in clients.aca.iter_inventories(center.id)]
    assert {i.id for i in inventories} == {
        i.id for i in world.inventories.values() if i.center_id == center.id
    }
    bookings = [b async for b in clients.aca.iter_bookings(center_id=center.id)]
    assert {b.id for b in bookings} == {
        b.id for b in world.bookings.values() if b.center_id == center.id
    }
    visits = [v async for v in clients.aca.iter_visits(center_id=center.id)]
    assert {v.id for v in visits} == {
        v.id for v in world.visits.values() if v.center_id == center.id
    }

    user = next(iter(world.users.values()))
    fetched = await clients.aca.get_user(user.id)
    assert (fetched.clp_user_id, fetched.email) == (user.clp_user_id, user.email)
    by_clp = [u.id async for u in clients.aca.find_users(clp_user_id=user.clp_user_id)]
    assert by_clp == [user.id]
    accesses = [a async for a in clients.aca.iter_accesses(user.id)]
    assert {a.lock_id for a in accesses} == {a.lock_id for a in world.aca_accesses(user.id)}
    keys = [k.id async for k in clients.aca.iter_mobile_keys(user.id)]
    assert set(keys) == {k.id for k in world.mobile_keys.values() if k.user_id == user.id}


async def test_cloud_reads_match_the_world(
    clients: Clients, sandbox: InProcessSandbox, clock: ManualClock
) -> None:
    world = sandbox.world
    project_id = project_with_doors(sandbox)
    info = await clients.cloud.get_project_info(project_id)
    assert info.can_pay

    doors = [d async for d in clients.cloud.iter_doors(project_id)]
    assert {d.door_id for d in doors} == {
        d.door_id for d in world.doors.values() if d.project_id == project_id
    }
    assert await clients.cloud.get_door_detail(project_id, doors[0].door_id) == doors[0]

    since = clock.now() - timedelta(days=30)
    logs = [row async for row in clients.cloud.iter_door_logs(project_id, since)]
    assert len(logs) == world.door_logs.count(project_id, int(since.timestamp()))
    assert [row.log_id for row in logs] == sorted(row.log_id for row in logs)

    groups = [g async for g in clients.cloud.iter_access_groups(project_id)]
    user_groups = [g async for g in clients.cloud.iter_user_groups(project_id)]
    holidays = [h async for h in clients.cloud.iter_holidays(project_id)]
    assert len(groups) == sum(
        g.project_id == project_id for g in world.cloud_access_groups.values()
    )
    assert len(user_groups) == sum(g.project_id == project_id for g in world.user_groups.values())
    assert len(holidays) == sum(h.project_id == project_id for h in world.holidays.values())

    person = next(p for p in world.personnel.values() if p.project_id == project_id)
    detail = await clients.cloud.get_personnel_detail(project_id, person.personnel_id)
    assert detail.personnel_id == person.personnel_id
    found = [p async for p in clients.cloud.find_personnel(project_id, email=person.email)]
    assert person.personnel_id in {p.personnel_id for p in found}


async def test_clp_reads_match_the_world(
    clients: Clients, sandbox: InProcessSandbox, clock: ManualClock
) -> None:
    world = sandbox.world
    sites = [s async for s in clients.clp.iter_sites()]
    assert {s.id for s in sites} == set(world.sites)
    site_id = next(iter(world.sites))

    locks = [item async for item in clients.clp.iter_locks(site_id)]
    assert {item.id for item in locks} == {
        item.id for item in world.locks.values() if item.site_id == site_id
    }
    lock = await clients.clp.get_lock(site_id, locks[0].id)
    iq = await clients.clp.get_iq(site_id, lock.iq.id)
    assert lock.id in iq.lock_ids

    site_users = [u async for u in clients.clp.iter_site_users(site_id)]
    assert {u.id for u in site_users} == {
        u.id for u in world.site_users.values() if u.site_id == site_id
    }
    keys = [k.id async for k in clients.clp.iter_keys(site_id, site_users[0].id)]
    assert set(keys) == {k.id for k in world.keys.values() if k.site_user_id == site_users[0].id}

    groups = [g async for g in clients.clp.iter_access_groups(site_id)]
    group = next(g for g in groups if world.clp_access_groups[g.id].user_ids)
    members = [m.user_id async for m in clients.clp.iter_access_group_users(site_id, group.id)]
    assert set(members) == world.clp_access_groups[group.id].user_ids

    since = clock.now() - timedelta(days=7)
    entries = [e async for e in clients.clp.iter_entries(site_id, since)]
    assert {e.id for e in entries} == {
        e.id
        for e in world.entries.get(site_id, [])
        if e.utc_date_time >= since.replace(microsecond=0)
    }
    incidents = [i async for i in clients.clp.iter_incidents(site_id, since)]
    assert len(incidents) == sum(
        i.utc_date_time >= since.replace(microsecond=0) for i in world.incidents.get(site_id, [])
    )

    member = members[0]
    access = await clients.clp.larry_access(site_id, member, group.lock_ids[0])
    assert (access.user_id, access.lock_id) == (member, group.lock_ids[0])


async def test_the_events_feed_reads_to_the_end_and_resumes(
    clients: Clients, sandbox: InProcessSandbox
) -> None:
    feed = clients.aca.event_pages(None, limit=7)
    ids = [event.id async for page in feed for event in page.events]
    assert set(ids) == {e.id for e in sandbox.world.aca_feed}
    assert feed.cursor is not None
    again = clients.aca.event_pages(feed.cursor)
    assert [page async for page in again] == []
    assert again.cursor is not None


# --------------------------------------------------------------------------- faults


async def test_gateway_errors_and_drops_are_retried(
    clients: Clients, sandbox: InProcessSandbox
) -> None:
    project_id = project_with_doors(sandbox)
    door_id = next(d.door_id for d in sandbox.world.doors.values() if d.project_id == project_id)
    sandbox.faults.add("503", system="cloud", endpoint="get_door_detail", count=2)
    sandbox.faults.add("drop", system="aca", endpoint="centers")
    sandbox.faults.add("500", system="clp", endpoint="sites")
    sandbox.faults.add("429", system="clp", endpoint="sites", retry_after=3)

    assert (await clients.cloud.get_door_detail(project_id, door_id)).door_id == door_id
    assert [c async for c in clients.aca.iter_centers()]
    assert [s async for s in clients.clp.iter_sites()]
    assert sandbox.faults.rules() == []


async def test_expired_tokens_are_refreshed(
    clients: Clients, sandbox: InProcessSandbox, clock: ManualClock
) -> None:
    project_id = project_with_doors(sandbox)
    await clients.cloud.get_project_info(project_id)
    sites = [s async for s in clients.clp.iter_sites()]
    sandbox.faults.expire_tokens("cloud")
    sandbox.faults.expire_tokens("clp")
    assert (await clients.cloud.get_project_info(project_id)).project_id == project_id
    assert [s async for s in clients.clp.iter_sites()] == sites
    # and tokens that simply ran out by the clock
    clock.advance(timedelta(hours=2))
    assert (await clients.cloud.get_project_info(project_id)).project_id == project_id
    assert [s async for s in clients.clp.iter_sites()] == sites


async def test_an_empty_page_with_a_token_does_not_end_the_entries(
    clients: Clients, sandbox: InProcessSandbox, clock: ManualClock
) -> None:
    site_id = max(sandbox.world.entries, key=lambda s: len(sandbox.world.entries[s]))
    since = clock.now() - timedelta(days=30)
    expected = [e.id async for e in clients.clp.iter_entries(site_id, since)]
    assert expected
    sandbox.faults.add("empty_page", system="clp", endpoint="entries", count=2)
    assert [e.id async for e in clients.clp.iter_entries(site_id, since)] == expected
    assert sandbox.faults.rules() == []


async def test_an_early_empty_events_page_is_resumed_from_its_cursor(
    clients: Clients, sandbox: InProcessSandbox
) -> None:
    everything = {e.id for e in sandbox.world.aca_feed}
    first = clients.aca.event_pages(None, limit=5)
    seen = [event.id async for page in first for event in page.events]
    sandbox.faults.add("empty_page", system="aca", endpoint="events")
    cut = clients.aca.event_pages(None, limit=5)
    partial = [event.id async for page in cut for event in page.events]
    resumed = clients.aca.event_pages(cut.cursor, limit=5)
    rest = [event.id async for page in resumed for event in page.events]
    assert set(seen) == everything
    assert set(partial) | set(rest) == everything


async def test_business_errors_and_bad_credentials(
    clients: Clients, sandbox: InProcessSandbox, clock: ManualClock
) -> None:
    project_id = project_with_doors(sandbox)
    sandbox.faults.add(
        "cloud_business_error", system="cloud", endpoint="get_project_info", code="conflict"
    )
    with pytest.raises(PermanentError) as caught:
        await clients.cloud.get_project_info(project_id)
    assert (caught.value.system, caught.value.endpoint, caught.value.code) == (
        "cloud",
        "get_project_info",
        "conflict",
    )
    with pytest.raises(PermanentError) as missing:
        await clients.cloud.get_door_detail(project_id, "no-such-door")
    assert missing.value.code == "not_found"
    with pytest.raises(PermanentError) as gone:
        await clients.clp.get_lock(next(iter(sandbox.world.sites)), "no-such-lock")
    assert (gone.value.status, gone.value.code) == (404, "2202")

    cloud, aca, clp = settings(sandbox, cloud_secret="wrong-secret")
    async with build_clients(
        cloud, aca, clp, clock=clock, transport=SandboxTransport(sandbox.app)
    ) as wrong:
        with pytest.raises(AuthError) as refused:
            await wrong.cloud.get_project_info(project_id)
    assert (refused.value.system, refused.value.endpoint) == ("cloud", "token")


# --------------------------------------------------------------------------- writes


async def test_a_renewal_dropped_after_it_landed_is_not_sent_again(
    clients: Clients, sandbox: InProcessSandbox
) -> None:
    project_id = project_with_doors(sandbox)
    door_id = next(d.door_id for d in sandbox.world.doors.values() if d.project_id == project_id)
    before = await clients.cloud.get_door_detail(project_id, door_id)
    sandbox.faults.add("drop", system="cloud", endpoint="renew_door_license", after=True)

    door = await clients.cloud.renew_door_license(project_id, door_id, 1, before=before)

    assert door.license.status == "active"
    assert renewals(sandbox) == ["ok"]


async def test_a_renewal_dropped_before_it_landed_is_sent_once_more(
    clients: Clients, sandbox: InProcessSandbox
) -> None:
    project_id = project_with_doors(sandbox)
    door_id = next(d.door_id for d in sandbox.world.doors.values() if d.project_id == project_id)
    sandbox.faults.add("drop", system="cloud", endpoint="renew_door_license")

    door = await clients.cloud.renew_door_license(project_id, door_id, 1)

    assert door.license.status == "active"
    assert renewals(sandbox) == ["ok"]


async def test_cloud_writes(
    clients: Clients, sandbox: InProcessSandbox, clock: ManualClock
) -> None:
    world = sandbox.world
    project_id = project_with_doors(sandbox)
    person = next(
        p for p in world.personnel.values() if p.project_id == project_id and not p.user_group_ids
    )
    updated = await clients.cloud.add_personnel_credential(
        project_id, person.personnel_id, "card", "9900112233"
    )
    assert updated.has_credential("card", "9900112233")

    group = next(g for g in world.cloud_access_groups.values() if g.project_id == project_id)
    joined = await clients.cloud.add_access_group_member(
        project_id, group.access_group_id, person.personnel_id
    )
    again = await clients.cloud.add_access_group_member(
        project_id, group.access_group_id, person.personnel_id
    )
    assert joined == again

    holiday = next((h for h in world.holidays.values() if h.project_id == project_id), None)
    if holiday is not None:
        result = await clients.cloud.set_holiday_working_hours(
            project_id, holiday.holiday_id, enabled=True, start_time=time(9), end_time=time(17)
        )
        assert (result.working_hours_enabled, result.working_hours.start_time) == (True, time(9))

    guest = next((v for v in world.visitors.values() if v.project_id == project_id), None)
    if guest is not None:
        door_ids = [next(d for d in world.doors.values() if d.project_id == project_id).door_id]
        start = clock.now()
        sandbox.faults.add("drop", system="cloud", endpoint="create_visitor_temp_key", after=True)
        key = await clients.cloud.create_visitor_temp_key(
            project_id, guest.visitor_id, door_ids, start, start + timedelta(hours=3)
        )
        assert key.finish_time - key.start_time == 3 * 3600
        created = [
            row
            for row in sandbox.state.mutations.since(0)
            if row.operation == "create_visitor_temp_key"
        ]
        assert len(created) == 1


async def test_access_matrix_toggle(clients: Clients, sandbox: InProcessSandbox) -> None:
    world = sandbox.world
    user_id, lock_id = next(
        (user.id, access.lock_id)
        for user in world.users.values()
        for access in world.aca_accesses(user.id)
        if access.state == "active"
    )
    off = await clients.aca.set_access_matrix(user_id, lock_id, enabled=False)
    on = await clients.aca.set_access_matrix(user_id, lock_id, enabled=True)
    assert (off.enabled, on.enabled, on.clp_sync) == (False, True, "queued")
    with pytest.raises(PermanentError) as caught:
        await clients.aca.set_access_matrix("no-such-user", lock_id, enabled=True)
    assert (caught.value.system, caught.value.status) == ("aca", 404)


async def test_sync_access_adopts_the_running_job_and_waits_out_2203(
    clients: Clients, sandbox: InProcessSandbox, clock: ManualClock
) -> None:
    iq = next(i for i in sandbox.world.iqs.values() if i.online)
    # past the minute CLP blocks a sync after an access change; then two injected 2203s,
    # which the layer retries (CLP did not act on them)
    clock.advance(timedelta(minutes=2))
    sandbox.faults.add("clp_2203", system="clp", endpoint="sync_access", count=2)

    started = await clients.clp.sync_access(iq.site_id, iq.collection_id)
    adopted = await clients.clp.sync_access(iq.site_id, iq.collection_id)

    assert not started.adopted
    assert (adopted.job_id, adopted.adopted) == (started.job_id, True)
    job = await clients.clp.get_sync_job(iq.site_id, started.job_id)
    assert job.collection_id == iq.collection_id
    clock.advance(timedelta(hours=1))
    done = await clients.clp.get_sync_job(iq.site_id, started.job_id)
    assert done.state in ("succeeded", "failed")
    assert done.finished_utc is not None


async def test_nothing_the_sandbox_serves_breaks_the_contract(
    clients: Clients, sandbox: InProcessSandbox, clock: ManualClock
) -> None:
    skipped: list[ContractError] = []
    since = clock.now() - timedelta(days=30)
    for project_id in sandbox.world.projects:
        async for _log in clients.cloud.iter_door_logs(project_id, since, on_skip=skipped.append):
            pass
    for site_id in sandbox.world.sites:
        async for _entry in clients.clp.iter_entries(site_id, since, on_skip=skipped.append):
            pass
        async for _lock in clients.clp.iter_locks(site_id, on_skip=skipped.append):
            pass
    async for _page in clients.aca.event_pages(None, on_skip=skipped.append):
        pass
    assert skipped == []
