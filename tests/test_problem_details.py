"""Every admin API refusal is one problem-details shape whose `detail` a person can read
and whose `errors` name the field(s) at fault: a failed type check of the body, a rule
decided in command code, a query parameter, an unknown field, an `If-Match` header.
And the server reads a request exactly as the OpenAPI document types it: no `"5"` for
an integer, no `null` for a query parameter left out, no number for a date."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from litestar import Litestar, get
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.exceptions import LitestarDeprecationWarning

from control_plane.openapi import finished
from tests.support.problems import assert_refused, nothing_appended
from tests.support.stack import Stack

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def _problem(resp: httpx.Response, status: int, key: str, source: str) -> dict[str, Any]:
    """`resp` is a problem of `status` whose errors name `key` in `source`, and whose
    detail names it too."""
    assert_refused(resp, status)
    problem: dict[str, Any] = resp.json()
    assert PROBLEM_KEYS <= set(problem) <= PROBLEM_KEYS | {"errors"}, problem
    assert problem["instance"] == resp.request.url.path
    assert {"key": key, "source": source} in [
        {"key": e["key"], "source": e["source"]} for e in problem["errors"]
    ], problem
    assert all(set(e) == {"key", "message", "source"} and e["message"] for e in problem["errors"])
    if key:
        assert key in problem["detail"], problem
    assert not problem["detail"].startswith("Validation failed"), problem
    return problem


@pytest.fixture(scope="module")
async def tenant(control_plane: Stack) -> dict[str, Any]:
    return await control_plane.create_tenant()


async def test_a_failed_type_check_names_the_field(
    control_plane: Stack, tenant: dict[str, Any]
) -> None:
    path = f"/tenants/{tenant['id']}/policy"
    async with control_plane.admin() as admin, nothing_appended(control_plane):
        big = await admin.put(path, json={"tpm": 10**10})
        nested = await admin.post(
            "/routes", json={"model": "m", "deployments": [{"provider_id": "nope"}]}
        )
    problem = _problem(big, 400, "tpm", "body")
    assert problem["detail"] == "tpm: Expected `int` <= 1000000000"
    _problem(nested, 400, "deployments[0].provider_id", "body")


async def test_a_body_is_typed_as_the_document_says(
    control_plane: Stack, tenant: dict[str, Any]
) -> None:
    """Litestar alone would take `"5"` for an integer and `"true"` for a boolean; a
    number without a fraction is an integer, as in JSON Schema."""
    path = f"/tenants/{tenant['id']}/policy"
    async with control_plane.admin() as admin:
        async with nothing_appended(control_plane):
            text = await admin.put(path, json={"rpm": "5"})
            flag = await admin.patch(f"/routes/{uuid.uuid4()}", json={"continuation": "true"})
            no_body = await admin.put(path)
            not_json = await admin.put(path, content=b"{nope", headers={"content-type": "x"})
        whole = await admin.put(path, json={"rpm": 5.0})
    _problem(text, 400, "rpm", "body")
    _problem(flag, 400, "continuation", "body")
    assert "JSON body" in _problem(no_body, 400, "", "body")["detail"]
    assert "not valid JSON" in _problem(not_json, 400, "", "body")["detail"]
    assert whole.status_code == 200, whole.text
    assert whole.json()["rpm"] == 5


async def test_an_unknown_field_is_named_by_its_own_path(control_plane: Stack) -> None:
    async with control_plane.admin() as admin, nothing_appended(control_plane):
        top = await admin.post("/tenants", json={"name": "a", "colour": "red"})
        deep = await admin.post("/routes", json={"model": "m", "retry": {"tries": 3}})
        missing = await admin.post("/tenants", json={})
    assert _problem(top, 400, "colour", "body")["detail"] == "colour: not a field of this object"
    _problem(deep, 400, "retry.tries", "body")
    assert _problem(missing, 400, "name", "body")["detail"] == "name: required, but missing"


async def test_a_rule_of_command_code_names_its_field(
    control_plane: Stack, tenant: dict[str, Any]
) -> None:
    async with control_plane.admin() as admin, nothing_appended(control_plane):
        period = await admin.put(f"/tenants/{tenant['id']}/policy", json={"budget_period": "day"})
        taken = await admin.post("/tenants", json={"name": tenant["name"]})
        invisible = await admin.post("/tenants", json={"name": "zero\u200bwidth"})
        route = await admin.post(
            "/routes",
            json={
                "model": "m",
                "deployments": [{"provider_id": str(uuid.uuid4()), "upstream_model": "u"}],
            },
        )
    assert "budget_period needs" in _problem(period, 422, "budget_period", "body")["detail"]
    _problem(taken, 409, "name", "body")
    _problem(invisible, 422, "name", "body")
    _problem(route, 422, "deployments[0].provider_id", "body")


async def test_query_parameters_are_typed_and_named(control_plane: Stack) -> None:
    async with control_plane.admin() as admin:
        limit = await admin.get("/tenants", params={"limit": 0})
        group = await admin.get("/usage", params={"group_by": "tenant,colour"})
        null = await admin.get("/state", params={"at": "null"})
        seconds = await admin.get("/usage", params={"until": "1700000000"})
        twice = await admin.get("/usage", params=[("bucket", "day"), ("bucket", "hour")])
        naive = await admin.get("/events", params={"since": "2026-01-01T00:00:00"})
        backwards = await admin.get(
            "/usage", params={"since": "2030-01-01T00:00:00Z", "until": "2029-01-01T00:00:00Z"}
        )
        whole = await admin.get("/tenants", params={"limit": "2.0"})
    assert _problem(limit, 400, "limit", "query")["detail"] == "limit: Expected `int` >= 1"
    _problem(group, 400, "group_by", "query")
    _problem(null, 400, "at", "query")
    _problem(seconds, 400, "until", "query")
    _problem(twice, 400, "bucket", "query")
    _problem(naive, 400, "since", "query")
    _problem(backwards, 422, "since", "query")
    assert whole.status_code == 200, whole.text


async def test_if_match_is_named_as_its_header(
    control_plane: Stack, tenant: dict[str, Any]
) -> None:
    path = f"/tenants/{tenant['id']}"
    async with control_plane.admin() as admin, nothing_appended(control_plane):
        bad = await admin.patch(path, json={"name": "n"}, headers={"if-match": "yesterday"})
        stale = await admin.patch(path, json={"name": "n"}, headers={"if-match": '"99"'})
    _problem(bad, 400, "If-Match", "header")
    assert_refused(stale, 409)
    assert "version" in stale.json()["detail"]


async def test_names_end_where_the_string_ends(control_plane: Stack) -> None:
    """Python's `$` also matches before a final newline: a model name may not end in one."""
    async with control_plane.admin() as admin, nothing_appended(control_plane):
        route = await admin.post(
            "/routes",
            json={
                "model": "gpt\n",
                "deployments": [{"provider_id": str(uuid.uuid4()), "upstream_model": "u"}],
            },
        )
        price = await admin.put(
            "/prices/gpt%0A", json={"input_per_million": 1, "output_per_million": 1}
        )
    _problem(route, 400, "model", "body")
    _problem(price, 400, "model", "path")


