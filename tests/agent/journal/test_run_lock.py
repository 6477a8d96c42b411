"""The journal's run lock: one process at a time, and in it one run at a time per scope."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from structlog.testing import capture_logs

from doorfix.agent.journal.lock import RunLock


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
