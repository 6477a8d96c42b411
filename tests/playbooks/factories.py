"""Small factories of wire models and fact snapshots for the playbook tests (no HTTP).

Every factory gives a valid model with plain defaults; a test names only what its row is
about. The default world: project ``p-1`` (Europe/Amsterdam) with door ``d-1`` (an A08 on
current firmware, license active), person ``per-1`` linked to ACA user ``u-1`` of company
``co-1``, center ``c-1`` released long ago, inventory ``inv-714`` (room 714) holding lock
``l-1`` and door ``d-1``, and an active booking of it. ``NOW`` is Monday 2026-11-16 10:00 UTC
(11:00 in Amsterdam).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from doorfix.connectors.models import epoch_seconds
from doorfix.connectors.models.aca import (
    Access,
    Booking,
    Center,
    Event,
    Inventory,
    MobileKey,
    Tag,
    User,
    Visit,
)
from doorfix.connectors.models.cloud import (
    AccessGroup,
    Credential,
    Device,
    Door,
    DoorLog,
    Holiday,
    License,
    Personnel,
    ProjectInfo,
    Schedule,
    TempKey,
    UserGroup,
    Visitor,
    WorkingHours,
)
from doorfix.connectors.models.clp import Entry, Incident, Iq, IqSummary, LarryAccess, Lock, Ref
from doorfix.playbooks.facts import DoorLogFacts, LockFacts, ProjectFacts

NOW = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)
TZ = "Europe/Amsterdam"
ALL_DAYS = (1, 2, 3, 4, 5, 6, 7)


def ts(when: datetime) -> int:
    """Epoch seconds of ``when``."""
    return epoch_seconds(when)


def hm(text: str) -> time:
    """``"HH:MM"`` as a time."""
    return time.fromisoformat(text)


# --------------------------------------------------------------------------- cloud


def project_info(*, payment: bool = True, tz: str = TZ, project_id: str = "p-1") -> ProjectInfo:
    """The project and the account's permissions."""
    perms = ("personnel", "access_control", *(("payment",) if payment else ()))
    return ProjectInfo(project_id=project_id, name="HQ", time_zone=tz, permissions=perms)


def door(
    door_id: str = "d-1",
    *,
    status: str = "active",
    expires_at: datetime | None = None,
    auto_renew: bool = False,
    model: str = "A08",
    firmware: str = "108.30.11.210",
) -> Door:
    """A door with its device and license."""
    lic = License.model_validate(
        {
            "status": status,
            "expires_at": None if expires_at is None else ts(expires_at),
            "auto_renew": auto_renew,
        }
    )
    device = Device(model=model, firmware=firmware, mac="00:11:22:33:44:55")
    return Door(door_id=door_id, name=f"Door {door_id}", device=device, license=lic)


def log(
    detail: str,
    *,
    log_id: int = 1,
    at: datetime = NOW - timedelta(minutes=5),
    door_id: str = "d-1",
    model: str = "A08",
    firmware: str = "108.30.11.210",
    credential_type: str = "card",
    credential_value: str = "CARD-1",
    personnel_id: str | None = "per-1",
    visitor_id: str | None = None,
) -> DoorLog:
    """A failure row of Logs > Door Logs."""
    return DoorLog.model_validate(
        {
            "log_id": log_id,
            "capture_time": ts(at),
            "door_id": door_id,
            "door_name": f"Door {door_id}",
            "device_model": model,
            "firmware": firmware,
            "result": "failure",
            "detail": detail,
            "credential_type": credential_type,
            "credential_value": credential_value,
            "personnel_id": personnel_id,
            "visitor_id": visitor_id,
            "initiator": "someone",
        }
    )


