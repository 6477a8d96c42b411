"""The journal's run lock: one process at a time, and in it one run at a time per scope."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import psycopg
import pytest
from structlog.testing import capture_logs

from doorfix.agent.journal.lock import DbRunLock, Fenced, RunLock
from doorfix.agent.journal.store import Journal
from doorfix.clock import SystemClock


async def test_runs_of_different_scopes_share_the_hold_and_runs_of_one_scope_take_turns(
    tmp_path: Path,
) -> None:
    journal = str(tmp_path / "journal.sqlite3")
    lock = RunLock(journal)
    other_process = RunLock(journal)  # its own descriptor: another process, as flock sees it
    order: list[str] = []
    holders: list[str] = []
    inside = asyncio.Event()
    leave = asyncio.Event()

    async def run(what: str, scope: str) -> None:
        async with lock.held(what, scopes=(scope,)):
            order.append(f"in {what}")
            if what == "aca-rejections":
                # what a waiting process is told: every run of this one inside
                text = await asyncio.to_thread(Path(f"{journal}.lock").read_text)
                holders.append(json.loads(text)["run"])
            if what == "door-logs":
                inside.set()
                await leave.wait()
            order.append(f"out {what}")

    async def other_process_run() -> None:
        async with other_process.held("diagnose", scopes=("cloud",)):
            order.append("in another process")

    first = asyncio.create_task(run("door-logs", "cloud"))
    await asyncio.wait_for(inside.wait(), 5)
    # a run of the other scope goes in beside it; one of the same scope waits for it
    await asyncio.wait_for(run("aca-rejections", "aca-clp"), 5)
    same = asyncio.create_task(run("license-renewal", "cloud"))
    await asyncio.sleep(0)  # let it reach its wait for the cloud's turn
    assert order == ["in door-logs", "in aca-rejections", "out aca-rejections"]
    assert holders == ["aca-rejections+door-logs"]
    # another process cannot take the journal while any run of this one is inside: it waits,
    # saying so once
    with capture_logs() as logs:
        another = asyncio.create_task(other_process_run())
        async with asyncio.timeout(5):
            while not any(e["event"] == "journal_busy" for e in logs):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert not another.done()
        leave.set()
        await asyncio.wait_for(asyncio.gather(first, same, another), 5)
    assert order.index("in another process") > order.index("out door-logs")
    assert [e for e in order if "license-renewal" in e] == [
        "in license-renewal",
        "out license-renewal",
    ]
    assert order.index("in license-renewal") > order.index("out door-logs")


# --------------------------------------------------------------------------- a fleet's rows


async def test_replicas_hold_the_rows_of_their_scopes_only(pg_url: str) -> None:
    """On PostgreSQL each scope is a row: replicas act at once in different scopes, in turn
    in one, and a row taken over stops only the runs inside it."""
    with Journal(pg_url, clock=SystemClock()) as one, Journal(pg_url, clock=SystemClock()) as two:
        first, second = one.run_lock, two.run_lock
        assert isinstance(first, DbRunLock)
        assert isinstance(second, DbRunLock)
        first.heartbeat_seconds = 0.05
        order: list[str] = []
        inside = asyncio.Event()
        leave = asyncio.Event()

        async def door_logs() -> None:
            async with first.held("door-logs", scopes=("cloud",)):
                order.append("in door-logs")
                inside.set()
                await leave.wait()
                order.append("out door-logs")

        held = asyncio.create_task(door_logs())
        await asyncio.wait_for(inside.wait(), 5)
        # another replica's run of the other scope goes in at once
        async with asyncio.timeout(5), second.held("aca-rejections", scopes=("aca-clp",)):
            order.append("aca-rejections beside it")
            assert second.holder_of(DbRunLock.row("cloud"))["run"] == "door-logs"
        # one of the same scope waits for the row, saying so once
        with capture_logs() as logs:
            same = asyncio.create_task(_enter(second, "license-renewal", ("cloud",), order))
            async with asyncio.timeout(5):
                while not any(e["event"] == "journal_busy" for e in logs):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            assert not same.done()
            leave.set()
            await asyncio.wait_for(asyncio.gather(held, same), 5)
        assert order == [
            "in door-logs",
            "aca-rejections beside it",
            "out door-logs",
            "in license-renewal",
        ]
        # a ticket's run holds both rows; the fence of one stops the runs inside that one
        ticket_in = asyncio.Event()

        async def ticket() -> None:
            async with first.held("diagnose", scopes=("cloud", "aca-clp")):
                ticket_in.set()
                await asyncio.Event().wait()

        running = asyncio.create_task(ticket())
        await asyncio.wait_for(ticket_in.wait(), 5)
        with psycopg.connect(pg_url) as conn:  # another replica took the row over
            conn.execute(
                "UPDATE run_locks SET holder = 'elsewhere', fence = fence + 1 WHERE lock_name = %s",
                (DbRunLock.row("aca-clp"),),
            )
        with pytest.raises(Fenced, match="scope:aca-clp"):
            await asyncio.wait_for(running, 5)
        # its other row was let go, the taken one left to its new holder
        assert not first.holder_of(DbRunLock.row("cloud")).get("holder")
        assert first.holder_of(DbRunLock.row("aca-clp"))["holder"] == "elsewhere"


async def _enter(lock: DbRunLock, what: str, scopes: tuple[str, ...], order: list[str]) -> None:
    async with lock.held(what, scopes=scopes):
        order.append(f"in {what}")
