# mypy: disable-error-code="import-untyped"
# (psutil ships no type information, and types-psutil is not a dependency)
"""Shared by the benchmarks: a sandbox served on 127.0.0.1 in a subprocess, and peak RSS.

The server runs in its own process so a benchmark's memory figure is the client's alone,
not the world's. ``start_sandbox`` returns once the server printed its ready line (URLs,
credentials, build time); closing its stdin stops it.
"""

from __future__ import annotations

import contextlib
import gc
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    from doorfix.agent.engine.state import Agent

#: the benchmarks' simulated "now" (the scale scenario spreads its rows over the days before)
START = datetime(2026, 11, 16, 8, 0, 0, tzinfo=UTC)
MIB = 1024 * 1024


def serve_main(argv: list[str]) -> None:
    """Subprocess entry: build ``scenario`` with JSON ``params``, serve it, print the ready line."""
    from doorfix.clock import ManualClock
    from doorfix.sandbox.api.app import sandbox_state
    from doorfix.sandbox.api.server import ServedSandbox, build_app

    scenario, params, seed = argv[0], json.loads(argv[1]), int(argv[2])
    started = time.perf_counter()
    app = build_app(scenario, seed=seed, clock=ManualClock(START), params=params)
    state = sandbox_state(app)
    world = state.world
    # as `doorfix sandbox` does: the world lives as long as the process, so spare the
    # collector walking it (a scale world otherwise costs a full collection every few pages)
    gc.collect()
    gc.freeze()
    creds = state.credentials
    with ServedSandbox(app) as served:
        ready = {
            "urls": served.urls,
            "projects": sorted(world.projects),
            "rows": len(world.door_logs),
            "cloud_client_id": creds.cloud_client_id,
            "cloud_client_secret": creds.cloud_client_secret,
            "aca_api_key": creds.aca_api_key,
            "clp_client_id": creds.clp_client_id,
            "clp_client_secret": creds.clp_client_secret,
            "build_s": round(time.perf_counter() - started, 1),
            "server_rss_mib": round(psutil.Process().memory_info().rss / MIB, 1),
            "shape": world_shape(world),
        }
        print(json.dumps(ready), flush=True)
        sys.stdin.read()  # the parent closes stdin when it is done


def world_shape(world: Any) -> dict[str, Any]:
    """What a steady cycle's least requests depend on: centers, projects, sites' locks and IQs
    (and each site's center, whose shard scans it)."""
    sites: dict[str, list[set[str]]] = {}
    for lock in world.locks.values():
        counted = sites.setdefault(lock.site_id, [set(), set()])
        counted[0].add(lock.id)
        counted[1].add(lock.iq_id)
    center_of = {c.clp_site_id: c.id for c in world.centers.values()}
    return {
        "centers": len(world.centers),
        "projects": len(world.projects),
        "sites": [[len(locks), len(iqs)] for locks, iqs in sites.values()],
        "site_centers": [center_of.get(site) for site in sites],
    }


def start_sandbox(
    scenario: str, params: dict[str, Any], *, seed: int = 0
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start the sandbox subprocess and wait for its ready line."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter running our own module
        [sys.executable, str(Path(__file__)), scenario, json.dumps(params), str(seed)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(10)
        raise SystemExit(f"the sandbox server exited ({process.returncode}) before it was ready")
    return process, json.loads(line)


def stop_sandbox(process: subprocess.Popen[str]) -> None:
    """Close the server's stdin (its signal to stop) and wait for it."""
    assert process.stdin is not None
    process.stdin.close()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


class PeakRss:
    """Samples this process's RSS every few milliseconds while a pass runs."""

    def __init__(self, interval: float = 0.005) -> None:
        self._interval = interval
        self._process = psutil.Process()
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRss:
        self.peak = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


if __name__ == "__main__":
    serve_main(sys.argv[1:])


@contextlib.contextmanager
def scale_sandbox(centers: int, rows: int, *, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Serve the ``scale`` world (``centers``, ``rows`` door logs over 7 days) in a
    subprocess, print what was built, and yield its ready line; stopped afterwards."""
    params = {"centers": centers, "door_logs": rows, "days": 7}
    process, ready = start_sandbox("scale", params, seed=seed)
    print(
        f"scale world: {centers} centers, {ready['rows']:,} door logs, "
        f"built in {ready['build_s']} s, server RSS {ready['server_rss_mib']} MiB"
    )
    try:
        yield ready
    finally:
        stop_sandbox(process)


def served_agent(settings: Any, ready: dict[str, Any], journal: Any, clock: Any) -> Agent:
    """An agent on the sandbox a :func:`start_sandbox` process serves (``ready``: its line)."""
    from doorfix.agent.runtime import Urls, build_agent, sandbox_secrets

    urls = ready["urls"]
    return build_agent(
        settings,
        sandbox_secrets(
            ready["cloud_client_secret"], ready["aca_api_key"], ready["clp_client_secret"]
        ),
        clock=clock,
        journal=journal,
        urls=Urls(urls["cloud"], urls["aca"], urls["clp"], urls["clp_identity"]),
    )
