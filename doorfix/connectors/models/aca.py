"""ACA's shapes (``contract/aca.md``): cursor pages, the events feed and the entities."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from doorfix.connectors.models import UtcDatetime, WireModel

ItemT = TypeVar("ItemT")

InventoryKind = Literal["office", "coworking", "meeting_room", "common"]
BookingStatus = Literal["active", "cancelled", "ended"]
TagState = Literal["assigned", "lost"]
AccessState = Literal["active", "disabled"]
DisabledBy = Literal["access_matrix", "booking_ended"]
MobileKeyState = Literal["active", "revoked", "corrupted"]
MobileKeyError = Literal["generation_failed"]
EventType = Literal["tag_rejected", "mkey_rejected", "tag_granted", "mkey_granted"]
VisitStatus = Literal["scheduled", "active", "ended", "cancelled"]


class Center(WireModel):
    """A center; its CLP site and cloud project hang off it."""

    id: str
    name: str
    #: ``null`` when the operator never set it: the center is kept and works as released
    released_at: UtcDatetime | None
    clp_site_id: str
    cloud_project_id: str | None = None
    time_zone: str


class Inventory(WireModel):
    """A bookable space and the CLP locks and cloud doors that open it."""

    id: str
    center_id: str
    name: str
    kind: InventoryKind
    lock_ids: tuple[str, ...]
    door_ids: tuple[str, ...]


class Booking(WireModel):
    """A company's booking of one inventory."""

    id: str
    company_id: str
    center_id: str
    inventory_id: str
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    status: BookingStatus


class Tag(WireModel):
    """A tag (card) number registered to a user."""

    number: str
    state: TagState


class User(WireModel):
    """A user; ``clp_user_id`` is the CLP platform user id."""

    id: str
    name: str
    email: str
    company_id: str
    center_id: str
    clp_user_id: str
    cloud_personnel_id: str | None = None
    tags: tuple[Tag, ...]


class Access(WireModel):
    """A user's access to one lock, as ACA sees it."""

    lock_id: str
    inventory_id: str
    state: AccessState
    disabled_by: DisabledBy | None = None
    changed_at: UtcDatetime


class MobileKey(WireModel):
    """A user's mobile key."""

    id: str
    state: MobileKeyState
    issued_at: UtcDatetime
    last_error: MobileKeyError | None = None


class Event(WireModel):
    """An event of the feed; ``credential`` is a tag number or a mobile key id."""

    id: str
    type: EventType
    occurred_at: UtcDatetime
    recorded_at: UtcDatetime
    user_id: str
    lock_id: str
    center_id: str
    credential: str


class Visit(WireModel):
    """A visit; the cloud visitor links back through ``aca_visit_id``."""

    id: str
    center_id: str
    visitor_name: str
    visitor_email: str
    host_user_id: str
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    status: VisitStatus
    cloud_visitor_id: str | None = None


class AccessMatrixChange(WireModel):
    """The Access Matrix PUT's answer; the push to CLP is asynchronous (``clp_sync``)."""

    user_id: str
    lock_id: str
    enabled: bool
    clp_sync: Literal["queued"]


class ListPage(WireModel, Generic[ItemT]):
    """A page of a cursor list; ``next_cursor`` is ``None`` on the last page."""

    data: tuple[ItemT, ...]
    next_cursor: str | None = None


class EventPage(WireModel):
    """A page of the events feed; ``next_cursor`` is always set: store it to resume from."""

    data: tuple[Event, ...]
    next_cursor: str

    @property
    def events(self) -> tuple[Event, ...]:
        """The page's events, ordered by ``recorded_at``."""
        return self.data
