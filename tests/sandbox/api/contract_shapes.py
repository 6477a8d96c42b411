"""An independent checker of response shapes, transcribed by hand from shared/contract/*.md.

Deliberately shares nothing with doorfix.sandbox (neither model.py nor wire.py): if the
sandbox drifts from the contract, these tables, not the sandbox's own idea of itself, say so.
Every field listed is required, with the type shown; extra fields are allowed (the contract
says unknown fields are ignored).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
_HHMM = re.compile(r"^\d{2}:\d{2}$")
_HHMMSS = re.compile(r"^\d{2}:\d{2}:\d{2}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class T:
    """A type of the contract: a name and a predicate."""

    name: str
    ok: Any  # Callable[[Any], bool]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


STR = T("str", lambda v: isinstance(v, str))
INT = T("int", _is_int)
BOOL = T("bool", lambda v: isinstance(v, bool))
EPOCH = T("epoch seconds", lambda v: _is_int(v) and 1_000_000_000 < v < 4_000_000_000)
TIME = T("ISO 8601 UTC with Z", lambda v: isinstance(v, str) and bool(_ISO_Z.match(v)))
HHMM = T("HH:MM", lambda v: isinstance(v, str) and bool(_HHMM.match(v)))
HHMMSS = T("HH:MM:SS", lambda v: isinstance(v, str) and bool(_HHMMSS.match(v)))
DATE = T("YYYY-MM-DD", lambda v: isinstance(v, str) and bool(_DATE.match(v)))


def enum(*values: Any) -> T:
    """One of ``values``."""
    return T(f"one of {values}", lambda v: v in values)


def nullable(t: Any) -> tuple[str, Any]:
    """``t`` or null."""
    return ("nullable", t)


def list_of(t: Any) -> tuple[str, Any]:
    """A JSON array of ``t``."""
    return ("list", t)


# --------------------------------------------------------------------------- cloud.md

CREDENTIAL_TYPE = enum("card", "pin", "face", "temp_key", "ble", "nfc", "qr")
CLOUD_DOOR_LOG = {
    "log_id": INT,
    "capture_time": EPOCH,
    "door_id": STR,
    "door_name": STR,
    "device_model": STR,
    "firmware": STR,
    "result": enum("success", "failure"),
    "detail": STR,
    "credential_type": CREDENTIAL_TYPE,
    "credential_value": STR,
    "personnel_id": nullable(STR),
    "visitor_id": nullable(STR),
    "initiator": STR,
}
CLOUD_DOOR = {
    "door_id": STR,
    "name": STR,
    "device": {"model": STR, "firmware": STR, "mac": STR},
    "license": {
        "status": enum("active", "expired", "inactivated"),
        "expires_at": nullable(EPOCH),
        "auto_renew": BOOL,
    },
}
CLOUD_PERSONNEL = {
    "personnel_id": STR,
    "name": STR,
    "email": STR,
    "external_id": nullable(STR),
    "credentials": list_of({"type": CREDENTIAL_TYPE, "value": STR}),
    "access_group_ids": list_of(STR),
    "user_group_ids": list_of(STR),
}
CLOUD_ACCESS_GROUP = {
    "access_group_id": STR,
    "name": STR,
    "door_ids": list_of(STR),
    "schedule": {
        "weekdays": list_of(enum(1, 2, 3, 4, 5, 6, 7)),
        "start_time": HHMM,
        "end_time": HHMM,
    },
}
CLOUD_USER_GROUP = {
    "user_group_id": STR,
    "name": STR,
    "access_group_ids": list_of(STR),
    "member_ids": list_of(STR),
}
CLOUD_HOLIDAY = {
    "holiday_id": STR,
    "name": STR,
    "dates": list_of(DATE),
    "working_hours_enabled": BOOL,
    "working_hours": {"start_time": HHMM, "end_time": HHMM},
    "door_ids": list_of(STR),
}
CLOUD_TEMP_KEY = {
    "temp_key_id": STR,
    "code": STR,
    "door_ids": list_of(STR),
    "start_time": EPOCH,
    "finish_time": EPOCH,
    "expired": BOOL,
}
CLOUD_VISITOR = {
    "visitor_id": STR,
    "name": STR,
    "email": STR,
    "host_personnel_id": STR,
    "aca_visit_id": nullable(STR),
    "temp_keys": list_of(CLOUD_TEMP_KEY),
}
CLOUD_PROJECT_INFO = {
    "project_id": STR,
    "name": STR,
    "time_zone": STR,
    "permissions": list_of(enum("payment", "personnel", "access_control")),
}
CLOUD_SUCCESS = {"success": enum(True), "timestamp": EPOCH}
CLOUD_FAILURE = {
    "success": enum(False),
    "timestamp": EPOCH,
    "error": {
        "code": enum(
            "not_found", "permission_denied", "invalid_param", "conflict", "payment_required"
        ),
        "message": STR,
    },
}
CLOUD_UNAUTHORIZED = {"success": enum(False), "error": {"code": enum("unauthorized")}}


def cloud_page(item: Any) -> dict[str, Any]:
    """A cloud paged result."""
    return {"total": INT, "page_index": INT, "items": list_of(item)}


# --------------------------------------------------------------------------- aca.md

ACA_CENTER = {
    "id": STR,
    "name": STR,
    "released_at": TIME,
    "clp_site_id": STR,
    "cloud_project_id": nullable(STR),
    "time_zone": STR,
}
ACA_INVENTORY = {
    "id": STR,
    "center_id": STR,
    "name": STR,
    "kind": enum("office", "coworking", "meeting_room", "common"),
    "lock_ids": list_of(STR),
    "door_ids": list_of(STR),
}
ACA_BOOKING = {
    "id": STR,
    "company_id": STR,
    "center_id": STR,
    "inventory_id": STR,
    "starts_at": TIME,
    "ends_at": TIME,
    "status": enum("active", "cancelled", "ended"),
}
ACA_USER = {
    "id": STR,
    "name": STR,
    "email": STR,
    "company_id": STR,
    "center_id": STR,
    "clp_user_id": STR,
    "cloud_personnel_id": nullable(STR),
    "tags": list_of({"number": STR, "state": enum("assigned", "lost")}),
}
ACA_ACCESS = {
    "lock_id": STR,
    "inventory_id": STR,
    "state": enum("active", "disabled"),
    "disabled_by": nullable(enum("access_matrix", "booking_ended")),
    "changed_at": TIME,
}
ACA_MOBILE_KEY = {
    "id": STR,
    "state": enum("active", "revoked", "corrupted"),
    "issued_at": TIME,
    "last_error": nullable(enum("generation_failed")),
}
ACA_EVENT = {
    "id": STR,
    "type": enum("tag_rejected", "mkey_rejected", "tag_granted", "mkey_granted"),
    "occurred_at": TIME,
    "recorded_at": TIME,
    "user_id": STR,
    "lock_id": STR,
    "center_id": STR,
    "credential": STR,
}
ACA_VISIT = {
    "id": STR,
    "center_id": STR,
    "visitor_name": STR,
    "visitor_email": STR,
    "host_user_id": STR,
    "starts_at": TIME,
    "ends_at": TIME,
    "status": enum("scheduled", "active", "ended", "cancelled"),
    "cloud_visitor_id": nullable(STR),
}
ACA_PROBLEM = {"type": STR, "title": STR, "status": INT, "detail": STR, "code": STR}
ACA_MATRIX_ANSWER = {
    "user_id": STR,
    "lock_id": STR,
    "enabled": BOOL,
    "clp_sync": enum("queued"),
}


def aca_list(item: Any) -> dict[str, Any]:
    """An ACA cursor list."""
    return {"data": list_of(item), "next_cursor": nullable(STR)}


ACA_EVENTS = {"data": list_of(ACA_EVENT), "next_cursor": STR}  # never null

# --------------------------------------------------------------------------- clp.md

CLP_SITE = {"id": STR, "site_uid": STR, "customer_reference": STR, "time_zone": STR}
CLP_LOCK = {
    "id": STR,
    "customer_reference": STR,
    "lock_type": enum("escutcheon", "cylinder", "wall_reader", "locker"),
    "online": BOOL,
    "iq_link_state": enum("attached", "attached_pending", "detached", "detached_pending"),
    "privacy_mode": BOOL,
    "battery_level": enum("normal", "low", "critical"),
    "collection_id": STR,
    "iq": {"id": STR, "revision": enum(1, 2), "online": BOOL},
    "last_event_utc": nullable(TIME),
}
CLP_IQ = {
    "id": STR,
    "mac": STR,
    "revision": enum(1, 2),
    "online": BOOL,
    "collection_id": STR,
    "last_heartbeat_utc": TIME,
    "lock_ids": list_of(STR),
}
CLP_SITE_USER = {
    "id": STR,
    "user": {"id": STR},
    "alias": STR,
    "subscription_state": enum("subscribed", "suspended"),
    "blocked": BOOL,
}
CLP_KEY = {
    "id": STR,
    "key_type": enum("tag", "mkey", "pin"),
    "key_identifier": STR,
    "blocked": BOOL,
    "expiry_date": nullable(TIME),
}
_DAY = {
    d: BOOL for d in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
}
CLP_ACCESS_GROUP = {
    "id": STR,
    "customer_reference": STR,
    "lock_ids": list_of(STR),
    "time_schedules": list_of({**_DAY, "start_time": HHMMSS, "end_time": HHMMSS}),
}
CLP_AG_USER = {"user_id": STR}
CLP_ENTRY = {
    "id": STR,
    "event_category": enum("lock_opened", "lock_rejected"),
    "event_detail": nullable(enum("offline", "no_access", "blocked", "suspended", "low_batteries")),
    "utc_date_time": TIME,
    "lock_id": STR,
    "iq_id": STR,
    "collection_id": STR,
    "user_id": nullable(STR),
    "user_alias": nullable(STR),
    "access_by": enum("tag", "mkey", "pin", "inside_handle"),
    "key_id": nullable(STR),
}
CLP_INCIDENT = {
    "id": STR,
    "type": STR,  # the contract's list is open-ended ("…")
    "utc_date_time": TIME,
    "lock": nullable({"id": STR}),
    "iq": nullable({"id": STR}),
}
CLP_LARRY_ACCESS = {
    "user_id": STR,
    "lock_id": STR,
    "status": enum("granted", "denied"),
    "reason": nullable(enum("no_access_group", "no_time_schedule", "suspended", "blocked")),
    "access_group_ids": list_of(STR),
}
CLP_SYNC_JOB = {
    "job_id": STR,
    "collection_id": STR,
    "state": enum("queued", "running", "succeeded", "failed"),
    "error": nullable(enum("iq_offline", "internal")),
    "created_utc": TIME,
    "finished_utc": nullable(TIME),
}
CLP_SYNC_STARTED = {"job_id": STR, "state": enum("queued")}
CLP_ERROR = {"ErrorCode": STR, "Message": STR}
TOKEN = {"access_token": STR, "token_type": enum("Bearer"), "expires_in": INT}


def clp_list(item: Any) -> dict[str, Any]:
    """A CLP ``$top`` list."""
    return {"items": list_of(item), "next_page_link": nullable(STR), "count": INT}


def clp_feed(item: Any) -> dict[str, Any]:
    """A CLP continuation-token page."""
    return {"items": list_of(item), "continuation_token": nullable(STR)}


# --------------------------------------------------------------------------- checking


def problems(value: Any, spec: Any, path: str = "$") -> list[str]:
    """Every way ``value`` departs from ``spec`` (empty when it conforms)."""
    if isinstance(spec, T):
        return [] if spec.ok(value) else [f"{path}: expected {spec.name}, got {value!r}"]
    if isinstance(spec, tuple):
        kind, inner = spec
        if kind == "nullable":
            return [] if value is None else problems(value, inner, path)
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {value!r}"]
        out: list[str] = []
        for i, item in enumerate(value):
            out += problems(item, inner, f"{path}[{i}]")
        return out
    if not isinstance(value, dict):
        return [f"{path}: expected an object, got {value!r}"]
    out = []
    for key, sub in spec.items():
        if key not in value:
            out.append(f"{path}.{key}: missing")
        else:
            out += problems(value[key], sub, f"{path}.{key}")
    return out


def assert_shape(value: Any, spec: Any) -> None:
    """Fail with every departure from the contract listed."""
    found = problems(value, spec)
    assert not found, "\n".join(found)


def parse_time(text: str) -> datetime:
    """A contract time (ISO 8601 with Z)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
