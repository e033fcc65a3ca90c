"""The console's overview and usage pages, their charts and the CSV export.

The charts first, as functions (numbers to bar heights, hostile names escaped); then,
over a running stack, real chat requests through the data planes and what the pages
show of them: the request count and the tokens the client was given, for the platform
and for a tenant admin, who sees only its own tenant."""

from __future__ import annotations

import asyncio
import csv
import html
import io
import re
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from control_plane.console.charts import (
    TOP,
    Chart,
    Series,
    bar_chart,
    chart_from_rows,
    format_value,
    nice_ceiling,
    time_buckets,
)
from control_plane.console.usage import usage_csv_text
from tests.support.authz import create_token
from tests.support.console import login
from tests.support.stack import Stack

pytestmark = pytest.mark.timeout(120)

SVG = "{http://www.w3.org/2000/svg}"
CHAT = "/v1/chat/completions"
MODEL = "console-usage-model"
PRICE = {"input_per_million": 1000, "output_per_million": 2000}
HOSTILE = '<script>alert("x")</script> & "quoted"'


# --- charts, as functions -------------------------------------------------------------


def _bars(svg: str) -> list[ET.Element]:
    """The chart's bars (each has a tooltip; the legend's swatches have none)."""
    root = ET.fromstring(svg)
    return [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]


def _chart(series: list[Series], n: int, metric: str = "requests") -> Chart:
    labels = tuple(f"b{i}" for i in range(n))
    return Chart("Requests", metric, labels, labels, tuple(series))


def test_bar_heights_follow_the_numbers() -> None:
    svg = bar_chart(_chart([Series("all", (10.0, 25.0, 0.0, 50.0))], 4))
    bars = _bars(svg)
    # the axis ends at 50: the plot is 160 high; an empty bucket draws no bar
    assert [float(b.get("height", "")) for b in bars] == [32.0, 80.0, 160.0]
    bottoms = {float(b.get("y", "")) + float(b.get("height", "")) for b in bars}
    assert len(bottoms) == 1  # all stand on the x axis
    root = ET.fromstring(svg)
    assert root.get("role") == "img"
    label = root.get("aria-label", "")
    assert label.startswith("Requests: 85 in total over 4 buckets")
    assert "most in b3: 50" in label
    assert root.findtext(f"{SVG}title") == label


def test_stacked_series_share_a_bar_and_have_a_legend() -> None:
    chart = _chart([Series("a", (20.0, 0.0)), Series("b", (30.0, 10.0))], 2)
    bars = _bars(bar_chart(chart))
    first = [b for b in bars if (b.findtext(f"{SVG}title") or "").startswith("b0 ")]
    assert [float(b.get("height", "")) for b in first] == [64.0, 96.0]  # 20 and 30 of 50
    low, high = first
    assert float(high.get("y", "")) + 96.0 == pytest.approx(float(low.get("y", "")))
    texts = [(t.text or "").strip() for t in ET.fromstring(bar_chart(chart)).iter(f"{SVG}text")]
    assert "a (20)" in texts
    assert "b (40)" in texts
    assert chart.table() == [("b0", ["20", "30"], "50"), ("b1", ["0", "10"], "10")]


def test_a_hostile_name_is_escaped_everywhere() -> None:
    day = datetime(2026, 11, 30, tzinfo=UTC)
    rows = [
        {"bucket": "2026-11-30T00:00:00Z", "tenant_id": "t1", "requests": 3},
        {"bucket": "2026-11-30T00:00:00Z", "model": HOSTILE, "requests": 2},
    ]
    names = {"t1": HOSTILE}
    for dimension in ("tenant_id", "model"):
        chart = chart_from_rows(rows, [day], "day", "requests", HOSTILE, dimension, names)
        svg = bar_chart(chart)
        assert "<script" not in svg
        assert '"quoted"' not in svg  # no attribute ends early
        root = ET.fromstring(svg)  # well formed, so nothing broke out
        assert HOSTILE in root.get("aria-label", "")
        assert any(HOSTILE in (t.text or "") for t in root.iter(f"{SVG}text"))