async def test_refusals_outside_the_handlers_keep_their_headers(control_plane: Stack) -> None:
    async with control_plane.admin() as admin:
        wrong_method = await admin.put("/tenants", json={"name": "x"})
    async with httpx.AsyncClient(base_url=control_plane.control_plane_url) as anonymous:
        no_token = await anonymous.get("/admin/v1/tenants")
    assert_refused(wrong_method, 405)
    assert set(wrong_method.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert_refused(no_token, 401)
    assert no_token.headers["www-authenticate"] == "Bearer"
    assert set(no_token.json()) == PROBLEM_KEYS


# Times out of the range the server counts in (0001-01-02T00:00:00Z up to, not including,
# 9999-12-31T00:00:00Z), each with the parameters it was refused by: a default `since` a
# day before `until`, `until` rounded up to a whole hour, or an offset that moves the time
# past either end of the years 1 to 9999.
OUT_OF_RANGE = [
    ("/usage", {"until": "0001-01-01T00:00:00Z"}, ["until"]),
    ("/usage", {"until": "9999-12-31T23:59:59Z", "group_by": "operation"}, ["until"]),
    (
        "/usage",
        {"since": "9999-12-31T23:59:00Z", "until": "9999-12-31T23:59:59Z", "operation": "chat"},
        ["since", "until"],
    ),
    ("/events", {"since": "0001-01-01T00:00:00+01:00"}, ["since"]),
    ("/events", {"until": "9999-12-31T23:59:59-01:00"}, ["until"]),
    ("/events", {"until": "9999-12-30T23:30:00-00:30"}, ["until"]),  # the first time refused
]


@pytest.mark.parametrize(("path", "params", "named"), OUT_OF_RANGE)
async def test_a_time_out_of_range_is_named(
    control_plane: Stack, path: str, params: dict[str, str], named: list[str]
) -> None:
    """A date-time the document types, but out of the documented range: 422 (never a
    500 or a nameless 400), naming each of `since` and `until` at fault."""
    async with control_plane.admin() as admin:
        resp = await admin.get(path, params=params)
    for key in named:
        problem = _problem(resp, 422, key, "query")
    assert [e["key"] for e in problem["errors"]] == named
    assert any(end in problem["detail"] for end in ("0001-01-02T00:00:00Z", "9999-12-31T00:00:00Z"))


async def test_times_at_the_ends_of_the_range_are_taken(
    control_plane: Stack, tenant: dict[str, Any]
) -> None:
    """The range is compared as instants, whatever the offset: the first time taken, the
    last hour before the end with a default `since`, and bounds given with offsets."""
    async with control_plane.admin() as admin:
        first = await admin.get(
            "/usage", params={"since": "0001-01-02T01:00:00+01:00", "until": "0001-01-03T00:00:00Z"}
        )
        last = await admin.get(
            "/usage", params={"until": "9999-12-30T23:59:59Z", "group_by": "operation"}
        )
        by_day = await admin.get(
            "/usage",
            params={
                "since": "9999-12-30T00:00:00Z",
                "until": "9999-12-30T23:59:59.999999Z",
                "bucket": "day",
                "dialect": "openai",
            },
        )
        events = await admin.get(
            "/events",
            params={
                "stream": f"tenant:{tenant['id']}",
                "since": "0001-01-01T23:00:00-01:00",
                "until": "9999-12-30T23:29:59-00:30",
            },
        )
    for resp in (first, last, by_day, events):
        assert resp.status_code == 200, resp.text
    assert first.json()["since"] == "0001-01-02T01:00:00+01:00"
    assert last.json()["since"] == "9999-12-29T23:59:59Z"
    assert tenant["id"] in str(events.json()["data"]), "every event is in the range"
    range_doc = (await _openapi(control_plane))["paths"]["/admin/v1/usage"]["get"]
    for parameter in range_doc["parameters"]:
        if parameter["name"] in ("since", "until"):
            assert "0001-01-02T00:00:00Z" in parameter["description"], parameter
            assert "9999-12-31T00:00:00Z" in parameter["description"], parameter


async def _openapi(stack: Stack) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.control_plane_url) as client:
        resp = await client.get("/admin/schema/openapi.json")
    assert resp.status_code == 200, resp.text
    doc: dict[str, Any] = resp.json()
    return doc


