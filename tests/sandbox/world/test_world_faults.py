"""Every world fault shows the runbook's symptom, and only the runbook's remedy clears it.

Each row injects nothing new: the demo holds one instance of every kind. A test presents the
credential the way the seed describes (a tag at a lock, a card at a door), reads what ACA,
CLP and the door log recorded, applies the remedy through the world's write methods, steps
the manual clock, and checks that the symptom is gone and ``faults()`` says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from world_helpers import entries_of, events_of, fault, feed, last_log

from doorfix.clock import ManualClock
from doorfix.sandbox.world.model import WorldError
from doorfix.sandbox.world.world import World

Subject = dict[str, str]
Remedy = Callable[[World, ManualClock, Subject], None]


# --------------------------------------------------------------------------- remedies


def toggle_matrix(world: World, clock: ManualClock, s: Subject) -> None:
    """Runbook c1: disable, enable, then wait for the push and the propagation."""
    world.set_access_matrix(s["user_id"], s["lock_id"], False)
    world.set_access_matrix(s["user_id"], s["lock_id"], True)
    clock.advance(world.settings.push_delay_s + world.settings.propagation_delay_s + 1)


def sync_access(world: World, clock: ManualClock, s: Subject) -> None:
    """Runbook c2: Sync Access on the lock's collection, then wait for the job."""
    job = world.start_sync_access(s["site_id"], s["collection_id"])
    clock.advance(world.settings.sync_duration_s + 1)
    world.advance()  # what every view does before it reads
    assert world.sync_jobs[job.job_id].state in ("succeeded", "failed")


def power_cycle(world: World, clock: ManualClock, s: Subject) -> None:
    """Runbook a1.1, done by a person through the control API."""
    world.power_cycle_iq(s["iq_id"])


def repair_privacy(world: World, clock: ManualClock, s: Subject) -> None:
    """Runbook a2, done on site: the privacy connector repaired."""
    world.set_privacy_mode(s["lock_id"], False)


def reinstall(world: World, clock: ManualClock, s: Subject) -> None:
    """Runbook D: the user reinstalls the app."""
    world.reinstall_app(s["user_id"])


def renew(world: World, clock: ManualClock, s: Subject) -> None:
    """Activate or renew the door license."""
    world.renew_door_license(s["project_id"], s["door_id"], 12)


def assign_card(world: World, clock: ManualClock, s: Subject) -> None:
    """Assign the ACA-assigned card to the person."""
    world.add_personnel_credential(
        s["project_id"], s["personnel_id"], "card", s["credential_value"]
    )


def add_to_door_group(world: World, clock: ManualClock, s: Subject) -> None:
    """Add the person to an existing group that opens the door."""
    (group,) = [g for g in world.cloud_access_groups.values() if s["door_id"] in g.door_ids]
    world.add_access_group_member(s["project_id"], group.access_group_id, s["personnel_id"])


def new_temp_key(world: World, clock: ManualClock, s: Subject) -> None:
    """A new visitor credential, inside the visit ACA still shows."""
    visit = world.visits[s["visit_id"]]
    world.create_visitor_temp_key(
        s["project_id"], s["visitor_id"], [s["door_id"]], clock.now(), visit.ends_at
    )


def holiday_hours(world: World, clock: ManualClock, s: Subject) -> None:
    """Enable the holiday's working hours (all day, so the test holds at any hour)."""
    world.set_holiday_working_hours(s["project_id"], s["holiday_id"], True, "00:00", "23:59")


# --------------------------------------------------------------------------- locks


@dataclass(frozen=True)
class LockCase:
    """A lock fault: how the refusal looks, and the remedy that clears it (None: none does)."""

    kind: str
    reason: str
    recorded: str
    entry_detail: str | None
    remedy: Remedy | None


LOCK_CASES = [
    LockCase("aca.clp_out_of_sync", "no_access", "now", "no_access", toggle_matrix),
    LockCase("aca.iq_out_of_sync", "no_access", "now", "no_access", sync_access),
    LockCase("aca.lock_offline", "no_access", "late", None, None),
    LockCase("aca.privacy_mode", "privacy_mode", "never", None, None),
    LockCase("aca.booking_mismatch", "no_access", "now", "no_access", None),
    LockCase("aca.access_disabled", "no_access", "now", "no_access", None),
    LockCase("aca.no_booking", "no_access", "now", "no_access", None),
    LockCase("aca.too_early", "no_access", "now", "no_access", None),
    LockCase("aca.mkey_revoked", "mkey_revoked", "now", "blocked", None),
    LockCase("aca.mkey_corrupted", "mkey_corrupted", "now", "no_access", None),
    LockCase("aca.mkey_generation_failed", "mkey_generation_failed", "now", "no_access", None),
]


