"""The admin API's OpenAPI document, finished after Litestar builds it so that it
describes what the server does, route by route, whatever the route:

- the schema of every body and every answer is msgspec's for the very type the server
  decodes (`control_plane.strict`) or encodes with (`control_plane.openapi_schemas`);
- every operation lists the problems it can answer, as `application/problem+json`
  bodies (`ProblemDetails`): 401 and 403 from the admin guard, 404 where it names an
  object, 400 on all (a query parameter it does not declare, `control_plane.strict`),
  422 where it takes input, 409 on writes, 413 on bodies, 503;
- the query parameters it lists are the ones the server reads: those the handler
  declares with `QueryParameter` (checked here, as the document is built);
- query and header parameters are never null: absent is how they say "none";
- every write takes the `X-Sluice-Force-Schema` header (`control_plane.store`);
- an answer built as a `Response` carries its resource's version as the `ETag`
  (`control_plane.api.common.versioned`, `etag`), and the document says so."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, get_args, get_origin

import msgspec
from litestar import Litestar, Response
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.params import ParameterKwarg, QueryParameter
from litestar.routes import HTTPRoute

from control_plane.authz import Owner
from control_plane.errors import PROBLEM_JSON, ProblemDetails
from control_plane.openapi_schemas import REF, Schema, Schemas
from control_plane.store import FORCE_SCHEMA

__all__ = ["finished", "install"]

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_BOUNDS = {
    "gt": "exclusiveMinimum",
    "ge": "minimum",
    "lt": "exclusiveMaximum",
    "le": "maximum",
    "min_length": "minLength",
    "max_length": "maxLength",
    "pattern": "pattern",
}

ABOUT = """Every refusal is an RFC 9457 problem (`application/problem+json`, the
`ProblemDetails` schema): `detail` says what is wrong, naming the field(s) at fault, and
`errors` lists them (`key`, `message`, `source`). 400: the request does not match this
document, or has a query parameter its operation does not list (a misspelt filter is
refused, not ignored). 422: it matches, but breaks a rule a schema cannot state: fields
that must agree with each other (`soft_budget_usd` <= `budget_usd`), with the time
(`expires_at` in the future, `since` and `until` in their range), or with the state (a
`provider_id` that exists). 409:
the state conflicts (a name taken, a stale `If-Match`, an object still in use)."""

PROBLEMS = {
    400: "The request does not match this document, or has a query parameter this operation"
    " does not list; `errors` names each field at fault.",
    401: "No admin identity: no token, or one that is unknown, expired or revoked.",
    403: "The caller's role does not allow this.",
    404: "No such object (or one of another tenant's: the same answer).",
    409: "The state conflicts: a name taken, a stale `If-Match` version, an object in use,"
    " a live data plane replica that cannot apply the events (see X-Sluice-Force-Schema).",
    413: "The body is too large.",
    422: "The request matches this document but breaks a rule it cannot state.",
    503: "The database, or the OIDC issuer's key set, is unavailable; try again shortly.",
}
ETAG = {
    "description": 'The resource\'s version, as `If-Match` takes it back (`"3"`).',
    "required": True,
    "schema": {"type": "string", "pattern": '^"[0-9]+"$'},
}
FORCE_SCHEMA_HEADER = {
    "name": FORCE_SCHEMA,
    "in": "header",
    "required": False,
    "description": "true: append even events of an event schema that live data plane replicas"
    " do not understand (refused with 409 otherwise, naming them); those replicas stop"
    " applying events there and report not ready until they are upgraded.",
    "schema": {"type": "string", "enum": ["true", "false"]},
}
AUTHENTICATE = {"description": "`Bearer`", "required": True, "schema": {"type": "string"}}


def install(app: Litestar) -> None:
    """Serve the finished document: every renderer (JSON, Scalar, Swagger) reads the
    copy the OpenAPI plugin keeps."""
    plugin = app.plugins.get(OpenAPIPlugin)
    plugin._openapi_schema = finished(plugin.provide_openapi_schema(), app)


def finished(built: dict[str, Any], app: Litestar) -> dict[str, Any]:
    doc: dict[str, Any] = msgspec.to_builtins(built)
    doc["info"]["description"] = ABOUT
    operations = list(_operations(doc, app))
    bodies = [t for _, handler, _ in operations if (t := _body_type(handler)) is not None]
    answers = [t for _, handler, _ in operations if (t := _answer_type(handler)) is not None]
    schemas = Schemas(bodies, [ProblemDetails, *answers])
    for op, handler, method in operations:
        _finish(op, handler, method, schemas)
    doc.setdefault("components", {})["schemas"] = schemas.components
    return doc


def _operations(
    doc: dict[str, Any], app: Litestar
) -> Iterator[tuple[dict[str, Any], HTTPRouteHandler, str]]:
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_format not in doc["paths"]:
            continue
        item = doc["paths"][route.path_format]
        for handler in route.route_handlers:
            for method in handler.http_methods:
                if method.lower() in item:
                    yield item[method.lower()], handler, method


def _body_type(handler: HTTPRouteHandler) -> Any:
    data = handler.parsed_fn_signature.parameters.get("data")
    return None if data is None else data.annotation


def _answer_type(handler: HTTPRouteHandler) -> Any:
    """What the handler answers with (inside a `Response`); None: no body."""
    answer = handler.parsed_fn_signature.return_type.annotation
    if get_origin(answer) is Response:
        answer = get_args(answer)[0]
    return None if answer in (None, type(None)) else answer


def _finish(op: dict[str, Any], handler: HTTPRouteHandler, method: str, schemas: Schemas) -> None:
    _check_query(op, handler)
    rules = _parameter_rules(handler)
    for parameter in op.get("parameters", []):
        if parameter["in"] in ("query", "header"):
            parameter["schema"] = _never_null(parameter["schema"])
        parameter["schema"].update(rules.get(parameter["name"], {}))
    if method in WRITES:  # read by `control_plane.api.common.get_store`, for every write
        op.setdefault("parameters", []).append(FORCE_SCHEMA_HEADER)
    body = _body_type(handler)
    if body is not None:
        data = handler.parsed_fn_signature.parameters["data"]
        op["requestBody"] = {
            "required": not data.has_default,
            "content": {"application/json": {"schema": schemas.taken[body]}},
        }
    # Litestar's guess at the problems (a 400 of another shape) gives way to ours
    responses = {k: v for k, v in op.get("responses", {}).items() if k.startswith("2")}
    op["responses"] = responses
    success = responses.setdefault(str(handler.status_code), {"description": "Done"})
    answer = _answer_type(handler)
    if answer is not None:
        success["content"] = {"application/json": {"schema": schemas.sent[answer]}}
    if get_origin(handler.parsed_fn_signature.return_type.annotation) is Response:
        success["headers"] = {"ETag": ETAG}
    for status in sorted(_problem_statuses(op, handler, method)):
        responses[str(status)] = _problem(status)


def _parameter_rules(handler: HTTPRouteHandler) -> dict[str, Schema]:
    """Each parameter's bounds, as the server checks them (Litestar's document leaves out
    a bound of 0)."""
    rules = {}
    for name, field in handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        if isinstance(kwarg, ParameterKwarg):
            wire = getattr(kwarg, "name", None) or kwarg.query or kwarg.header or name
            bounds = ((key, getattr(kwarg, attr)) for attr, key in _BOUNDS.items())
            rules[wire] = {key: value for key, value in bounds if value is not None}
    return rules


def _check_query(op: dict[str, Any], handler: HTTPRouteHandler) -> None:
    """The document's query parameters are the handler's `QueryParameter`s, the only ones
    `control_plane.strict` lets through."""
    listed = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
    declared = {
        field.kwarg_definition.query or name
        for name, field in handler.parsed_fn_signature.parameters.items()
        if isinstance(field.kwarg_definition, QueryParameter)
    }
    if listed != declared:
        raise RuntimeError(
            f"{handler.handler_name}: query parameters {sorted(listed ^ declared)} must be"
            " declared with QueryParameter (or FromQuery)"
        )


def _problem_statuses(op: dict[str, Any], handler: HTTPRouteHandler, method: str) -> set[int]:
    places = {p["in"] for p in op.get("parameters", [])}
    body = "requestBody" in op
    statuses = {400, 401, 503}  # 400: any operation refuses a query parameter it does not list
    permission = handler.opt.get("permission")
    if getattr(permission, "owner", None) is not Owner.LISTING:
        statuses.add(403)
    if "path" in places or body:
        statuses.add(404)
    if body or (method == "GET" and "query" in places):
        statuses.add(422)
    if method in WRITES:
        statuses.add(409)
    if body:
        statuses.add(413)
    return statuses


def _problem(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": PROBLEMS[status],
        "content": {PROBLEM_JSON: {"schema": {"$ref": REF.format(name="ProblemDetails")}}},
    }
    if status == 401:
        response["headers"] = {"WWW-Authenticate": AUTHENTICATE}
    return response


def _never_null(schema: Schema) -> Schema:
    """A parameter's schema without `null`: a query or header value is a string, and
    leaving the parameter out is how it says "none"."""
    schema = copy.deepcopy(schema)
    for key in ("oneOf", "anyOf"):
        branches = schema.pop(key, None)
        if branches is None:
            continue
        kept = [b for b in branches if b.get("type") != "null"]
        if len(kept) == 1:
            schema = {**kept[0], **schema}
        else:
            schema[key] = kept
    kinds = schema.get("type")
    if isinstance(kinds, list):
        kinds = [k for k in kinds if k != "null"]
        schema["type"] = kinds[0] if len(kinds) == 1 else kinds
    if "enum" in schema:
        schema["enum"] = [v for v in schema["enum"] if v is not None]
    return schema