def test_rows_become_series_over_every_bucket() -> None:
    first = datetime(2026, 11, 30, 22, tzinfo=UTC)
    buckets = time_buckets(first, first + timedelta(hours=3), "hour")
    assert [b.hour for b in buckets] == [22, 23, 0]
    rows = [
        {"bucket": "2026-11-30T23:00:00Z", "model": f"m{i}", "total_tokens": 10 * (i + 1)}
        for i in range(TOP + 2)
    ] + [{"bucket": "2026-12-01T00:00:00Z", "model": "m0", "total_tokens": 5}]
    chart = chart_from_rows(rows, buckets, "hour", "total_tokens", "Tokens", "model")
    assert chart.labels == ("22:00", "23:00", "00:00")
    assert chart.long_labels[2] == "2026-12-01 00:00"
    # the largest series on their own, the two smallest summed into one
    assert [s.name for s in chart.series][:2] == [f"m{TOP + 1}", f"m{TOP}"]
    assert chart.series[-1].name == "Other (2)"
    assert chart.series[-1].values == (0.0, 10.0 + 20.0, 5.0)  # m0 and m1
    assert chart.total == sum(10 * (i + 1) for i in range(TOP + 2)) + 5


def test_numbers_and_axis_tops() -> None:
    assert [nice_ceiling(v) for v in (0, 7, 12, 0.003, 250, 1)] == [1, 10, 20, 0.005, 250, 1]
    assert format_value(1234567, "requests") == "1,234,567"
    assert format_value(0.000014, "cost_usd") == "$0.000014"
    assert format_value(12.5, "cost_usd") == "$12.50"


def test_csv_cells_are_never_formulas() -> None:
    body = {
        "group_by": ["tenant", "model"],
        "data": [
            {
                "bucket": "2026-11-30T00:00:00Z",
                "tenant_id": "t1",
                "model": "=HYPERLINK(1)",
                "requests": 1,
                "errors": 0,
                "prompt_tokens": 2,
                "completion_tokens": 3,
                "total_tokens": 5,
                "cost_usd": 0.5,
            }
        ],
    }
    rows = list(csv.reader(io.StringIO(usage_csv_text(body, {"t1": "@acme"}))))
    assert rows[0] == [
        "bucket",
        "tenant_id",
        "tenant_name",
        "model",
        "requests",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "cost_usd",
    ]
    number_cells = ["1", "0", "2", "3", "5", "0.5"]
    assert rows[1] == ["2026-11-30T00:00:00Z", "t1", "'@acme", "'=HYPERLINK(1)", *number_cells]


# --- the pages, over a running stack ---------------------------------------------------


async def _usage_written(stack: Stack, tenant_id: str, requests: int) -> None:
    """Wait until the usage report counts `requests` for the tenant."""
    deadline = time.monotonic() + 20
    async with stack.admin() as admin:
        while True:
            resp = await admin.get("/usage", params={"tenant_id": tenant_id, "bucket": "day"})
            assert resp.status_code == 200, resp.text
            if sum(r["requests"] for r in resp.json()["data"]) >= requests:
                return
            assert time.monotonic() < deadline, resp.text
            await asyncio.sleep(0.2)


async def _send(stack: Stack, key: str, count: int) -> dict[str, int]:
    """`count` chat requests with `key`, over both data planes: the tokens answered."""
    got = {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0}
    auth = {"authorization": f"Bearer {key}"}
    for i in range(count):
        url = stack.data_plane_urls[i % 2]
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            body = {"model": MODEL, "messages": [{"role": "user", "content": "a few words " * i}]}
            resp = await client.post(CHAT, json=body, headers=auth)
        assert resp.status_code == 200, resp.text
        got["requests"] += 1
        got["prompt_tokens"] += resp.json()["usage"]["prompt_tokens"]
        got["completion_tokens"] += resp.json()["usage"]["completion_tokens"]
    return got


