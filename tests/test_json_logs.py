"""`SLUICE_LOG_FORMAT=json`: real planes write one JSON object per line.

A stack whose planes log JSON answers one request and fails another (the fake provider
answers 500): every line of the data plane's and the control plane's logs is a JSON
object with `ts` (RFC 3339, UTC), `level`, `logger` and `message`, uvicorn's own lines
included; the failing request's warnings carry the `x-request-id` the client got and the
request's tenant, key and deployment; no secret the stack handed out is in any log. The
formatter writes a logged exception's traceback as `exc`, and an unknown format stops a
plane at start.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.logs import JsonFormatter
from tests.support.database import clone_database, drop_database, with_db
from tests.support.stack import Stack, start_stack

MODEL = "json-logs-model"


@pytest.fixture(scope="module")
async def json_stack(
    pg_url: str, template_db: str, log_dir: Path, handed_out: list[str]
) -> AsyncIterator[Stack]:
    own = log_dir / "json"  # these planes' logs alone (the control plane's file is per directory)
    own.mkdir()
    name = await clone_database(pg_url, template_db)
    env = {"SLUICE_LOG_FORMAT": "json"}
    stack = start_stack(with_db(pg_url, name), own, handed_out, data_planes=1, extra_env=env)
    try:
        yield stack
    finally:
        stack.stop()
        await drop_database(pg_url, name)


def _lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a plane's log, each parsed as a JSON object."""
    text = path.read_text()
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    for record in records:
        assert isinstance(record, dict), record
        assert {"ts", "level", "logger", "message"} <= record.keys(), record
        ts = record["ts"]
        assert ts.endswith("Z"), ts
        assert datetime.fromisoformat(ts).utcoffset() is not None, ts
    return records


async def test_the_data_plane_logs_json_with_the_request_id(
    json_stack: Stack, handed_out: list[str]
) -> None:
    stack = json_stack
    tenant = await stack.create_tenant()
    provider = await stack.create_provider()
    await stack.create_route(MODEL, provider["id"], "fake-1")
    key = await stack.create_key(tenant["id"])
    await stack.until_model(key["key"], MODEL)
    auth = {"authorization": f"Bearer {key['key']}"}
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=stack.data_plane_urls[0], timeout=10) as client:
        answered = await client.post("/v1/chat/completions", json=body, headers=auth)
        assert answered.status_code == 200, answered.text
        async with httpx.AsyncClient(base_url=stack.fake_url, timeout=10) as fake:
            put = await fake.put("/_fake/faults", json={"status": 500})
            assert put.status_code == 200, put.text
            try:
                failed = await client.post("/v1/chat/completions", json=body, headers=auth)
            finally:
                await fake.delete("/_fake/faults")
    assert failed.status_code >= 500, failed.text
    request_id = failed.headers["x-request-id"]
    assert request_id
    assert request_id != answered.headers["x-request-id"]

    port = stack.data_plane_urls[0].rsplit(":", 1)[1]
    records = _lines(stack.log_dir / f"data-plane-{port}.log")
    control = _lines(stack.log_dir / "control-plane.log")
    assert any(r["logger"].startswith("uvicorn") for r in control), "uvicorn's lines are JSON"
    assert any(r["logger"].startswith("uvicorn") for r in records), "uvicorn's lines are JSON"
    mine = [r for r in records if r.get("request_id") == request_id]
    assert mine, f"no line carries {request_id}"
    assert all(r["level"] == "warning" for r in mine)
    assert all(request_id in r["message"] for r in mine)
    assert all(r["tenant_id"] == tenant["id"] and r["key_id"] == key["id"] for r in mine)
    assert any(r.get("deployment_id") for r in mine)
    assert not [r for r in records if r.get("request_id") == answered.headers["x-request-id"]]
    logs = {p.name: p.read_text() for p in stack.log_dir.glob("*.log")}  # the fake's too
    assert len(logs) == 3, sorted(logs)
    assert key["key"] in handed_out
    assert stack.upstream_key in handed_out
    assert stack.admin_token in handed_out
    for secret in handed_out:
        for name, text in logs.items():
            assert secret not in text, f"a secret appears in {name}"


def test_an_exception_is_one_exc_string() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.getLogger("sluice.test").makeRecord(
            "sluice.test",
            logging.ERROR,
            __file__,
            1,
            "failed %s",
            ("here",),
            sys.exc_info(),
            extra={"request_id": "r-1", "unrelated": "not written"},
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "failed here"
    assert parsed["level"] == "error"
    assert parsed["request_id"] == "r-1"
    assert "unrelated" not in parsed
    assert parsed["exc"].startswith("Traceback")
    assert "RuntimeError: boom" in parsed["exc"]


def test_an_unknown_format_stops_the_plane() -> None:
    env = {**os.environ, "SLUICE_LOG_FORMAT": "xml"}
    done = subprocess.run(
        [sys.executable, "-m", "data_plane", "--port", "9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "SLUICE_LOG_FORMAT='xml'" in done.stderr
