"""Facts for one run, each fetched at most once and shared (Home Assistant's coordinator).

Every getter is memoised by its arguments for the life of a :class:`RunFetcher`, and
concurrent callers of the same fact await the same request, so ten incidents at one center
cost one call for its inventories, not ten. A single read answered ``not found`` is ``None``.

A shared read belongs to the run, not to its first caller: a caller that is cancelled (its
sibling read failed, the run was stopped) leaves it running for the others. A read that
failed stays failed for the run: every caller of that fact gets the same error (it is never
turned into a value, nor asked again within the run).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Hashable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from doorfix.agent.engine.shards import Shard
from doorfix.connectors._paging import SkipHandler
from doorfix.connectors.factory import Clients
from doorfix.connectors.models.aca import (
    Access,
    Booking,
    Center,
    Inventory,
    MobileKey,
    User,
    Visit,
)
from doorfix.connectors.models.cloud import Door, Personnel, ProjectInfo, Visitor
from doorfix.connectors.models.clp import Entry, Incident, Iq, LarryAccess, Lock
from doorfix.errors import PermanentError
from doorfix.playbooks.facts import ProjectFacts

T = TypeVar("T")
NOT_FOUND = frozenset({"not_found", "2202"})


async def collect(items: AsyncIterator[T]) -> tuple[T, ...]:
    """Drain an async iterator into a tuple."""
    return tuple([item async for item in items])


class Concurrently:
    """Reads started together (a task group); leaving the block waits for all of them.

    When one fails the others are cancelled and its error is raised as itself (the first
    one, unwrapped from the task group's ``ExceptionGroup``), so a caller sees the same
    ``UpstreamError`` or ``ContractError``, naming its system and endpoint, that a
    sequential read would have raised.
    """

    def __init__(self) -> None:
        self._group = asyncio.TaskGroup()

    def start(self, call: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Start ``call``; its task's result is there once the block is left."""
        return self._group.create_task(call)

    async def __aenter__(self) -> Concurrently:
        await self._group.__aenter__()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        first: BaseException | None = None
        try:
            await self._group.__aexit__(kind, error, trace)
        except BaseExceptionGroup as failed:
            first = _first(failed)
        if first is not None:
            raise first


async def gather_all(*calls: Coroutine[Any, Any, T]) -> list[T]:
    """Await ``calls`` at the same time; their results in the order given (see
    :class:`Concurrently` for a failure)."""
    async with Concurrently() as reads:
        tasks = [reads.start(call) for call in calls]
    return [task.result() for task in tasks]


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first error of a (possibly nested) exception group."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a shared read's error as seen (its waiters may all have been cancelled)."""
    if not future.cancelled():
        future.exception()


async def or_none(call: Awaitable[T]) -> T | None:
    """Await ``call``; a ``not found`` answer becomes ``None``."""
    try:
        return await call
    except PermanentError as exc:
        if exc.status == 404 or exc.code in NOT_FOUND:
            return None
        raise


class RunFetcher:
    """The facts of one run, memoised.

    ``shard``: the run works only the centers of this shard (:meth:`own_centers`, and
    :meth:`owns` for an event or an incident); every fact of any center can still be read.
    """

    def __init__(
        self,
        clients: Clients,
        *,
        now: datetime,
        on_skip: SkipHandler,
        on_warning: Callable[[str], None] | None = None,
        shard: Shard | None = None,
    ) -> None:
        self.clients = clients
        self.now = now
        self.shard = shard
        self._skip = on_skip
        self._warn = on_warning or (lambda _message: None)
        self._memo: dict[Hashable, asyncio.Future[Any]] = {}

    @property
    def on_skip(self) -> SkipHandler:
        """Where a skipped record of this run is reported (feeds read outside the memo too)."""
        return self._skip

    async def _once(self, key: Hashable, make: Callable[[], Awaitable[T]]) -> T:
        future = self._memo.get(key)
        if future is None:
            future = asyncio.ensure_future(make())
            future.add_done_callback(_retrieved)
            self._memo[key] = future
        result: T = await asyncio.shield(future)
        return result

    # ------------------------------------------------------------------ ACA

    async def centers(self) -> tuple[Center, ...]:
        """Every center ACA knows; one without a release date is kept, with a warning."""

        async def read() -> tuple[Center, ...]:
            centers = await collect(self.clients.aca.iter_centers(on_skip=self._skip))
            for center in centers:
                if center.released_at is None and self.owns(center.id):
                    self._warn(
                        f"center {center.id} ({center.name}) has no release date "
                        "(released_at null): treated as released"
                    )
            return centers

        return await self._once("centers", read)

    def owns(self, center_id: str | None) -> bool:
        """Whether the run works this center (its shard's, or every center)."""
        return self.shard is None or self.shard.holds(center_id)

    def owns_subject(self, subject: Mapping[str, str]) -> bool:
        """Whether the run works an incident of this subject (by its center; none: shard 0)."""
        return self.owns(subject.get("center_id"))

    async def own_centers(self) -> tuple[Center, ...]:
        """The centers this run works: its shard's (every center without one)."""
        return tuple(c for c in await self.centers() if self.owns(c.id))

    async def center(self, center_id: str) -> Center | None:
        """One center (from the list when it was read, else by id)."""
        for center in await self.centers():
            if center.id == center_id:
                return center
        return None

    async def center_for_project(self, project_id: str) -> Center | None:
        """The center whose cloud project is ``project_id``."""
        for center in await self.centers():
            if center.cloud_project_id == project_id:
                return center
        return None

    async def inventories(self, center_id: str) -> tuple[Inventory, ...]:
        """A center's inventories."""
        aca = self.clients.aca
        return await self._once(
            ("inventories", center_id),
            lambda: collect(aca.iter_inventories(center_id, on_skip=self._skip)),
        )

    async def bookings(self, company_id: str, center_id: str) -> tuple[Booking, ...]:
        """A company's bookings at a center that are active now."""
        aca = self.clients.aca
        return await self._once(
            ("bookings", company_id, center_id),
            lambda: collect(
                aca.iter_bookings(
                    company_id=company_id,
                    center_id=center_id,
                    active_at=self.now,
                    on_skip=self._skip,
                )
            ),
        )

    async def user(self, user_id: str) -> User | None:
        """One ACA user."""
        return await self._once(
            ("user", user_id), lambda: or_none(self.clients.aca.get_user(user_id))
        )

    async def users_by_tag(self, tag: str) -> tuple[User, ...]:
        """ACA users holding ``tag``."""
        aca = self.clients.aca
        return await self._once(
            ("users_by_tag", tag), lambda: collect(aca.find_users(tag=tag, on_skip=self._skip))
        )

    async def accesses(self, user_id: str) -> tuple[Access, ...]:
        """A user's ACA accesses."""
        aca = self.clients.aca
        return await self._once(
            ("accesses", user_id),
            lambda: collect(aca.iter_accesses(user_id, on_skip=self._skip)),
        )

    async def mobile_keys(self, user_id: str) -> tuple[MobileKey, ...]:
        """A user's mobile keys."""
        aca = self.clients.aca
        return await self._once(
            ("mobile_keys", user_id),
            lambda: collect(aca.iter_mobile_keys(user_id, on_skip=self._skip)),
        )

    async def visit(
        self, center_id: str | None, visit_id: str, cloud_visitor_id: str
    ) -> Visit | None:
        """ACA's visit ``visit_id`` (found through the cloud visitor it names)."""
        aca = self.clients.aca

        async def find() -> Visit | None:
            async for visit in aca.iter_visits(
                center_id=center_id, cloud_visitor_id=cloud_visitor_id, on_skip=self._skip
            ):
                if visit.id == visit_id:
                    return visit
            return None

        return await self._once(("visit", visit_id), find)

    # ------------------------------------------------------------------ cloud

    async def project(self, project_id: str, *, permissions: bool = True) -> ProjectFacts:
        """A cloud project's permissions, doors, groups and holidays, with its ACA center.

        ``permissions=False`` leaves out the access groups, user groups, holidays and the
        center's inventories, for a caller whose decision reads none of them
        (``collect_cloud.needed_facts``). Each part is read once per run, whoever asks first.
        """
        if not permissions:
            info, listed = await self.door_licenses(project_id)
            return ProjectFacts(
                project=info,
                doors={d.door_id: d for d in listed},
                center=await self.center_for_project(project_id),
            )

        async def build() -> ProjectFacts:
            cloud = self.clients.cloud
            (info, listed), groups, user_groups, holidays, center = await asyncio.gather(
                self.door_licenses(project_id),
                collect(cloud.iter_access_groups(project_id, on_skip=self._skip)),
                collect(cloud.iter_user_groups(project_id, on_skip=self._skip)),
                collect(cloud.iter_holidays(project_id, on_skip=self._skip)),
                self.center_for_project(project_id),
            )
            inventories = await self.inventories(center.id) if center else ()
            return ProjectFacts(
                project=info,
                doors={d.door_id: d for d in listed},
                access_groups={g.access_group_id: g for g in groups},
                user_groups={g.user_group_id: g for g in user_groups},
                holidays=holidays,
                center=center,
                inventories=inventories,
            )

        return await self._once(("project", project_id), build)

    async def project_info(self, project_id: str) -> ProjectInfo:
        """A cloud project's info (its time zone and payment permission): one request per run."""
        cloud = self.clients.cloud
        return await self._once(
            ("project_info", project_id), lambda: cloud.get_project_info(project_id)
        )

    async def door_licenses(self, project_id: str) -> tuple[ProjectInfo, tuple[Door, ...]]:
        """A cloud project's permissions and doors: all ``license-renewal`` needs of it.

        Two requests (project info, the doors' pages), read once per run: :meth:`project`
        builds on them.
        """

        async def build() -> tuple[ProjectInfo, tuple[Door, ...]]:
            cloud = self.clients.cloud
            info, listed = await asyncio.gather(
                self.project_info(project_id),
                collect(cloud.iter_doors(project_id, on_skip=self._skip)),
            )
            return info, tuple(listed)

        return await self._once(("door_licenses", project_id), build)

    async def personnel(self, project_id: str, personnel_id: str) -> Personnel | None:
        """One cloud person."""
        cloud = self.clients.cloud
        return await self._once(
            ("personnel", project_id, personnel_id),
            lambda: or_none(cloud.get_personnel_detail(project_id, personnel_id)),
        )

    async def holders(self, project_id: str, value: str) -> tuple[Personnel, ...]:
        """Cloud people holding the credential ``value``."""
        cloud = self.clients.cloud
        return await self._once(
            ("holders", project_id, value),
            lambda: collect(
                cloud.find_personnel(project_id, credential_value=value, on_skip=self._skip)
            ),
        )

    async def visitor(self, project_id: str, visitor_id: str) -> Visitor | None:
        """One cloud visitor with temp keys."""
        cloud = self.clients.cloud
        return await self._once(
            ("visitor", project_id, visitor_id),
            lambda: or_none(cloud.get_visitor_detail(project_id, visitor_id)),
        )

    # ------------------------------------------------------------------ CLP

    async def locks(self, site_id: str) -> dict[str, Lock]:
        """A site's locks by id."""
        clp = self.clients.clp

        async def read() -> dict[str, Lock]:
            return {lock.id: lock async for lock in clp.iter_locks(site_id, on_skip=self._skip)}

        return await self._once(("locks", site_id), read)

    async def iq(self, site_id: str, iq_id: str) -> Iq | None:
        """One IQ."""
        clp = self.clients.clp
        return await self._once(("iq", site_id, iq_id), lambda: or_none(clp.get_iq(site_id, iq_id)))

    async def larry(self, site_id: str, clp_user_id: str, lock_id: str) -> LarryAccess | None:
        """Larry access of a platform user at a lock."""
        clp = self.clients.clp
        return await self._once(
            ("larry", site_id, clp_user_id, lock_id),
            lambda: or_none(clp.larry_access(site_id, clp_user_id, lock_id)),
        )

    async def entries(self, site_id: str, since: datetime) -> tuple[Entry, ...]:
        """A site's CLP entries since ``since``."""
        clp = self.clients.clp
        return await self._once(
            ("entries", site_id, since),
            lambda: collect(clp.iter_entries(site_id, since, on_skip=self._skip)),
        )

    async def incidents(self, site_id: str, since: datetime) -> tuple[Incident, ...]:
        """A site's CLP incidents since ``since``."""
        clp = self.clients.clp
        return await self._once(
            ("incidents", site_id, since),
            lambda: collect(clp.iter_incidents(site_id, since, on_skip=self._skip)),
        )
