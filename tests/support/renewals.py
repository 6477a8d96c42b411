"""The license renewal, the write that bills: its answer held back, and the ones that landed."""

from __future__ import annotations

from doorfix.sandbox.api.runtime import SandboxState


def hold_back_renewal(state: SandboxState, *, seconds: float) -> None:
    """The next renewal takes effect at once, but its answer comes ``seconds`` later."""
    state.faults.add(
        "slow",
        system="cloud",
        endpoint="renew_door_license",
        count=1,
        slow_seconds=seconds,
        after=True,
    )


def renewals(state: SandboxState) -> list[str]:
    """The door of each renewal the sandbox received, in order."""
    return [
        m.targets["door_id"]
        for m in state.mutations.since(0)
        if m.operation == "renew_door_license"
    ]
