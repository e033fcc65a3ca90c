"""Client keys and provider keys never come back from the admin API after creation,
and never reach a log. Runs last, so it also reads every log the session wrote."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from tests.support.stack import Stack


async def test_no_secret_in_admin_responses_or_logs(
    stack: Stack, log_dir: Path, handed_out: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = await stack.create_tenant()
    provider = await stack.create_provider()
    await stack.create_route("leak-model", provider["id"], "fake-1")
    key = await stack.create_key(tenant["id"])
    assert stack.upstream_key in handed_out
    assert key["key"] in handed_out
    # use the key, fail with it, revoke it: every path that might log something
    async with httpx.AsyncClient(base_url=stack.data_plane_urls[0], timeout=10) as client:
        auth = {"authorization": f"Bearer {key['key']}"}
        body = {"model": "leak-model", "messages": [{"role": "user", "content": "hi"}]}
        await stack.until_model(key["key"], "leak-model")
        answer = await client.post("/v1/chat/completions", json=body, headers=auth)
        assert answer.status_code == 200, answer.text
        bad = await client.post("/v1/chat/completions", content=b"{bad", headers=auth)
        assert bad.status_code == 400
    async with stack.admin() as admin:
        await admin.delete(f"/keys/{key['id']}")
        responses = [
            await admin.get(path)
            for path in (
                "/tenants",
                f"/tenants/{tenant['id']}",
                f"/tenants/{tenant['id']}/keys",
                f"/keys/{key['id']}",
                "/providers",
                f"/providers/{provider['id']}",
                "/routes",
                "/events?limit=1000",
            )
        ]
    seen = [r.text for r in responses]
    assert all(r.status_code == 200 for r in responses)
    assert any(key["id"] in text for text in seen)  # the key is there, just not its secret
    logs = {p.name: p.read_text(errors="replace") for p in log_dir.glob("*.log")}
    assert logs, "no process logs were captured"
    assert any("Application startup complete" in text for text in logs.values())
    logs["this-process"] = caplog.text
    for secret in handed_out:
        for text in seen:
            assert secret not in text
        for name, text in logs.items():
            assert secret not in text, f"a secret appears in {name}"