@pytest.fixture(scope="module")
async def world(stack: Stack) -> dict[str, Any]:
    """Tenants A (3 requests) and B (2, and a hostile name) with usage written, and C
    with none; a tenant admin token of A's."""
    provider = await stack.create_provider()
    await stack.create_route(MODEL, provider["id"], "fake-console")
    async with stack.admin() as admin:
        assert (await admin.put(f"/prices/{MODEL}", json=PRICE)).status_code == 200
    a = await stack.create_tenant("alpha-console")
    b = await stack.create_tenant(HOSTILE)
    c = await stack.create_tenant("gamma-quiet")
    sent = {}
    for tenant, count in ((a, 3), (b, 2)):
        key = await stack.create_key(tenant["id"])
        await stack.until_model(key["key"], MODEL)
        sent[tenant["id"]] = await _send(stack, key["key"], count)
        await _usage_written(stack, tenant["id"], count)
    made = await create_token(stack, "tenant_admin", a["id"], name="alpha-ops")
    return {"a": a, "b": b, "c": c, "sent": sent, "tenant_admin": made["token"]}


def _number(text: str) -> float:
    return float(text.replace(",", "").replace("$", ""))


def _totals(page: str) -> dict[str, float]:
    """The usage table's totals row."""
    return {k: _number(v) for k, v in re.findall(r'data-total="(\w+)">([^<]+)<', page)}


def _stats(page: str) -> list[dict[str, float]]:
    """The overview's totals, a dict per period (the last 24 hours, then 30 days)."""
    found = re.findall(r'data-stat="(\w+)">([^<]+)<', page)
    return [{k: _number(v) for k, v in found[i : i + 4]} for i in range(0, len(found), 4)]


def _cost(sent: dict[str, int]) -> float:
    return (
        sent["prompt_tokens"] * PRICE["input_per_million"]
        + sent["completion_tokens"] * PRICE["output_per_million"]
    ) / 1e6


async def test_usage_page_and_csv_hold_the_requests_sent(
    stack: Stack, world: dict[str, Any]
) -> None:
    a, sent = world["a"], world["sent"][world["a"]["id"]]
    client = await login(stack.control_plane_url, stack.admin_token)
    try:
        filters = {"tenant_id": a["id"], "bucket": "hour", "group_by": "tenant,model"}
        page = await client.get("/console/usage", params=filters)
        assert page.status_code == 200, page.text
        totals = _totals(page.text)
        assert totals["requests"] == sent["requests"] == 3
        assert totals["prompt_tokens"] == sent["prompt_tokens"]
        assert totals["completion_tokens"] == sent["completion_tokens"]
        assert totals["total_tokens"] == sent["prompt_tokens"] + sent["completion_tokens"]
        assert 'role="img"' in page.text
        assert "Requests per hour" in page.text
        assert "alpha-console" in page.text
        assert MODEL in page.text

        exported = await client.get("/console/usage.csv", params=filters)
        assert exported.status_code == 200, exported.text
        assert exported.headers["content-type"].startswith("text/csv")
        disposition = exported.headers["content-disposition"]
        assert disposition.startswith("attachment; filename=")
        assert disposition.endswith('.csv"')
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert {r["tenant_id"] for r in rows} == {a["id"]}
        assert {r["tenant_name"] for r in rows} == {"alpha-console"}
        assert {r["model"] for r in rows} == {MODEL}
        assert sum(int(r["requests"]) for r in rows) == 3
        assert sum(int(r["prompt_tokens"]) for r in rows) == sent["prompt_tokens"]
        assert sum(int(r["completion_tokens"]) for r in rows) == sent["completion_tokens"]
        assert sum(float(r["cost_usd"]) for r in rows) == pytest.approx(_cost(sent))

        # every tenant, one CSV row per API row: each tenant's sums are its own
        everyone = await client.get("/console/usage.csv", params={"group_by": "tenant"})
        by_tenant: dict[str, int] = {}
        for row in csv.DictReader(io.StringIO(everyone.text)):
            by_tenant[row["tenant_id"]] = by_tenant.get(row["tenant_id"], 0) + int(row["requests"])
        assert by_tenant == {a["id"]: 3, world["b"]["id"]: 2}
        # the hostile name is text on the page, never markup
        page = await client.get("/console/usage", params={"group_by": "tenant"})
        assert HOSTILE not in page.text
        assert html.escape(HOSTILE) in page.text or "&lt;script&gt;" in page.text
        assert _totals(page.text)["requests"] == 5
    finally:
        await client.aclose()


