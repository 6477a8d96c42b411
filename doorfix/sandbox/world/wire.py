"""World entities to JSON, field for field as the contract's Shapes sections draw them.

ACA and CLP times are ISO 8601 UTC with ``Z``; cloud times are epoch seconds. Internal
attributes of the model (``project_id`` on a door, ``held`` on an IQ, ...) never reach the wire.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

from doorfix.sandbox.world import model

JSON = dict[str, Any]

#: one JSON value as Starlette's ``JSONResponse`` writes it (compact, UTF-8 kept, no NaN)
scalar = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
).encode


@dataclasses.dataclass(frozen=True, slots=True)
class RawJSON:
    """JSON text already encoded (a door-log page's rows), which :func:`dumps` embeds as is."""

    text: str


def dumps(value: Any) -> bytes:
    """``value`` as the bytes ``JSONResponse`` would send, with any :class:`RawJSON` inlined."""
    pieces: list[str] = []
    _write(value, pieces.append)
    # one join, so a long RawJSON is copied once more, not once per enclosing level
    return "".join(pieces).encode("utf-8")


def _write(value: Any, out: Callable[[str], None]) -> None:
    if isinstance(value, RawJSON):
        out(value.text)
    elif isinstance(value, dict):
        out("{")
        for n, (key, item) in enumerate(value.items()):
            out(f",{_key(key)}:" if n else f"{_key(key)}:")
            _write(item, out)
        out("}")
    elif isinstance(value, list | tuple):
        out("[")
        for n, item in enumerate(value):
            if n:
                out(",")
            _write(item, out)
        out("]")
    else:
        out(scalar(value))


def _key(key: object) -> str:
    # the json module's own conversions of object keys (it refuses any other type)
    if isinstance(key, str):
        return scalar(key)
    if key is None or isinstance(key, bool | int | float):
        return scalar(scalar(key))
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def iso(dt: datetime) -> str:
    """``dt`` as ISO 8601 UTC with ``Z``; sub-second digits only when the time has them."""
    utc_dt = dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if utc_dt.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return utc_dt.strftime(fmt)


def iso_or_none(dt: datetime | None) -> str | None:
    """:func:`iso`, passing ``None`` through."""
    return None if dt is None else iso(dt)


def epoch(dt: datetime) -> int:
    """``dt`` as whole epoch seconds (the cloud's time format)."""
    return int(dt.timestamp())


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 time from a query string; naive times are UTC; ValueError if bad."""
    # a '+' of an unquoted offset arrives as a space in a query string
    parsed = datetime.fromisoformat(text.strip().replace(" ", "+"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def jsonable(value: Any) -> Any:
    """Any world value (dataclass, datetime, set, enum, ...) as plain JSON data, for /sandbox/."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=str)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


# --------------------------------------------------------------------------- cloud


def cloud_project(p: model.Project) -> JSON:
    """``get_project_info`` result."""
    return {
        "project_id": p.project_id,
        "name": p.name,
        "time_zone": p.time_zone,
        "permissions": list(p.permissions),
    }


#: DoorLog's wire fields, which are exactly the row's attributes (all plain values)
_DOOR_LOG_FIELDS = tuple(f.name for f in dataclasses.fields(model.DoorLog))


def cloud_door_log(log: model.DoorLog) -> JSON:
    """DoorLog (the hot path of a 500-row page: one comprehension, no per-field calls)."""
    return {name: getattr(log, name) for name in _DOOR_LOG_FIELDS}


def cloud_door(d: model.Door) -> JSON:
    """Door, with its device and license."""
    lic = d.license
    return {
        "door_id": d.door_id,
        "name": d.name,
        "device": {"model": d.device.model, "firmware": d.device.firmware, "mac": d.device.mac},
        "license": {
            "status": lic.status,
            "expires_at": None if lic.expires_at is None else epoch(lic.expires_at),
            "auto_renew": lic.auto_renew,
        },
    }


def cloud_personnel(p: model.Personnel) -> JSON:
    """Personnel."""
    return {
        "personnel_id": p.personnel_id,
        "name": p.name,
        "email": p.email,
        "external_id": p.external_id,
        "credentials": [{"type": c.type, "value": c.value} for c in p.credentials],
        "access_group_ids": list(p.access_group_ids),
        "user_group_ids": list(p.user_group_ids),
    }


def cloud_access_group(g: model.CloudAccessGroup) -> JSON:
    """AccessGroup (cloud)."""
    return {
        "access_group_id": g.access_group_id,
        "name": g.name,
        "door_ids": list(g.door_ids),
        "schedule": {
            "weekdays": list(g.schedule.weekdays),
            "start_time": g.schedule.start_time,
            "end_time": g.schedule.end_time,
        },
    }


def cloud_user_group(g: model.UserGroup) -> JSON:
    """UserGroup."""
    return {
        "user_group_id": g.user_group_id,
        "name": g.name,
        "access_group_ids": list(g.access_group_ids),
        "member_ids": list(g.member_ids),
    }


def cloud_holiday(h: model.Holiday) -> JSON:
    """Holiday."""
    return {
        "holiday_id": h.holiday_id,
        "name": h.name,
        "dates": list(h.dates),
        "working_hours_enabled": h.working_hours_enabled,
        "working_hours": {
            "start_time": h.working_hours.start_time,
            "end_time": h.working_hours.end_time,
        },
        "door_ids": list(h.door_ids),
    }


def cloud_temp_key(k: model.TempKey, now: datetime) -> JSON:
    """TempKey; ``expired`` is derived from ``now`` (the clock), never stored."""
    return {
        "temp_key_id": k.temp_key_id,
        "code": k.code,
        "door_ids": list(k.door_ids),
        "start_time": epoch(k.start_time),
        "finish_time": epoch(k.finish_time),
        "expired": now >= k.finish_time,
    }


def cloud_visitor(v: model.Visitor, now: datetime) -> JSON:
    """Visitor with its temp keys."""
    return {
        "visitor_id": v.visitor_id,
        "name": v.name,
        "email": v.email,
        "host_personnel_id": v.host_personnel_id,
        "aca_visit_id": v.aca_visit_id,
        "temp_keys": [cloud_temp_key(k, now) for k in v.temp_keys],
    }


# --------------------------------------------------------------------------- ACA


def aca_center(c: model.Center) -> JSON:
    """Center."""
    return {
        "id": c.id,
        "name": c.name,
        "released_at": iso(c.released_at),
        "clp_site_id": c.clp_site_id,
        "cloud_project_id": c.cloud_project_id,
        "time_zone": c.time_zone,
    }


def aca_inventory(i: model.Inventory) -> JSON:
    """Inventory."""
    return {
        "id": i.id,
        "center_id": i.center_id,
        "name": i.name,
        "kind": i.kind,
        "lock_ids": list(i.lock_ids),
        "door_ids": list(i.door_ids),
    }


def aca_booking(b: model.Booking) -> JSON:
    """Booking."""
    return {
        "id": b.id,
        "company_id": b.company_id,
        "center_id": b.center_id,
        "inventory_id": b.inventory_id,
        "starts_at": iso(b.starts_at),
        "ends_at": iso(b.ends_at),
        "status": b.status,
    }


def aca_user(u: model.User) -> JSON:
    """User with its tags."""
    return {
        "id": u.id,
        "name": u.name,
        "email": u.email,
        "company_id": u.company_id,
        "center_id": u.center_id,
        "clp_user_id": u.clp_user_id,
        "cloud_personnel_id": u.cloud_personnel_id,
        "tags": [{"number": t.number, "state": t.state} for t in u.tags],
    }


def aca_access(a: model.Access) -> JSON:
    """Access."""
    return {
        "lock_id": a.lock_id,
        "inventory_id": a.inventory_id,
        "state": a.state,
        "disabled_by": a.disabled_by,
        "changed_at": iso(a.changed_at),
    }


def aca_mobile_key(k: model.MobileKey) -> JSON:
    """MobileKey."""
    return {
        "id": k.id,
        "state": k.state,
        "issued_at": iso(k.issued_at),
        "last_error": k.last_error,
    }


def aca_event(e: model.AcaEvent) -> JSON:
    """Event."""
    return {
        "id": e.id,
        "type": e.type,
        "occurred_at": iso(e.occurred_at),
        "recorded_at": iso(e.recorded_at),
        "user_id": e.user_id,
        "lock_id": e.lock_id,
        "center_id": e.center_id,
        "credential": e.credential,
    }


def aca_visit(v: model.Visit) -> JSON:
    """Visit."""
    return {
        "id": v.id,
        "center_id": v.center_id,
        "visitor_name": v.visitor_name,
        "visitor_email": v.visitor_email,
        "host_user_id": v.host_user_id,
        "starts_at": iso(v.starts_at),
        "ends_at": iso(v.ends_at),
        "status": v.status,
        "cloud_visitor_id": v.cloud_visitor_id,
    }


# --------------------------------------------------------------------------- CLP


def clp_site(s: model.Site) -> JSON:
    """Site."""
    return {
        "id": s.id,
        "site_uid": s.site_uid,
        "customer_reference": s.customer_reference,
        "time_zone": s.time_zone,
    }


def clp_lock(lock: model.Lock, iq: model.IQ) -> JSON:
    """Lock, nesting the summary of the IQ it is attached to."""
    return {
        "id": lock.id,
        "customer_reference": lock.customer_reference,
        "lock_type": lock.lock_type,
        "online": lock.online,
        "iq_link_state": lock.iq_link_state,
        "privacy_mode": lock.privacy_mode,
        "battery_level": lock.battery_level,
        "collection_id": lock.collection_id,
        "iq": {"id": iq.id, "revision": iq.revision, "online": iq.online},
        "last_event_utc": iso_or_none(lock.last_event_utc),
    }


def clp_iq(iq: model.IQ) -> JSON:
    """IQ (what it holds stays internal)."""
    return {
        "id": iq.id,
        "mac": iq.mac,
        "revision": iq.revision,
        "online": iq.online,
        "collection_id": iq.collection_id,
        "last_heartbeat_utc": iso(iq.last_heartbeat_utc),
        "lock_ids": list(iq.lock_ids),
    }


def clp_site_user(u: model.SiteUser) -> JSON:
    """SiteUser; the platform user id is nested as ``user.id``."""
    return {
        "id": u.id,
        "user": {"id": u.platform_user_id},
        "alias": u.alias,
        "subscription_state": u.subscription_state,
        "blocked": u.blocked,
    }


def clp_key(k: model.Key) -> JSON:
    """Key."""
    return {
        "id": k.id,
        "key_type": k.key_type,
        "key_identifier": k.key_identifier,
        "blocked": k.blocked,
        "expiry_date": iso_or_none(k.expiry_date),
    }


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def clp_time_schedule(t: model.TimeSchedule) -> JSON:
    """One access-group time schedule."""
    days: JSON = {day: getattr(t, day) for day in _WEEKDAYS}
    return {**days, "start_time": t.start_time, "end_time": t.end_time}


def clp_access_group(g: model.ClpAccessGroup) -> JSON:
    """AccessGroup (CLP); members are served by their own endpoint."""
    return {
        "id": g.id,
        "customer_reference": g.customer_reference,
        "lock_ids": list(g.lock_ids),
        "time_schedules": [clp_time_schedule(t) for t in g.time_schedules],
    }


def clp_entry(e: model.Entry) -> JSON:
    """Entry."""
    return {
        "id": e.id,
        "event_category": e.event_category,
        "event_detail": e.event_detail,
        "utc_date_time": iso(e.utc_date_time),
        "lock_id": e.lock_id,
        "iq_id": e.iq_id,
        "collection_id": e.collection_id,
        "user_id": e.user_id,
        "user_alias": e.user_alias,
        "access_by": e.access_by,
        "key_id": e.key_id,
    }


def clp_incident(i: model.Incident) -> JSON:
    """Incident."""
    return {
        "id": i.id,
        "type": i.type,
        "utc_date_time": iso(i.utc_date_time),
        "lock": None if i.lock_id is None else {"id": i.lock_id},
        "iq": None if i.iq_id is None else {"id": i.iq_id},
    }


def clp_larry_access(a: model.LarryAccess) -> JSON:
    """LarryAccess."""
    return {
        "user_id": a.user_id,
        "lock_id": a.lock_id,
        "status": a.status,
        "reason": a.reason,
        "access_group_ids": list(a.access_group_ids),
    }


def clp_sync_job(j: model.SyncJob) -> JSON:
    """SyncJob."""
    return {
        "job_id": j.job_id,
        "collection_id": j.collection_id,
        "state": j.state,
        "error": j.error,
        "created_utc": iso(j.created_utc),
        "finished_utc": iso_or_none(j.finished_utc),
    }
