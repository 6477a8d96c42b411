"""The cloud's door logs, stored as per-project columns so a million rows stay small.

A row is a handful of machine integers: its global ``log_id``, its ``capture_time``, and
indexes into interned tables (door snapshot, detail, credential, person, visitor,
initiator). :class:`~doorfix.sandbox.world.model.DoorLog` objects exist only for the page a view
asks for; ``start_time`` is found by bisection on the capture-time column.

The cloud view serves a page straight from the columns (:meth:`DoorLogStore.page_json`):
each interned string and door snapshot is JSON-encoded once, the first time a page needs
the table, and a page is its labels and those fragments joined in one pass, with no row
object, no dict and no encoder call per row. The text is byte for byte what
``JSONResponse`` makes of ``[wire.cloud_door_log(row) for row in page(...)]``.
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import chain, repeat
from types import MappingProxyType

from doorfix.sandbox.world.model import CredentialType, DoorLog
from doorfix.sandbox.world.wire import scalar

#: Credential types in a fixed order, so a row stores one byte for its type.
CREDENTIAL_TYPES: tuple[CredentialType, ...] = (
    "card",
    "pin",
    "face",
    "temp_key",
    "ble",
    "nfc",
    "qr",
)
_CTYPE_INDEX: Mapping[str, int] = MappingProxyType(
    {name: i for i, name in enumerate(CREDENTIAL_TYPES)}
)


#: the JSON text between a row's values: the door snapshot fills its four fields at once
_OPEN, _SEP = '[{"log_id":', '},{"log_id":'
_LABELS = (
    ',"capture_time":',
    ",",
    ',"result":',
    ',"detail":',
    ',"credential_type":',
    ',"credential_value":',
    ',"personnel_id":',
    ',"visitor_id":',
    ',"initiator":',
)
_CLOSE = "}]"
_RESULT_JSON = (scalar("failure"), scalar("success"))
_CTYPE_JSON = tuple(scalar(name) for name in CREDENTIAL_TYPES)


@dataclass(frozen=True, slots=True)
class DoorSnapshot:
    """The door columns of a log row as they were at capture time (names and firmware change)."""

    door_id: str
    door_name: str
    device_model: str
    firmware: str


class _Columns:
    """One project's rows, column by column, in capture-time order."""

    __slots__ = (
        "capture",
        "ctype",
        "cvalue",
        "detail",
        "door",
        "initiator",
        "log_id",
        "personnel",
        "result",
        "visitor",
    )

    def __init__(self) -> None:
        self.log_id = array("q")
        self.capture = array("q")
        self.door = array("I")
        self.result = array("b")
        self.detail = array("I")
        self.ctype = array("B")
        self.cvalue = array("I")
        self.personnel = array("I")
        self.visitor = array("I")
        self.initiator = array("I")

    def arrays(self) -> tuple[array[int], ...]:
        """Every column, in a fixed order."""
        return (
            self.log_id,
            self.capture,
            self.door,
            self.result,
            self.detail,
            self.ctype,
            self.cvalue,
            self.personnel,
            self.visitor,
            self.initiator,
        )


