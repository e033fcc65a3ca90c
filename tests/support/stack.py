"""A running Sluice: fake provider, control plane and data planes as real processes."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.support.processes import Server, free_port

__all__ = ["Stack", "start_control_plane", "start_stack"]


@dataclass
class Stack:
    database_url: str
    log_dir: Path
    admin_token: str = field(default_factory=lambda: "admin-" + secrets.token_urlsafe(24))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    upstream_key: str = field(default_factory=lambda: "sk-upstream-" + secrets.token_urlsafe(24))
    servers: list[Server] = field(default_factory=list)
    data_plane_urls: list[str] = field(default_factory=list)
    control_plane_url: str = ""
    fake_url: str = ""
    handed_out: list[str] = field(default_factory=list)  # every secret, for leak checks
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {
            "SLUICE_DATABASE_URL": self.database_url,
            "SLUICE_ADMIN_TOKEN": self.admin_token,
            "SLUICE_SECRET_KEY": self.secret_key,
            "SLUICE_LOG_LEVEL": "debug",
            "SLUICE_SYNC_POLL_INTERVAL": "5",
            "SLUICE_DEBUG_ENDPOINTS": "true",
            "SLUICE_SNAPSHOT_EVERY_SECONDS": "1",
            **self.extra_env,
        }

    def admin(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.control_plane_url + "/admin/v1",
            headers={"authorization": f"Bearer {self.admin_token}"},
            timeout=10,
        )

    async def last_position(self) -> int:
        """The position of the newest event in the log (0: none)."""
        conn = await asyncpg.connect(self.database_url)
        try:
            position: int = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
        finally:
            await conn.close()
        return position

    def start_data_plane(self, port: int | None = None) -> Server:
        """Start a data plane (on `port`: again, with the same cache and spool files)."""
        again = port is not None
        port = port or free_port()
        env = {**self.env, "SLUICE_SNAPSHOT_CACHE": str(self.log_dir / f"cache-{port}.msgpack")}
        name = f"data-plane-{port}"
        server = Server(name, "data_plane", ["--port", str(port)], env, self.log_dir)
        self.servers.append(server)
        if not again:
            self.data_plane_urls.append(f"http://127.0.0.1:{port}")
        return server

    async def create_tenant(self, name: str | None = None) -> dict[str, Any]:
        async with self.admin() as admin:
            resp = await admin.post("/tenants", json={"name": name or secrets.token_hex(6)})
            return _ok(resp)

    async def create_key(self, tenant_id: str) -> dict[str, Any]:
        async with self.admin() as admin:
            key = _ok(await admin.post(f"/tenants/{tenant_id}/keys", json={"name": "test"}))
        self.handed_out.append(key["key"])
        return key

    async def create_provider(self) -> dict[str, Any]:
        body = {
            "name": "fake-" + secrets.token_hex(4),
            "kind": "openai",
            "base_url": self.fake_url + "/v1",
            "api_key": self.upstream_key,
        }
        async with self.admin() as admin:
            return _ok(await admin.post("/providers", json=body))

    async def create_route(
        self, model: str, provider_id: str, upstream_model: str, tenant_ids: list[str] | None = None
    ) -> dict[str, Any]:
        body = {
            "model": model,
            "provider_id": provider_id,
            "upstream_model": upstream_model,
            "tenant_ids": tenant_ids,
        }
        async with self.admin() as admin:
            return _ok(await admin.post("/routes", json=body))

    async def add_upstream(self, model: str, fake_args: list[str]) -> str:
        """Start another fake provider (with `fake_args`), route `model` to it; its URL."""
        port = free_port()
        server = Server(
            f"fake-provider-{model}",
            "tests.fakes.provider",
            ["--port", str(port), *fake_args],
            {},
            self.log_dir,
        )
        self.servers.append(server)
        server.wait_http(f"http://127.0.0.1:{port}/_fake/healthz")
        async with self.admin() as admin:
            body = {"name": f"fake-{model}", "base_url": f"http://127.0.0.1:{port}/v1"}
            provider = _ok(await admin.post("/providers", json=body))
        await self.create_route(model, provider["id"], model)
        return f"http://127.0.0.1:{port}"

    async def until_model(self, key: str, model: str, within: float = 2.0) -> None:
        """Wait until every data plane lists `model` for `key`."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2) as client:
            for url in self.data_plane_urls:
                while True:
                    resp = await client.get(
                        f"{url}/v1/models", headers={"authorization": f"Bearer {key}"}
                    )
                    if model in {m["id"] for m in resp.json()["data"]}:
                        break
                    assert time.monotonic() < deadline, f"{model} not listed by {url}"
                    await asyncio.sleep(0.01)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def _ok(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code in (200, 201), f"{resp.status_code}: {resp.text}"
    data: dict[str, Any] = resp.json()
    return data


def start_stack(
    database_url: str,
    log_dir: Path,
    handed_out: list[str],
    data_planes: int = 2,
    extra_env: dict[str, str] | None = None,
) -> Stack:
    """Start everything; every secret the stack hands out is appended to `handed_out`."""
    stack = Stack(
        database_url=database_url,
        log_dir=log_dir,
        handed_out=handed_out,
        extra_env=extra_env or {},
    )
    stack.handed_out += [stack.upstream_key, stack.admin_token, stack.secret_key]
    fake_port, cp_port = free_port(), free_port()
    fake = Server(
        "fake-provider",
        "tests.fakes.provider",
        ["--port", str(fake_port), "--api-key", stack.upstream_key],
        {},
        log_dir,
    )
    control = Server("control-plane", "control_plane", ["--port", str(cp_port)], stack.env, log_dir)
    stack.servers += [fake, control]
    planes = [stack.start_data_plane() for _ in range(data_planes)]
    stack.fake_url = f"http://127.0.0.1:{fake_port}"
    stack.control_plane_url = f"http://127.0.0.1:{cp_port}"
    try:
        fake.wait_http(stack.fake_url + "/_fake/healthz")
        control.wait_http(stack.control_plane_url + "/readyz")
        for server, url in zip(planes, stack.data_plane_urls, strict=True):
            server.wait_http(url + "/readyz")
    except BaseException:
        stack.stop()
        raise
    return stack


# Nothing listens there: the base URL of providers that the admin API only records.
NOWHERE = "http://127.0.0.1:9"


def start_control_plane(database_url: str, log_dir: Path, handed_out: list[str]) -> Stack:
    """Only the control plane, for tests of the admin API alone; `create_provider` gives
    providers a base URL where nothing listens."""
    stack = Stack(database_url=database_url, log_dir=log_dir, handed_out=handed_out)
    stack.handed_out += [stack.upstream_key, stack.admin_token, stack.secret_key]
    port = free_port()
    control = Server(
        f"control-plane-{port}", "control_plane", ["--port", str(port)], stack.env, log_dir
    )
    stack.servers.append(control)
    stack.fake_url = NOWHERE
    stack.control_plane_url = f"http://127.0.0.1:{port}"
    try:
        control.wait_http(stack.control_plane_url + "/readyz")
    except BaseException:
        stack.stop()
        raise
    return stack


@contextmanager
def another_control_plane(stack: Stack, name: str, env: dict[str, str]) -> Iterator[str]:
    """A second control plane on `stack`'s database, with `env` added to its settings;
    its URL, for the block."""
    port = free_port()
    server = Server(
        f"control-plane-{name}-{port}",
        "control_plane",
        ["--port", str(port)],
        {**stack.env, **env},
        stack.log_dir,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_http(url + "/readyz")
        yield url
    finally:
        server.stop()
