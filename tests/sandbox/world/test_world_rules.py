"""The world's rules: ACA -> CLP -> IQ timing, Sync Access, event delivery, doors, door logs.

Each test builds a small world with the scenario builder, so the numbers are easy to follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from world_helpers import entries_of, feed, last_log

from doorfix.clock import ManualClock
from doorfix.sandbox.world.builder import Builder, Person
from doorfix.sandbox.world.model import IQ, Door, Lock, TimeSchedule, Visitor, WorldError
from doorfix.sandbox.world.world import World


@dataclass
class Small:
    """One center: IQ ``a`` (rev 2, two locks), IQ ``b`` (rev 1, one lock), two doors."""

    world: World
    clock: ManualClock
    a: IQ
    b: IQ
    lock1: Lock
    lock2: Lock
    lock3: Lock
    door: Door
    old_door: Door
    ann: Person
    bob: Person
    site_id: str
    project_id: str


@pytest.fixture
def small(clock: ManualClock) -> Small:
    """A freshly built small world, healthy."""
    w = World(clock, seed=7, scenario="small")
    b = Builder(w)
    center = b.center("Small", "Europe/Amsterdam")
    a, rev1 = b.iq(center), b.iq(center, revision=1)
    lock1, lock2 = b.lock(a, "101"), b.lock(a, "102", "escutcheon")
    lock3 = b.lock(rev1, "103")
    door = b.door(center, "Front", "A08")
    old_door = b.door(center, "Back", "EC33", "33.30.1.100")
    inv = b.inventory(center, "101", "office", [lock1, lock2, lock3], [door, old_door])
    company = b.company(center, "Acme")
    b.booking(company, inv)
    ann, bob = b.person(company, "Ann Vos"), b.person(company, "Bob Kok")
    b.finish()
    return Small(
        w,
        clock,
        a,
        rev1,
        lock1,
        lock2,
        lock3,
        door,
        old_door,
        ann,
        bob,
        center.clp_site_id,
        center.cloud_project_id or "",
    )


def larry(s: Small, p: Person, lock: Lock) -> str:
    """Larry access status of a person at a lock."""
    return s.world.larry_access(s.site_id, p.user.clp_user_id, lock.id).status


# --------------------------------------------------------------------------- ACA -> CLP -> IQ


def test_matrix_change_reaches_clp_after_the_push_delay(small: Small) -> None:
    """Disabling shows in ACA at once and in CLP ``push_delay_s`` later; the IQ 30 s after."""
    w, ann = small.world, small.ann
    cell = w.set_access_matrix(ann.user.id, small.lock1.id, False)
    assert not cell.enabled
    (row,) = [a for a in w.aca_accesses(ann.user.id) if a.lock_id == small.lock1.id]
    assert (row.state, row.disabled_by) == ("disabled", "access_matrix")
    assert larry(small, ann, small.lock1) == "granted"
    small.clock.advance(w.settings.push_delay_s)
    assert larry(small, ann, small.lock1) == "denied"
    assert w.present_at_lock(ann.user.id, small.lock1.id, "tag").granted
    small.clock.advance(w.settings.propagation_delay_s)
    assert not w.present_at_lock(ann.user.id, small.lock1.id, "tag").granted


def test_matrix_put_is_idempotent(small: Small) -> None:
    """Enabling an enabled cell pushes nothing; so a lone enable is no force-sync."""
    w = small.world
    w.set_access_matrix(small.ann.user.id, small.lock1.id, True)
    assert not [name for _, name in w.pending_effects() if name.startswith("aca_push")]
    w.set_access_matrix(small.ann.user.id, small.lock1.id, False)
    w.set_access_matrix(small.ann.user.id, small.lock1.id, False)
    assert len([n for _, n in w.pending_effects() if n.startswith("aca_push")]) == 1


def test_matrix_refusals(small: Small, clock: ManualClock) -> None:
    """``not_found`` for unknown ids; ``no_booking`` when enabling a lock no booking gives."""
    w = small.world
    with pytest.raises(WorldError) as missing:
        w.set_access_matrix("u-404", small.lock1.id, True)
    assert missing.value.code == "not_found"
    for booking in w.bookings.values():
        booking.status = "ended"
    with pytest.raises(WorldError) as refused:
        w.set_access_matrix(small.ann.user.id, small.lock1.id, True)
    assert refused.value.code == "no_booking"
    assert {a.disabled_by for a in w.aca_accesses(small.ann.user.id)} == {"booking_ended"}
    with pytest.raises(WorldError) as unknown:
        w.aca_accesses("u-404")
    assert unknown.value.code == "not_found"


def test_propagation_reaches_only_online_iqs(small: Small) -> None:
    """A change CLP propagates while the IQ is offline is lost; reconnecting does not bring it;
    Sync Access does."""
    w, ann, lock = small.world, small.ann, small.lock1
    w.set_access_matrix(ann.user.id, lock.id, False)
    small.clock.advance(60)
    w.set_iq_online(small.a.id, False)
    w.set_access_matrix(ann.user.id, lock.id, True)
    small.clock.advance(w.settings.clp_change_block_seconds + 10)
    assert larry(small, ann, lock) == "granted"
    w.set_iq_online(small.a.id, True)
    assert not w.present_at_lock(ann.user.id, lock.id, "tag").granted
    job = w.start_sync_access(small.site_id, small.a.collection_id)
    small.clock.advance(w.settings.sync_duration_s)
    w.advance()
    assert job.state == "succeeded"
    assert w.present_at_lock(ann.user.id, lock.id, "tag").granted


def test_sync_job_states(small: Small) -> None:
    """queued -> running (1 s) -> succeeded (after ``sync_duration_s``), with finish time."""
    w, clock = small.world, small.clock
    job = w.start_sync_access(small.site_id, small.a.collection_id)
    assert (job.state, job.finished_utc) == ("queued", None)
    clock.advance(1)
    w.advance()
    assert job.state == "running"
    with pytest.raises(WorldError) as running:
        w.start_sync_access(small.site_id, small.a.collection_id)
    assert (running.value.code, running.value.job_id) == ("sync_running", job.job_id)
    clock.advance(w.settings.sync_duration_s)
    w.advance()
    assert job.state == "succeeded"
    assert job.finished_utc == job.created_utc + timedelta(seconds=w.settings.sync_duration_s)
    assert w.start_sync_access(small.site_id, small.a.collection_id).job_id != job.job_id


def test_sync_fails_with_an_offline_iq(small: Small) -> None:
    """Sync Access on a collection with an offline IQ ends ``failed``/``iq_offline``."""
    w = small.world
    w.set_iq_online(small.b.id, False)
    job = w.start_sync_access(small.site_id, small.b.collection_id)
    small.clock.advance(w.settings.sync_duration_s)
    w.advance()
    assert (job.state, job.error) == ("failed", "iq_offline")
    with pytest.raises(WorldError) as missing:
        w.start_sync_access(small.site_id, "col-404")
    assert missing.value.code == "not_found"


def test_sync_is_blocked_for_a_minute_after_a_change(small: Small) -> None:
    """CLP answers ``operation_blocked`` while the collection's access changed < 60 s ago."""
    w, clock = small.world, small.clock
    w.set_access_matrix(small.ann.user.id, small.lock1.id, False)
    clock.advance(w.settings.push_delay_s)
    with pytest.raises(WorldError) as blocked:
        w.start_sync_access(small.site_id, small.a.collection_id)
    assert blocked.value.code == "operation_blocked"
    # another collection is not affected
    w.start_sync_access(small.site_id, small.b.collection_id)
    clock.advance(w.settings.clp_change_block_seconds)
    assert w.start_sync_access(small.site_id, small.a.collection_id).state == "queued"


