"""The demo world served on 127.0.0.1 on the wall clock, with instant propagation, and what a
test reads back from it: the faults still present, the writes that took effect."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from doorfix.clock import SystemClock
from doorfix.sandbox.api.app import sandbox_state
from doorfix.sandbox.api.server import ServedSandbox, build_app


@contextmanager
def served_demo() -> Iterator[ServedSandbox]:
    """The demo world on the wall clock, served on 127.0.0.1, with instant propagation.

    The world's delays (ACA -> CLP push, Sync Access) are set to zero so that a verification
    succeeds at its first re-read: on the wall clock the defaults would cost a test ~25 s.
    """
    with served_world("demo") as served:
        yield served


@contextmanager
def served_world(scenario: str, **params: object) -> Iterator[ServedSandbox]:
    """A scenario (with ``params``) on the wall clock, served on 127.0.0.1, instant propagation."""
    app = build_app(scenario, seed=0, clock=SystemClock(), params=dict(params))
    timing = sandbox_state(app).world.settings
    timing.push_delay_s = 0
    timing.propagation_delay_s = 0
    timing.sync_start_delay_s = 0
    timing.sync_duration_s = 0
    with ServedSandbox(app) as served:
        yield served


def present(served: ServedSandbox) -> dict[str, bool]:
    """World fault kind -> present, from the sandbox's ground truth."""
    truth = httpx.get(f"{served.base_url}/sandbox/truth", timeout=10).json()
    return {f["kind"]: f["present"] for f in truth["faults"]}


def writes(served: ServedSandbox) -> Counter[tuple[str, str, str]]:
    """Accepted writes: (operation, targets, params) -> how many times."""
    return Counter(
        (m.operation, json.dumps(m.targets, sort_keys=True), json.dumps(m.params, sort_keys=True))
        for m in served.state.mutations.since(0)
        if m.outcome == "ok"
    )
