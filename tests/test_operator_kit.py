"""The operator kit: Prometheus alert rules (deploy/prometheus/alerts.yaml) and the
Grafana dashboard (deploy/grafana/sluice.json).

The rules file has the structure Prometheus loads, and every metric an alert or a
dashboard query names is served by a real data plane after some traffic, as
prometheus_client's own text parser reads its /metrics (and the control plane's, if it
has one). Metric names are taken from PromQL with `promql_names`, a small tokenizer
(see there); promtool is not needed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.stack import Stack

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "sluice.json"
MODEL = "operator-kit-model"

# What the rules must keep covering: propagation, a blocked follower, breakers, failures,
# the usage spool and spent budgets.
EXPECTED_ALERTS = {
    "SluiceSnapshotLagging",
    "SluiceReplicaBehindFleet",
    "SluiceSnapshotBlocked",
    "SluiceBreakerOpen",
    "SluiceRouteUnavailable",
    "SluiceDeploymentFailing",
    "SluiceHigh5xxRate",
    "SluiceUsageSpoolNotEmpty",
    "SluiceBudgetExhausted",
}
# served by every data plane, whatever its traffic (the cost once a request is accounted)
OPERATIONS_METRICS = {
    "sluice_usage_spooled_records",
    "sluice_budgets_exhausted",
    "sluice_cost_usd_total",
}
SEVERITIES = {"warning", "critical"}
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")

# PromQL tokenizer. Strings go first (label values, and anything inside them), then
# label matchers `{...}` (label names), ranges `[...]` (durations, Grafana's
# $__rate_interval), and grouping lists `by (...)`, `on (...)`, ... (label names). What
# is left is numbers, operators, keywords, function and aggregation names (each followed
# by `(`), and metric names: every other identifier.
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_TOKEN = re.compile(r"(?P<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?[a-z]*)|(?P<ident>[A-Za-z_:][\w:]*)")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
}


def promql_names(expr: str) -> set[str]:
    """The metric names an expression reads."""
    text = _STRING.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for token in _TOKEN.finditer(text):
        ident = token.group("ident")
        if ident is None or ident in _KEYWORDS:
            continue
        if text[token.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        names.add(ident)
    return names


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # inside collapsed rows


def _queries() -> dict[str, str]:
    """Where each expression comes from -> the expression, over rules and dashboard."""
    found = {f"alert {rule['alert']}": rule["expr"] for rule in _rules()}
    for panel in _panels(_dashboard()["panels"]):
        for target in panel.get("targets", []):
            found[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    return found


def test_the_tokenizer_finds_metrics_not_labels_functions_or_durations() -> None:
    expr = (
        'sum by (model, deployment) (rate(sluice_a_total{reason="x_y", pod=~"p.*"}[5m]))'
        " / on (model) group_left sum without (instance) (rate(sluice_b_bucket[$__rate_interval]))"
        " > 0.1 and histogram_quantile(0.99, sluice_c_bucket) or scalar(max(sluice_d))"
        ' - sluice_e offset 5m unless label_replace(sluice_f, "dst", "$1", "src", "(.*)")'
    )
    assert promql_names(expr) == {
        "sluice_a_total",
        "sluice_b_bucket",
        "sluice_c_bucket",
        "sluice_d",
        "sluice_e",
        "sluice_f",
    }
    assert promql_names("max_over_time(up[5m]) == bool 2") == {"up"}


def test_the_rules_file_has_the_structure_prometheus_loads() -> None:
    doc = yaml.safe_load(ALERTS.read_text())
    assert set(doc) == {"groups"}
    assert doc["groups"], "no groups"
    group_names = [group["name"] for group in doc["groups"]]
    assert len(group_names) == len(set(group_names)), "group names repeat"
    names = []
    for group in doc["groups"]:
        assert set(group) == {"name", "rules"}, group["name"]
        assert group["rules"], f"group {group['name']} has no rules"
        for rule in group["rules"]:
            name = rule["alert"]
            names.append(name)
            assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, name
            assert isinstance(rule["expr"], str), name
            assert rule["expr"].strip(), name
            assert DURATION.match(rule["for"]), f"{name}: for {rule['for']!r}"
            assert rule["labels"]["severity"] in SEVERITIES, name
            assert set(rule["annotations"]) == {"summary", "description"}, name
            assert all(v.strip() for v in rule["annotations"].values()), name
    assert len(names) == len(set(names)), "alert names repeat"
    assert set(names) >= EXPECTED_ALERTS, EXPECTED_ALERTS - set(names)


def test_the_dashboard_is_grafana_json_whose_panels_all_query() -> None:
    dash = _dashboard()
    assert dash["uid"], "no uid"
    assert dash["title"], "no title"
    assert dash["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = list(_panels(dash["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    titles = set()
    for panel in panels:
        assert "gridPos" in panel, panel["title"]
        titles.add(panel["title"])
        if panel["type"] in ("row", "text"):
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
    for wanted in (
        "Requests in flight and open streams",
        "Time to first token percentiles",
        "Tokens by tenant",
        "Client errors by deployment",
        "Snapshot lag (events)",
        "Cost by tenant",
        "Cost by model",
    ):
        assert wanted in titles


def test_every_query_names_at_least_one_metric() -> None:
    """So that the check below cannot pass by finding no names at all."""
    for where, expr in _queries().items():
        assert promql_names(expr), f"{where}: no metric found in {expr!r}"


@pytest.fixture(scope="module")
async def key(stack: Stack) -> str:
    provider = await stack.create_provider()
    await stack.create_route(MODEL, provider["id"], "fake-1")
    tenant = await stack.create_tenant()
    key: str = (await stack.create_key(tenant["id"]))["key"]
    await stack.until_model(key, MODEL)
    return key


def _served_names(exposition: str) -> set[str]:
    """Every series name with a sample in a /metrics text, as Prometheus stores it
    (histograms: `_bucket`, `_sum`, `_count`; counters: `_total`)."""
    return {
        sample.name
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


async def test_every_metric_the_kit_reads_is_served(stack: Stack, key: str) -> None:
    headers = {"authorization": f"Bearer {key}"}
    served: set[str] = set()
    async with (
        httpx.AsyncClient(headers=headers, timeout=30) as client,
        httpx.AsyncClient(timeout=10) as scraper,
    ):
        for url in stack.data_plane_urls:
            for stream in (False, True):
                body = {
                    "model": MODEL,
                    "stream": stream,
                    "messages": [{"role": "user", "content": "hi"}],
                }
                resp = await client.post(url + "/v1/chat/completions", json=body)
                assert resp.status_code == 200, resp.text
            scraped = await scraper.get(url + "/metrics")
            assert scraped.status_code == 200, scraped.text
            served |= _served_names(scraped.text)
        control = await scraper.get(stack.control_plane_url + "/metrics")
        if control.status_code == 200:  # the control plane has none today
            served |= _served_names(control.text)
    assert "sluice_deployment_attempts_total" in served, "the traffic reached no deployment"
    assert served >= OPERATIONS_METRICS, OPERATIONS_METRICS - served
    kit = set().union(*map(promql_names, _queries().values()))
    assert kit >= OPERATIONS_METRICS, OPERATIONS_METRICS - kit
    missing = {
        where: sorted(promql_names(expr) - served)
        for where, expr in _queries().items()
        if promql_names(expr) - served
    }
    assert not missing, f"metrics no plane serves: {missing}"
