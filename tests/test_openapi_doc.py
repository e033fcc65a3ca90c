"""The OpenAPI document describes what the server does: each operation's problems (as
`application/problem+json`, the `ProblemDetails` schema), the rules the server
enforces (unknown fields refused, ranges, patterns, which fields each provider kind
takes), and the `ETag`/`If-Match` headers. (`test_admin_fuzz` holds the server to it.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.stack import Stack

PROBLEM = {"$ref": "#/components/schemas/ProblemDetails"}
METHODS = ("get", "put", "post", "patch", "delete")
Doc = dict[str, Any]


@pytest.fixture(scope="module")
async def doc(control_plane: Stack) -> Doc:
    async with httpx.AsyncClient(base_url=control_plane.control_plane_url) as client:
        resp = await client.get("/admin/schema/openapi.json")
    assert resp.status_code == 200, resp.text
    document: Doc = resp.json()
    return document


def _operations(doc: Doc) -> Iterator[tuple[str, str, Doc]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def _schema(doc: Doc, schema: Doc) -> Doc:
    ref = schema.get("$ref")
    return schema if ref is None else doc["components"]["schemas"][ref.rpartition("/")[2]]


def _objects(doc: Doc, schema: Any, seen: set[str]) -> Iterator[Doc]:
    """Every object schema in `schema`, however deep, through references."""
    if isinstance(schema, list):
        for item in schema:
            yield from _objects(doc, item, seen)
        return
    if not isinstance(schema, dict):
        return
    if "$ref" in schema:
        if schema["$ref"] not in seen:
            seen.add(schema["$ref"])
            yield from _objects(doc, _schema(doc, schema), seen)
        return
    if "properties" in schema and schema.get("type") == "object":
        yield schema
    for value in schema.values():
        yield from _objects(doc, value, seen)


def test_every_operation_documents_its_problems(doc: Doc) -> None:
    operations = list(_operations(doc))
    assert len(operations) > 40
    for method, path, op in operations:
        assert path.startswith("/admin/v1/"), path
        responses = op["responses"]
        statuses = set(responses)
        assert {"401", "503"} <= statuses, (method, path)
        assert "403" in statuses or op["operationId"].endswith(("List", "Read", "Report")), path
        for status, response in responses.items():
            if status.startswith("2"):
                continue
            assert response["content"] == {"application/problem+json": {"schema": PROBLEM}}
        assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
        takes_input = "requestBody" in op or any(
            p["in"] != "path" for p in op.get("parameters", [])
        )
        assert ("400" in statuses) >= takes_input, (method, path)
        if "requestBody" in op:
            assert {"400", "413", "422"} <= statuses, (method, path)
        if method != "get":
            assert "409" in statuses, (method, path)


def test_the_problem_shape_is_one_schema(doc: Doc) -> None:
    schemas = doc["components"]["schemas"]
    problem, error = schemas["ProblemDetails"], schemas["ProblemError"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "instance"}
    assert problem["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/ProblemError"}
    assert set(error["required"]) == {"key", "message", "source"}
    assert set(error["properties"]["source"]["enum"]) == {"body", "query", "path", "header"}


def test_bodies_refuse_unknown_fields_at_every_depth(doc: Doc) -> None:
    bodies = [op["requestBody"] for _, _, op in _operations(doc) if "requestBody" in op]
    assert bodies
    objects = list(_objects(doc, [b["content"] for b in bodies], set()))
    assert len(objects) > 10
    for schema in objects:
        assert schema["additionalProperties"] is False, schema.get("title")


def test_server_rules_are_in_the_schema(doc: Doc) -> None:
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    [at] = paths["/admin/v1/state"]["get"]["parameters"]
    assert (at["schema"]["type"], at["schema"]["minimum"]) == ("integer", 0)
    usage = {p["name"]: p["schema"] for p in paths["/admin/v1/usage"]["get"]["parameters"]}
    assert re.search(usage["group_by"]["pattern"], "tenant, key,model")
    assert not re.search(usage["group_by"]["pattern"], "tenant,week")
    assert "null" not in str(usage["tenant_id"])  # a query value is never null
    base_url = schemas["ProviderIn"]["properties"]["base_url"]["pattern"]
    assert re.search(base_url, "https://api.example.com/v1")
    for refused in ("ftp://example.com", "http://u:pw@example.com", "http://x.io/v1?a=1"):
        assert not re.search(base_url, refused), refused
    kinds = {v["properties"]["kind"]["const"] for v in schemas["ProviderIn"]["anyOf"]}
    assert kinds == set(schemas["ProviderIn"]["properties"]["kind"]["enum"])
    assert schemas["PolicyIn"]["properties"]["tpm"]["anyOf"][0]["maximum"] == 1_000_000_000
    # a name's visible character is not a control character in either regex dialect (in
    # JSON Schema's, as in re.ASCII's, `\S` takes U+001F)
    name = schemas["TenantIn"]["properties"]["name"]["pattern"]
    assert re.search(name, "a b", re.ASCII)
    assert not re.search(name, "\x1f", re.ASCII)


def test_etag_and_if_match_are_documented(doc: Doc) -> None:
    tenant = doc["paths"]["/admin/v1/tenants/{tenant_id}"]
    for method in ("get", "patch"):
        etag = tenant[method]["responses"]["200"]["headers"]["ETag"]
        assert re.fullmatch(etag["schema"]["pattern"], '"3"')
    headers = [p for p in tenant["patch"]["parameters"] if p["in"] == "header"]
    assert [p["name"] for p in headers] == ["If-Match", "X-Sluice-Force-Schema"]
    if_match = headers[0]
    for value in ('"3"', "3", 'W/"3"', "*"):
        assert re.search(if_match["schema"]["pattern"], value), value
    assert not re.search(if_match["schema"]["pattern"], "yesterday")
    assert "ETag" not in doc["paths"]["/admin/v1/tenants"]["get"]["responses"]["200"].get(
        "headers", {}
    )
