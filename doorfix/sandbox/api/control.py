"""The sandbox's control API under ``/sandbox/``: ground truth, presentations, clock, faults, reset.

``/sandbox/onsite`` stands in for the person on site (or the user with their phone): the
runbooks' steps no vendor API can take (power cycle an IQ, repair a privacy connector,
reinstall the app) call the world's hardware verbs.

Unauthenticated (the server listens on loopback only) and never subject to API faults.
Documented for people in docs/sandbox.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, get_args

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from doorfix.clock import ManualClock
from doorfix.sandbox.api.runtime import Answer, SandboxState, busiest, json_body, state_of
from doorfix.sandbox.faults.api import FaultKind
from doorfix.sandbox.scenarios.registry import build_scenario
from doorfix.sandbox.world import model, wire
from doorfix.sandbox.world.world import World

JSON = dict[str, Any]

_CREDENTIAL_TYPES = frozenset(get_args(model.CredentialType))


def _error(status: int, message: str) -> Answer:
    return Answer(JSONResponse({"error": message}, status_code=status))


async def _object(request: Request) -> JSON:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise _error(400, "the body must be a JSON object")
    return body


def _query(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise _error(400, f"query parameter {name} is required")
    return value


def _truth(st: SandboxState) -> JSON:
    world = st.world
    return {
        "now": wire.iso(st.now()),
        "scenario": world.scenario,
        "seed": world.seed,
        "faults": wire.jsonable(world.faults()),
        "renewals": dict(world.renewals),
    }


async def truth(request: Request) -> Response:
    """``GET /sandbox/truth``: clock, scenario, seed, world faults, renewals."""
    return JSONResponse(_truth(state_of(request)))


async def truth_lock(request: Request) -> Response:
    """``GET /sandbox/truth/lock?user_id=&lock_id=``: why this user does or does not get in."""
    st = state_of(request)
    user_id, lock_id = _query(request, "user_id"), _query(request, "lock_id")
    try:
        return JSONResponse(wire.jsonable(st.world.truth_lock(user_id, lock_id)))
    except (KeyError, model.WorldError) as exc:
        raise _error(404, f"unknown user or lock: {exc}") from None


async def truth_door(request: Request) -> Response:
    """``GET /sandbox/truth/door?door_id=&personnel_id=|visitor_id=|credential_value=``.

    ``credential_type`` may accompany ``credential_value`` (default: the door's guess).
    """
    st = state_of(request)
    door_id = _query(request, "door_id")
    q = request.query_params
    who = {k: q[k] for k in ("personnel_id", "visitor_id", "credential_value") if q.get(k)}
    if len(who) != 1:
        raise _error(400, "exactly one of personnel_id, visitor_id, credential_value is required")
    ctype = q.get("credential_type")
    if ctype is not None and ctype not in _CREDENTIAL_TYPES:
        raise _error(400, f"credential_type is one of {sorted(_CREDENTIAL_TYPES)}")
    try:
        result = st.world.truth_door(
            door_id,
            personnel_id=who.get("personnel_id"),
            visitor_id=who.get("visitor_id"),
            credential_value=who.get("credential_value"),
            credential_type=ctype,  # type: ignore[arg-type]  # checked above
        )
    except (KeyError, model.WorldError) as exc:
        raise _error(404, f"unknown door or person: {exc}") from None
    return JSONResponse(wire.jsonable(result))


async def present(request: Request) -> Response:
    """``POST /sandbox/present``: someone presents a credential, or the maintenance card."""
    st = state_of(request)
    body = await _object(request)
    world = st.world
    try:
        if "maintenance_card" in body:
            lock_id = str(body["maintenance_card"])
            recorded = world.present_maintenance_card(lock_id)
            return JSONResponse({"maintenance_card": lock_id, "recorded": recorded})
        if "lock_id" in body:
            via = body.get("via", "tag")
            if via not in ("tag", "mkey"):
                raise _error(400, 'via is "tag" or "mkey"')
            decision: Any = world.present_at_lock(str(body["user_id"]), str(body["lock_id"]), via)
        elif "door_id" in body:
            decision = world.present_at_door(
                str(body["door_id"]), str(body["credential_type"]), str(body["credential_value"])
            )
        else:
            raise _error(400, "give user_id+lock_id, door_id+credential_*, or maintenance_card")
    except KeyError as exc:
        raise _error(400, f"missing {exc}") from None
    except model.WorldError as exc:
        raise _error(404 if exc.code == "not_found" else 400, str(exc)) from None
    return JSONResponse(wire.jsonable(decision))


async def clock(request: Request) -> Response:
    """``POST /sandbox/clock``: ``{"advance_seconds": n}`` or ``{"set": iso}``; 409 if fixed."""
    st = state_of(request)
    body = await _object(request)
    stepper = st.clock
    if not isinstance(stepper, ManualClock):
        raise _error(409, f"the sandbox clock ({type(stepper).__name__}) cannot be stepped")
    try:
        _step(stepper, body)
    except ValueError as exc:
        raise _error(400, str(exc)) from None
    st.world.advance()
    return JSONResponse({"now": wire.iso(st.now())})


def _step(stepper: ManualClock, body: JSON) -> None:
    if "advance_seconds" in body:
        seconds = body["advance_seconds"]
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            raise ValueError("advance_seconds must be a number")
        stepper.advance(float(seconds))
    elif "set" in body:
        stepper.set(wire.parse_iso(str(body["set"])))
    else:
        raise ValueError('give {"advance_seconds": n} or {"set": "<iso time>"}')


def _id_param(params: JSON, name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise _error(400, f"params.{name} (a string) is required")
    return value


def _flag_param(params: JSON, name: str) -> bool:
    value = params.get(name)
    if not isinstance(value, bool):
        raise _error(400, f"params.{name} (true or false) is required")
    return value


def _lock_view(world: World, lock: model.Lock) -> JSON:
    return {"lock": wire.clp_lock(lock, world.iqs[lock.iq_id])}


def _power_cycle_iq(world: World, params: JSON) -> JSON:
    return {"iq": wire.clp_iq(world.power_cycle_iq(_id_param(params, "iq_id")))}


def _set_iq_online(world: World, params: JSON) -> JSON:
    iq = world.set_iq_online(_id_param(params, "iq_id"), _flag_param(params, "online"))
    return {"iq": wire.clp_iq(iq)}


def _set_lock_online(world: World, params: JSON) -> JSON:
    lock = world.set_lock_online(_id_param(params, "lock_id"), _flag_param(params, "online"))
    return _lock_view(world, lock)


def _set_privacy_mode(world: World, params: JSON) -> JSON:
    lock = world.set_privacy_mode(_id_param(params, "lock_id"), _flag_param(params, "on"))
    return _lock_view(world, lock)


def _reinstall_app(world: World, params: JSON) -> JSON:
    key = world.reinstall_app(_id_param(params, "user_id"))
    return {"mobile_key": wire.aca_mobile_key(key)}


#: what a person on site (or the user) can do: action -> the world's hardware verb
_ONSITE: Mapping[str, Callable[[World, JSON], JSON]] = MappingProxyType(
    {
        "power_cycle_iq": _power_cycle_iq,
        "set_iq_online": _set_iq_online,
        "set_lock_online": _set_lock_online,
        "set_privacy_mode": _set_privacy_mode,
        "reinstall_app": _reinstall_app,
    }
)


async def onsite(request: Request) -> Response:
    """``POST /sandbox/onsite``: ``{"action", "params"}``, a step taken on site (or by the user)."""
    st = state_of(request)
    body = await _object(request)
    action, params = body.get("action"), body.get("params", {})
    if not isinstance(action, str) or not isinstance(params, dict):
        raise _error(400, 'the body is {"action": str, "params": {...}}')
    verb = _ONSITE.get(action)
    if verb is None:
        raise _error(400, f"action is one of {sorted(_ONSITE)}")
    try:
        result = verb(st.world, params)
    except model.WorldError as exc:
        raise _error(404 if exc.code == "not_found" else 400, str(exc)) from None
    return JSONResponse({"action": action, **result})


async def faults(request: Request) -> Response:
    """``GET /sandbox/faults`` lists world faults; ``POST`` injects ``{"kind", "params"}``."""
    st = state_of(request)
    if request.method == "GET":
        return JSONResponse({"faults": wire.jsonable(st.world.faults())})
    body = await _object(request)
    kind, params = body.get("kind"), body.get("params", {})
    if not isinstance(kind, str) or not isinstance(params, dict):
        raise _error(400, 'the body is {"kind": str, "params": {...}}')
    try:
        record = st.world.inject(kind, **params)
    except (TypeError, ValueError, KeyError, model.WorldError) as exc:
        raise _error(400, f"cannot inject {kind}: {exc}") from None
    return JSONResponse(wire.jsonable(record), status_code=201)


async def clear_fault(request: Request) -> Response:
    """``DELETE /sandbox/faults/{id}``."""
    st = state_of(request)
    try:
        st.world.clear(request.path_params["fault_id"])
    except (KeyError, model.WorldError) as exc:
        raise _error(404, f"no such fault: {exc}") from None
    return Response(status_code=204)


async def api_faults(request: Request) -> Response:
    """``GET``/``POST``/``DELETE /sandbox/api-faults``: rates, rules, token expiry."""
    st = state_of(request)
    if request.method == "GET":
        return JSONResponse(st.faults.snapshot())
    if request.method == "DELETE":
        st.faults.clear()
        return Response(status_code=204)
    body = await _object(request)
    try:
        return _configure_api_faults(st, body)
    except (TypeError, ValueError) as exc:
        raise _error(400, str(exc)) from None


def _configure_api_faults(st: SandboxState, body: JSON) -> Response:
    system = body.get("system")
    if not isinstance(system, str):
        raise TypeError("system must be one of cloud, aca, clp")
    if "rates" in body:
        rates = body["rates"]
        if not isinstance(rates, dict):
            raise TypeError("rates must be an object")
        st.faults.set_rates(system, **rates)  # type: ignore[arg-type]  # checked inside
        return JSONResponse(st.faults.snapshot())
    kind = FaultKind(str(body.get("kind")))
    if kind is FaultKind.EXPIRE_TOKENS:
        st.faults.expire_tokens(system)  # type: ignore[arg-type]  # checked inside
        return JSONResponse({"expired_tokens": system})
    params = body.get("params", {})
    if not isinstance(params, dict):
        raise TypeError("params must be an object")
    rule = st.faults.add(
        kind,
        system=system,  # type: ignore[arg-type]  # checked inside
        endpoint=body.get("endpoint"),
        count=int(body.get("count", 1)),
        **params,
    )
    return JSONResponse(wire.jsonable(rule), status_code=201)


async def remove_api_fault(request: Request) -> Response:
    """``DELETE /sandbox/api-faults/{rule_id}``."""
    if not state_of(request).faults.remove(request.path_params["rule_id"]):
        raise _error(404, "no such API fault rule")
    return Response(status_code=204)


async def reset(request: Request) -> Response:
    """``POST /sandbox/reset``: rebuild the world now; mutation log and all faults cleared."""
    st = state_of(request)
    body = await _object(request)
    scenario = body.get("scenario", st.world.scenario)
    seed = body.get("seed", st.world.seed)
    params = body.get("params", {})
    if not isinstance(scenario, str) or not isinstance(seed, int) or not isinstance(params, dict):
        raise _error(400, 'the body is {"scenario": str, "seed": int, "params": {...}}')
    try:
        world = build_scenario(scenario, seed=seed, clock=st.clock, **params)
    except (TypeError, ValueError, KeyError) as exc:
        raise _error(400, f"cannot build {scenario}: {exc}") from None
    st.world = world
    st.mutations.clear()
    st.faults.clear()
    return JSONResponse(_truth(st))


async def mutations(request: Request) -> Response:
    """``GET /sandbox/mutations?since=seq``: write requests that reached the world."""
    st = state_of(request)
    raw = request.query_params.get("since", "0")
    try:
        since = int(raw)
    except ValueError:
        raise _error(400, "since must be an integer") from None
    rows = st.mutations.since(since)
    return JSONResponse({"mutations": [r.to_json() for r in rows]})


async def requests(request: Request) -> Response:
    """``GET /sandbox/requests?since=T``: each system's API requests, and its busiest second.

    ``since``: only requests that arrived at or after ``time.monotonic()`` = T (the server's
    monotonic clock, which every process on the machine shares).
    """
    st = state_of(request)
    raw = request.query_params.get("since", "0")
    try:
        since = float(raw)
    except ValueError:
        raise _error(400, "since must be a number") from None
    log = st.requests
    systems = {}
    for system in log.systems():
        times = [t for t in log.times(system) if t >= since]
        systems[system] = {"requests": len(times), "busiest_second": busiest(times)}
    return JSONResponse({"systems": systems})


def routes() -> list[Route]:
    """The control API's routes, relative to ``/sandbox``."""
    return [
        Route("/truth", truth, methods=["GET"]),
        Route("/truth/lock", truth_lock, methods=["GET"]),
        Route("/truth/door", truth_door, methods=["GET"]),
        Route("/present", present, methods=["POST"]),
        Route("/onsite", onsite, methods=["POST"]),
        Route("/clock", clock, methods=["POST"]),
        Route("/faults", faults, methods=["GET", "POST"]),
        Route("/faults/{fault_id}", clear_fault, methods=["DELETE"]),
        Route("/api-faults", api_faults, methods=["GET", "POST", "DELETE"]),
        Route("/api-faults/{rule_id}", remove_api_fault, methods=["DELETE"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/mutations", mutations, methods=["GET"]),
        Route("/requests", requests, methods=["GET"]),
    ]