async def test_an_undeclared_query_parameter_is_refused(
    control_plane: Stack, tenant: dict[str, Any]
) -> None:
    """`tenant=` for `tenant_id=` would otherwise read as "every tenant": any operation
    refuses a query parameter it does not list, with or without parameters of its own,
    a read or a write, named with the other faults of the query."""
    async with control_plane.admin() as admin, nothing_appended(control_plane):
        typo = await admin.get("/usage", params={"tenant": tenant["id"]})
        several = await admin.get("/usage", params={"tenant": "x", "bucket": "week", "colour": ""})
        none_of_its_own = await admin.get("/me", params={"verbose": "1"})
        by_path = await admin.get(f"/tenants/{tenant['id']}", params={"fields": "name"})
        write = await admin.post("/tenants", params={"dry_run": "1"}, json={"name": "unmade"})
        nameless = await admin.get("/tenants", params={"": "x"})
    problem = _problem(typo, 400, "tenant", "query")
    assert problem["detail"] == "tenant: not a parameter of this operation"
    keys = {e["key"] for e in _problem(several, 400, "colour", "query")["errors"]}
    assert keys == {"tenant", "bucket", "colour"}
    _problem(none_of_its_own, 400, "verbose", "query")
    _problem(by_path, 400, "fields", "query")
    _problem(write, 400, "dry_run", "query")
    _problem(nameless, 400, "", "query")
    async with httpx.AsyncClient(base_url=control_plane.control_plane_url) as anonymous:
        assert_refused(await anonymous.get("/admin/v1/usage", params={"tenant": "x"}), 401)


async def test_the_document_says_every_operation_may_refuse_a_parameter(
    control_plane: Stack,
) -> None:
    doc = await _openapi(control_plane)
    operations = [op for item in doc["paths"].values() for op in item.values()]
    assert len(operations) > 40
    for op in operations:
        assert "400" in op["responses"], op["operationId"]
    assert "query parameter" in doc["info"]["description"]


def test_a_query_parameter_litestar_alone_would_read_stops_the_document() -> None:
    """The server reads only parameters declared with `QueryParameter`: a handler with
    another (a plain `limit: int`) would be refused one the document lists, so the
    document is not built."""

    @get("/plain")
    async def plain(limit: int = 1) -> None:
        return None

    with pytest.warns(LitestarDeprecationWarning, match="limit"):  # Litestar's own view of it
        app = Litestar([plain])
    with pytest.raises(RuntimeError, match="limit"):
        finished(app.plugins.get(OpenAPIPlugin).provide_openapi_schema(), app)
