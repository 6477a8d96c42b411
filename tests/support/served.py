"""The demo world served on 127.0.0.1 on the wall clock, with instant propagation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from doorfix.clock import SystemClock
from doorfix.sandbox.api.app import sandbox_state
from doorfix.sandbox.api.server import ServedSandbox, build_app


@contextmanager
def served_demo() -> Iterator[ServedSandbox]:
    """The demo world on the wall clock, served on 127.0.0.1, with instant propagation.

    The world's delays (ACA -> CLP push, Sync Access) are set to zero so that a verification
    succeeds at its first re-read: on the wall clock the defaults would cost a test ~25 s.
    """
    app = build_app("demo", seed=0, clock=SystemClock())
    timing = sandbox_state(app).world.settings
    timing.push_delay_s = 0
    timing.propagation_delay_s = 0
    timing.sync_start_delay_s = 0
    timing.sync_duration_s = 0
    with ServedSandbox(app) as served:
        yield served
