"""CLP's two paging styles: ``$top``/``next_page_link`` lists and continuation-token feeds.

A continuation token is a JSON text (the wire carries it as a string) naming the time of the
last row served and the ids served at exactly that time, so rows that share a timestamp are
neither skipped nor repeated across pages.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from doorfix.sandbox.world import wire

JSON = dict[str, Any]

MAX_TOP = 1000
DEFAULT_TOP = 100
CONTINUATION_HEADER = "CLP-Continuation-Token"

_FILTER = re.compile(r"^\s*utc_date_time\s+ge\s+(\S+)\s*$", re.IGNORECASE)
_ORDERBY = re.compile(r"^\s*utc_date_time(\s+asc)?\s*$", re.IGNORECASE)


class ClpRequestError(Exception):
    """A request CLP refuses with 400; ``code`` is the CLP ErrorCode."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class Timed(Protocol):
    """A feed row: entries and incidents both have these."""

    @property
    def id(self) -> str:
        """The row id."""
        ...

    @property
    def utc_date_time(self) -> datetime:
        """When it happened."""
        ...


def _options(request: Request, allowed: frozenset[str]) -> dict[str, str]:
    """The request's OData options; an option this list does not support is a 1102."""
    options = {k: v for k, v in request.query_params.items() if k.startswith("$")}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ClpRequestError("1102", f"unsupported OData option {unknown[0]}")
    return options


def _top(options: dict[str, str], default: int = DEFAULT_TOP) -> int:
    raw = options.get("$top")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_TOP:
        raise ClpRequestError("1102", f"$top must be an integer from 1 to {MAX_TOP}")
    return value


def paged_list(request: Request, items: Sequence[Any], to_json: Callable[[Any], JSON]) -> Response:
    """``{"items", "next_page_link", "count"}`` with an absolute next link (``$top``/``$skip``)."""
    options = _options(request, frozenset({"$top", "$skip"}))
    top = _top(options)
    try:
        skip = int(options.get("$skip", "0"))
    except ValueError:
        skip = -1
    if skip < 0:
        raise ClpRequestError("1102", "$skip must be a non-negative integer")
    chunk = items[skip : skip + top]
    end = skip + len(chunk)
    link = None
    if end < len(items):
        query = urlencode({"$top": top, "$skip": end}, safe="$")
        link = str(request.url.replace(query=query))
    body = {"items": [to_json(x) for x in chunk], "next_page_link": link, "count": len(items)}
    return JSONResponse(body)


@dataclass(frozen=True, slots=True)
class Position:
    """Where a continuation feed resumes: after ``time`` (``seen`` ids at that time served)."""

    time: datetime | None
    seen: frozenset[str] = frozenset()

    def token(self, top: int) -> str:
        """This position as the opaque JSON text the wire carries."""
        payload = {
            "after": None if self.time is None else wire.iso(self.time),
            "seen": sorted(self.seen),
            "top": top,
        }
        return json.dumps(payload, separators=(",", ":"))


def _parse_token(text: str) -> tuple[Position, int]:
    try:
        payload = json.loads(text)
        after = payload["after"]
        seen = payload["seen"]
        top = payload["top"]
        time = None if after is None else wire.parse_iso(after)
    except (ValueError, KeyError, TypeError):
        raise ClpRequestError("1100", "continuation token is not one this API issued") from None
    if not isinstance(seen, list) or not isinstance(top, int) or not 1 <= top <= MAX_TOP:
        raise ClpRequestError("1100", "continuation token is not one this API issued")
    return Position(time, frozenset(str(s) for s in seen)), top


def feed_request(request: Request) -> tuple[Position, int]:
    """Where to start and how many: from the token header, else from the OData query."""
    options = _options(request, frozenset({"$filter", "$orderby", "$top"}))
    token = request.headers.get(CONTINUATION_HEADER)
    if token:
        position, top = _parse_token(token)
        return position, _top(options, top)
    orderby = options.get("$orderby")
    if orderby is not None and not _ORDERBY.match(orderby):
        raise ClpRequestError("1102", "$orderby supports only 'utc_date_time asc'")
    since: datetime | None = None
    if "$filter" in options:
        match = _FILTER.match(options["$filter"])
        if match is None:
            raise ClpRequestError("1102", "$filter supports only 'utc_date_time ge <time>'")
        try:
            since = wire.parse_iso(match.group(1))
        except ValueError:
            raise ClpRequestError("1102", "$filter time is not ISO 8601") from None
    # nothing seen yet, so the first page includes rows at exactly ``since`` ("ge")
    return Position(since), _top(options)


def feed_page(
    rows: Sequence[Timed], start: Position, top: int
) -> tuple[list[Timed], Position | None]:
    """Up to ``top`` rows from ``start`` on and where the next page starts (None at the end)."""
    i = 0 if start.time is None else bisect_left(rows, start.time, key=lambda r: r.utc_date_time)
    page: list[Timed] = []
    n = len(rows)

    def served(row: Timed) -> bool:
        return row.utc_date_time == start.time and row.id in start.seen

    while i < n and len(page) < top:
        row = rows[i]
        i += 1
        if not served(row):
            page.append(row)
    while i < n and served(rows[i]):
        i += 1
    if i >= n:
        return page, None
    if not page:
        return page, start
    last = page[-1].utc_date_time
    seen = {r.id for r in page if r.utc_date_time == last}
    if last == start.time:
        seen |= start.seen
    return page, Position(last, frozenset(seen))
