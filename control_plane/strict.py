"""Requests read exactly as the OpenAPI document types them, checked before the
handler runs (a Litestar `before_request` hook on every admin route).

Litestar converts leniently: `"5"` for an integer in a body, `null` for a query
parameter left out, a number of seconds for a date. The document says an integer is
an integer, and the server takes what the document says: the body is decoded with
its handler's `data` type and each query parameter with its own, strictly, and a
mismatch is a 400 naming each field at fault. A number with no fraction (`3.0`) is
an integer, as JSON Schema says. Litestar then checks ranges and patterns.

A query parameter the operation does not declare is refused too (400), not ignored:
`tenant=` for `tenant_id=` must not read as "every tenant". The operation's query
parameters are those its handler declares with `QueryParameter` (`FromQuery` is one);
`control_plane.openapi` checks that the document lists no other."""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

import msgspec
from litestar import Request
from litestar.params import QueryParameter
from litestar.typing import FieldDefinition

from control_plane.errors import BadRequest, ProblemError, Source, TypeCheckFailed, field_error

__all__ = ["check_request"]

_LARGEST = 2**63  # an integral float beyond this is left a float (no int field takes it)


async def check_request(request: Request[Any, Any, Any]) -> None:
    parameters = request.route_handler.parsed_fn_signature.parameters
    query = {
        _wire(name, field): field
        for name, field in parameters.items()
        if isinstance(field.kwarg_definition, QueryParameter)
    }
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in query]
    if "" in unknown:  # `?=x`: nothing to name it by
        raise BadRequest("the query has a parameter without a name", field="", source="query")
    errors = [ProblemError(name, "not a parameter of this operation", "query") for name in unknown]
    errors += [
        error for wire, field in query.items() for error in _query_errors(request, wire, field)
    ]
    if errors:
        raise TypeCheckFailed(errors)
    if "data" in parameters:
        await _check_body(request, parameters["data"])


def _wire(name: str, field: FieldDefinition) -> str:
    """A query parameter's name in the URL."""
    kwarg = field.kwarg_definition
    assert isinstance(kwarg, QueryParameter)
    return kwarg.query or name


def _query_errors(
    request: Request[Any, Any, Any], wire: str, field: FieldDefinition
) -> list[ProblemError]:
    values = request.query_params.getall(wire, [])
    if len(values) > 1:
        return [ProblemError(wire, "given more than once", "query")]
    if not values:
        return []
    target = _without_none(field.annotation)
    try:  # a string, or JSON for what a string is not (a number, a boolean)
        value: Any = values[0] if _takes_text(target) else msgspec.json.decode(values[0])
        _typed(value, target, "query")
    except msgspec.DecodeError:
        return [ProblemError(wire, f"not a value of its type: {values[0]!r}", "query")]
    except TypeCheckFailed as exc:
        return [ProblemError(wire, e.message, "query") for e in exc.errors()]
    return []


async def _check_body(request: Request[Any, Any, Any], data: FieldDefinition) -> None:
    raw = await request.body()
    if not raw.strip():
        if data.has_default:
            return
        raise BadRequest("this operation takes a JSON body, and the request has none", field="")
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise BadRequest(f"the body is not valid JSON ({exc})", field="") from None
    _typed(value, data.annotation, "body")


def _typed(value: Any, target: Any, source: Source) -> None:
    try:
        msgspec.convert(_integers(value), target, strict=True)
    except msgspec.ValidationError as exc:
        raise TypeCheckFailed([field_error(str(exc), source)]) from None


def _integers(value: Any) -> Any:
    """`value` with each float that has no fraction as an int: JSON Schema's integer."""
    if isinstance(value, float) and value.is_integer() and abs(value) < _LARGEST:
        return int(value)
    if isinstance(value, list):
        return [_integers(v) for v in value]
    if isinstance(value, dict):
        return {k: _integers(v) for k, v in value.items()}
    return value


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        rest = tuple(a for a in get_args(annotation) if a is not type(None))
        return rest[0] if len(rest) == 1 else Union[rest]  # noqa: UP007
    return annotation


def _takes_text(target: Any) -> bool:
    """Whether a query value is this type's text as it is (a name, a uuid, a time),
    not JSON (a number, a boolean)."""
    return target not in (int, float, bool)