@pytest.mark.parametrize("case", LOCK_CASES, ids=lambda c: c.kind)
def test_lock_fault_shows_the_runbook_symptom(demo: World, case: LockCase) -> None:
    """The lock refuses, the event goes where the seed says, and the truth names the cause."""
    s = fault(demo, case.kind).subject
    before = len(events_of(demo, s["user_id"], s["lock_id"]))
    decision = demo.present_at_lock(
        s["user_id"], s["lock_id"], "mkey" if s["via"] == "mkey" else "tag"
    )
    assert not decision.granted
    assert decision.reason == case.reason
    assert decision.event_recorded == case.recorded
    cause_key = "mkey_cause" if s["via"] == "mkey" else "cause"
    assert decision.layers[cause_key] == case.kind
    events = events_of(demo, s["user_id"], s["lock_id"])
    if case.recorded == "now":
        # registered under the user profile (runbook B) and in CLP's entries
        assert len(events) == before + 1
        assert events[-1].type == f"{s['via']}_rejected"
        assert events[-1].id == decision.event_id
        entry = entries_of(demo, s["site_id"], s["lock_id"])[-1]
        assert (entry.event_category, entry.event_detail) == ("lock_rejected", case.entry_detail)
    else:
        # runbook A: nothing registered under the user profile
        assert len(events) == before


def test_clp_out_of_sync_is_aca_active_and_larry_denied(demo: World) -> None:
    """Runbook b2/c1: ACA shows the access active while Larry access denies it."""
    s = fault(demo, "aca.clp_out_of_sync").subject
    (row,) = [a for a in demo.aca_accesses(s["user_id"]) if a.lock_id == s["lock_id"]]
    assert row.state == "active"
    larry = demo.larry_access(s["site_id"], s["clp_user_id"], s["lock_id"])
    assert (larry.status, larry.reason) == ("denied", "no_access_group")


def test_iq_out_of_sync_is_larry_granted_and_lock_refusing(demo: World) -> None:
    """Runbook c2: ACA and Larry grant, the lock still refuses."""
    s = fault(demo, "aca.iq_out_of_sync").subject
    assert demo.larry_access(s["site_id"], s["clp_user_id"], s["lock_id"]).status == "granted"
    assert not demo.present_at_lock(s["user_id"], s["lock_id"], "tag").granted


