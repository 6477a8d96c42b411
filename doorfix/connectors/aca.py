"""AcaClient: the operator's access-control app (``contract/aca.md``), typed.

Lists page with ``?limit=``/``?cursor=``; the events feed is read with ``?after=`` and always
answers a cursor to resume from. Errors are problem+json; the vendor code is its ``code``
(``409 no_booking`` on the Access Matrix becomes ``PermanentError(code="no_booking")``).
The Access Matrix PUT sets an absolute value and the contract calls it safe to retry, so it
is the one ACA write sent with ``CallRule.IDEMPOTENT``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Json, TypeAdapter, ValidationError

from doorfix.connectors._client import ClientBase
from doorfix.connectors._decode import decode
from doorfix.connectors._http import CallRule
from doorfix.connectors._paging import (
    Decoded,
    SkipHandler,
    decode_page,
    iter_cursor,
)
from doorfix.connectors.models import iso_z
from doorfix.connectors.models.aca import (
    Access,
    AccessMatrixChange,
    Booking,
    Center,
    Event,
    EventPage,
    Inventory,
    ListPage,
    MobileKey,
    User,
    Visit,
)
from doorfix.errors import ContractError, System

SYSTEM: System = "aca"
API = "/api/v1"
#: the contract's largest ``limit``: fewest round trips
PAGE_SIZE = 500

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _PagedAdapters(Generic[T]):
    strict: TypeAdapter[ListPage[T]]
    item_json: TypeAdapter[T]


_LENIENT_LIST: TypeAdapter[ListPage[Any]] = TypeAdapter(ListPage[Any])
_CENTER = TypeAdapter(Center)
_USER = TypeAdapter(User)
_MATRIX = TypeAdapter(AccessMatrixChange)
_EVENTS = TypeAdapter(EventPage)
_EVENT_JSON = TypeAdapter(Json[Event])
_CENTERS = _PagedAdapters(TypeAdapter(ListPage[Center]), TypeAdapter(Json[Center]))
_INVENTORIES = _PagedAdapters(TypeAdapter(ListPage[Inventory]), TypeAdapter(Json[Inventory]))
_BOOKINGS = _PagedAdapters(TypeAdapter(ListPage[Booking]), TypeAdapter(Json[Booking]))
_USERS = _PagedAdapters(TypeAdapter(ListPage[User]), TypeAdapter(Json[User]))
_ACCESSES = _PagedAdapters(TypeAdapter(ListPage[Access]), TypeAdapter(Json[Access]))
_MOBILE_KEYS = _PagedAdapters(TypeAdapter(ListPage[MobileKey]), TypeAdapter(Json[MobileKey]))
_VISITS = _PagedAdapters(TypeAdapter(ListPage[Visit]), TypeAdapter(Json[Visit]))


class _LenientEventPage(BaseModel):
    """The events page with its items unchecked, for the per-item fallback."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    data: tuple[Any, ...]
    next_cursor: str


_LENIENT_EVENTS = TypeAdapter(_LenientEventPage)


class _Problem(BaseModel):
    """A problem+json body, read leniently: only ``code`` and a message matter."""

    model_config = ConfigDict(extra="ignore")

    title: str | None = None
    detail: str | None = None
    code: str | None = None


_PROBLEM = TypeAdapter(_Problem)


def vendor_error(response: httpx.Response) -> tuple[str | None, str]:
    """ACA's ``(code, detail or title)`` of a problem+json response; never raises."""
    fallback = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    try:
        problem = _PROBLEM.validate_json(response.content)
    except ValidationError:
        return None, fallback
    return problem.code, problem.detail or problem.title or fallback


def _segment(value: str) -> str:
    # ids are opaque: never let one add a path segment or a query
    return quote(value, safe="")


