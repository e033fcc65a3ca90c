"""Provider kinds through the admin API: each kind's settings and defaults, the
fields each needs or refuses, Bedrock's AWS credentials (encrypted, never shown,
rotated whole), option changes, and usage by operation and dialect."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from shared.secrets import SecretBox
from shared.state import AwsCredentials
from tests.support.problems import assert_refused, nothing_appended
from tests.support.stack import Stack

Body = dict[str, Any]

KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example credentials


def _name() -> str:
    return "kind-" + secrets.token_hex(4)


def _aws(handed_out: list[str]) -> Body:
    secret, token = "wJalr/" + secrets.token_urlsafe(30), "FwoG" + secrets.token_urlsafe(60)
    handed_out += [secret, token]  # the leak test looks for them in every log
    return {
        "aws_access_key_id": KEY_ID,
        "aws_secret_access_key": secret,
        "aws_session_token": token,
    }


async def _stored(stack: Stack, provider_id: str) -> tuple[str | None, dict[str, str], list[str]]:
    """The projection's ciphertext and options, and the provider's events' data as text."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT api_key_ciphertext, options FROM providers WHERE id = $1",
            uuid.UUID(provider_id),
        )
        events = await conn.fetch(
            "SELECT data::text AS data FROM events WHERE stream = $1 ORDER BY position",
            f"provider:{provider_id}",
        )
    finally:
        await conn.close()
    assert row is not None
    return row["api_key_ciphertext"], json.loads(row["options"]), [e["data"] for e in events]


@pytest.mark.parametrize(
    ("body", "base_url", "options"),
    [
        (
            {"kind": "openai", "base_url": "https://api.openai.com/v1/"},
            "https://api.openai.com/v1",
            {},
        ),
        (
            {"kind": "azure_openai", "base_url": "https://myres.openai.azure.com", "api_key": "k"},
            "https://myres.openai.azure.com",
            {"api_version": "2024-10-21"},
        ),
        (
            {"kind": "azure_openai", "base_url": "https://r.openai.azure.com", "api_key": "k",
             "api_version": "2025-04-01-preview"},
            "https://r.openai.azure.com",
            {"api_version": "2025-04-01-preview"},
        ),
        (
            {"kind": "anthropic", "api_key": "sk-ant-x"},
            "https://api.anthropic.com",
            {"anthropic_version": "2023-06-01"},
        ),
        (
            {"kind": "gemini", "api_key": "AIza-x"},
            "https://generativelanguage.googleapis.com/v1beta",
            {},
        ),
        (
            {"kind": "bedrock", "region": "eu-west-3", "aws_access_key_id": KEY_ID,
             "aws_secret_access_key": "s3cr3t"},
            "https://bedrock-runtime.eu-west-3.amazonaws.com",
            {"region": "eu-west-3"},
        ),
        (
            {"kind": "bedrock", "region": "us-east-1", "base_url": "http://127.0.0.1:9/",
             "aws_access_key_id": KEY_ID, "aws_secret_access_key": "s3cr3t"},
            "http://127.0.0.1:9",
            {"region": "us-east-1"},
        ),
    ],
)  # fmt: skip
async def test_each_kind_is_created_with_its_defaults(
    control_plane: Stack, body: Body, base_url: str, options: dict[str, str]
) -> None:
    async with control_plane.admin() as admin:
        created = await admin.post("/providers", json={"name": _name(), **body})
        assert created.status_code == 201, created.text
        provider = created.json()
        assert (provider["kind"], provider["base_url"], provider["options"]) == (
            body["kind"],
            base_url,
            options,
        )
        assert provider["has_api_key"] is (body["kind"] != "openai")
        assert (await admin.get(f"/providers/{provider['id']}")).json() == provider
        assert provider in (await admin.get("/providers")).json()
        state = (await admin.get("/state")).json()
        shown = next(p for p in state["providers"] if p["id"] == provider["id"])
        assert (shown["kind"], shown["base_url"], shown["options"]) == (
            body["kind"],
            base_url,
            options,
        )
    _, stored_options, events = await _stored(control_plane, provider["id"])
    assert stored_options == options
    assert json.loads(events[0])["options"] == [list(pair) for pair in sorted(options.items())]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "openai"}, "base_url"),
        ({"kind": "openai", "base_url": "http://x.example/v1", "region": "us-east-1"}, "region"),
        ({"kind": "azure_openai", "api_key": "k"}, "base_url"),
        ({"kind": "azure_openai", "base_url": "https://r.openai.azure.com"}, "api_key"),
        ({"kind": "anthropic"}, "api_key"),
        ({"kind": "anthropic", "api_key": None}, "api_key"),
        ({"kind": "anthropic", "api_key": "k", "api_version": "2024-10-21"}, "api_version"),
        ({"kind": "gemini"}, "api_key"),
        ({"kind": "gemini", "api_key": "k", "aws_access_key_id": KEY_ID}, "aws_access_key_id"),
        ({"kind": "bedrock", "aws_access_key_id": KEY_ID, "aws_secret_access_key": "s"}, "region"),
        ({"kind": "bedrock", "region": "us-east-1"}, "aws_access_key_id"),
        ({"kind": "bedrock", "region": "us-east-1", "aws_access_key_id": KEY_ID},
         "aws_secret_access_key"),
        ({"kind": "bedrock", "region": "us-east-1", "api_key": "k"}, "api_key"),
        ({"kind": "bedrock", "region": "US East", "aws_access_key_id": KEY_ID,
          "aws_secret_access_key": "s"}, "region"),
        ({"kind": "bedrock", "region": "us-east-1", "aws_access_key_id": "not a key id",
          "aws_secret_access_key": "s"}, "aws_access_key_id"),
        ({"kind": "cohere", "api_key": "k"}, "kind"),
    ],
)  # fmt: skip
async def test_missing_or_foreign_fields_are_refused(
    control_plane: Stack, body: Body, field: str
) -> None:
    async with control_plane.admin() as admin, nothing_appended(control_plane):
        refused = await admin.post("/providers", json={"name": _name(), **body})
        assert_refused(refused, 400, field)