class DoorLogStore:
    """Every project's door logs; ``log_id`` ascends across all projects."""

    def __init__(self) -> None:
        # index 0 stands for None, so a nullable column needs no separate mask
        self._strings: list[str | None] = [None]
        self._string_index: dict[str | None, int] = {None: 0}
        self._doors: list[DoorSnapshot] = []
        self._door_index: dict[DoorSnapshot, int] = {}
        self._projects: dict[str, _Columns] = {}
        self._next_log_id = 1
        self._rows = 0
        # JSON fragments of the interned tables, encoded on first use (they only ever grow)
        self._json_nullable: list[str] = []  # a string, or null for None
        self._json_text: list[str] = []  # a string, or "" for None
        self._json_doors: list[str] = []  # a snapshot's four "name":value pairs

    def __len__(self) -> int:
        return self._rows

    def intern(self, value: str | None) -> int:
        """The table index of ``value``, adding it the first time it is seen."""
        index = self._string_index.get(value)
        if index is None:
            index = len(self._strings)
            self._strings.append(value)
            self._string_index[value] = index
        return index

    def intern_door(self, snapshot: DoorSnapshot) -> int:
        """The table index of a door snapshot."""
        index = self._door_index.get(snapshot)
        if index is None:
            index = len(self._doors)
            self._doors.append(snapshot)
            self._door_index[snapshot] = index
        return index

    def append(
        self,
        project_id: str,
        capture_time: int,
        door: DoorSnapshot,
        *,
        success: bool,
        detail: str,
        credential_type: CredentialType,
        credential_value: str,
        personnel_id: str | None,
        visitor_id: str | None,
        initiator: str,
    ) -> int:
        """Record one row and return its ``log_id``."""
        return self.append_interned(
            project_id,
            capture_time,
            self.intern_door(door),
            success=success,
            detail=self.intern(detail),
            ctype=_CTYPE_INDEX[credential_type],
            cvalue=self.intern(credential_value),
            personnel=self.intern(personnel_id),
            visitor=self.intern(visitor_id),
            initiator=self.intern(initiator),
        )

    def append_interned(
        self,
        project_id: str,
        capture_time: int,
        door: int,
        *,
        success: bool,
        detail: int,
        ctype: int,
        cvalue: int,
        personnel: int,
        visitor: int,
        initiator: int,
    ) -> int:
        """Record one row whose strings are already interned (the bulk path of a big build)."""
        cols = self._projects.get(project_id)
        if cols is None:
            cols = self._projects[project_id] = _Columns()
        log_id = self._next_log_id
        self._next_log_id += 1
        self._rows += 1
        values = (
            log_id,
            capture_time,
            door,
            1 if success else 0,
            detail,
            ctype,
            cvalue,
            personnel,
            visitor,
            initiator,
        )
        if cols.capture and capture_time < cols.capture[-1]:
            # rows arrive in clock order; should one ever come out of order, keep the
            # capture-time column sorted so bisection stays right
            at = bisect_right(cols.capture, capture_time)
            for column, value in zip(cols.arrays(), values, strict=True):
                column.insert(at, value)
        else:
            for column, value in zip(cols.arrays(), values, strict=True):
                column.append(value)
        return log_id

    def reserve_log_ids(self, n: int) -> int:
        """Take ``n`` consecutive log ids for :meth:`extend_rows`; answers the first."""
        first = self._next_log_id
        self._next_log_id += n
        return first

    def extend_rows(self, project_id: str, rows: list[tuple[int, ...]]) -> None:
        """Append interned rows ``(log_id, capture, door, result, detail, ctype, cvalue,
        personnel, visitor, initiator)`` in capture-time order (the bulk path of a big build).
        """
        if not rows:
            return
        cols = self._projects.get(project_id)
        if cols is None:
            cols = self._projects[project_id] = _Columns()
        if cols.capture and rows[0][1] < cols.capture[-1]:
            raise ValueError("bulk rows must come after the project's last row")
        for column, values in zip(cols.arrays(), zip(*rows, strict=True), strict=True):
            column.extend(values)
        self._rows += len(rows)

    def count(self, project_id: str, start_time: int = 0) -> int:
        """How many rows of the project have ``capture_time >= start_time``."""
        cols = self._projects.get(project_id)
        if cols is None:
            return 0
        return len(cols.capture) - bisect_left(cols.capture, start_time)

    def page(
        self, project_id: str, start_time: int, page_index: int, page_size: int
    ) -> tuple[int, list[DoorLog]]:
        """The total of rows with ``capture_time >= start_time`` and the 1-based page of them."""
        cols = self._projects.get(project_id)
        if cols is None:
            return 0, []
        first = bisect_left(cols.capture, start_time)
        total = len(cols.capture) - first
        lo = first + (page_index - 1) * page_size
        hi = min(lo + page_size, len(cols.capture))
        return total, [self._row(cols, i) for i in range(lo, hi)]

    def page_json(
        self, project_id: str, start_time: int, page_index: int, page_size: int
    ) -> tuple[int, str]:
        """:meth:`page` with the rows as the cloud's JSON array text (``wire.cloud_door_log``)."""
        cols = self._projects.get(project_id)
        if cols is None:
            return 0, "[]"
        first = bisect_left(cols.capture, start_time)
        total = len(cols.capture) - first
        lo = first + (page_index - 1) * page_size
        hi = min(lo + page_size, len(cols.capture))
        if lo >= hi:
            return total, "[]"
        nullable, text, doors = self._json_tables()
        columns = (
            map(str, cols.capture[lo:hi]),
            map(doors.__getitem__, cols.door[lo:hi]),
            map(_RESULT_JSON.__getitem__, cols.result[lo:hi]),
            map(text.__getitem__, cols.detail[lo:hi]),
            map(_CTYPE_JSON.__getitem__, cols.ctype[lo:hi]),
            map(text.__getitem__, cols.cvalue[lo:hi]),
            map(nullable.__getitem__, cols.personnel[lo:hi]),
            map(nullable.__getitem__, cols.visitor[lo:hi]),
            map(text.__getitem__, cols.initiator[lo:hi]),
        )
        # one stream: opening, log id, then label, value, label, value, ... row after row
        streams: list[Iterator[str]] = [chain((_OPEN,), repeat(_SEP)), map(str, cols.log_id[lo:hi])]
        for label, column in zip(_LABELS, columns, strict=True):
            streams += (repeat(label), column)
        # the repeats are endless: the row count is the columns' length
        pieces = chain.from_iterable(zip(*streams, strict=False))
        return total, "".join(chain(pieces, (_CLOSE,)))

    def last(self, project_id: str, n: int = 1) -> list[DoorLog]:
        """The project's last ``n`` rows, oldest first."""
        cols = self._projects.get(project_id)
        if cols is None:
            return []
        size = len(cols.capture)
        return [self._row(cols, i) for i in range(max(0, size - n), size)]

    def digest(self) -> str:
        """A hash of every row and table, for determinism checks."""
        h = hashlib.sha256()
        for value in self._strings:
            h.update(b"\x00" if value is None else value.encode() + b"\x01")
        for snap in self._doors:
            h.update(repr(snap).encode())
        for project_id in sorted(self._projects):
            h.update(project_id.encode())
            for column in self._projects[project_id].arrays():
                h.update(column.tobytes())
        return h.hexdigest()

    def _json_tables(self) -> tuple[list[str], list[str], list[str]]:
        """The JSON fragments of every interned string and door, encoding the new ones."""
        nullable, text, strings = self._json_nullable, self._json_text, self._strings
        for value in strings[len(nullable) :]:
            nullable.append(scalar(value))
            text.append(scalar(value or ""))
        doors = self._json_doors
        for d in self._doors[len(doors) :]:
            doors.append(
                f'"door_id":{scalar(d.door_id)},"door_name":{scalar(d.door_name)},'
                f'"device_model":{scalar(d.device_model)},"firmware":{scalar(d.firmware)}'
            )
        return nullable, text, doors

    def _row(self, cols: _Columns, i: int) -> DoorLog:
        door = self._doors[cols.door[i]]
        strings = self._strings
        return DoorLog(
            log_id=cols.log_id[i],
            capture_time=cols.capture[i],
            door_id=door.door_id,
            door_name=door.door_name,
            device_model=door.device_model,
            firmware=door.firmware,
            result="success" if cols.result[i] else "failure",
            detail=strings[cols.detail[i]] or "",
            credential_type=CREDENTIAL_TYPES[cols.ctype[i]],
            credential_value=strings[cols.cvalue[i]] or "",
            personnel_id=strings[cols.personnel[i]],
            visitor_id=strings[cols.visitor[i]],
            initiator=strings[cols.initiator[i]] or "",
        )