@pytest.mark.parametrize(
    ("kind", "remedy"),
    [
        ("aca.clp_out_of_sync", toggle_matrix),
        ("aca.iq_out_of_sync", sync_access),
        ("aca.lock_offline", power_cycle),
        ("aca.privacy_mode", repair_privacy),
        ("aca.mkey_revoked", reinstall),
        ("aca.mkey_corrupted", reinstall),
    ],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_lock_fault_cleared_by_its_remedy(
    demo: World, clock: ManualClock, kind: str, remedy: Remedy
) -> None:
    """After the runbook's remedy the fault is gone; the next try shows whether the user gets in."""
    s = fault(demo, kind).subject
    remedy(demo, clock, s)
    assert not fault(demo, kind).present
    if kind == "aca.lock_offline":
        # the hub is back and events flow again; the access the IQ missed still needs c2
        decision = demo.present_at_lock(s["user_id"], s["lock_id"], "tag")
        assert decision.event_recorded == "now"
        assert decision.layers["cause"] == "aca.iq_out_of_sync"
        return
    via = "mkey" if s["via"] == "mkey" else "tag"
    assert demo.present_at_lock(s["user_id"], s["lock_id"], via).granted


def test_people_retrying_show_the_fix(demo: World, clock: ManualClock) -> None:
    """The demo's scheduled presentations turn from rejected to granted once fixed."""
    s = fault(demo, "aca.clp_out_of_sync").subject
    clock.advance(timedelta(minutes=10))
    assert events_of(demo, s["user_id"], s["lock_id"])[-1].type == "tag_rejected"
    toggle_matrix(demo, clock, s)
    clock.advance(timedelta(minutes=10))
    assert events_of(demo, s["user_id"], s["lock_id"])[-1].type == "tag_granted"


@pytest.mark.parametrize(
    "kind",
    [
        "aca.lock_offline",
        "aca.privacy_mode",
        "aca.booking_mismatch",
        "aca.no_booking",
        "aca.too_early",
        "aca.mkey_generation_failed",
    ],
)
def test_lock_fault_survives_the_api_remedies(demo: World, clock: ManualClock, kind: str) -> None:
    """Neither the ACA toggle nor Sync Access (nor a reinstall) clears a fault they cannot fix."""
    s = fault(demo, kind).subject
    if kind in ("aca.booking_mismatch", "aca.no_booking"):
        # no booking gives the lock: ACA refuses to enable it again
        with pytest.raises(WorldError) as refused:
            toggle_matrix(demo, clock, s)
        assert refused.value.code == "no_booking"
    else:
        toggle_matrix(demo, clock, s)
    clock.advance(120)
    sync_access(demo, clock, s)
    reinstall(demo, clock, s)
    assert fault(demo, kind).present
    if kind != "aca.too_early":
        via = "mkey" if s["via"] == "mkey" else "tag"
        assert not demo.present_at_lock(s["user_id"], s["lock_id"], via).granted


def test_sticky_clp_out_of_sync_survives_the_toggle(demo: World, clock: ManualClock) -> None:
    """A broken ACA->CLP link for the user: the toggle's pushes never land."""
    s = demo.notes["normal.tag"]
    record = demo.inject(
        "aca.clp_out_of_sync", user_id=s["user_id"], lock_id=s["lock_id"], sticky=True
    )
    assert record.outcome == "needs_human"
    toggle_matrix(demo, clock, record.subject)
    clock.advance(600)
    status = next(f for f in demo.faults() if f.fault_id == record.fault_id)
    assert status.present
    assert not demo.present_at_lock(s["user_id"], s["lock_id"], "tag").granted


def test_lock_offline_delivers_late_events_with_their_original_time(
    demo: World, clock: ManualClock
) -> None:
    """Events held by an offline IQ reach ACA on reconnect: recorded then, occurred before."""
    s = fault(demo, "aca.lock_offline").subject
    presented_at = clock.now()
    decision = demo.present_at_lock(s["user_id"], s["lock_id"], "tag")
    assert decision.event_recorded == "late"
    assert demo.buffered_events(s["lock_id"]) > 1  # the history hour is held too
    clock.advance(timedelta(hours=2))
    job = demo.start_sync_access(s["site_id"], s["collection_id"])
    clock.advance(demo.settings.sync_duration_s)
    demo.advance()
    assert (job.state, job.error) == ("failed", "iq_offline")
    demo.power_cycle_iq(s["iq_id"])
    (late,) = [e for e in demo.aca_feed if e.id == decision.event_id]
    assert late.occurred_at == presented_at
    assert late.recorded_at == clock.now()
    times = [e.utc_date_time for e in demo.entries[s["site_id"]]]
    assert times == sorted(times)
    kinds = [i.type for i in demo.incidents[s["site_id"]] if i.iq_id == s["iq_id"]]
    assert kinds == ["iq_connection_lost", "iq_connection_restored"]


def test_half_connected_lock_never_reports(demo: World, clock: ManualClock) -> None:
    """An IQ1's half-connected lock: no events, no lock_time_set for the maintenance card."""
    s = demo.notes["normal.mkey"]
    lock = demo.locks[s["lock_id"]]
    record = demo.inject(
        "aca.lock_offline", lock_id=lock.id, variant="half_connected", user_id=s["user_id"]
    )
    assert demo.iqs[lock.iq_id].revision == 1
    decision = demo.present_at_lock(s["user_id"], lock.id, "mkey")
    assert (decision.granted, decision.event_recorded) == (False, "never")
    assert demo.present_maintenance_card(lock.id) == "never"
    assert not any(i.type == "lock_time_set" for i in demo.incidents[lock.site_id])
    demo.power_cycle_iq(lock.iq_id)
    assert not next(f for f in demo.faults() if f.fault_id == record.fault_id).present
    assert demo.present_maintenance_card(lock.id) == "now"
    assert demo.incidents[lock.site_id][-1].type == "lock_time_set"


def test_too_early_passes_with_time(demo: World, clock: ManualClock) -> None:
    """The center's IQs get their first access inside the grace; the fault ends at 24 h."""
    s = fault(demo, "aca.too_early").subject
    released = demo.centers[s["center_id"]].released_at
    clock.set(released + timedelta(hours=demo.settings.initial_propagation_h, seconds=1))
    assert fault(demo, "aca.too_early").present
    assert demo.present_at_lock(s["user_id"], s["lock_id"], "tag").granted
    clock.set(released + timedelta(hours=demo.settings.release_grace_h, seconds=1))
    assert not fault(demo, "aca.too_early").present


def test_booking_mismatch_books_the_co_working_space(demo: World) -> None:
    """Runbook a3: the booking is on 714ResCo-work01, the lock belongs to room 714."""
    s = fault(demo, "aca.booking_mismatch").subject
    assert demo.inventories[s["inventory_id"]].name == "714"
    assert demo.inventories[s["booked_inventory_id"]].name == "714ResCo-work01"
    assert s["lock_id"] not in {a.lock_id for a in demo.aca_accesses(s["user_id"])}
    with pytest.raises(WorldError) as refused:
        demo.set_access_matrix(s["user_id"], s["lock_id"], True)
    assert refused.value.code == "no_booking"


def test_access_disabled_ends_only_when_someone_enables_it(demo: World, clock: ManualClock) -> None:
    """Refused as designed: Sync Access changes nothing; only enabling the cell would."""
    s = fault(demo, "aca.access_disabled").subject
    sync_access(demo, clock, s)
    assert fault(demo, "aca.access_disabled").present
    assert not demo.present_at_lock(s["user_id"], s["lock_id"], "tag").granted
    demo.set_access_matrix(s["user_id"], s["lock_id"], True)
    assert not fault(demo, "aca.access_disabled").present


@pytest.mark.parametrize(
    ("kind", "disabled_by"),
    [("aca.access_disabled", "access_matrix"), ("aca.no_booking", "booking_ended")],
)
def test_refused_as_designed_shows_in_aca(demo: World, kind: str, disabled_by: str) -> None:
    """Runbook b1: the access row is disabled (by the matrix, or an ended booking)."""
    s = fault(demo, kind).subject
    (row,) = [a for a in demo.aca_accesses(s["user_id"]) if a.lock_id == s["lock_id"]]
    assert (row.state, row.disabled_by) == ("disabled", disabled_by)


# --------------------------------------------------------------------------- doors


@dataclass(frozen=True)
class DoorCase:
    """A door fault: the Detail text its presentation writes, and its remedy (None: none)."""

    kind: str
    detail: str
    remedy: Remedy | None


DOOR_CASES = [
    DoorCase("cloud.license_inactive", "Door license expired or not activated", renew),
    DoorCase("cloud.no_payment", "Door license expired or not activated", None),
    DoorCase("cloud.credential_unassigned", "Invalid Card", assign_card),
    DoorCase("cloud.unknown_credential", "Invalid Card", None),
    # Suite 730's R29 writes one text for "no permission" and "no license"
    DoorCase(
        "cloud.no_access_group",
        "No access permission or door license is not available",
        add_to_door_group,
    ),
    DoorCase("cloud.inherited_group", "No access permission", None),
    DoorCase("cloud.visitor_expired", "Not within the valid period", new_temp_key),
    DoorCase("cloud.holiday_restriction", "No access permission during holidays", holiday_hours),
]


def present(world: World, s: Subject) -> tuple[bool, str]:
    """Present what the subject carries at its door: a visitor's newest key, or the card."""
    if "visitor_id" in s:
        code = world.visitors[s["visitor_id"]].temp_keys[-1].code
        decision = world.present_at_door(s["door_id"], "temp_key", code)
    else:
        decision = world.present_at_door(s["door_id"], "card", s["credential_value"])
    return decision.granted, decision.detail


@pytest.mark.parametrize("case", DOOR_CASES, ids=lambda c: c.kind)
def test_door_fault_writes_the_seed_detail(demo: World, case: DoorCase) -> None:
    """The device refuses and the door log's Detail column says why, in the seed's words."""
    s = fault(demo, case.kind).subject
    assert present(demo, s) == (False, case.detail)
    row = last_log(demo, s["project_id"])
    assert (row.door_id, row.result, row.detail) == (s["door_id"], "failure", case.detail)
    truth = demo.truth_door(s["door_id"], **_who(s))
    assert truth["decision"] == {
        "granted": False,
        "detail": case.detail,
        "cause": fault(demo, case.kind).cause,
    }


def _who(s: Subject) -> dict[str, str]:
    if "visitor_id" in s:
        return {"visitor_id": s["visitor_id"]}
    return {"credential_value": s["credential_value"]}


@pytest.mark.parametrize("case", [c for c in DOOR_CASES if c.remedy], ids=lambda c: c.kind)
def test_door_fault_cleared_by_its_remedy(demo: World, clock: ManualClock, case: DoorCase) -> None:
    """The seed's recommended solution, through the cloud's commands, opens the door."""
    s = fault(demo, case.kind).subject
    assert case.remedy is not None
    case.remedy(demo, clock, s)
    assert not fault(demo, case.kind).present
    assert present(demo, s) == (True, "")


def test_no_payment_refuses_the_renewal(demo: World) -> None:
    """Without the payment permission the renewal is refused: a person must call the distributor."""
    s = fault(demo, "cloud.no_payment").subject
    with pytest.raises(WorldError) as refused:
        renew(demo, ManualClock(demo.clock.now()), s)
    assert refused.value.code == "permission_denied"
    assert demo.renewals.get(s["door_id"], 0) == 0
    assert fault(demo, "cloud.no_payment").present


def test_inherited_group_refuses_direct_membership(demo: World) -> None:
    """A user-group member's access cannot be edited one by one: ``conflict``."""
    s = fault(demo, "cloud.inherited_group").subject
    with pytest.raises(WorldError) as refused:
        add_to_door_group(demo, ManualClock(demo.clock.now()), s)
    assert refused.value.code == "conflict"
    assert fault(demo, "cloud.inherited_group").present


def test_unknown_credential_is_a_lost_aca_tag(demo: World, clock: ManualClock) -> None:
    """The card nobody holds is a tag ACA lists as lost: it stays unassigned, whoever retries."""
    s = fault(demo, "cloud.unknown_credential").subject
    truth = demo.truth_door(s["door_id"], credential_value=s["credential_value"])
    assert truth["credential"] == {
        "type": "card",
        "value": s["credential_value"],
        "owner_personnel_id": None,
        "aca_user_id": s["user_id"],
        "aca_tag_state": "lost",
    }
    clock.advance(timedelta(hours=1))
    assert fault(demo, "cloud.unknown_credential").present
    assert present(demo, s) == (False, "Invalid Card")


def test_visit_over_is_no_fault(demo: World, clock: ManualClock) -> None:
    """An expired key for a visit that ended: refused as designed, no remedy applies."""
    status = fault(demo, "cloud.visitor_expired")
    demo.clear(status.fault_id)
    record = demo.inject(
        "cloud.visitor_expired", visitor_id=status.subject["visitor_id"], visit_over=True
    )
    assert (record.remedy, record.outcome) == (None, "no_fault")
    assert demo.visits[record.subject["visit_id"]].status == "ended"
    assert present(demo, record.subject) == (False, "Not within the valid period")


# --------------------------------------------------------------------------- feeds and clear


def test_duplicate_events_repeat_ids_in_the_feed(demo: World, clock: ManualClock) -> None:
    """The feed delivers some events twice (same id); clearing stops new duplicates."""
    ids = [e.id for e in demo.aca_feed]
    assert len(ids) > len(set(ids))
    status = fault(demo, "feed.duplicate_events")
    demo.clear(status.fault_id)
    assert not fault(demo, "feed.duplicate_events").present
    start = len(demo.aca_feed)
    clock.advance(timedelta(hours=1))
    fresh = [e.id for e in feed(demo)[start:]]
    assert len(fresh) == len(set(fresh)) > 0


def test_late_events_reach_the_feed_hours_later(demo: World, clock: ManualClock) -> None:
    """A lock whose events arrive three hours late, with their original ``occurred_at``."""
    s = demo.notes["normal.late_feed"]
    decision = demo.present_at_lock(s["user_id"], s["lock_id"], "tag")
    assert (decision.granted, decision.event_recorded) == (True, "late")
    assert decision.event_id not in {e.id for e in demo.aca_feed}
    clock.advance(timedelta(hours=3))
    # the demo's feed.duplicate_events may deliver it more than once, each copy the same
    copies = [e for e in feed(demo) if e.id == decision.event_id]
    assert copies
    assert all(e == copies[0] for e in copies)
    assert copies[0].recorded_at - copies[0].occurred_at == timedelta(hours=3)


def test_clear_undoes_by_fiat(demo: World) -> None:
    """``clear`` restores the world: every fault reports absent, cleared, and stays listed."""
    for status in demo.faults():
        demo.clear(status.fault_id)
    after = demo.faults()
    assert len(after) == 23
    assert [f.kind for f in after if f.present] == []
    assert all(f.cleared for f in after)
    s = after[0].subject
    assert demo.present_at_lock(s["user_id"], s["lock_id"], "tag").granted
    with pytest.raises(WorldError) as unknown:
        demo.clear("fault-999")
    assert unknown.value.code == "not_found"