def test_collection_locks(small: Small) -> None:
    """The locks of a collection; an unknown collection is ``not_found``."""
    w = small.world
    assert w.collection_locks(small.site_id, small.a.collection_id) == [
        small.lock1.id,
        small.lock2.id,
    ]
    with pytest.raises(WorldError):
        w.collection_locks(small.site_id, "col-404")


def test_larry_access_reasons(small: Small) -> None:
    """Granted; no schedule now; suspended; blocked; no group; unknown lock."""
    w, ann = small.world, small.ann
    (group,) = [g for g in w.clp_access_groups.values() if small.lock1.id in g.lock_ids]
    assert w.larry_access(small.site_id, ann.user.clp_user_id, small.lock1.id).access_group_ids == [
        group.id
    ]
    group.time_schedules = [TimeSchedule(start_time="00:00:00", end_time="00:00:01")]
    assert w.larry_access(small.site_id, ann.user.clp_user_id, small.lock1.id).reason == (
        "no_time_schedule"
    )
    ann.site_user.subscription_state = "suspended"
    assert w.larry_access(small.site_id, ann.user.clp_user_id, small.lock1.id).reason == (
        "suspended"
    )
    ann.site_user.subscription_state = "subscribed"
    ann.site_user.blocked = True
    assert w.larry_access(small.site_id, ann.user.clp_user_id, small.lock1.id).reason == "blocked"
    assert w.larry_access(small.site_id, "nobody", small.lock1.id).reason == "no_access_group"
    with pytest.raises(WorldError):
        w.larry_access(small.site_id, ann.user.clp_user_id, "l-404")


