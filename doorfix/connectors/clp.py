"""ClpClient: the lock platform's Connect API and its two "Larry" endpoints, typed.

Paging (``contract/clp.md``): most lists follow an absolute ``next_page_link``; sites and site
users answer a bare array; entries and incidents page with a continuation token that is sent
back in the ``CLP-Continuation-Token`` header and may come with an empty page.

Sync Access is a non-idempotent POST, sent with ``CallRule.UNSAFE`` (the layer repeats it
only when the server surely did not act: 429, connection refused, ``403 2203``). While a sync
of the collection runs, CLP answers ``409 2301`` with that job's id: the client adopts that
job instead of failing, which is exactly what a second sync would have achieved.
"""

from __future__ import annotations

import re
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
    SkipHandler,
    decode_page,
    iter_links,
    iter_tokens,
)
from doorfix.connectors.models import iso_z
from doorfix.connectors.models.clp import (
    AccessGroup,
    AccessGroupUser,
    Entry,
    Incident,
    Iq,
    Key,
    LarryAccess,
    LinkPage,
    Lock,
    Site,
    SiteUser,
    SyncAccepted,
    SyncJob,
    SyncJobRef,
    TokenPage,
)
from doorfix.errors import ContractError, PermanentError, System

SYSTEM: System = "clp"
CONTINUATION_HEADER = "CLP-Continuation-Token"
#: ``409 2301``: a Sync Access is already running for the collection
SYNC_RUNNING = "2301"
#: the contract's largest ``$top``: fewest round trips
PAGE_SIZE = 1000

T = TypeVar("T")
P = TypeVar("P")

# The layer's errors carry (code, message) only, so the job id of a 409 2301 travels in the
# message, in this exact form, from vendor_error to sync_access.
_JOB_ID_MARK = re.compile(r"\[job_id=(?P<job_id>[^\]]+)\]$")


@dataclass(frozen=True, slots=True)
class _Adapters(Generic[P, T]):
    strict: TypeAdapter[P]
    item_json: TypeAdapter[T]


_LENIENT_LINKS: TypeAdapter[LinkPage[Any]] = TypeAdapter(LinkPage[Any])
_LENIENT_TOKENS: TypeAdapter[TokenPage[Any]] = TypeAdapter(TokenPage[Any])
_LENIENT_ARRAY: TypeAdapter[tuple[Any, ...]] = TypeAdapter(tuple[Any, ...])
_LOCK = TypeAdapter(Lock)
_IQ = TypeAdapter(Iq)
_LARRY = TypeAdapter(LarryAccess)
_SYNC_ACCEPTED = TypeAdapter(SyncAccepted)
_SYNC_JOB = TypeAdapter(SyncJob)
_SITES = _Adapters(TypeAdapter(tuple[Site, ...]), TypeAdapter(Json[Site]))
_SITE_USERS = _Adapters(TypeAdapter(tuple[SiteUser, ...]), TypeAdapter(Json[SiteUser]))
_LOCKS = _Adapters(TypeAdapter(LinkPage[Lock]), TypeAdapter(Json[Lock]))
_KEYS = _Adapters(TypeAdapter(LinkPage[Key]), TypeAdapter(Json[Key]))
_ACCESS_GROUPS = _Adapters(TypeAdapter(LinkPage[AccessGroup]), TypeAdapter(Json[AccessGroup]))
_GROUP_USERS = _Adapters(TypeAdapter(LinkPage[AccessGroupUser]), TypeAdapter(Json[AccessGroupUser]))
_ENTRIES = _Adapters(TypeAdapter(TokenPage[Entry]), TypeAdapter(Json[Entry]))
_INCIDENTS = _Adapters(TypeAdapter(TokenPage[Incident]), TypeAdapter(Json[Incident]))


class _ErrorBody(BaseModel):
    """``{"ErrorCode", "Message"}`` (plus ``job_id`` on a 2301), read leniently."""

    model_config = ConfigDict(extra="ignore")

    ErrorCode: str | int | None = None
    Message: str | None = None
    job_id: str | None = None


_ERROR_BODY = TypeAdapter(_ErrorBody)


def vendor_error(response: httpx.Response) -> tuple[str | None, str]:
    """CLP's ``(ErrorCode, Message)`` of an error response; never raises.

    On ``2301`` the running job's id is appended to the message as ``[job_id=…]``.
    """
    fallback = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    try:
        body = _ERROR_BODY.validate_json(response.content)
    except ValidationError:
        return None, fallback
    code = None if body.ErrorCode is None else str(body.ErrorCode)
    message = body.Message or fallback
    if code == SYNC_RUNNING and body.job_id:
        message = f"{message} [job_id={body.job_id}]"
    return code, message


def _segment(value: str) -> str:
    # ids are opaque: never let one add a path segment or a query
    return quote(value, safe="")


def _site(site_id: str) -> str:
    return f"/v1.2/sites/{_segment(site_id)}"


