"""Entity tables that keep their own secondary indexes, so the views' lookups are O(matches).

A :class:`Table` is the ``dict`` of id → entity the world always held, plus named indexes:
each maps a key (a tag number, a project id, ...) to the ids of the entities holding it, kept
in the dict's own iteration order. A lookup therefore answers exactly what a scan of
``table.values()`` with the same test would, in the same order, without the scan.

Inserting, replacing and deleting through the dict interface updates the indexes by
themselves. An entity edited **in place** in an indexed attribute (a tag added to a user's
list, say) must be edited inside ``with table.editing(entity_id) as entity:``, or announced
afterwards with ``table.reindex(entity_id)`` (which sweeps the table's indexes: O(keys)).
:meth:`Table.problems` compares every index with a fresh computation (the tests' safety net).

An index stores one entity id as the bare string and several as a list, which keeps the
indexes of a world of a few hundred thousand entities to some ten MiB.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Self, TypeVar, overload

from doorfix.sandbox.world.model import (
    IQ,
    Booking,
    Center,
    Inventory,
    Key,
    MobileKey,
    SiteUser,
    SyncJob,
    User,
)

E = TypeVar("E")
T = TypeVar("T")

#: one index: key -> the id (one entity) or ids (several, in table order) listed under it
Buckets = dict[Hashable, str | list[str]]
#: the keys of one entity, one tuple per index of its table
Keys = tuple[tuple[Hashable, ...], ...]


@dataclass(frozen=True, slots=True)
class Index:
    """How an index finds an entity's key: one value (``None``: no key) or, ``many``, several."""

    get: Callable[[Any], Any]
    many: bool = False

    def keys(self, entity: Any) -> tuple[Hashable, ...]:
        """The keys ``entity`` is listed under (a key repeated is listed once)."""
        if self.many:
            return tuple(dict.fromkeys(self.get(entity)))
        key = self.get(entity)
        return () if key is None else (key,)


def by(*attrs: str) -> Index:
    """An index on one attribute, or on the tuple of several."""
    return Index(attrgetter(*attrs))


def each(attr: str) -> Index:
    """An index listing an entity under every item of a list attribute."""
    return Index(attrgetter(attr), many=True)


class Table(dict[str, E]):
    """A dict of entities by id that maintains named secondary indexes over them."""

    __slots__ = ("_buckets", "_indexes", "_specs")

    def __init__(self, **indexes: Index) -> None:
        super().__init__()
        self._specs = indexes
        self._buckets: dict[str, Buckets] = {name: {} for name in indexes}
        #: each index with its buckets, in the same order as ``_buckets``
        self._indexes = tuple((i.get, i.many, self._buckets[n]) for n, i in indexes.items())

    # ------------------------------------------------------------------ lookups

    def where(self, index: str, key: Hashable) -> list[E]:
        """The entities ``index`` lists under ``key``, in the table's order."""
        ids = self._buckets[index].get(key)
        if ids is None:
            return []
        get = dict.__getitem__
        if isinstance(ids, str):
            return [get(self, ids)]
        return [get(self, entity_id) for entity_id in ids]

    def first(self, index: str, key: Hashable) -> E | None:
        """The first entity (in table order) ``index`` lists under ``key``, or None."""
        ids = self._buckets[index].get(key)
        if ids is None:
            return None
        return dict.__getitem__(self, ids if isinstance(ids, str) else ids[0])

    # ------------------------------------------------------------------ in-place edits

    @contextmanager
    def editing(self, entity_id: str) -> Iterator[E]:
        """Yield an entity to edit in place; its index entries follow the edit afterwards."""
        entity = dict.__getitem__(self, entity_id)
        before = self._keys_of(entity)
        try:
            yield entity
        finally:
            self._move(entity_id, before, self._keys_of(entity))

    def reindex(self, entity_id: str) -> None:
        """Re-list an entity already edited in place (sweeps every index: O(keys))."""
        entity = dict.__getitem__(self, entity_id)
        for buckets in self._buckets.values():
            for key in [k for k, ids in buckets.items() if _holds(ids, entity_id)]:
                _unlist(buckets, key, entity_id)
        self._move(entity_id, tuple(() for _ in self._indexes), self._keys_of(entity))

    def problems(self) -> list[str]:
        """Where the indexes differ from a fresh computation over the table (empty: none)."""
        fresh: Table[E] = Table(**self._specs)
        for entity_id, entity in self.items():
            fresh[entity_id] = entity
        return [
            f"index {name!r} is stale"
            for name, buckets in self._buckets.items()
            if _plain(buckets) != _plain(fresh._buckets[name])
        ]

    # ------------------------------------------------------------------ dict writes

    def __setitem__(self, key: str, value: E, /) -> None:
        """Insert or replace an entity; a replaced one keeps its place, as a dict's key does."""
        if key in self:
            before = self._keys_of(dict.__getitem__(self, key))
            dict.__setitem__(self, key, value)
            self._move(key, before, self._keys_of(value))
            return
        dict.__setitem__(self, key, value)
        # a new key comes last in the dict, so it comes last under each of its keys too
        for get, many, buckets in self._indexes:
            if many:
                for index_key in get(value):
                    _append(buckets, index_key, key)
            else:
                index_key = get(value)
                if index_key is not None:
                    _append(buckets, index_key, key)

    def __delitem__(self, key: str, /) -> None:
        """Delete an entity and its index entries."""
        entity = dict.__getitem__(self, key)
        dict.__delitem__(self, key)
        for buckets, keys in zip(self._buckets.values(), self._keys_of(entity), strict=True):
            for index_key in keys:
                _unlist(buckets, index_key, key)

    @overload
    def pop(self, key: str, /) -> E: ...
    @overload
    def pop(self, key: str, default: E, /) -> E: ...
    @overload
    def pop(self, key: str, default: T, /) -> E | T: ...
    def pop(self, key: str, /, *default: Any) -> Any:
        """Remove and answer an entity (or ``default`` when absent, like ``dict.pop``)."""
        if not dict.__contains__(self, key):
            return dict.pop(self, key, *default)
        value = dict.__getitem__(self, key)
        del self[key]
        return value

    def popitem(self) -> tuple[str, E]:
        """Remove and answer the last entity."""
        key = next(reversed(self))
        return key, self.pop(key)

    def clear(self) -> None:
        """Remove every entity."""
        dict.clear(self)
        for buckets in self._buckets.values():
            buckets.clear()

    def update(self, *args: Any, **kwargs: E) -> None:
        """``dict.update`` through :meth:`__setitem__`."""
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default: E, /) -> E:
        """``dict.setdefault`` through :meth:`__setitem__`."""
        if not dict.__contains__(self, key):
            self[key] = default
        return dict.__getitem__(self, key)

    def __ior__(self, other: Any, /) -> Self:  # type: ignore[override,misc]
        """``table |= other`` through :meth:`__setitem__`."""
        self.update(other)
        return self

    # ------------------------------------------------------------------ internals

    def _keys_of(self, entity: E) -> Keys:
        return tuple(spec.keys(entity) for spec in self._specs.values())

    def _move(self, entity_id: str, before: Keys, after: Keys) -> None:
        """Re-list an entity that stays at its place in the dict from ``before`` to ``after``."""
        order: dict[str, int] = {}

        def rank(other: str) -> int:
            if not order:
                order.update((k, i) for i, k in enumerate(self))
            return order[other]

        for buckets, old, new in zip(self._buckets.values(), before, after, strict=True):
            for key in old:
                if key not in new:
                    _unlist(buckets, key, entity_id)
            for key in new:
                if key not in old:
                    _list(buckets, key, entity_id, rank)