def personnel(
    personnel_id: str = "per-1",
    *,
    external_id: str | None = "u-1",
    credentials: Iterable[tuple[str, str]] = (),
    access_group_ids: tuple[str, ...] = (),
    user_group_ids: tuple[str, ...] = (),
    name: str = "Ann",
) -> Personnel:
    """A person of the cloud project."""
    creds = tuple(Credential.model_validate({"type": t, "value": v}) for t, v in credentials)
    return Personnel(
        personnel_id=personnel_id,
        name=name,
        email=f"{personnel_id}@example.test",
        external_id=external_id,
        credentials=creds,
        access_group_ids=access_group_ids,
        user_group_ids=user_group_ids,
    )


def access_group(
    group_id: str,
    door_ids: tuple[str, ...],
    *,
    weekdays: tuple[int, ...] = ALL_DAYS,
    start: str = "00:00",
    end: str = "23:59",
) -> AccessGroup:
    """An access group with a weekly schedule (project-local)."""
    schedule = Schedule(weekdays=weekdays, start_time=hm(start), end_time=hm(end))
    return AccessGroup(
        access_group_id=group_id, name=f"Group {group_id}", door_ids=door_ids, schedule=schedule
    )


def user_group(group_id: str, access_group_ids: tuple[str, ...] = ()) -> UserGroup:
    """A user group; its members inherit its access groups."""
    return UserGroup(
        user_group_id=group_id,
        name=f"Team {group_id}",
        access_group_ids=access_group_ids,
        member_ids=("per-1",),
    )


def holiday(
    holiday_id: str = "h-1",
    *,
    on: date = date(2026, 11, 16),
    enabled: bool = False,
    start: str = "09:00",
    end: str = "17:00",
    door_ids: tuple[str, ...] = ("d-1",),
    name: str = "Founders Day",
) -> Holiday:
    """A holiday schedule of the door."""
    return Holiday(
        holiday_id=holiday_id,
        name=name,
        dates=(on,),
        working_hours_enabled=enabled,
        working_hours=WorkingHours(start_time=hm(start), end_time=hm(end)),
        door_ids=door_ids,
    )


def temp_key(
    *,
    code: str = "QR-1",
    door_ids: tuple[str, ...] = ("d-1",),
    start: datetime = NOW - timedelta(hours=5),
    finish: datetime = NOW - timedelta(hours=1),
    expired: bool = True,
    key_id: str = "tk-1",
) -> TempKey:
    """A visitor's temp key (expired by default)."""
    return TempKey(
        temp_key_id=key_id,
        code=code,
        door_ids=door_ids,
        start_time=ts(start),
        finish_time=ts(finish),
        expired=expired,
    )


def visitor(
    *, aca_visit_id: str | None = "vis-1", keys: tuple[TempKey, ...] | None = None
) -> Visitor:
    """A cloud visitor with one expired temp key by default."""
    return Visitor(
        visitor_id="v-1",
        name="Vic",
        email="vic@example.test",
        host_personnel_id="per-1",
        aca_visit_id=aca_visit_id,
        temp_keys=(temp_key(),) if keys is None else keys,
    )


# --------------------------------------------------------------------------- ACA


def center(*, released_at: datetime | None = NOW - timedelta(days=30)) -> Center:
    """The ACA center of project ``p-1`` and CLP site ``s-1``."""
    return Center(
        id="c-1",
        name="Center",
        released_at=released_at,
        clp_site_id="s-1",
        cloud_project_id="p-1",
        time_zone=TZ,
    )


def inventory(
    inv_id: str = "inv-714",
    name: str = "714",
    *,
    lock_ids: tuple[str, ...] = ("l-1",),
    door_ids: tuple[str, ...] = ("d-1",),
    kind: str = "office",
) -> Inventory:
    """An inventory with its locks and doors."""
    return Inventory.model_validate(
        {
            "id": inv_id,
            "center_id": "c-1",
            "name": name,
            "kind": kind,
            "lock_ids": lock_ids,
            "door_ids": door_ids,
        }
    )