# --------------------------------------------------------------------------- events


def test_events_now_carry_the_presentation(small: Small) -> None:
    """A connected lock: ACA event and CLP entry at once; ``last_event_utc`` follows."""
    w, ann = small.world, small.ann
    decision = w.present_at_lock(ann.user.id, small.lock1.id, "mkey")
    assert (decision.granted, decision.event_recorded) == (True, "now")
    event = feed(w)[-1]
    assert (event.type, event.credential) == ("mkey_granted", w.mobile_keys[event.credential].id)
    assert event.occurred_at == event.recorded_at == small.clock.now()
    (entry,) = entries_of(w, small.site_id, small.lock1.id)
    assert (entry.event_category, entry.access_by, entry.user_id) == (
        "lock_opened",
        "mkey",
        ann.user.clp_user_id,
    )
    assert small.lock1.last_event_utc == small.clock.now()


def test_iq_offline_events_arrive_late_in_time_order(small: Small) -> None:
    """Offline IQ: events held; on reconnect recorded then, entries slotted at their time."""
    w, clock, ann, bob = small.world, small.clock, small.ann, small.bob
    w.set_iq_online(small.a.id, False)
    held = w.present_at_lock(ann.user.id, small.lock1.id, "tag")
    assert held.event_recorded == "late"
    occurred = clock.now()
    clock.advance(timedelta(minutes=5))
    # an event on the other IQ, recorded in between
    w.present_at_lock(bob.user.id, small.lock3.id, "tag")
    clock.advance(timedelta(hours=3))
    assert held.event_id not in {e.id for e in feed(w)}
    w.set_iq_online(small.a.id, True)
    late = feed(w)[-1]
    assert (late.id, late.occurred_at, late.recorded_at) == (held.event_id, occurred, clock.now())
    entries = w.entries[small.site_id]
    assert [e.id for e in entries] == [held.entry_id, entries[1].id]
    assert [i.type for i in w.incidents[small.site_id]] == [
        "iq_connection_lost",
        "iq_connection_restored",
    ]


def test_half_connected_events_are_never_recorded(small: Small) -> None:
    """attached_pending on a revision-1 IQ: the lock decides, nothing ever arrives."""
    w = small.world
    small.lock3.iq_link_state = "attached_pending"
    decision = w.present_at_lock(small.ann.user.id, small.lock3.id, "tag")
    assert (decision.granted, decision.event_recorded) == (True, "never")
    w.set_iq_online(small.b.id, False)
    w.set_iq_online(small.b.id, True)
    assert feed(w) == []
    assert small.lock3.last_event_utc is None


def test_lock_offline_holds_events_until_it_reconnects(small: Small) -> None:
    """A lock that lost its IQ link holds its events; restoring the link delivers them."""
    w = small.world
    w.set_lock_online(small.lock1.id, False)
    assert w.present_at_lock(small.ann.user.id, small.lock1.id, "tag").event_recorded == "late"
    assert w.buffered_events(small.lock1.id) == 1
    small.clock.advance(60)
    w.set_lock_online(small.lock1.id, True)
    assert w.buffered_events(small.lock1.id) == 0
    assert len(feed(w)) == 1
    assert [i.type for i in w.incidents[small.site_id]] == [
        "lock_connection_lost",
        "lock_connection_restored",
    ]


def test_maintenance_card_sets_the_lock_time(small: Small) -> None:
    """Runbook a1.2: a ``lock_time_set`` incident for the lock."""
    assert small.world.present_maintenance_card(small.lock2.id) == "now"
    (incident,) = small.world.incidents[small.site_id]
    assert (incident.type, incident.lock_id) == ("lock_time_set", small.lock2.id)