class ClpClient(ClientBase):
    """Typed async client of CLP (Connect API and Larry), over one :class:`HttpLayer`."""

    MAX_PAGE_SIZE = PAGE_SIZE

    # ------------------------------------------------------------------ plumbing

    async def _get(self, path: str, endpoint: str, adapter: TypeAdapter[T]) -> T:
        response = await self._layer.request("GET", path, endpoint=endpoint)
        return decode(adapter, response.content, system=SYSTEM, endpoint=endpoint)

    async def _array(
        self,
        path: str,
        endpoint: str,
        adapters: _Adapters[tuple[T, ...], T],
        on_skip: SkipHandler | None,
    ) -> AsyncIterator[T]:
        # a bare array is one page: nothing to follow
        response = await self._layer.request("GET", path, endpoint=endpoint)
        decoded = decode_page(
            response.content,
            strict=adapters.strict,
            lenient=_LENIENT_ARRAY,
            item_json=adapters.item_json,
            items_at=(),
            system=SYSTEM,
            endpoint=endpoint,
            on_skip=on_skip or self._on_skip,
        )
        for item in decoded.page:
            yield item

    def _links(
        self,
        path: str,
        endpoint: str,
        adapters: _Adapters[LinkPage[T], T],
        on_skip: SkipHandler | None,
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[T]:
        skip = on_skip or self._on_skip

        async def fetch(link: str | None) -> tuple[Sequence[T], int, str | None]:
            if link is None:
                query = {**(params or {}), "$top": str(self._page_size)}
                response = await self._layer.request("GET", path, endpoint=endpoint, params=query)
            else:
                # the link carries its own query ($top, $skip or the server's equivalent)
                response = await self._layer.request("GET", link, endpoint=endpoint)
            decoded = decode_page(
                response.content,
                strict=adapters.strict,
                lenient=_LENIENT_LINKS,
                item_json=adapters.item_json,
                items_at=("items",),
                system=SYSTEM,
                endpoint=endpoint,
                on_skip=skip,
            )
            following = decoded.page.next_page_link
            if following is not None:
                following = _same_origin(response.url, following, endpoint=endpoint)
            return decoded.page.items, decoded.wire_items, following

        return iter_links(fetch, system=SYSTEM, endpoint=endpoint)

    def _tokens(
        self,
        path: str,
        endpoint: str,
        since: datetime,
        adapters: _Adapters[TokenPage[T], T],
        on_skip: SkipHandler | None,
    ) -> AsyncIterator[T]:
        skip = on_skip or self._on_skip
        # whole seconds, rounded down: "ge" then never misses a row, and the feed's
        # consumers already drop the repeats a feed may deliver
        first = {
            "$filter": f"utc_date_time ge {iso_z(since, whole_seconds=True)}",
            "$orderby": "utc_date_time asc",
            "$top": str(self._page_size),
        }

        async def fetch(token: str | None) -> tuple[Sequence[T], int, str | None]:
            if token is None:
                response = await self._layer.request("GET", path, endpoint=endpoint, params=first)
            else:
                # the token carries the query: the next call repeats only the path
                response = await self._layer.request(
                    "GET", path, endpoint=endpoint, headers={CONTINUATION_HEADER: token}
                )
            decoded = decode_page(
                response.content,
                strict=adapters.strict,
                lenient=_LENIENT_TOKENS,
                item_json=adapters.item_json,
                items_at=("items",),
                system=SYSTEM,
                endpoint=endpoint,
                on_skip=skip,
            )
            following = decoded.page.continuation_token
            if following is not None and not (following.isascii() and following.isprintable()):
                # it goes back in a header, which carries printable ASCII only ("escaped JSON")
                raise ContractError(
                    "continuation token is not printable ASCII",
                    system=SYSTEM,
                    endpoint=endpoint,
                    field="continuation_token",
                )
            return decoded.page.items, decoded.wire_items, following

        return iter_tokens(fetch, system=SYSTEM, endpoint=endpoint)

    # ------------------------------------------------------------------ sites and users

    def iter_sites(self, *, on_skip: SkipHandler | None = None) -> AsyncIterator[Site]:
        """Every site the client may see (one bare array)."""
        return self._array("/v1.2/sites", "list_sites", _SITES, on_skip)

    def iter_site_users(
        self, site_id: str, *, on_skip: SkipHandler | None = None
    ) -> AsyncIterator[SiteUser]:
        """The users of a site (one bare array)."""
        return self._array(f"{_site(site_id)}/users", "list_site_users", _SITE_USERS, on_skip)

    def iter_keys(
        self, site_id: str, site_user_id: str, *, on_skip: SkipHandler | None = None
    ) -> AsyncIterator[Key]:
        """A site user's keys (tags, mobile keys, PINs)."""
        path = f"{_site(site_id)}/users/{_segment(site_user_id)}/keys"
        return self._links(path, "list_keys", _KEYS, on_skip)

    # ------------------------------------------------------------------ locks and IQs

    def iter_locks(
        self, site_id: str, *, on_skip: SkipHandler | None = None
    ) -> AsyncIterator[Lock]:
        """Every lock of a site, with its IQ link, privacy mode and battery."""
        return self._links(f"{_site(site_id)}/locks", "list_locks", _LOCKS, on_skip)

    async def get_lock(self, site_id: str, lock_id: str) -> Lock:
        """One lock."""
        return await self._get(f"{_site(site_id)}/locks/{_segment(lock_id)}", "get_lock", _LOCK)

    async def get_iq(self, site_id: str, iq_id: str) -> Iq:
        """One IQ hub."""
        return await self._get(f"{_site(site_id)}/iqs/{_segment(iq_id)}", "get_iq", _IQ)

    # ------------------------------------------------------------------ access groups

    def iter_access_groups(
        self, site_id: str, *, on_skip: SkipHandler | None = None
    ) -> AsyncIterator[AccessGroup]:
        """The access groups of a site, with their locks and time schedules."""
        path = f"{_site(site_id)}/access_groups"
        return self._links(path, "list_access_groups", _ACCESS_GROUPS, on_skip)

    def iter_access_group_users(
        self, site_id: str, access_group_id: str, *, on_skip: SkipHandler | None = None
    ) -> AsyncIterator[AccessGroupUser]:
        """The members (platform user ids) of an access group."""
        path = f"{_site(site_id)}/access_groups/{_segment(access_group_id)}/users"
        return self._links(path, "list_access_group_users", _GROUP_USERS, on_skip)

    # ------------------------------------------------------------------ feeds

    def iter_entries(
        self, site_id: str, since: datetime, *, on_skip: SkipHandler | None = None
    ) -> AsyncIterator[Entry]:
        """Entries (locks opened or rejected) at or after ``since``, oldest first."""
        path = f"/v1.1/sites/{_segment(site_id)}/entries"
        return self._tokens(path, "entries", since, _ENTRIES, on_skip)

    def iter_incidents(
        self, site_id: str, since: datetime, *, on_skip: SkipHandler | None = None
    ) -> AsyncIterator[Incident]:
        """Incidents (connection lost/restored, lock time set, ...) at or after ``since``."""
        path = f"/v1.1/sites/{_segment(site_id)}/incidents"
        return self._tokens(path, "incidents", since, _INCIDENTS, on_skip)

    # ------------------------------------------------------------------ Larry

    async def larry_access(self, site_id: str, user_id: str, lock_id: str) -> LarryAccess:
        """Whether CLP grants the platform user ``user_id`` the lock, and if not, why."""
        response = await self._layer.request(
            "GET",
            f"/larry/v1/sites/{_segment(site_id)}/access",
            endpoint="larry_access",
            params={"user_id": user_id, "lock_id": lock_id},
        )
        return decode(_LARRY, response.content, system=SYSTEM, endpoint="larry_access")

    async def sync_access(self, site_id: str, collection_id: str) -> SyncJobRef:
        """Push a collection's access down to its IQs; adopt the running job on ``409 2301``."""
        path = (
            f"/larry/v1/sites/{_segment(site_id)}/collections/{_segment(collection_id)}/sync_access"
        )
        try:
            response = await self._layer.request(
                "POST", path, endpoint="sync_access", rule=CallRule.UNSAFE
            )
        except PermanentError as exc:
            if exc.code != SYNC_RUNNING:
                raise
            return SyncJobRef(
                job_id=_running_job_id(exc), collection_id=collection_id, adopted=True
            )
        accepted = decode(
            _SYNC_ACCEPTED, response.content, system=SYSTEM, endpoint="sync_access", write=True
        )
        return SyncJobRef(job_id=accepted.job_id, collection_id=collection_id, adopted=False)

    async def get_sync_job(self, site_id: str, job_id: str) -> SyncJob:
        """A Sync Access job's state."""
        path = f"/larry/v1/sites/{_segment(site_id)}/sync_jobs/{_segment(job_id)}"
        return await self._get(path, "get_sync_job", _SYNC_JOB)


def _running_job_id(exc: PermanentError) -> str:
    match = _JOB_ID_MARK.search(exc.message)
    if match is None:
        raise ContractError(
            "409 2301 without the running job's id",
            system=SYSTEM,
            endpoint=exc.endpoint,
            field="job_id",
            status=exc.status,
        ) from exc
    return match.group("job_id")


def _same_origin(page_url: httpx.URL, link: str, *, endpoint: str) -> str:
    """The next page's absolute URL, refused when it is relative or leaves the API's origin.

    The request to it carries our bearer token, which must never go to another host. The
    contract gives absolute links; a relative one would resolve to a new URL from every page
    it is read on, so a list that repeats it would never be seen to stand still.
    """
    try:
        target = httpx.URL(link)
    except httpx.InvalidURL as exc:
        raise ContractError(
            f"next_page_link is not a URL: {exc}",
            system=SYSTEM,
            endpoint=endpoint,
            field="next_page_link",
        ) from exc
    if not target.is_absolute_url:
        raise ContractError(
            "next_page_link is not an absolute URL",
            system=SYSTEM,
            endpoint=endpoint,
            field="next_page_link",
        )
    if (target.scheme, target.host, target.port) != (page_url.scheme, page_url.host, page_url.port):
        raise ContractError(
            "next_page_link points outside the API's origin",
            system=SYSTEM,
            endpoint=endpoint,
            field="next_page_link",
        )
    return str(target)