def booking(
    inventory_id: str = "inv-714",
    *,
    booking_id: str | None = None,
    company_id: str = "co-1",
    status: str = "active",
    starts_at: datetime = NOW - timedelta(days=10),
    ends_at: datetime = NOW + timedelta(days=10),
) -> Booking:
    """A company's booking of an inventory (active now by default)."""
    return Booking.model_validate(
        {
            "id": booking_id or f"b-{inventory_id}",
            "company_id": company_id,
            "center_id": "c-1",
            "inventory_id": inventory_id,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "status": status,
        }
    )


def aca_user(
    *,
    user_id: str = "u-1",
    cloud_personnel_id: str | None = "per-1",
    tags: Iterable[tuple[str, str]] = (("CARD-1", "assigned"),),
    company_id: str = "co-1",
) -> User:
    """An ACA user with tags ``(number, state)``."""
    return User(
        id=user_id,
        name="Ann",
        email="ann@example.test",
        company_id=company_id,
        center_id="c-1",
        clp_user_id="clp-u-1",
        cloud_personnel_id=cloud_personnel_id,
        tags=tuple(Tag.model_validate({"number": n, "state": s}) for n, s in tags),
    )


def access(
    lock_id: str = "l-1", *, state: str = "active", disabled_by: str | None = None
) -> Access:
    """ACA's access of the user to a lock."""
    return Access.model_validate(
        {
            "lock_id": lock_id,
            "inventory_id": "inv-714",
            "state": state,
            "disabled_by": disabled_by,
            "changed_at": NOW - timedelta(days=1),
        }
    )


def mobile_key(
    key_id: str = "mk-1",
    *,
    state: str = "active",
    issued_at: datetime = NOW - timedelta(days=5),
    last_error: str | None = None,
) -> MobileKey:
    """A user's mobile key."""
    return MobileKey.model_validate(
        {"id": key_id, "state": state, "issued_at": issued_at, "last_error": last_error}
    )


def event(
    kind: str = "tag_rejected",
    *,
    event_id: str = "e-1",
    credential: str = "CARD-1",
    at: datetime = NOW - timedelta(minutes=10),
    lock_id: str = "l-1",
) -> Event:
    """An ACA rejection event of ``u-1`` at a lock."""
    return Event.model_validate(
        {
            "id": event_id,
            "type": kind,
            "occurred_at": at,
            "recorded_at": at,
            "user_id": "u-1",
            "lock_id": lock_id,
            "center_id": "c-1",
            "credential": credential,
        }
    )


def visit(
    *,
    status: str = "active",
    starts_at: datetime = NOW - timedelta(hours=2),
    ends_at: datetime = NOW + timedelta(hours=3),
    visit_id: str = "vis-1",
) -> Visit:
    """ACA's visit behind visitor ``v-1``."""
    return Visit.model_validate(
        {
            "id": visit_id,
            "center_id": "c-1",
            "visitor_name": "Vic",
            "visitor_email": "vic@example.test",
            "host_user_id": "u-1",
            "starts_at": starts_at,
            "ends_at": ends_at,
            "status": status,
            "cloud_visitor_id": "v-1",
        }
    )


# --------------------------------------------------------------------------- CLP


def lock(
    *,
    online: bool = True,
    link: str = "attached",
    privacy_mode: bool = False,
    iq_online: bool = True,
    revision: int = 2,
    lock_type: str = "escutcheon",
    last_event: datetime | None = NOW - timedelta(hours=1),
    lock_id: str = "l-1",
    reference: str = "714 entrance",
) -> Lock:
    """A CLP lock on IQ ``iq-1`` in collection ``col-1``."""
    return Lock.model_validate(
        {
            "id": lock_id,
            "customer_reference": reference,
            "lock_type": lock_type,
            "online": online,
            "iq_link_state": link,
            "privacy_mode": privacy_mode,
            "battery_level": "normal",
            "collection_id": "col-1",
            "iq": IqSummary.model_validate(
                {"id": "iq-1", "revision": revision, "online": iq_online}
            ),
            "last_event_utc": last_event,
        }
    )


