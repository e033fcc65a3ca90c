"""`sluice usage` over usage the data planes recorded, and `sluice audit --follow`
printing changes as they are made, against a real stack."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests.support.cli import SLUICE, Cli
from tests.support.stack import Stack

MODEL = "cli-usage-model"


@pytest.fixture
def cli(stack: Stack, tmp_path: Path) -> Cli:
    return Cli.against(stack, tmp_path)


def _usage(cli: Cli, *args: str, requests: int, within: float = 30) -> dict[str, Any]:
    """`sluice usage ARGS -o json` once it counts `requests` requests."""
    deadline = time.monotonic() + within
    while True:
        summary: dict[str, Any] = cli("usage", *args, "-o", "json").json()
        if summary["totals"]["requests"] >= requests:
            return summary
        assert time.monotonic() < deadline, summary
        time.sleep(0.2)


def _total_row(table: str) -> list[str]:
    """The cells of the table's `total` row."""
    row = next(line for line in table.splitlines() if re.match(r"^\W*total\b", line))
    return [cell.strip() for cell in re.split(r"[│┃|]", row) if cell.strip()]


async def test_usage_tables_add_up(stack: Stack, cli: Cli) -> None:
    cli("tenants", "create", "cli-usage").ok()
    key = cli("keys", "create", "cli-usage", "-o", "json").json()
    stack.handed_out.append(key["key"])
    env = {"UPSTREAM_KEY": stack.upstream_key}
    cli("providers", "create", "cli-usage-p", "--base-url", stack.fake_url + "/v1",
        "--api-key-env", "UPSTREAM_KEY", env=env).ok()  # fmt: skip
    cli("routes", "create", MODEL, "-d", "provider=cli-usage-p,model=fake-cli").ok()
    cli("prices", "set", MODEL, "--input-per-million", "1000", "--output-per-million", "2000").ok()
    await stack.until_model(key["key"], MODEL)
    spent: list[dict[str, int]] = []
    auth = {"authorization": f"Bearer {key['key']}"}
    for n, url in enumerate([*stack.data_plane_urls, *stack.data_plane_urls]):
        body = {
            "model": MODEL,
            "max_tokens": n + 2,
            "messages": [{"role": "user", "content": "hi"}],
        }
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            answer = await client.post("/v1/chat/completions", json=body, headers=auth)
        assert answer.status_code == 200, answer.text
        spent.append(answer.json()["usage"])
    prompt = sum(u["prompt_tokens"] for u in spent)
    completion = sum(u["completion_tokens"] for u in spent)
    filters = ("--tenant", "cli-usage")

    by_model = _usage(cli, "--by", "model", *filters, requests=len(spent))
    assert [r["model"] for r in by_model["rows"]] == [MODEL]
    totals = by_model["totals"]
    assert totals["requests"] == len(spent)
    assert (totals["prompt_tokens"], totals["completion_tokens"]) == (prompt, completion)
    assert totals["total_tokens"] == prompt + completion
    assert totals["cost_usd"] == pytest.approx((prompt * 1000 + completion * 2000) / 1e6)

    table = cli("usage", "--by", "model", *filters).ok()
    assert MODEL in table
    cells = _total_row(table)
    assert cells[:6] == ["total", str(len(spent)), "0", f"{prompt:,}", f"{completion:,}",
                         f"{prompt + completion:,}"]  # fmt: skip
    assert cells[6] == f"${totals['cost_usd']:,.6f}"

    by_day = _usage(cli, "--by", "day", *filters, requests=len(spent))
    assert len(by_day["rows"]) == 1  # all of it today
    assert by_day["totals"] == totals
    assert _total_row(cli("usage", *filters).ok())[1] == str(len(spent))
    by_tenant = cli("usage", "--by", "tenant", "--model", MODEL).ok()
    assert "cli-usage (" in by_tenant  # a tenant by its name


def _lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def _until(lines: queue.Queue[str], seen: list[dict[str, Any]], name: str) -> None:
    """Read events from `lines` into `seen` until one names `name`."""
    while not any(e["data"].get("name") == name for e in seen):
        seen.append(json.loads(lines.get(timeout=30)))


def test_audit_follow_prints_new_changes_once_oldest_first(stack: Stack, cli: Cli) -> None:
    made = cli("tokens", "create", "cli-follower", "--role", "platform_admin", "-o", "json").json()
    stack.handed_out.append(made["token"])
    as_follower = Cli(cli.home, {**cli.env, "SLUICE_TOKEN": made["token"]})
    follow = subprocess.Popen(
        [str(SLUICE), "audit", "--follow", "--interval", "0.2", "--actor", "token:cli-follower",
         "-o", "json"],
        env=cli.base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    assert follow.stdout is not None
    assert follow.stderr is not None
    reader = threading.Thread(target=_lines, args=(follow.stdout, lines), daemon=True)
    reader.start()
    seen: list[dict[str, Any]] = []
    try:
        as_follower("tenants", "create", "cli-followed-1").ok()
        _until(lines, seen, "cli-followed-1")
        # made after `--follow` printed the first: only its polling can show these
        cli("tenants", "create", "cli-not-followed").ok()  # by another actor
        as_follower("tenants", "create", "cli-followed-2").ok()
        as_follower("tenants", "rename", "cli-followed-2", "cli-followed-3").ok()
        _until(lines, seen, "cli-followed-3")
    finally:
        follow.terminate()
        follow.wait(10)
        reader.join(10)
        follow.stdout.close()
        errors = follow.stderr.read()
        follow.stderr.close()
    assert "Traceback" not in errors
    positions = [e["position"] for e in seen]
    assert positions == sorted(set(positions))  # each once, oldest first
    assert {e["actor"] for e in seen} == {"token:cli-follower"}
    names = [e["data"]["name"] for e in seen]
    assert names == ["cli-followed-1", "cli-followed-2", "cli-followed-3"]
    assert [e["type"] for e in seen][-1] == "tenant.renamed"
