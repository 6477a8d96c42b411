"""Decoding names the offending field; list items are skipped one by one, not the page."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, TypeAdapter

from doorfix.connectors._decode import decode, decode_items
from doorfix.errors import ContractError


class Row(BaseModel):
    log_id: int
    door_id: str


class Page(BaseModel):
    total: int
    items: list[Row]


def test_decode_names_system_endpoint_and_field() -> None:
    body = (
        b'{"total": 2, "items": [{"log_id": 1, "door_id": "d"}, {"log_id": "x", "door_id": "d"}]}'
    )
    with pytest.raises(ContractError) as info:
        decode(TypeAdapter(Page), body, system="cloud", endpoint="get_door_log")
    err = info.value
    assert (err.system, err.endpoint, err.field) == ("cloud", "get_door_log", "items.1.log_id")
    assert "items.1.log_id" in str(err)


def test_truncated_json_is_a_contract_error() -> None:
    with pytest.raises(ContractError):
        decode(TypeAdapter(Page), b'{"total": 2, "items": [', system="aca", endpoint="events")


def test_decode_items_skips_only_the_bad_row() -> None:
    skipped: list[ContractError] = []
    rows = decode_items(
        TypeAdapter(Row),
        [{"log_id": 1, "door_id": "a"}, {"door_id": "b"}, {"log_id": 3, "door_id": "c"}],
        system="cloud",
        endpoint="get_door_log",
        on_skip=skipped.append,
    )
    assert [r.log_id for r in rows] == [1, 3]
    assert [s.field for s in skipped] == ["items.1.log_id"]
