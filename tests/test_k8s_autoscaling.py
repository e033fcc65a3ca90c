"""Autoscaling, shutdown and the Kubernetes schemas of every overlay of deploy/k8s.

Static: the rendered overlays (`tests/support/kustomize.py`), the prometheus-adapter
rules, and the schemas that kubernetes-validate carries. That the metric the
autoscalers read is on a real data plane's /metrics: `tests/test_load_metrics.py`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import kubernetes_validate
import msgspec
import pytest
import yaml

from data_plane.metrics import OPEN_STREAMS, REQUESTS_IN_FLIGHT
from shared.config import Settings
from shared.serve import CUT_SECONDS
from tests.support.k8s import (
    K8S,
    OVERLAYS,
    Doc,
    adapter_names,
    adapter_rules,
    containers,
    deployment,
    env,
    named,
    of_kind,
    rendered,
)
from tests.support.kustomize import build

# The oldest Kubernetes release the manifests support, and the newest schemas known.
KUBERNETES = ("1.30.0", kubernetes_validate.latest_version())
CUSTOM_KINDS = {"ScaledObject"}  # CRDs: no schema ships with kubernetes-validate
HPA_OVERLAYS = ("dev", "prod")
LOAD_SERIES = {REQUESTS_IN_FLIGHT, OPEN_STREAMS}


def _default(field: str) -> float:
    (found,) = [f.default for f in msgspec.structs.fields(Settings) if f.name == field]
    return float(found)


# --- schemas ----------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_matches_the_kubernetes_schema(overlay: str, version: str) -> None:
    docs = [doc for doc in rendered(overlay) if doc["kind"] not in CUSTOM_KINDS]
    assert len(docs) >= 8
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any error


def test_the_schema_check_refuses_a_wrong_manifest() -> None:
    hpa = named(rendered("prod"), "HorizontalPodAutoscaler", "sluice-data-plane")
    wrong = yaml.safe_load(yaml.safe_dump(hpa))
    wrong["spec"]["metrics"][0]["pods"]["target"]["averageValue"] = {"not": "a quantity"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, KUBERNETES[0], strict=True)
    wrong = yaml.safe_load(yaml.safe_dump(hpa))
    wrong["spec"]["behaviour"] = wrong["spec"].pop("behavior")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, KUBERNETES[0], strict=True)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
@pytest.mark.parametrize("folder", ["base", *(f"overlays/{o}" for o in OVERLAYS)])
def test_the_renderer_agrees_with_kustomize(folder: str) -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S / folder)], capture_output=True, text=True, check=True
    ).stdout

    def key(doc: Doc) -> tuple[str, str]:
        return doc["kind"], doc["metadata"]["name"]

    theirs = sorted(yaml.safe_load_all(out), key=key)
    assert sorted(build(K8S / folder), key=key) == theirs


# --- shutdown ---------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_data_plane_outlives_its_drain(overlay: str) -> None:
    plane = deployment(rendered(overlay), "data-plane")
    pod = plane["spec"]["template"]["spec"]
    (container,) = containers(plane)
    settings = env(container)

    def seconds(name: str, field: str) -> float:
        return float(settings[name]["value"]) if name in settings else _default(field)

    delay = seconds("SLUICE_DRAIN_DELAY_SECONDS", "drain_delay_seconds")
    grace = seconds("SLUICE_DRAIN_GRACE_SECONDS", "drain_grace_seconds")
    assert delay >= 3, "the endpoint removal needs a few seconds to reach every proxy"
    # The process drains on SIGTERM by itself; a preStop hook would only add to the wait.
    assert "preStop" not in container.get("lifecycle", {})
    needed = delay + grace + CUT_SECONDS
    assert pod["terminationGracePeriodSeconds"] >= needed + 5, f"{needed} s of drain, + margin"
    assert pod["terminationGracePeriodSeconds"] <= needed + 30, "a stuck pod is killed soon"


# --- the HPA (dev, prod) ----------------------------------------------------------


@pytest.mark.parametrize("overlay", HPA_OVERLAYS)
def test_the_hpa_scales_the_data_plane_on_load_and_cpu(overlay: str) -> None:
    docs = rendered(overlay)
    (hpa,) = of_kind(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
    assert named(docs, "Deployment", target["name"]) is deployment(docs, "data-plane")
    assert "replicas" not in deployment(docs, "data-plane")["spec"], "the HPA owns the count"
    spec = hpa["spec"]
    assert spec["minReplicas"] >= (1 if overlay == "dev" else 2)
    assert spec["maxReplicas"] > spec["minReplicas"]
    by_type = {m["type"]: m for m in spec["metrics"]}
    assert sorted(by_type) == ["Pods", "Resource"]
    pods = by_type["Pods"]["pods"]
    assert pods["target"]["type"] == "AverageValue"
    assert int(pods["target"]["averageValue"]) > 0
    served = adapter_names(LOAD_SERIES)
    assert pods["metric"]["name"] in served, "no prometheus-adapter rule serves this metric"
    cpu = by_type["Resource"]["resource"]
    assert cpu["name"] == "cpu"
    assert 40 <= cpu["target"]["averageUtilization"] <= 80
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60


def test_the_adapter_rules_serve_per_pod_gauges() -> None:
    served = adapter_names(LOAD_SERIES)
    assert served == {name: name for name in LOAD_SERIES}, "served under their own names"
    for rule in adapter_rules():
        overrides = rule["resources"]["overrides"]
        assert overrides["pod"] == {"resource": "pod"}
        assert overrides["namespace"] == {"resource": "namespace"}
        query = rule["metricsQuery"]
        assert "<<.Series>>" in query
        assert "<<.LabelMatchers>>" in query
        assert "rate(" not in query, "gauges: read as they are"


def test_the_data_plane_pods_are_scraped() -> None:
    plane = deployment(rendered("prod"), "data-plane")
    annotations = plane["spec"]["template"]["metadata"]["annotations"]
    (container,) = containers(plane)
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    ports = {p["containerPort"] for p in container["ports"]}
    assert int(annotations["prometheus.io/port"]) in ports


# --- KEDA -------------------------------------------------------------------------

# The ScaledObject fields this overlay may use (KEDA 2.x, keda.sh/v1alpha1): without
# the CRD's schema, a misspelt field is caught here; the HPA behaviour inside it is
# checked against the Kubernetes schema below.
SCALED_OBJECT_SPEC = {
    "scaleTargetRef",
    "minReplicaCount",
    "maxReplicaCount",
    "pollingInterval",
    "cooldownPeriod",
    "idleReplicaCount",
    "fallback",
    "advanced",
    "triggers",
}
TRIGGER_FIELDS = {"type", "metricType", "metadata", "name", "authenticationRef"}


def test_keda_replaces_the_hpa_with_a_scaled_object() -> None:
    docs = rendered("keda")
    assert of_kind(docs, "HorizontalPodAutoscaler") == [], "KEDA creates and owns the HPA"
    (scaled,) = of_kind(docs, "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec.keys() <= SCALED_OBJECT_SPEC
    target = spec["scaleTargetRef"]
    assert named(docs, "Deployment", target["name"]) is deployment(docs, "data-plane")
    assert target.get("kind", "Deployment") == "Deployment"
    assert 2 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    triggers = {t["type"]: t for t in spec["triggers"]}
    assert sorted(triggers) == ["cpu", "prometheus"]
    for trigger in spec["triggers"]:
        assert trigger.keys() <= TRIGGER_FIELDS
    prometheus = triggers["prometheus"]["metadata"]
    assert prometheus["serverAddress"].startswith("http")
    assert float(prometheus["threshold"]) > 0
    assert set(re.findall(r"sluice_[a-z_]+", prometheus["query"])) <= LOAD_SERIES
    assert re.findall(r"sluice_[a-z_]+", prometheus["query"])
    assert 40 <= int(triggers["cpu"]["metadata"]["value"]) <= 80


@pytest.mark.parametrize("version", KUBERNETES)
def test_the_keda_hpa_behaviour_matches_the_kubernetes_schema(version: str) -> None:
    (scaled,) = of_kind(rendered("keda"), "ScaledObject")
    behavior: dict[str, Any] = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"][
        "behavior"
    ]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 60
    hpa = named(rendered("prod"), "HorizontalPodAutoscaler", "sluice-data-plane")
    as_keda_would = {**hpa, "spec": {**hpa["spec"], "behavior": behavior}}
    kubernetes_validate.validate(as_keda_would, version, strict=True)