def test_lock_checks_the_tag_and_privacy(small: Small) -> None:
    """A lost tag is refused and blocked; privacy mode refuses before any event."""
    w, ann = small.world, small.ann
    ann.user.tags[0].state = "lost"
    lost = w.present_at_lock(ann.user.id, small.lock1.id, "tag")
    assert (lost.granted, lost.reason) == (False, "tag_lost")
    assert entries_of(w, small.site_id, small.lock1.id)[-1].event_detail == "blocked"
    small.lock2.privacy_mode = True
    private = w.present_at_lock(small.bob.user.id, small.lock2.id, "tag")
    assert (private.granted, private.reason, private.event_recorded) == (
        False,
        "privacy_mode",
        "never",
    )


# --------------------------------------------------------------------------- doors


def test_door_rules_and_log_row(small: Small) -> None:
    """A granted card, then the refusals the device texts name, each written to the log."""
    w, ann = small.world, small.ann
    card = ann.user.tags[0].number
    granted = w.present_at_door(small.door.door_id, "card", card)
    assert (granted.granted, granted.detail) == (True, "")
    row = last_log(w, small.project_id)
    assert (row.log_id, row.result, row.personnel_id, row.initiator) == (
        granted.log_id,
        "success",
        ann.personnel.personnel_id if ann.personnel else None,
        "Ann Vos",
    )
    assert w.present_at_door(small.door.door_id, "pin", "1234").detail == "Invalid PIN"
    assert last_log(w, small.project_id).credential_value == "****"
    assert w.present_at_door(small.door.door_id, "temp_key", "999").detail == "Invalid QR Code"
    small.door.license.status = "expired"
    assert w.present_at_door(small.door.door_id, "card", card).detail == (
        "Door license expired or not activated"
    )
    with pytest.raises(WorldError):
        w.present_at_door("d-404", "card", card)
    with pytest.raises(WorldError):
        w.present_at_door(small.door.door_id, "retina", card)


def test_old_firmware_writes_no_detail(small: Small) -> None:
    """Firmware older than the seed's table: the failure row has an empty Detail."""
    decision = small.world.present_at_door(small.old_door.door_id, "card", "DEADBEEF")
    assert (decision.granted, decision.detail, decision.cause) == (
        False,
        "",
        "cloud.credential_unassigned",
    )
    assert last_log(small.world, small.project_id).detail == ""


def test_ambiguous_model_text(small: Small) -> None:
    """An R29 writes one text for a missing license and a missing group."""
    w, ann = small.world, small.ann
    small.door.device.model, small.door.device.firmware = "R29", "29.30.10.712"
    small.door.license.status = "inactivated"
    text = "No access permission or door license is not available"
    decision = w.present_at_door(small.door.door_id, "card", ann.user.tags[0].number)
    assert (decision.detail, decision.cause) == (text, "cloud.license_inactive")


def test_renewals_are_counted_and_billed_each_time(small: Small) -> None:
    """Each renewal extends again and counts; the refusals carry the cloud's codes."""
    w, door = small.world, small.door
    expires = door.license.expires_at
    assert expires is not None
    w.renew_door_license(small.project_id, door.door_id, 1)
    w.renew_door_license(small.project_id, door.door_id, 1)
    assert w.renewals[door.door_id] == 2
    assert door.license.expires_at == expires + timedelta(days=2 * w.settings.license_month_days)
    for months in (0, 13):
        with pytest.raises(WorldError) as bad:
            w.renew_door_license(small.project_id, door.door_id, months)
        assert bad.value.code == "invalid_param"
    w.projects[small.project_id].funds = False
    with pytest.raises(WorldError) as broke:
        w.renew_door_license(small.project_id, door.door_id, 1)
    assert broke.value.code == "payment_required"
    assert w.renewals[door.door_id] == 2


def test_license_expires_on_its_date(small: Small) -> None:
    """An active license turns ``expired`` when ``expires_at`` passes."""
    w, door = small.world, small.door
    assert door.license.expires_at is not None
    small.clock.set(door.license.expires_at)
    w.advance()
    assert door.license.status == "expired"


