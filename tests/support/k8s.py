"""The rendered Kubernetes overlays of deploy/k8s and ways to find objects in them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import yaml

from tests.support.kustomize import Doc, build

__all__ = [
    "K8S",
    "OVERLAYS",
    "Doc",
    "adapter_names",
    "adapter_rules",
    "argv",
    "component",
    "containers",
    "deployment",
    "env",
    "ids",
    "named",
    "of_kind",
    "rendered",
    "workloads",
]

K8S = Path(__file__).resolve().parent.parent.parent / "deploy" / "k8s"
OVERLAYS = ("dev", "prod", "keda")
WORKLOAD_KINDS = {"Deployment", "Job"}


@cache
def _rendered(overlay: str) -> tuple[Doc, ...]:
    return tuple(build(K8S / "overlays" / overlay))


def rendered(overlay: str) -> list[Doc]:
    """What `kubectl apply -k deploy/k8s/overlays/<overlay>` applies."""
    return list(_rendered(overlay))


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc.get("kind") == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}"
    return found[0]


def component(doc: Doc) -> str:
    return str(doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"])


def workloads(docs: list[Doc]) -> list[Doc]:
    return [doc for doc in docs if doc.get("kind") in WORKLOAD_KINDS]


def deployment(docs: list[Doc], name: str) -> Doc:
    found = [doc for doc in of_kind(docs, "Deployment") if component(doc) == name]
    assert len(found) == 1, f"expected one {name} Deployment, found {len(found)}"
    return found[0]


def containers(workload: Doc) -> list[Doc]:
    pod = workload["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def env(container: Doc) -> dict[str, Doc]:
    return {var["name"]: var for var in container.get("env", [])}


def argv(container: Doc) -> list[str]:
    return [*container.get("command", []), *container.get("args", [])]


def ids(docs: list[Doc]) -> list[str]:
    return [f"{doc['kind']}/{doc['metadata']['name']}" for doc in docs]


def adapter_rules() -> list[Doc]:
    """The prometheus-adapter rules of deploy/k8s/prometheus-adapter/rules.yaml."""
    rules: list[Doc] = yaml.safe_load((K8S / "prometheus-adapter" / "rules.yaml").read_text())[
        "rules"
    ]
    return rules


def adapter_names(series: Iterable[str]) -> dict[str, str]:
    """The custom metric each of `series` is served as, by the first rule that takes it
    (as prometheus-adapter reads `seriesQuery` and `name`): {metric name: series}."""
    served: dict[str, str] = {}
    for rule in adapter_rules():
        query = rule["seriesQuery"]
        pattern = re.search(r'__name__=~"([^"]+)"', query)
        bare = re.match(r"\s*([A-Za-z_:][A-Za-z0-9_:]*)", query)
        name = rule.get("name", {})
        for one in series:
            if one in served.values():
                continue
            if pattern and re.fullmatch(pattern.group(1).strip("^$"), one) is None:
                continue
            if not pattern and (bare is None or bare.group(1) != one):
                continue
            matches = name.get("matches", "^(.*)$")
            as_ = name.get("as", "${1}").replace("${1}", "\\1").replace("$1", "\\1")
            if re.search(matches, one):
                served[re.sub(matches, as_, one)] = one
    return served
