"""Small helpers for the sandbox API tests: authenticated calls, picking entities."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import httpx

from doorfix.sandbox.api.transport import InProcessSandbox
from doorfix.sandbox.world.world import World

X = TypeVar("X")

COMMANDS_PATH = "/api/v1.0/invoke/open-ability/method/manager-commands"


def pick(items: Iterable[X], pred: Callable[[X], bool] = lambda _x: True) -> X:
    """The first item satisfying ``pred`` (the test's precondition on the demo world)."""
    for item in items:
        if pred(item):
            return item
    raise AssertionError("the demo world has no entity the test needs")


async def cloud_call(
    sb: InProcessSandbox, token: str, command: str, request_id: str = "req-1", **param: Any
) -> httpx.Response:
    """POST one cloud command with a bearer token."""
    return await sb.cloud.post(
        COMMANDS_PATH,
        json={"command": command, "id": request_id, "param": param},
        headers={"Authorization": f"Bearer {token}"},
    )


async def cloud_result(sb: InProcessSandbox, token: str, command: str, **param: Any) -> Any:
    """Run a cloud command that must succeed; return its ``result``."""
    response = await cloud_call(sb, token, command, **param)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True, body
    return body["result"]


async def cloud_error(sb: InProcessSandbox, token: str, command: str, **param: Any) -> str:
    """Run a cloud command that must fail as a business error; return the error code."""
    response = await cloud_call(sb, token, command, **param)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is False, body
    code: str = body["error"]["code"]
    return code


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def active_pair(world: World) -> tuple[str, str]:
    """An ACA user and a lock the user's access to is active now (an enabled matrix cell)."""
    for user in world.users.values():
        for access in world.aca_accesses(user.id):
            if access.state == "active":
                return user.id, access.lock_id
    raise AssertionError("the demo world has no user with an active access")