def iq(*, online: bool = True, revision: int = 2) -> Iq:
    """The IQ ``iq-1``."""
    return Iq.model_validate(
        {
            "id": "iq-1",
            "mac": "aa:bb",
            "revision": revision,
            "online": online,
            "collection_id": "col-1",
            "last_heartbeat_utc": NOW - timedelta(minutes=1),
            "lock_ids": ("l-1",),
        }
    )


def larry(status: str = "granted", reason: str | None = None) -> LarryAccess:
    """Larry access of ``clp-u-1`` at ``l-1``."""
    return LarryAccess.model_validate(
        {
            "user_id": "clp-u-1",
            "lock_id": "l-1",
            "status": status,
            "reason": reason,
            "access_group_ids": ("ag-1",) if status == "granted" else (),
        }
    )


def entry(
    *,
    category: str = "lock_rejected",
    by: str = "tag",
    at: datetime = NOW - timedelta(minutes=20),
    entry_id: str = "en-1",
) -> Entry:
    """A CLP entry of ``clp-u-1`` at ``l-1``."""
    return Entry.model_validate(
        {
            "id": entry_id,
            "event_category": category,
            "event_detail": "no_access" if category == "lock_rejected" else None,
            "utc_date_time": at,
            "lock_id": "l-1",
            "iq_id": "iq-1",
            "collection_id": "col-1",
            "user_id": "clp-u-1",
            "user_alias": "Ann",
            "access_by": by,
            "key_id": None,
        }
    )


def incident(kind: str, *, at: datetime = NOW - timedelta(hours=3)) -> Incident:
    """A CLP incident of IQ ``iq-1``."""
    return Incident(
        id=f"inc-{kind}", type=kind, utc_date_time=at, lock=Ref(id="l-1"), iq=Ref(id="iq-1")
    )


# --------------------------------------------------------------------------- snapshots


def project_facts(
    *,
    payment: bool = True,
    doors: Iterable[Door] | None = None,
    groups: Iterable[AccessGroup] = (),
    user_groups: Iterable[UserGroup] = (),
    holidays: tuple[Holiday, ...] = (),
    inventories: tuple[Inventory, ...] | None = None,
    tz: str = TZ,
) -> ProjectFacts:
    """Project ``p-1`` with its doors, groups, holidays and center ``c-1``."""
    door_list = (door(),) if doors is None else tuple(doors)
    return ProjectFacts(
        project=project_info(payment=payment, tz=tz),
        doors={d.door_id: d for d in door_list},
        access_groups={g.access_group_id: g for g in groups},
        user_groups={g.user_group_id: g for g in user_groups},
        holidays=holidays,
        center=center(),
        inventories=(inventory(),) if inventories is None else inventories,
    )


def door_log_facts(
    *logs: DoorLog, project: ProjectFacts | None = None, **fields: Any
) -> DoorLogFacts:
    """A failure group of ``logs`` in ``project`` (default :func:`project_facts`)."""
    return DoorLogFacts(logs=logs, project=project or project_facts(), **fields)


def lock_facts(
    *,
    events: tuple[Event, ...] = (),
    released_at: datetime | None = NOW - timedelta(days=30),
    user: User | None = None,
    **fields: Any,
) -> LockFacts:
    """User ``u-1`` x lock ``l-1``: by default everything grants (ACA, Larry, a healthy lock)."""
    base: dict[str, Any] = {
        "accesses": (access(),),
        "bookings": (booking(),),
        "inventories": (inventory(),),
        "lock": lock(),
        "iq": iq(),
        "larry": larry(),
    }
    base.update(fields)
    return LockFacts(
        center=center(released_at=released_at),
        user=user or aca_user(),
        lock_id="l-1",
        events=events,
        **base,
    )
