"""Page decoding and the async iterators of the contract's paging styles.

Every list streams page by page: an iterator holds one page at a time (two for the cloud's
page-index lists, which read one page ahead), however long the list: constant memory. A page
is validated whole in one pass (the fast path); only when that fails is it decoded again
leniently and its items validated one by one, so a malformed row is skipped and reported
through ``on_skip`` while the rest of the page is delivered.

Paging styles: 1-based page index with a total (cloud), an opaque cursor (ACA lists), an
absolute ``next_page_link`` (CLP lists), and a continuation token whose pages may be empty
(CLP entries and incidents). ACA's events feed pages with a cursor too, but is read until an
empty page and resumed later, so it has its own iterator in :mod:`doorfix.connectors.aca`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from pydantic import TypeAdapter
from pydantic_core import to_json

from doorfix.connectors._decode import decode, decode_items
from doorfix.errors import ContractError, System

log = structlog.get_logger("doorfix.connectors")

T = TypeVar("T")
PageT = TypeVar("PageT")
RawT = TypeVar("RawT")

#: Told about each list item that was skipped because it does not match the contract.
SkipHandler = Callable[[ContractError], None]

#: Event-loop turns an httpx request needs to reach the socket (measured: 4; a turn is ~10 us).
LOOP_TURNS_TO_SEND = 8

#: A continuation-token feed that keeps answering empty pages without moving on is broken.
MAX_EMPTY_PAGES = 1000


def log_skip(error: ContractError) -> None:
    """The default :data:`SkipHandler`: one ``record_skipped`` warning naming the field."""
    log.warning(
        "record_skipped",
        system=error.system,
        endpoint=error.endpoint,
        field=error.field,
        reason=error.message,
    )


@dataclass(frozen=True, slots=True)
class Decoded(Generic[PageT]):
    """A decoded page and how many items the wire carried (skipped ones included)."""

    page: PageT
    wire_items: int


def decode_page(
    content: bytes,
    *,
    strict: TypeAdapter[PageT],
    lenient: TypeAdapter[Any],
    item_json: TypeAdapter[Any],
    items_at: tuple[str, ...],
    system: System,
    endpoint: str,
    on_skip: SkipHandler,
) -> Decoded[PageT]:
    """Decode a page whole; if that fails, skip (and report) only the malformed items.

    ``lenient`` is the same page shape with ``Any`` items; ``item_json`` validates one item
    from its JSON text (``TypeAdapter(Json[Item])``: items are re-serialised so that they are
    judged by the same JSON rules as the whole page, strict models included); ``items_at`` is
    the attribute path from the page to its items (``("result", "items")``; ``()`` for a
    bare array).
    """
    try:
        page = decode(strict, content, system=system, endpoint=endpoint)
    except ContractError:
        # re-raises when the page itself (not one of its items) breaks the contract
        raw = decode(lenient, content, system=system, endpoint=endpoint)
        raw_items = _items(raw, items_at)
        if raw_items is None:
            raise
        good = decode_items(
            item_json,
            [to_json(raw_item) for raw_item in raw_items],
            system=system,
            endpoint=endpoint,
            on_skip=on_skip,
            # decode_items numbers the items after the prefix; a bare array has no name
            prefix=".".join(items_at) or "items",
        )
        if len(good) == len(raw_items):
            # the items are fine one by one, so the failure lies elsewhere on the page
            raise
        rebuilt: Any = tuple(good)
        if items_at:
            rebuilt = raw.model_dump(round_trip=True)
            _replace(rebuilt, items_at, tuple(good))
        return Decoded(strict.validate_python(rebuilt), len(raw_items))
    return Decoded(page, len(_items(page, items_at) or ()))


def _items(page: Any, path: tuple[str, ...]) -> Sequence[Any] | None:
    node = page
    for name in path:
        node = getattr(node, name, None)
        if node is None:
            return None
    return node  # type: ignore[no-any-return]


def _replace(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for name in path[:-1]:
        node = node[name]
    node[path[-1]] = value


async def iter_page_index(
    send: Callable[[int], Awaitable[RawT]],
    decode_one: Callable[[int, RawT], tuple[Sequence[T], int, int]],
    *,
    page_size: int,
) -> AsyncIterator[T]:
    """Pages 1, 2, ... until one is short or ``page_index * page_size`` reaches the total.

    ``send(page_index)`` reads a page off the wire; ``decode_one(page_index, raw)`` answers
    ``(items, wire_items, total)``. The wire count (skipped items included) decides whether
    a page was short, so a skipped row never ends a list.

    The next page is requested before this one is decoded (once a total says it exists) and
    read while the caller works through this one, so the server's time overlaps ours. That is
    one page ahead, never more; a request made ahead for a page that turns out not to exist
    (the list shrank) is dropped.
    """
    page_index = 1
    raw = await send(page_index)
    known_total: int | None = None
    ahead: asyncio.Future[RawT] | None = None
    try:
        while True:
            if ahead is None and known_total is not None and page_index * page_size < known_total:
                ahead = _read_ahead(send, page_index + 1)
                # an httpx request takes a few event-loop turns to reach the socket; giving
                # them now sends it before the CPU-bound decode below (if they fall short,
                # the pages are merely read one after the other, as without read-ahead)
                for _ in range(LOOP_TURNS_TO_SEND):
                    await asyncio.sleep(0)
            items, wire_items, total = decode_one(page_index, raw)
            known_total = total
            if wire_items < page_size or page_index * page_size >= total:
                if ahead is not None:
                    ahead.cancel()
                    ahead = None
                for item in items:
                    yield item
                return
            if ahead is None:
                ahead = _read_ahead(send, page_index + 1)
            for item in items:
                yield item
            raw = await ahead
            ahead = None
            page_index += 1
    finally:
        if ahead is not None:
            ahead.cancel()


def _read_ahead(send: Callable[[int], Awaitable[RawT]], page_index: int) -> asyncio.Future[RawT]:
    future = asyncio.ensure_future(send(page_index))
    # an abandoned read-ahead must not log "exception was never retrieved"
    future.add_done_callback(_retrieve)
    return future


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


async def iter_following(
    fetch: Callable[[str | None], Awaitable[tuple[Sequence[T], int, str | None]]],
    *,
    system: System,
    endpoint: str,
    allow_empty: bool = False,
) -> AsyncIterator[T]:
    """Follow ``next`` (a cursor, an absolute link or a continuation token) until ``None``.

    ``fetch(None)`` reads the first page, ``fetch(next)`` the following ones; each answers
    ``(items, wire_items, next)``. Cursors and links must move on: one that comes back
    unchanged would loop forever, so it is a contract error. Continuation tokens
    (``allow_empty``) may answer empty pages that still carry a token; only a long run of
    them is taken as a broken feed.
    """
    marker: str | None = None
    empty_run = 0
    while True:
        items, wire_items, following = await fetch(marker)
        for item in items:
            yield item
        if following is None:
            return
        if allow_empty:
            empty_run = empty_run + 1 if wire_items == 0 else 0
            if empty_run > MAX_EMPTY_PAGES:
                raise ContractError(
                    f"{MAX_EMPTY_PAGES} empty pages in a row still carry a continuation token",
                    system=system,
                    endpoint=endpoint,
                    field="continuation_token",
                )
            if wire_items and following == marker:
                # an empty page may keep its token; one that served rows must move past them
                raise ContractError(
                    "a page of rows came back with the token it was asked with "
                    "(the list would never end)",
                    system=system,
                    endpoint=endpoint,
                    field="continuation_token",
                )
        elif following == marker:
            raise ContractError(
                "the next page is the page just read (the list would never end)",
                system=system,
                endpoint=endpoint,
            )
        marker = following


async def iter_cursor(
    fetch: Callable[[str | None], Awaitable[tuple[Sequence[T], int, str | None]]],
    *,
    system: System,
    endpoint: str,
) -> AsyncIterator[T]:
    """ACA lists: ``?cursor=`` from the previous page's ``next_cursor`` until it is null."""
    async for item in iter_following(fetch, system=system, endpoint=endpoint):
        yield item


async def iter_links(
    fetch: Callable[[str | None], Awaitable[tuple[Sequence[T], int, str | None]]],
    *,
    system: System,
    endpoint: str,
) -> AsyncIterator[T]:
    """CLP lists: follow the absolute ``next_page_link`` until it is null."""
    async for item in iter_following(fetch, system=system, endpoint=endpoint):
        yield item


async def iter_tokens(
    fetch: Callable[[str | None], Awaitable[tuple[Sequence[T], int, str | None]]],
    *,
    system: System,
    endpoint: str,
) -> AsyncIterator[T]:
    """CLP entries/incidents: repeat with the continuation token until none comes back."""
    async for item in iter_following(fetch, system=system, endpoint=endpoint, allow_empty=True):
        yield item
