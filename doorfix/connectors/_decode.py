"""Turning response bytes into typed models, with contract errors that name the field."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from doorfix.errors import ContractError, System

T = TypeVar("T")


def _field_path(exc: ValidationError, prefix: str = "") -> str:
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return prefix or "<body>"
    loc = ".".join(str(part) for part in errors[0]["loc"])
    path = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
    return path or "<body>"


def _reason(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    return errors[0]["msg"] if errors else "invalid response"


def contract_error(
    exc: ValidationError, *, system: System, endpoint: str, prefix: str = ""
) -> ContractError:
    """Build the ContractError for a validation failure, naming the first offending field."""
    return ContractError(
        f"response does not match the contract: {_reason(exc)}",
        system=system,
        endpoint=endpoint,
        field=_field_path(exc, prefix),
    )


def decode(
    adapter: TypeAdapter[T], content: bytes, *, system: System, endpoint: str, write: bool = False
) -> T:
    """Validate a whole JSON body against ``adapter``; raise ContractError on any mismatch.

    ``write``: the body answers a write, so a mismatch leaves the write's outcome unknown (the
    error says so, see :attr:`ConnectorError.write`).
    """
    try:
        return adapter.validate_json(content)
    except ValidationError as exc:
        error = contract_error(exc, system=system, endpoint=endpoint)
        error.write = write
        raise error from exc


def decode_items(
    item_adapter: TypeAdapter[T],
    raw_items: Iterable[Any],
    *,
    system: System,
    endpoint: str,
    on_skip: Callable[[ContractError], None],
    prefix: str = "items",
) -> list[T]:
    """Validate list items one by one; a malformed item is reported through ``on_skip``."""
    out: list[T] = []
    for index, raw in enumerate(raw_items):
        try:
            out.append(item_adapter.validate_python(raw))
        except ValidationError as exc:
            on_skip(
                contract_error(exc, system=system, endpoint=endpoint, prefix=f"{prefix}.{index}")
            )
    return out
