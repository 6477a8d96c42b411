"""Bad answers from the three systems, put in front of the sandbox with respx.

A malformed or unusable record is skipped and reported (the run report's ``skipped`` names
the system, the endpoint and the field; a ``record_skipped`` log event says the same) while
the run goes on with the good records. A whole body that is not the contract's (garbage,
truncated JSON) fails the run cleanly: RunFailed (exit code 1) naming the place, nothing moved.
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import pytest
from faultkit import (
    CENTERS,
    DOOR_LOGS,
    ENTRIES,
    EVENTS,
    LOCKS,
    Routes,
    World,
    every,
    make_world,
    replace_body,
    rewrite,
)
from structlog.testing import capture_logs

from doorfix.agent.engine.report import RunReport
from doorfix.agent.engine.run import RunFailed
from doorfix.agent.engine.ticket import diagnose_ticket
from doorfix.errors import ContractError

FUTURE = "2027-03-01T00:00:00Z"


async def baseline(playbook: str) -> dict[str, int]:
    """The counts of a run on the untouched demo."""
    w = make_world()
    try:
        return (await w.run(playbook)).counts
    finally:
        await w.aclose()


async def run_with(
    routes: Routes, playbook: str
) -> tuple[World, RunReport, list[MutableMapping[str, Any]]]:
    """One run of ``playbook`` behind ``routes``: the world, the report and the log events."""
    w = make_world(routes=routes)
    with capture_logs() as logs:
        report = await w.run(playbook)
    return w, report, logs


def first_event(edit: Callable[[dict[str, Any]], None]) -> Callable[[Any], bool]:
    """A body change: ``edit`` the first event of the first non-empty events page."""

    def change(body: Any) -> bool:
        if not body["data"]:
            return False
        edit(body["data"][0])
        return True

    return change


def set_to(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(row: dict[str, Any]) -> None:
        row[key] = value

    return edit


def drop(key: str) -> Callable[[dict[str, Any]], None]:
    def edit(row: dict[str, Any]) -> None:
        del row[key]

    return edit


def skipped_fields(report: Any, system: str, endpoint: str) -> list[str | None]:
    return [s.field for s in report.skipped if (s.system, s.endpoint) == (system, endpoint)]


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (drop("lock_id"), "data.0.lock_id"),
        (set_to("occurred_at", 1794816000), "data.0.occurred_at"),
        (set_to("type", "tag_vaporised"), "data.0.type"),
        (set_to("user_id", "u-ghost"), "user_id"),
        (set_to("lock_id", "l-ghost"), "lock_id"),
        (set_to("occurred_at", FUTURE), "occurred_at"),
    ],
    ids=[
        "missing-field",
        "mistyped-time",
        "unknown-type",
        "unknown-user",
        "unknown-lock",
        "future",
    ],
)
async def test_a_bad_aca_event_is_skipped_and_reported_and_the_rest_is_worked(
    edit: Callable[[dict[str, Any]], None], field: str
) -> None:
    expected = await baseline("aca-rejections")
    w, report, logs = await run_with(rewrite("GET", first_event(edit), **EVENTS), "aca-rejections")
    try:
        assert skipped_fields(report, "aca", "events") == [field]
        assert [
            (e["system"], e["endpoint"], e["field"]) for e in logs if e["event"] == "record_skipped"
        ] == [("aca", "events", field)]
        assert report.counts == expected  # every good event still worked
        assert not [i for i in report.incidents if "u-ghost" in i.subject.values()]
        assert not [i for i in report.incidents if "l-ghost" in i.subject.values()]
        assert report.as_dict()["skipped"][0]["field"] == field  # in the JSON report too
    finally:
        await w.aclose()


def first_failure(edit: Callable[[dict[str, Any]], None]) -> Callable[[Any], bool]:
    """A body change: ``edit`` the first failure row of a door-log page."""

    def change(body: Any) -> bool:
        rows = [r for r in body["result"]["items"] if r.get("result") == "failure"]
        if not rows:
            return False
        edit(rows[0])
        return True

    return change


def in_the_future(row: dict[str, Any]) -> None:
    row["capture_time"] = int(datetime(2027, 3, 1, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (drop("door_id"), ".door_id"),
        (set_to("capture_time", "yesterday"), ".capture_time"),
        (set_to("result", "meh"), ".result"),
        (set_to("door_id", "d-ghost"), "door_id"),
        (set_to("personnel_id", "per-ghost"), "personnel_id"),
        (in_the_future, "capture_time"),
    ],
    ids=[
        "missing-field",
        "mistyped-time",
        "unknown-result",
        "unknown-door",
        "unknown-person",
        "future",
    ],
)
async def test_a_bad_door_log_is_skipped_and_reported_and_the_rest_is_fixed(
    edit: Callable[[dict[str, Any]], None], field: str
) -> None:
    expected = await baseline("door-logs")
    w, report, logs = await run_with(rewrite("POST", first_failure(edit), **DOOR_LOGS), "door-logs")
    try:
        (got,) = skipped_fields(report, "cloud", "get_door_log")
        assert got is not None
        assert got.endswith(field)
        assert [e["field"] for e in logs if e["event"] == "record_skipped"] == [got]
        assert report.counts == expected
        assert not [
            i for i in report.incidents if {"d-ghost", "per-ghost"} & set(i.subject.values())
        ]
    finally:
        await w.aclose()


async def test_a_door_log_dated_in_the_future_does_not_blind_the_feed() -> None:
    w, report, _ = await run_with(
        rewrite("POST", first_failure(in_the_future), **DOOR_LOGS), "door-logs"
    )
    try:
        assert skipped_fields(report, "cloud", "get_door_log") == ["capture_time"]
        # a door breaks afterwards: the next runs must still see its failures
        door = w.manifest["normal.door"]["door_id"]
        w.state.world.inject("cloud.license_inactive", door_id=door)
        w.clock.advance(every(40))
        later = await w.run("door-logs")
        fixed = [i for i in later.incidents if i.subject.get("door_id") == door]
        assert [(i.cause, i.outcome) for i in fixed] == [("cloud.license_inactive", "fixed")]
    finally:
        await w.aclose()


async def test_malformed_clp_entries_are_skipped_and_reported() -> None:
    def change(body: Any) -> bool:
        if len(body["items"]) < 2:
            return False
        del body["items"][0]["utc_date_time"]
        body["items"][1]["event_category"] = "lock_exploded"
        return True

    expected = await baseline("aca-rejections")
    w, report, _ = await run_with(rewrite("GET", change, **ENTRIES), "aca-rejections")
    try:
        # the event path decides without CLP entries, so it does not read them (test_reads)
        assert skipped_fields(report, "clp", "entries") == []
        assert report.counts == expected
        # a ticket (no event) reads them: the malformed rows skipped and reported, the rest used
        ticket = await diagnose_ticket(w.agent, "u-1", lock_id="l-1")
        assert ticket.error is None
        assert skipped_fields(ticket, "clp", "entries") == [
            "items.0.utc_date_time",
            "items.1.event_category",
        ]
    finally:
        await w.aclose()


async def test_an_unknown_detail_text_is_reported_as_unknown_for_a_person_and_nothing_is_done() -> (
    None
):
    def change(body: Any) -> bool:
        rows = [r for r in body["result"]["items"] if r.get("result") == "failure"]
        for row in rows:
            row["detail"] = "Reader on fire"
        return bool(rows)

    w, report, _ = await run_with(rewrite("POST", change, times=None, **DOOR_LOGS), "door-logs")
    try:
        assert report.incidents
        assert {(i.cause, i.outcome) for i in report.incidents} == {("unknown", "needs_human")}
        assert {i.evidence["detail"] for i in report.incidents} == {"Reader on fire"}
        assert all(i.steps for i in report.incidents)
        assert w.mutations() == []
    finally:
        await w.aclose()


GARBAGE = {
    "html": b"<html><body>502 Bad Gateway</body></html>",
    "truncated": b'{"data": [{"id": "ev-1", "type": "tag_rej',
    "null": b"null",
    "array": b"[]",
}


@pytest.mark.parametrize("body", GARBAGE.values(), ids=GARBAGE.keys())
@pytest.mark.parametrize(
    ("method", "pattern", "playbook", "where"),
    [
        ("GET", EVENTS, "aca-rejections", "aca events"),
        ("GET", CENTERS, "door-logs", "aca list_centers"),
        ("POST", DOOR_LOGS, "door-logs", "cloud get_door_log"),
        ("GET", LOCKS, "aca-rejections", "clp list_locks"),
    ],
    ids=["aca-events", "aca-centers", "cloud-door-logs", "clp-locks"],
)
async def test_a_garbage_list_body_fails_the_run_cleanly(
    body: bytes, method: str, pattern: dict[str, Any], playbook: str, where: str
) -> None:
    w = make_world(routes=replace_body(method, body, **pattern))
    try:
        with pytest.raises(RunFailed) as failed:
            await w.run(playbook)
        assert isinstance(failed.value.__cause__, ContractError)
        assert str(failed.value).startswith(f"{where}: response does not match the contract")
        assert failed.value.report.error == str(failed.value)
        journal = w.agent.journal
        assert [r.status for r in journal.runs(limit=5)] == ["failed"]
        assert journal.cursor("aca-events") is None  # nothing was taken as read
        assert w.mutations() == []
    finally:
        await w.aclose()


async def test_a_50000_event_page_is_worked_whole() -> None:
    pair: dict[str, str] = {}

    def flood(body: Any) -> bool:
        mine = [e for e in body["data"] if e["user_id"] == pair["user_id"]]
        if not mine:
            return False
        body["data"] += [dict(mine[0], id=f"ev-flood-{n}") for n in range(50_000)]
        return True

    w = make_world(routes=rewrite("GET", flood, **EVENTS))
    pair.update(user_id=w.manifest["aca.clp_out_of_sync"]["user_id"])
    try:
        started = time.monotonic()
        report = await w.run("aca-rejections")
        assert time.monotonic() - started < 20
        (incident,) = [i for i in report.incidents if i.subject.get("user_id") == pair["user_id"]]
        assert incident.outcome == "fixed"
        assert len(incident.event_ids) > 50_000  # every event kept, none lost
        stored = w.agent.journal.incident(incident.incident_id)
        assert stored is not None
        assert len(stored.event_ids) == len(incident.event_ids)
        # one toggle for fifty thousand refusals
        assert len([m for m in w.landed() if m.operation == "access_matrix"]) == 2
    finally:
        await w.aclose()
