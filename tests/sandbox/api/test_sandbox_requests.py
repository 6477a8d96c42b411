"""The request log: when each vendor API request arrived, per system (rate limits read it)."""

from __future__ import annotations

from doorfix.sandbox.api.runtime import busiest, system_of
from doorfix.sandbox.api.transport import InProcessSandbox


async def test_each_api_request_is_logged_under_its_system(sandbox: InProcessSandbox) -> None:
    await sandbox.cloud_token()
    await sandbox.clp_token()
    await sandbox.aca.get("/api/v1/centers", headers=sandbox.aca_headers())
    await sandbox.aca.get("/api/v1/centers", headers=sandbox.aca_headers())
    await sandbox.control.get("/mutations")
    log = sandbox.state.requests
    assert log.systems() == ["aca", "cloud", "clp_identity"]
    assert len(log.times("aca")) == 2
    assert log.times("aca") == sorted(log.times("aca"))
    assert log.times("clp") == []  # the control API and unknown systems are not logged


def test_the_busiest_second_is_a_half_open_window() -> None:
    # five requests 0.2 s apart fill [0, 1); a sixth at 1.0 starts the next window
    assert busiest([0.0, 0.2, 0.4, 0.6, 0.8, 1.0]) == 5
    assert busiest([0.0, 0.2, 0.4, 0.6, 0.8, 0.99]) == 6
    assert busiest([5.0, 0.0, 9.0]) == 1
    assert busiest([]) == 0


def test_paths_name_their_system() -> None:
    assert system_of("/clp-identity/connect/token") == "clp_identity"
    assert system_of("/clp/v1.2/locks") == "clp"
    assert system_of("/cloud/oauth/token") == "cloud"
    assert system_of("/aca/api/v1/centers") == "aca"
    assert system_of("/sandbox/truth") is None


async def test_the_control_api_counts_requests_and_the_busiest_second(
    sandbox: InProcessSandbox,
) -> None:
    for _ in range(3):
        await sandbox.aca.get("/api/v1/centers", headers=sandbox.aca_headers())
    answer = (await sandbox.control.get("/requests")).json()
    assert answer["systems"]["aca"] == {"requests": 3, "busiest_second": 3}
    later = sandbox.state.requests.times("aca")[-1] + 1
    answer = (await sandbox.control.get("/requests", params={"since": later})).json()
    assert answer["systems"]["aca"] == {"requests": 0, "busiest_second": 0}
    assert (await sandbox.control.get("/requests", params={"since": "soon"})).status_code == 400