class EventFeed:
    """Pages of the events feed from a cursor until an empty page; ``cursor`` resumes it.

    ``cursor`` starts at ``after`` and moves to each page's ``next_cursor`` as the page is
    read, the empty last page's included, so once the loop ends it is what to store. A
    caller that stores the cursor as it goes should store ``page.next_cursor`` after it has
    dealt with that page.
    """

    def __init__(
        self, client: AcaClient, after: str | None, *, limit: int, on_skip: SkipHandler | None
    ) -> None:
        self._client = client
        self._limit = limit
        self._on_skip = on_skip
        #: where the next read starts: the last cursor the feed answered
        self.cursor = after

    def __aiter__(self) -> AsyncIterator[EventPage]:
        return self._pages()

    async def _pages(self) -> AsyncIterator[EventPage]:
        while True:
            sent = self.cursor
            decoded = await self._client._read_events(
                sent, limit=self._limit, on_skip=self._on_skip
            )
            self.cursor = decoded.page.next_cursor
            if decoded.wire_items == 0:
                return
            if self.cursor == sent:
                # events, yet the cursor to resume from is the one asked with: read on, the
                # same page would come back forever
                raise ContractError(
                    "a page of events came back with the cursor it was asked for "
                    "(the feed would never end)",
                    system=SYSTEM,
                    endpoint="events",
                    field="next_cursor",
                )
            yield decoded.page


