"""Door-log pages served straight from the column store: the same bytes as row objects gave.

The cloud used to build a ``DoorLog`` and a dict per row and let ``JSONResponse`` encode the
page; it now joins JSON fragments cached per interned string. These tests hold the new text
to the old encoding, for any strings a row can hold and any page a request can ask for.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sandbox_calls import cloud_call
from starlette.responses import JSONResponse

from doorfix.clock import ManualClock
from doorfix.sandbox.api.transport import InProcessSandbox
from doorfix.sandbox.world import wire
from doorfix.sandbox.world.doorlogs import CREDENTIAL_TYPES, DoorLogStore, DoorSnapshot

PROJECTS = ("p-1", "p-2")
#: any text a name, a credential or a Detail may carry: quotes, escapes, non-ASCII, controls
text_st = st.text(max_size=12)


def starlette_json(value: Any) -> bytes:
    """What ``JSONResponse`` sends for ``value`` (the encoding the page used to go through)."""
    return bytes(JSONResponse(value).body)


def old_items(store: DoorLogStore, project_id: str, start: int, index: int, size: int) -> str:
    """A page's items as the cloud encoded them before: one dict per ``DoorLog`` row."""
    _, rows = store.page(project_id, start, index, size)
    return starlette_json([wire.cloud_door_log(row) for row in rows]).decode()


row_st = st.fixed_dictionaries(
    {
        "project_id": st.sampled_from(PROJECTS),
        "capture_time": st.integers(0, 50),
        "door": st.builds(DoorSnapshot, text_st, text_st, text_st, text_st),
        "success": st.booleans(),
        # None only reaches these through the bulk path (an interned index 0)
        "detail": st.none() | text_st,
        "credential_type": st.sampled_from(CREDENTIAL_TYPES),
        "credential_value": st.none() | text_st,
        "personnel_id": st.none() | text_st,
        "visitor_id": st.none() | text_st,
        "initiator": st.none() | text_st,
    }
)


def add(store: DoorLogStore, row: dict[str, Any]) -> None:
    """Store a row through the bulk path (interned indexes) or, when it can, the plain one."""
    r = dict(row)
    project_id, capture_time, door = r.pop("project_id"), r.pop("capture_time"), r.pop("door")
    if any(r[k] is None for k in ("detail", "credential_value", "initiator")):
        store.append_interned(
            project_id,
            capture_time,
            store.intern_door(door),
            success=r["success"],
            detail=store.intern(r["detail"]),
            ctype=CREDENTIAL_TYPES.index(r["credential_type"]),
            cvalue=store.intern(r["credential_value"]),
            personnel=store.intern(r["personnel_id"]),
            visitor=store.intern(r["visitor_id"]),
            initiator=store.intern(r["initiator"]),
        )
    else:
        store.append(project_id, capture_time, door, **r)


page_st = st.tuples(
    st.sampled_from((*PROJECTS, "p-none")),
    st.integers(0, 60),
    st.integers(1, 6),
    st.integers(1, 7),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.lists(row_st, max_size=8), page_st), max_size=6))
def test_page_json_is_the_old_encoding_of_any_rows(
    batches: list[tuple[list[dict[str, Any]], tuple[str, int, int, int]]],
) -> None:
    store = DoorLogStore()
    for rows, (project_id, start, index, size) in batches:
        # rows arrive between pages, so the fragment tables grow as the store does
        for row in rows:
            add(store, row)
        total, text = store.page_json(project_id, start, index, size)
        assert total == store.count(project_id, start)
        assert text == old_items(store, project_id, start, index, size)


json_st = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text_st,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text_st, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_st)
def test_dumps_writes_what_jsonresponse_writes(value: Any) -> None:
    assert wire.dumps(value) == starlette_json(value)
    raw = wire.RawJSON(starlette_json(value).decode())
    assert wire.dumps({"a": [raw, {"b": raw}]}) == starlette_json({"a": [value, {"b": value}]})


def test_dumps_refuses_what_json_refuses() -> None:
    with pytest.raises(ValueError, match="Out of range"):
        wire.dumps({"x": float("nan")})
    with pytest.raises(TypeError):
        wire.dumps({("a",): 1})
    assert wire.dumps({1: 2, None: 3, 1.5: 4, False: 5}) == starlette_json(
        {1: 2, None: 3, 1.5: 4, False: 5}
    )


# --------------------------------------------------------------------------- through the API

ODD = DoorSnapshot("d-odd", 'Gate "A" \\ Ω\n', "R29", "29.30.10.712")


@pytest.mark.parametrize(
    "param",
    [
        {},
        {"page_size": 500},
        {"page_size": 3, "page_index": 2},
        {"page_size": 1, "page_index": 1000},
        {"start_time": 2**40},
    ],
)
async def test_get_door_log_answers_the_old_bytes(
    sandbox: InProcessSandbox, clock: ManualClock, param: dict[str, Any]
) -> None:
    world = sandbox.world
    project_id = next(iter(world.projects))
    at = int(clock.now().timestamp())
    for n, person in enumerate((None, "per-\u00e9", 'x"y')):
        world.door_logs.append(
            project_id,
            at + n,
            ODD,
            success=bool(n % 2),
            detail="\u26a0 Invalid Card\t",
            credential_type="card",
            credential_value=f"\u0000{n}",
            personnel_id=person,
            visitor_id=None,
            initiator="Ünknown",
        )
    param = {"project_id": project_id, "start_time": 0, **param}
    token = await sandbox.cloud_token()
    response = await cloud_call(sandbox, token, "get_door_log", request_id="r-7", **param)

    index, size = param.get("page_index", 1), param.get("page_size", 100)
    total, rows = world.door_log_page(project_id, param["start_time"], index, size)
    items = [wire.cloud_door_log(row) for row in rows]
    result = {"total": total, "page_index": index, "items": items}
    answer = {"success": True, "timestamp": wire.epoch(clock.now()), "result": result}
    expected = JSONResponse(answer, headers={"X-Request-Id": "r-7"})
    assert response.content == expected.body
    assert [(k, v) for k, v in response.headers.items()] == [
        (k.decode(), v.decode()) for k, v in expected.raw_headers
    ]
    assert json.loads(response.content)["result"]["total"] == total


def test_pages_past_the_end_and_unknown_projects_are_empty_arrays() -> None:
    store = DoorLogStore()
    snap = DoorSnapshot("d-1", "Door", "A08", "1")
    for t in range(3):
        store.append(
            "p-1",
            t,
            snap,
            success=True,
            detail="",
            credential_type="pin",
            credential_value="****",
            personnel_id="per-1",
            visitor_id=None,
            initiator="Ann",
        )
    assert [row["capture_time"] for row in json.loads(store.page_json("p-1", 1, 1, 5)[1])] == [1, 2]
    assert store.page_json("p-1", 0, 9, 2) == (3, "[]")
    assert store.page_json("p-1", 99, 1, 2) == (0, "[]")
    assert store.page_json("p-none", 0, 1, 2) == (0, "[]")