def test_cloud_write_refusals(small: Small) -> None:
    """conflict on someone else's card; twice a member is a no-op; bad holiday hours."""
    w, ann, bob = small.world, small.ann, small.bob
    assert ann.personnel is not None
    assert bob.personnel is not None
    with pytest.raises(WorldError) as taken:
        w.add_personnel_credential(
            small.project_id, bob.personnel.personnel_id, "card", ann.user.tags[0].number
        )
    assert taken.value.code == "conflict"
    group_id = ann.personnel.access_group_ids[0]
    w.add_access_group_member(small.project_id, group_id, ann.personnel.personnel_id)
    w.add_access_group_member(small.project_id, group_id, ann.personnel.personnel_id)
    assert ann.personnel.access_group_ids.count(group_id) == 1
    with pytest.raises(WorldError) as missing:
        w.set_holiday_working_hours(small.project_id, "hol-404", True, "08:00", "18:00")
    assert missing.value.code == "not_found"


def test_visitor_temp_key(small: Small) -> None:
    """A temp key opens its doors inside its validity only."""
    w, clock = small.world, small.clock
    visitor = Visitor("vtr-1", small.project_id, "Tess", "t@example.com", "", None)
    w.visitors[visitor.visitor_id] = visitor
    key = w.create_visitor_temp_key(
        small.project_id,
        visitor.visitor_id,
        [small.door.door_id],
        clock.now(),
        clock.now() + timedelta(hours=1),
    )
    assert w.present_at_door(small.door.door_id, "temp_key", key.code).granted
    assert w.present_at_door(small.old_door.door_id, "temp_key", key.code).detail == ""
    clock.advance(timedelta(hours=2))
    assert w.present_at_door(small.door.door_id, "temp_key", key.code).detail == (
        "Not within the valid period"
    )
    with pytest.raises(WorldError) as bad:
        w.create_visitor_temp_key(
            small.project_id, visitor.visitor_id, [], clock.now(), clock.now()
        )
    assert bad.value.code == "invalid_param"


# --------------------------------------------------------------------------- door logs


def test_door_log_pages(small: Small) -> None:
    """Totals from ``start_time`` (bisection), 1-based pages, ascending log ids."""
    w, clock, card = small.world, small.clock, small.ann.user.tags[0].number
    for _ in range(7):
        w.present_at_door(small.door.door_id, "card", card)
        clock.advance(60)
    first = int((clock.now() - timedelta(minutes=7)).timestamp())
    total, page = w.door_log_page(small.project_id, first, 1, 3)
    assert total == 7
    assert [r.log_id for r in page] == [1, 2, 3]
    total, page = w.door_log_page(small.project_id, first + 180, 2, 3)
    assert (total, [r.log_id for r in page]) == (4, [7])
    assert w.door_log_page(small.project_id, first, 9, 3) == (7, [])
    with pytest.raises(WorldError) as bad:
        w.door_log_page(small.project_id, first, 1, 501)
    assert bad.value.code == "invalid_param"
    with pytest.raises(WorldError) as missing:
        w.door_log_page("p-404", first, 1, 10)
    assert missing.value.code == "not_found"


# --------------------------------------------------------------------------- faults API


def test_inject_refuses_bad_requests(small: Small) -> None:
    """Unknown kinds, unknown or ill-typed parameters, impossible subjects: ``invalid``."""
    w, ann = small.world, small.ann
    with pytest.raises(WorldError) as kind:
        w.inject("aca.nonsense")
    assert kind.value.code == "invalid"
    with pytest.raises(WorldError) as extra:
        w.inject("aca.privacy_mode", lock_id=small.lock2.id, colour="red")
    assert extra.value.code == "invalid"
    with pytest.raises(WorldError) as typed:
        w.inject("aca.clp_out_of_sync", user_id=ann.user.id, lock_id=small.lock1.id, sticky="yes")
    assert typed.value.code == "invalid"
    with pytest.raises(WorldError) as cylinder:
        w.inject("aca.privacy_mode", lock_id=small.lock1.id)
    assert cylinder.value.code == "invalid"
    with pytest.raises(WorldError) as rev2:
        w.inject("aca.lock_offline", lock_id=small.lock1.id, variant="half_connected")
    assert rev2.value.code == "invalid"
    assert w.faults() == []


def test_online_iqs_keep_a_fresh_heartbeat(small: Small) -> None:
    """Online IQs report every minute; an offline one keeps the time it was last heard."""
    w, clock = small.world, small.clock
    w.set_iq_online(small.b.id, False)
    lost_at = clock.now()
    clock.advance(timedelta(hours=5, seconds=30))
    w.advance()
    assert clock.now() - small.a.last_heartbeat_utc < timedelta(seconds=60)
    assert small.b.last_heartbeat_utc <= lost_at
