"""What every client shares: its HTTP layer, page size, skip handler, and its lifecycle."""

from __future__ import annotations

from typing import Self

from doorfix.connectors._http import CallStats, HttpLayer, SharedSlot
from doorfix.connectors._paging import SkipHandler, log_skip


class ClientBase:
    """A client over one :class:`HttpLayer`: ``async with`` support, close, call counters."""

    #: the largest page the system serves (each client sets its own)
    MAX_PAGE_SIZE = 500

    def __init__(
        self, layer: HttpLayer, *, page_size: int | None = None, on_skip: SkipHandler = log_skip
    ) -> None:
        size = self.MAX_PAGE_SIZE if page_size is None else page_size
        if not 1 <= size <= self.MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{self.MAX_PAGE_SIZE}")
        self._layer = layer
        self._page_size = size
        self._on_skip = on_skip

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP layer (and its connections)."""
        await self._layer.aclose()

    def share_pace(self, slot: SharedSlot) -> None:
        """Take this system's request turns from a fleet's pace (see :mod:`._http`)."""
        self._layer.share_pace(slot)

    @property
    def stats(self) -> CallStats:
        """This client's call counters (calls, errors, retries, token fetches)."""
        return self._layer.stats
