"""``doorfix daemon``: a refusal that comes while a toggle is being verified waits for no one.

The daemon as a real process against the scale world served on 127.0.0.1. A's Access
Matrix toggle takes 15 s to reach CLP; B is refused at their own lock meanwhile. The run that
toggled A gave its turn back once its writes were sent, so the next tick's run fixes B while
A's verification is still going; A is fixed when its push lands, and each toggle is sent once.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from support import configs
from support.polling import wait_for
from support.processes import daemon
from support.scale import pick
from support.served import served_world

from doorfix.agent.journal.store import Journal
from doorfix.clock import SystemClock


def runs_in_progress(url: str) -> float:
    """``doorfix_runs_in_progress`` of aca-rejections, from ``/metrics``."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "doorfix_runs_in_progress"
        and sample.labels.get("playbook") == "aca-rejections"
    )


def test_a_refusal_during_a_verification_is_fixed_before_that_verification_ends(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal.sqlite3"
    with served_world("scale", centers=4, door_logs=0) as served:
        world = served.state.world
        (a, lock_a), (b, lock_b) = pick(world)["person"]
        config = configs.daemon_config(
            tmp_path / "doorfix.toml",
            served.urls,
            journal,
            timeout_seconds=5,
            only="aca_rejections",
        )
        base = served.base_url

        def refuse(user_id: str, lock_id: str) -> None:
            params = {"user_id": user_id, "lock_id": lock_id}
            made = httpx.post(
                f"{base}/sandbox/faults",
                json={"kind": "aca.clp_out_of_sync", "params": params},
                timeout=10,
            )
            assert made.status_code == 201, made.text
            shown = httpx.post(f"{base}/sandbox/present", json={**params, "via": "tag"}, timeout=10)
            assert shown.status_code == 200, shown.text

        def toggled(user_id: str) -> int:
            return sum(
                1
                for m in served.state.mutations.since(0)
                if m.operation == "access_matrix" and m.targets.get("user_id") == user_id
            )

        def outcome(reader: Journal, user_id: str) -> str | None:
            found = reader.incidents(subject={"user_id": user_id})
            return found[0].outcome if found else None

        world.settings.push_delay_s = 15
        refuse(a, lock_a)
        with daemon(config) as proc, Journal(journal, clock=SystemClock()) as reader:
            wait_for(lambda: toggled(a) == 2, timeout=30, what="A's toggle to be sent")
            world.settings.push_delay_s = 0
            refuse(b, lock_b)
            wait_for(lambda: outcome(reader, b) == "fixed", timeout=20, what="B to be fixed")
            # B did not wait for A's verification: A's push has not landed yet, and /metrics
            # shows the run still verifying it
            a_then = outcome(reader, a)
            going = runs_in_progress(proc.url)
            wait_for(lambda: outcome(reader, a) == "fixed", timeout=40, what="A to be fixed")
            assert proc.stop() == 0

    assert a_then is None
    assert going >= 1
    assert Counter({u: toggled(u) for u in (a, b)}) == Counter({a: 2, b: 2})
    # a run that ended after runs started beside it: every run completed, none crashed
    assert proc.events("run_crashed") == []
    assert proc.events("run_failed") == []