async def test_bedrock_credentials_are_encrypted_and_never_returned(
    control_plane: Stack, handed_out: list[str]
) -> None:
    aws = _aws(handed_out)
    body = {"name": _name(), "kind": "bedrock", "region": "us-west-2", **aws}
    async with control_plane.admin() as admin:
        created = await admin.post("/providers", json=body)
        assert created.status_code == 201, created.text
        provider = created.json()
        assert provider["has_api_key"] is True
        path = f"/providers/{provider['id']}"
        texts = [
            created.text,
            *[(await admin.get(p)).text for p in (path, "/providers", "/state", "/events")],
        ]
    ciphertext, _, events = await _stored(control_plane, provider["id"])
    assert ciphertext is not None
    for secret in (aws["aws_secret_access_key"], aws["aws_session_token"], KEY_ID):
        assert secret not in ciphertext
        assert all(secret not in text for text in [*texts, *events])
    assert ciphertext not in "".join(texts)
    assert json.loads(events[0])["api_key_ciphertext"] == ciphertext
    plain = SecretBox(control_plane.secret_key).decrypt(ciphertext)
    assert json.loads(plain) == {
        "access_key_id": KEY_ID,
        "secret_access_key": aws["aws_secret_access_key"],
        "session_token": aws["aws_session_token"],
    }
    assert AwsCredentials.from_secret(plain).session_token == aws["aws_session_token"]


async def test_bedrock_rotation_region_and_kind(
    control_plane: Stack, handed_out: list[str]
) -> None:
    body = {"name": _name(), "kind": "bedrock", "region": "us-east-1", **_aws(handed_out)}
    async with control_plane.admin() as admin:
        provider = (await admin.post("/providers", json=body)).json()
        path = f"/providers/{provider['id']}"
        before, _, _ = await _stored(control_plane, provider["id"])
        new_secret = "rotated/" + secrets.token_urlsafe(30)
        handed_out.append(new_secret)
        rotation = {
            "aws_access_key_id": "ASIAEXAMPLE000000000",
            "aws_secret_access_key": new_secret,
        }
        rotated = await admin.patch(path, json=rotation, headers={"if-match": '"1"'})
        assert rotated.status_code == 200, rotated.text
        assert (rotated.json()["version"], rotated.json()["has_api_key"]) == (2, True)
        assert new_secret not in rotated.text
        after, _, _ = await _stored(control_plane, provider["id"])
        assert after is not None
        assert after != before
        assert new_secret not in after
        plain = json.loads(SecretBox(control_plane.secret_key).decrypt(after))
        # a whole new set: the old session token goes with the old keys
        assert plain == {"access_key_id": "ASIAEXAMPLE000000000", "secret_access_key": new_secret}
        async with nothing_appended(control_plane):
            half = await admin.patch(path, json={"aws_secret_access_key": "x"})
            assert_refused(half, 400, "aws_access_key_id")
            assert_refused(await admin.patch(path, json={"api_key": "k"}), 422, "api_key")
            assert_refused(await admin.patch(path, json={"api_key": None}), 422, "api_key")
            assert_refused(await admin.patch(path, json={"kind": "openai"}), 422, "kind")
            assert_refused(await admin.patch(path, json={"api_version": "v"}), 422, "api_version")
        # the default base URL follows the region; one given stays
        moved = (await admin.patch(path, json={"region": "ap-south-1"})).json()
        assert (moved["base_url"], moved["options"]) == (
            "https://bedrock-runtime.ap-south-1.amazonaws.com",
            {"region": "ap-south-1"},
        )
        own = {"base_url": "https://vpce-1.bedrock-runtime.ap-south-1.vpce.amazonaws.com"}
        assert (await admin.patch(path, json=own)).json()["base_url"] == own["base_url"]
        kept = (await admin.patch(path, json={"region": "eu-west-1"})).json()
        assert (kept["base_url"], kept["options"]) == (own["base_url"], {"region": "eu-west-1"})
        assert kept["version"] == 5
        _, options, _ = await _stored(control_plane, provider["id"])
        assert options == {"region": "eu-west-1"}
        state = (await admin.get("/state")).json()
        shown = next(p for p in state["providers"] if p["id"] == provider["id"])
        assert shown["options"] == {"region": "eu-west-1"}