async def test_overview_shows_the_requests(stack: Stack, world: dict[str, Any]) -> None:
    sent = world["sent"]
    client = await login(stack.control_plane_url, stack.admin_token)
    try:
        page = await client.get("/console")
    finally:
        await client.aclose()
    assert page.status_code == 200, page.text
    day, month = _stats(page.text)
    tokens = sum(s["prompt_tokens"] + s["completion_tokens"] for s in sent.values())
    for period in (day, month):
        assert period["requests"] == 5
        assert period["total_tokens"] == tokens
        assert period["errors"] == 0
        assert period["cost_usd"] == pytest.approx(sum(_cost(s) for s in sent.values()), abs=1e-6)
    a = world["a"]["id"]
    row = rf'<a href="/console/tenants/{a}">alpha-console</a></td>\s*<td class="num">3</td>'
    assert len(re.findall(row, page.text)) == 2  # in both periods
    assert page.text.count('<svg class="chart" role="img"') == 4
    assert HOSTILE not in page.text
    assert "Data-plane replicas" in page.text
    assert page.text.count("in sync</span>") + page.text.count("catching up</span>") == 2


async def test_a_tenant_admin_sees_only_its_tenant(stack: Stack, world: dict[str, Any]) -> None:
    a, b, sent = world["a"], world["b"], world["sent"][world["a"]["id"]]
    client = await login(stack.control_plane_url, world["tenant_admin"])
    try:
        overview = await client.get("/console")
        usage = await client.get("/console/usage", params={"group_by": "tenant"})
        exported = await client.get("/console/usage.csv", params={"group_by": "tenant"})
        asked_for_b = await client.get("/console/usage", params={"tenant_id": b["id"]})
    finally:
        await client.aclose()
    for resp in (overview, usage, exported, asked_for_b):
        assert b["id"] not in resp.text
        assert "&lt;script&gt;" not in resp.text
        assert HOSTILE not in resp.text
        assert world["c"]["id"] not in resp.text
    assert overview.status_code == 200, overview.text
    day, month = _stats(overview.text)
    assert day["requests"] == month["requests"] == 3
    assert day["total_tokens"] == sent["prompt_tokens"] + sent["completion_tokens"]
    assert "Data-plane replicas" not in overview.text
    assert _totals(usage.text)["requests"] == 3
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["tenant_id"] for r in rows} == {a["id"]}
    assert sum(int(r["requests"]) for r in rows) == 3
    assert "data-total" not in asked_for_b.text  # nothing of B's: the empty state
    assert "No usage in this range" in asked_for_b.text


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"since": "last tuesday"}, 400, None),
        ({"since": "2026-12-05", "until": "2026-12-01"}, 422, "since must be before until"),
        ({"since": "0001-01-01"}, 422, "must be at or after"),
    ],
)
async def test_a_bad_filter_shows_next_to_its_field(
    stack: Stack, world: dict[str, Any], params: dict[str, str], status: int, says: str | None
) -> None:
    client = await login(stack.control_plane_url, stack.admin_token)
    try:
        for path in ("/console/usage", "/console/usage.csv"):
            resp = await client.get(path, params=params)
            assert resp.status_code == status, resp.text
            assert resp.headers["content-type"].startswith("text/html")
            error = re.search(
                r'<p id="u-since-error" class="field-error" role="alert">([^<]+)<', resp.text
            )
            assert error is not None, resp.text
            assert says is None or says in html.unescape(error.group(1))
            assert re.search(r'id="u-since"[^>]*aria-invalid="true"', resp.text)
            assert "data-total" not in resp.text
    finally:
        await client.aclose()


async def test_no_usage_says_how_to_send_a_first_request(
    stack: Stack, world: dict[str, Any]
) -> None:
    client = await login(stack.control_plane_url, stack.admin_token)
    try:
        page = await client.get("/console/usage", params={"tenant_id": world["c"]["id"]})
    finally:
        await client.aclose()
    assert page.status_code == 200, page.text
    assert "No usage in this range" in page.text
    assert "/v1/chat/completions" in page.text
    assert "data-total" not in page.text
