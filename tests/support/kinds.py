"""One fake upstream process speaking every provider kind, a provider of each kind
pointed at it, and a route per kind: what the dialect and translation tests share."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.processes import Server, free_port
from tests.support.stack import Stack

__all__ = [
    "AWS_KEY_ID",
    "AWS_REGION",
    "AWS_SECRET",
    "KINDS",
    "UPSTREAM_KEY",
    "Kinds",
    "kind_provider",
    "start_kinds_fake",
]

KINDS = ("openai", "azure_openai", "anthropic", "gemini", "bedrock")
UPSTREAM_KEY = "sk-kinds-" + secrets.token_hex(8)
AWS_KEY_ID = "AKIDKINDSTEST0001"
AWS_SECRET = "kinds/" + secrets.token_hex(16)
AWS_REGION = "eu-west-1"


def start_kinds_fake(stack: Stack, *args: str) -> str:
    """A fake that checks every kind's credentials (API key, SigV4); its URL."""
    port = free_port()
    server = Server(
        f"fake-kinds-{port}",
        "tests.fakes.provider",
        [
            "--port",
            str(port),
            "--api-key",
            UPSTREAM_KEY,
            "--aws-access-key-id",
            AWS_KEY_ID,
            "--aws-secret-access-key",
            AWS_SECRET,
            "--aws-region",
            AWS_REGION,
            *args,
        ],
        {},
        stack.log_dir,
    )
    stack.servers.append(server)
    url = f"http://127.0.0.1:{port}"
    server.wait_http(url + "/_fake/healthz")
    stack.handed_out += [UPSTREAM_KEY, AWS_SECRET]
    return url


def provider_body(kind: str, fake_url: str) -> dict[str, Any]:
    """What the admin API takes to create a provider of `kind` served by the fake."""
    name = f"{kind}-{secrets.token_hex(4)}"
    if kind == "bedrock":
        return {
            "name": name,
            "kind": kind,
            "base_url": fake_url,
            "region": AWS_REGION,
            "aws_access_key_id": AWS_KEY_ID,
            "aws_secret_access_key": AWS_SECRET,
        }
    base_url = {
        "openai": fake_url + "/v1",
        "azure_openai": fake_url,
        "anthropic": fake_url,
        "gemini": fake_url + "/v1beta",
    }[kind]
    return {"name": name, "kind": kind, "base_url": base_url, "api_key": UPSTREAM_KEY}


async def kind_provider(stack: Stack, kind: str, fake_url: str) -> str:
    async with stack.admin() as admin:
        resp = await admin.post("/providers", json=provider_body(kind, fake_url))
        assert resp.status_code == 201, resp.text
        provider_id: str = resp.json()["id"]
        return provider_id


@dataclass
class Kinds:
    """The routes `<prefix>-<kind>` (one deployment each, one attempt: an upstream's
    error reaches the client as it was) on the fake at `fake_url`."""

    stack: Stack
    fake_url: str
    key: str
    prefix: str = field(default_factory=lambda: "kinds-" + secrets.token_hex(3))
    providers: dict[str, str] = field(default_factory=dict)

    def model(self, kind: str) -> str:
        return f"{self.prefix}-{kind}"

    @property
    def url(self) -> str:
        return self.stack.data_plane_urls[0]

    async def create(self, upstream_model: str = "fake-1") -> None:
        for kind in KINDS:
            self.providers[kind] = await kind_provider(self.stack, kind, self.fake_url)
        async with self.stack.admin() as admin:
            for kind in KINDS:
                body = {
                    "model": self.model(kind),
                    "deployments": [
                        {"provider_id": self.providers[kind], "upstream_model": upstream_model}
                    ],
                    "retry": {"max_attempts": 1},
                }
                resp = await admin.post("/routes", json=body)
                assert resp.status_code == 201, resp.text
        for kind in KINDS:
            await self.stack.until_model(self.key, self.model(kind), within=10)

    async def faults(self, **knobs: Any) -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            if knobs:
                resp = await client.put(f"{self.fake_url}/_fake/faults", json=knobs)
                assert resp.status_code == 200, resp.text
            else:
                await client.delete(f"{self.fake_url}/_fake/faults")