def _holds(ids: str | list[str], entity_id: str) -> bool:
    return ids == entity_id if isinstance(ids, str) else entity_id in ids


def _append(buckets: Buckets, key: Hashable, entity_id: str) -> None:
    """List the table's newest entity under ``key`` (last; a repeated key is listed once)."""
    ids = buckets.get(key)
    if ids is None:
        buckets[key] = entity_id
    elif isinstance(ids, str):
        if ids != entity_id:
            buckets[key] = [ids, entity_id]
    elif ids[-1] != entity_id:
        ids.append(entity_id)


def _list(buckets: Buckets, key: Hashable, entity_id: str, rank: Callable[[str], int]) -> None:
    """List ``entity_id`` under ``key`` at its place in the table's order."""
    ids = buckets.get(key)
    if ids is None:
        buckets[key] = entity_id
        return
    if _holds(ids, entity_id):
        return
    listed = [ids] if isinstance(ids, str) else ids
    insort(listed, entity_id, key=rank)
    buckets[key] = listed


def _unlist(buckets: Buckets, key: Hashable, entity_id: str) -> None:
    """Take ``entity_id`` off ``key`` (nothing to do if it is not listed there)."""
    ids = buckets.get(key)
    if ids is None or not _holds(ids, entity_id):
        return
    if isinstance(ids, str):
        del buckets[key]
        return
    ids.remove(entity_id)
    if len(ids) == 1:
        buckets[key] = ids[0]


def _plain(buckets: Buckets) -> dict[Hashable, list[str]]:
    return {k: [ids] if isinstance(ids, str) else list(ids) for k, ids in buckets.items()}


# --------------------------------------------------------------------------- the world's tables


def _email(user: User) -> str:
    # ACA matches e-mail addresses without regard to case
    return user.email.casefold()


def _tag_numbers(user: User) -> Iterable[str]:
    return [tag.number for tag in user.tags]


def users() -> Table[User]:
    """ACA users, found by each key ``GET /users`` searches on."""
    return Table(
        email=Index(_email),
        tag=Index(_tag_numbers, many=True),
        clp_user_id=by("clp_user_id"),
        cloud_personnel_id=by("cloud_personnel_id"),
    )


def by_user() -> Table[MobileKey]:
    """ACA mobile keys, by user."""
    return Table(user_id=by("user_id"))


def bookings() -> Table[Booking]:
    """ACA bookings, by company and by center."""
    return Table(company_id=by("company_id"), center_id=by("center_id"))


def inventories() -> Table[Inventory]:
    """ACA inventories, by center and by each lock they hold."""
    return Table(center_id=by("center_id"), lock_id=each("lock_ids"))


def by_center() -> Table[Any]:
    """ACA entities of a center (visits)."""
    return Table(center_id=by("center_id"))


def centers() -> Table[Center]:
    """ACA centers, by their CLP site."""
    return Table(clp_site_id=by("clp_site_id"))


def by_site() -> Table[Any]:
    """CLP locks or access groups, by site."""
    return Table(site_id=by("site_id"))


def iqs() -> Table[IQ]:
    """CLP IQs, by site and by ``(site_id, collection_id)``."""
    return Table(site_id=by("site_id"), collection=by("site_id", "collection_id"))


def site_users() -> Table[SiteUser]:
    """CLP site users, by site and by ``(site_id, platform_user_id)``."""
    return Table(site_id=by("site_id"), member=by("site_id", "platform_user_id"))


def sync_jobs() -> Table[SyncJob]:
    """CLP Sync Access jobs, by collection."""
    return Table(collection_id=by("collection_id"))


def keys() -> Table[Key]:
    """CLP keys, by site user."""
    return Table(site_user_id=by("site_user_id"))


def by_project() -> Table[Any]:
    """Cloud entities of a project (doors, personnel, groups, holidays, visitors)."""
    return Table(project_id=by("project_id"))