class AcaClient(ClientBase):
    """Typed async client of ACA's REST API, over one :class:`HttpLayer`."""

    MAX_PAGE_SIZE = PAGE_SIZE

    # ------------------------------------------------------------------ plumbing

    def _iter(
        self,
        path: str,
        endpoint: str,
        query: Mapping[str, str | None],
        adapters: _PagedAdapters[T],
        on_skip: SkipHandler | None,
    ) -> AsyncIterator[T]:
        skip = on_skip or self._on_skip
        base = {name: value for name, value in query.items() if value is not None}

        async def fetch(cursor: str | None) -> tuple[Sequence[T], int, str | None]:
            params: dict[str, str | int] = {**base, "limit": self._page_size}
            if cursor is not None:
                params["cursor"] = cursor
            response = await self._layer.request("GET", path, endpoint=endpoint, params=params)
            decoded = decode_page(
                response.content,
                strict=adapters.strict,
                lenient=_LENIENT_LIST,
                item_json=adapters.item_json,
                items_at=("data",),
                system=SYSTEM,
                endpoint=endpoint,
                on_skip=skip,
            )
            return decoded.page.data, decoded.wire_items, decoded.page.next_cursor

        return iter_cursor(fetch, system=SYSTEM, endpoint=endpoint)

    async def _get(self, path: str, endpoint: str, adapter: TypeAdapter[T]) -> T:
        response = await self._layer.request("GET", path, endpoint=endpoint)
        return decode(adapter, response.content, system=SYSTEM, endpoint=endpoint)

    # ------------------------------------------------------------------ centers and spaces

    def iter_centers(self, *, on_skip: SkipHandler | None = None) -> AsyncIterator[Center]:
        """Every center (with its CLP site and cloud project)."""
        return self._iter(f"{API}/centers", "list_centers", {}, _CENTERS, on_skip)

    async def get_center(self, center_id: str) -> Center:
        """One center."""
        return await self._get(f"{API}/centers/{_segment(center_id)}", "get_center", _CENTER)

    def iter_inventories(
        self, center_id: str, *, on_skip: SkipHandler | None = None
    ) -> AsyncIterator[Inventory]:
        """The inventories of a center, with their lock and door ids."""
        query = {"center_id": center_id}
        return self._iter(f"{API}/inventories", "list_inventories", query, _INVENTORIES, on_skip)

    def iter_bookings(
        self,
        *,
        company_id: str | None = None,
        center_id: str | None = None,
        active_at: datetime | None = None,
        on_skip: SkipHandler | None = None,
    ) -> AsyncIterator[Booking]:
        """Bookings, filtered by company, center and the moment they are active at."""
        query = {
            "company_id": company_id,
            "center_id": center_id,
            "active_at": None if active_at is None else iso_z(active_at),
        }
        return self._iter(f"{API}/bookings", "list_bookings", query, _BOOKINGS, on_skip)

    # ------------------------------------------------------------------ users

    async def get_user(self, user_id: str) -> User:
        """One user, with tags."""
        return await self._get(f"{API}/users/{_segment(user_id)}", "get_user", _USER)

    def find_users(
        self,
        *,
        email: str | None = None,
        tag: str | None = None,
        clp_user_id: str | None = None,
        cloud_personnel_id: str | None = None,
        on_skip: SkipHandler | None = None,
    ) -> AsyncIterator[User]:
        """Users matching exactly one of email, tag, clp_user_id or cloud_personnel_id."""
        query = {
            "email": email,
            "tag": tag,
            "clp_user_id": clp_user_id,
            "cloud_personnel_id": cloud_personnel_id,
        }
        if sum(value is not None for value in query.values()) != 1:
            raise ValueError(f"give exactly one of {', '.join(query)}")
        return self._iter(f"{API}/users", "find_users", query, _USERS, on_skip)

    def iter_accesses(
        self, user_id: str, *, on_skip: SkipHandler | None = None
    ) -> AsyncIterator[Access]:
        """A user's accesses, lock by lock, active or disabled (and by what)."""
        path = f"{API}/users/{_segment(user_id)}/accesses"
        return self._iter(path, "list_accesses", {}, _ACCESSES, on_skip)

    def iter_mobile_keys(
        self, user_id: str, *, on_skip: SkipHandler | None = None
    ) -> AsyncIterator[MobileKey]:
        """A user's mobile keys."""
        path = f"{API}/users/{_segment(user_id)}/mobile_keys"
        return self._iter(path, "list_mobile_keys", {}, _MOBILE_KEYS, on_skip)

    async def set_access_matrix(
        self, user_id: str, lock_id: str, *, enabled: bool
    ) -> AccessMatrixChange:
        """Enable or disable a user's access to a lock (``409 no_booking`` when none gives it)."""
        path = f"{API}/access_matrix/{_segment(user_id)}/{_segment(lock_id)}"
        response = await self._layer.request(
            "PUT",
            path,
            endpoint="access_matrix",
            json={"enabled": enabled},
            # the contract: idempotent, safe to retry
            rule=CallRule.IDEMPOTENT,
        )
        return decode(
            _MATRIX, response.content, system=SYSTEM, endpoint="access_matrix", write=True
        )

    # ------------------------------------------------------------------ events and visits

    async def read_events(
        self, after: str | None, *, limit: int = PAGE_SIZE, on_skip: SkipHandler | None = None
    ) -> EventPage:
        """One page of events after the cursor ``after`` (``None``: the oldest kept)."""
        return (await self._read_events(after, limit=limit, on_skip=on_skip)).page

    async def _read_events(
        self, after: str | None, *, limit: int = PAGE_SIZE, on_skip: SkipHandler | None = None
    ) -> Decoded[EventPage]:
        # the wire count (skipped items included) tells an empty page from a skipped one
        if not 1 <= limit <= PAGE_SIZE:
            raise ValueError(f"limit must be 1..{PAGE_SIZE}")
        params: dict[str, str | int] = {"limit": limit}
        if after is not None:
            params["after"] = after
        response = await self._layer.request(
            "GET", f"{API}/events", endpoint="events", params=params
        )
        return decode_page(
            response.content,
            strict=_EVENTS,
            lenient=_LENIENT_EVENTS,
            item_json=_EVENT_JSON,
            items_at=("data",),
            system=SYSTEM,
            endpoint="events",
            on_skip=on_skip or self._on_skip,
        )

    def event_pages(
        self, after: str | None, *, limit: int = PAGE_SIZE, on_skip: SkipHandler | None = None
    ) -> EventFeed:
        """Pages of events from ``after`` until an empty page; the feed's ``cursor`` resumes."""
        if not 1 <= limit <= PAGE_SIZE:
            raise ValueError(f"limit must be 1..{PAGE_SIZE}")
        return EventFeed(self, after, limit=limit, on_skip=on_skip)

    def iter_visits(
        self,
        *,
        center_id: str | None = None,
        active_at: datetime | None = None,
        cloud_visitor_id: str | None = None,
        on_skip: SkipHandler | None = None,
    ) -> AsyncIterator[Visit]:
        """Visits, filtered by center, the moment they are active at, and cloud visitor."""
        query = {
            "center_id": center_id,
            "active_at": None if active_at is None else iso_z(active_at),
            "cloud_visitor_id": cloud_visitor_id,
        }
        return self._iter(f"{API}/visits", "list_visits", query, _VISITS, on_skip)
