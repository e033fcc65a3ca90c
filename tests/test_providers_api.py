"""Providers through the admin API: change, rotate or remove the key, delete (refused
while a route uses the provider), versions and If-Match; keys never come back."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import asyncpg
import pytest

from tests.support.problems import assert_refused, nothing_appended
from tests.support.stack import Stack

Body = dict[str, Any]


async def _ciphertext(stack: Stack, provider_id: str) -> str | None:
    conn = await asyncpg.connect(stack.database_url)
    try:
        value: str | None = await conn.fetchval(
            "SELECT api_key_ciphertext FROM providers WHERE id = $1", uuid.UUID(provider_id)
        )
    finally:
        await conn.close()
    return value


async def test_change_a_provider_with_if_match(control_plane: Stack) -> None:
    provider = await control_plane.create_provider()
    path = f"/providers/{provider['id']}"
    assert provider["version"] == 1
    async with control_plane.admin() as admin:
        read = await admin.get(path)
        assert (read.json(), read.headers["etag"]) == (provider, '"1"')
        renamed = await admin.patch(
            path,
            json={"name": "renamed-" + secrets.token_hex(3), "base_url": "https://example.com/v1/"},
            headers={"if-match": '"1"'},
        )
        assert renamed.status_code == 200, renamed.text
        assert renamed.headers["etag"] == '"2"'
        now = renamed.json()
        assert now["base_url"] == "https://example.com/v1"  # the trailing slash goes
        assert now["name"].startswith("renamed-")
        assert (now["kind"], now["has_api_key"], now["created_at"]) == (
            provider["kind"],
            True,
            provider["created_at"],
        )
        async with nothing_appended(control_plane):
            stale = await admin.patch(path, json={"name": "late"}, headers={"if-match": '"1"'})
            assert_refused(stale, 409)
            same = await admin.patch(path, json={"name": now["name"]})
            assert same.json()["version"] == 2  # nothing changed: no event
            same_kind = await admin.patch(path, json={"kind": "openai"})
            assert same_kind.json() == same.json()  # its own kind is no change
        priced = await admin.put(
            f"{path}/price", json={"input_per_million": 1, "output_per_million": 2}
        )
        assert priced.status_code == 200
        after_price = await admin.get(path)
        assert after_price.headers["etag"] == '"3"'  # the price is on the provider's stream
        events = (
            await admin.get("/events", params={"stream": f"provider:{provider['id']}"})
        ).json()
        assert [e["type"] for e in events["data"]] == [
            "provider.price_set",
            "provider.changed",
            "provider.created",
        ]
        changed = events["data"][1]["data"]
        assert (changed["name"], changed["base_url"]) == (now["name"], now["base_url"])
        assert changed["api_key_ciphertext"] == "<redacted>"


async def test_rotate_and_remove_the_key(control_plane: Stack, handed_out: list[str]) -> None:
    provider = await control_plane.create_provider()
    path = f"/providers/{provider['id']}"
    before = await _ciphertext(control_plane, provider["id"])
    new_key = "sk-rotated-" + secrets.token_urlsafe(24)
    handed_out.append(new_key)  # the leak test looks for it in every log
    async with control_plane.admin() as admin:
        rotated = await admin.patch(path, json={"api_key": new_key})
        assert rotated.status_code == 200, rotated.text
        assert rotated.json()["has_api_key"] is True
        assert rotated.json()["version"] == 2
        assert new_key not in rotated.text
        after = await _ciphertext(control_plane, provider["id"])
        assert after is not None
        assert after != before
        assert new_key not in after
        removed = await admin.patch(path, json={"api_key": None})
        assert removed.json()["has_api_key"] is False
        assert await _ciphertext(control_plane, provider["id"]) is None
        texts = [
            (await admin.get(p)).text for p in (path, "/providers", "/state", "/events?limit=1000")
        ]
    for text in texts:
        assert new_key not in text
        assert after not in text
        assert control_plane.upstream_key not in text


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"base_url": "ftp://example.com"}, 400, "base_url"),
        ({"base_url": "http://u:pw@example.com/v1"}, 400, "base_url"),
        ({"base_url": "http://example.com/v1?x=1"}, 400, "base_url"),
        ({"base_url": "http://example.com:99999/v1"}, 400, "base_url"),
        ({"base_url": "has space"}, 400, "base_url"),
        ({"name": ""}, 400, "name"),
        ({"api_key": "a b"}, 400, "api_key"),
        ({"kind": "anthropic"}, 422, "kind"),
        ({"kind": "mystery"}, 400, "kind"),
        ({"region": "us-east-1"}, 422, "region"),
        ({"api_version": "2024-10-21"}, 422, "api_version"),
        ({"aws_access_key_id": "AKIAEXAMPLE000000000"}, 400, "aws_secret_access_key"),
        ({"surprise": 1}, 400, "surprise"),
    ],
)
async def test_bad_provider_changes_are_refused(
    control_plane: Stack, body: Body, status: int, field: str | None
) -> None:
    provider = await control_plane.create_provider()
    async with control_plane.admin() as admin, nothing_appended(control_plane):
        resp = await admin.patch(f"/providers/{provider['id']}", json=body)
        assert_refused(resp, status, field)
        assert (await admin.get(f"/providers/{provider['id']}")).json() == provider


async def test_names_stay_unique_and_unknown_providers_are_404(control_plane: Stack) -> None:
    first = await control_plane.create_provider()
    second = await control_plane.create_provider()
    async with control_plane.admin() as admin, nothing_appended(control_plane):
        taken = await admin.patch(f"/providers/{second['id']}", json={"name": first["name"]})
        assert_refused(taken, 409)
        assert_refused(await admin.patch(f"/providers/{uuid.uuid4()}", json={"name": "x"}), 404)
        assert_refused(await admin.delete(f"/providers/{uuid.uuid4()}"), 404)


async def test_a_provider_in_use_cannot_be_deleted(control_plane: Stack) -> None:
    provider = await control_plane.create_provider()
    spare = await control_plane.create_provider()
    path = f"/providers/{provider['id']}"
    models = ["user-a-" + secrets.token_hex(3), "user-b-" + secrets.token_hex(3)]
    async with control_plane.admin() as admin:
        routes = []
        for model in models:
            body = {
                "model": model,
                "deployments": [
                    {"provider_id": spare["id"], "upstream_model": "u"},
                    {"provider_id": provider["id"], "upstream_model": "u"},
                ],
            }
            resp = await admin.post("/routes", json=body)
            assert resp.status_code == 201, resp.text
            routes.append(resp.json())
        async with nothing_appended(control_plane):
            refused = await admin.delete(path)
            assert_refused(refused, 409)
            for model, route in zip(models, routes, strict=True):
                assert model in refused.json()["detail"]
                assert route["id"] in refused.json()["detail"]
        for route in routes:
            deployment = route["deployments"][1]["id"]
            removed = await admin.delete(f"/routes/{route['id']}/deployments/{deployment}")
            assert removed.status_code == 204
        async with nothing_appended(control_plane):
            assert_refused(await admin.delete(path, headers={"if-match": '"2"'}), 409)
        deleted = await admin.delete(path, headers={"if-match": '"1"'})
        assert deleted.status_code == 204
        assert_refused(await admin.get(path), 404)
        assert provider["id"] not in {p["id"] for p in (await admin.get("/providers")).json()}
        assert_refused(await admin.delete(path), 404)
        assert_refused(await admin.patch(path, json={"name": "back"}), 404)
        price = {"input_per_million": 1, "output_per_million": 1}
        assert_refused(await admin.put(f"{path}/price", json=price), 404)
        gone = {"model": "after-" + secrets.token_hex(3), "provider_id": provider["id"]}
        assert_refused(await admin.post("/routes", json=gone), 422, "provider_id")
        state = (await admin.get("/state")).json()
        assert provider["id"] not in {p["id"] for p in state["providers"]}
        # the name is free again
        again = await admin.post(
            "/providers", json={"name": provider["name"], "base_url": "http://127.0.0.1:9/v1"}
        )
        assert again.status_code == 201