async def test_options_and_keys_of_the_other_kinds_change(control_plane: Stack) -> None:
    async with control_plane.admin() as admin:
        azure = (
            await admin.post(
                "/providers",
                json={"name": _name(), "kind": "azure_openai", "api_key": "k1",
                      "base_url": "https://r.openai.azure.com"},
            )
        ).json()  # fmt: skip
        path = f"/providers/{azure['id']}"
        changed = await admin.patch(path, json={"api_version": "2025-04-01-preview"})
        assert changed.json()["options"] == {"api_version": "2025-04-01-preview"}
        assert changed.json()["version"] == 2
        async with nothing_appended(control_plane):
            same = await admin.patch(path, json={"api_version": "2025-04-01-preview"})
            assert same.json()["version"] == 2
            assert_refused(await admin.patch(path, json={"api_key": None}), 422, "api_key")
            for field, value in (("anthropic_version", "2023-06-01"), ("region", "us-east-1")):
                assert_refused(await admin.patch(path, json={field: value}), 422, field)
            aws = {"aws_access_key_id": KEY_ID, "aws_secret_access_key": "s"}
            assert_refused(await admin.patch(path, json=aws), 422, "aws_access_key_id")
        anthropic = (
            await admin.post(
                "/providers", json={"name": _name(), "kind": "anthropic", "api_key": "a"}
            )
        ).json()
        path = f"/providers/{anthropic['id']}"
        pinned = await admin.patch(path, json={"anthropic_version": "2024-01-01", "api_key": "b"})
        assert pinned.json()["options"] == {"anthropic_version": "2024-01-01"}
        assert pinned.json()["base_url"] == "https://api.anthropic.com"


async def test_usage_by_operation_and_dialect(control_plane: Stack) -> None:
    """Records written without the new columns count as chat in OpenAI's dialect."""
    tenant, key = uuid.uuid4(), uuid.uuid4()
    at = datetime.now(UTC) - timedelta(minutes=5)
    conn = await asyncpg.connect(control_plane.database_url)
    try:
        columns = (
            "request_id, created_at, tenant_id, key_id, model, prompt_tokens,"
            " completion_tokens, cost_usd, status, latency_ms, stream, disconnected"
        )
        values = "$1, $2, $3, $4, 'm', 10, 5, 0.5, $5, 1, false, false"
        await conn.execute(
            f"INSERT INTO usage ({columns}) VALUES ({values})", uuid.uuid4(), at, tenant, key, 200
        )
        for operation, dialect, status in (
            ("messages", "anthropic", 200),
            ("messages", "anthropic", 529),
            ("embeddings", "openai", 200),
        ):
            await conn.execute(
                f"INSERT INTO usage ({columns}, operation, dialect) VALUES ({values}, $6, $7)",
                uuid.uuid4(), at, tenant, key, status, operation, dialect,
            )  # fmt: skip
    finally:
        await conn.close()
    async with control_plane.admin() as admin:
        params = {"tenant_id": str(tenant), "group_by": "operation,dialect"}
        report = await admin.get("/usage", params=params)
        assert report.status_code == 200, report.text
        assert report.json()["group_by"] == ["operation", "dialect"]
        rows = {(r["operation"], r["dialect"]): r for r in report.json()["data"]}
        assert set(rows) == {
            ("chat", "openai"),
            ("messages", "anthropic"),
            ("embeddings", "openai"),
        }
        messages = rows["messages", "anthropic"]
        assert (messages["requests"], messages["errors"], messages["total_tokens"]) == (2, 1, 30)
        assert "tenant_id" not in messages
        by_dialect = await admin.get(
            "/usage", params={"tenant_id": str(tenant), "group_by": "model", "dialect": "openai"}
        )
        [row] = by_dialect.json()["data"]
        assert (row["model"], row["requests"], row["cost_usd"]) == ("m", 2, 1.0)
        only = await admin.get(
            "/usage", params={"tenant_id": str(tenant), "operation": "embeddings", "bucket": "day"}
        )
        [row] = only.json()["data"]
        assert (row["tenant_id"], row["requests"]) == (str(tenant), 1)
        assert_refused(await admin.get("/usage", params={"operation": "images"}), 400, "operation")
        assert_refused(await admin.get("/usage", params={"group_by": "color"}), 400, "group_by")
